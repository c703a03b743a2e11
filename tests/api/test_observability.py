"""Metrics, request ids, readiness, structured logs and masking."""

from __future__ import annotations

import dataclasses
import io
import json
import logging

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from adapters.errors import BackendTimeout
from api.app import create_app
from api.observability import (
    JsonFormatter,
    MaskingFilter,
    Metrics,
    configure_logging,
    mask_customer_id,
    mask_text,
    outcome_of,
    request_id_var,
)
from tests.api.fakes import ACCT_MAIN, OWNER, FakeHealth, make_gateways
from tests.api.helpers import assert_problem, unmasked


# -- metrics ------------------------------------------------------------------------------------------
def test_metrics_expose_the_request_histogram(client, tokens):
    client.get(f"/v1/accounts/{ACCT_MAIN}/balance", headers=tokens.headers())
    client.get("/v1/accounts/999999999999/balance", headers=tokens.headers())
    text = client.get("/metrics").text
    assert ('corebridge_http_request_duration_seconds_bucket{le="0.5",method="GET",'
            'route="/v1/accounts/{account_id}/balance",status="200"} 1.0') in text
    assert ('corebridge_http_requests_total{method="GET",route="/v1/accounts/{account_id}/balance",'
            'status="404"} 1.0') in text
    assert ACCT_MAIN not in text  # route templates, never ids


def test_metrics_read_breakers_and_retries_from_health(client, health):
    health.set_state("soap", "read", "open")
    text = client.get("/metrics").text
    assert 'corebridge_breaker_state{backend="soap",operation_class="read",state="open"} 1.0' in text
    assert 'corebridge_breaker_state{backend="soap",operation_class="read",state="closed"} 0.0' in text
    assert 'corebridge_core_retries_total{backend="soap",operation_class="read"} 2.0' in text
    assert "corebridge_mappings_loaded 1.0" in text


def test_metrics_show_the_connection_pools(settings, gateways, caplog):
    pools = {"odbc": {"size": 4, "open": 2, "idle": 1, "in_use": 1, "opened": 3, "discarded": 1, "cancelled": 1,
                      "exhausted": 0, "executed": 40, "prepared": 5, "statements_kept": 5}}
    app = create_app(settings, dataclasses.replace(gateways, pools=lambda: pools))
    with TestClient(app) as c:
        text = c.get("/metrics").text
        for line in ('corebridge_pool_connections{backend="odbc",state="in_use"} 1.0',
                     'corebridge_pool_connections{backend="odbc",state="idle"} 1.0',
                     'corebridge_pool_size{backend="odbc"} 4.0',
                     'corebridge_pool_statements_cancelled_total{backend="odbc"} 1.0',
                     'corebridge_pool_statements_executed_total{backend="odbc"} 40.0',
                     'corebridge_pool_statements_prepared_total{backend="odbc"} 5.0'):
            assert line in text, line

        def broken():
            raise RuntimeError("pool gone")

        app2 = create_app(settings, dataclasses.replace(gateways, pools=broken))
    with TestClient(app2) as c2, caplog.at_level(logging.WARNING, logger="corebridge.metrics"):
        r = c2.get("/metrics")
    assert r.status_code == 200 and "corebridge_pool_" not in r.text and "corebridge_breaker_state" in r.text
    assert "gateways.pools() failed" in caplog.text


def test_core_call_hook(settings, gateways):
    metrics = Metrics()
    app = create_app(settings, gateways, metrics=metrics)
    metrics.observe_core_call("soap", "BalanceInquiry", 0.012, "success")
    with pytest.raises(BackendTimeout), metrics.core_call("odbc", "balance"):
        raise BackendTimeout()
    with TestClient(app) as c:
        text = c.get("/metrics").text
    assert ('corebridge_core_call_duration_seconds_count{backend="soap",operation="BalanceInquiry",'
            'outcome="success"} 1.0') in text
    assert ('corebridge_core_call_duration_seconds_count{backend="odbc",operation="balance",'
            'outcome="timeout"} 1.0') in text
    assert outcome_of(None) == "success" and outcome_of(ValueError()) == "error"


def test_two_apps_do_not_share_metrics(settings, gateways):
    one, two = create_app(settings, gateways), create_app(settings, gateways)
    with TestClient(one) as c1, TestClient(two) as c2:
        c1.get("/healthz")
        assert 'route="/healthz"' in c1.get("/metrics").text
        assert 'route="/healthz"' not in c2.get("/metrics").text


# -- readiness ----------------------------------------------------------------------------------------
def test_readyz_reflects_an_open_breaker(client, health):
    health.set_state("soap", "write", "open")
    r = client.get("/readyz")
    problem = assert_problem(r, 503, "not-ready")
    assert problem["blocking"] == ["soap"] and "soap" in problem["detail"]
    assert problem["backends"]["soap"]["operations"]["write"] == "open"
    health.set_state("soap", "write", "half_open")
    assert client.get("/readyz").status_code == 200


def test_readyz_ignores_optional_backends(client, health):
    health.set_state("odbc", "read", "forced_open")
    body = client.get("/readyz").json()
    assert body["status"] == "ready" and body["backends"]["odbc"]["state"] == "forced_open"


def test_readyz_waits_for_mappings(settings, core):
    app = create_app(settings, make_gateways(core, FakeHealth(), mappings_loaded=lambda: False))
    with TestClient(app) as c:
        problem = assert_problem(c.get("/readyz"), 503, "not-ready")
    assert problem["mappings_loaded"] is False and problem["blocking"] == []


# -- request ids --------------------------------------------------------------------------------------
def test_request_id_is_echoed_and_reaches_the_adapters(client, tokens, gateways):
    r = client.get(f"/v1/accounts/{ACCT_MAIN}/balance", headers=tokens.headers() | {"X-Request-ID": "req-42/abc"})
    assert r.headers["x-request-id"] == "req-42/abc"
    assert gateways.accounts.request_ids[-2:] == ["req-42/abc", "req-42/abc"]  # account, then balance
    assert request_id_var.get() is None


@pytest.mark.parametrize("given", ["x" * 65, "caf\u00e9", "tab\there", ""])
def test_invalid_request_ids_are_replaced(client, given):
    r = client.get("/healthz", headers={"X-Request-ID": given.encode("utf-8")})
    assert r.headers["x-request-id"] != given and 1 <= len(r.headers["x-request-id"]) <= 64


def test_generated_request_ids_differ_and_appear_in_problems(client):
    a, b = client.get("/nope"), client.get("/nope")
    assert a.headers["x-request-id"] != b.headers["x-request-id"]
    assert a.json()["request_id"] == a.headers["x-request-id"]


# -- logs ---------------------------------------------------------------------------------------------
def test_one_json_access_line_per_request(client, tokens, caplog):
    caplog.set_level(logging.INFO, logger="corebridge.access")
    client.get(f"/v1/accounts/{ACCT_MAIN}/balance", headers=tokens.headers() | {"X-Request-ID": "rid-1"})
    records = [r for r in caplog.records if r.name == "corebridge.access"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["method"] == "GET" and line["route"] == "/v1/accounts/{account_id}/balance"
    assert line["status"] == 200 and line["request_id"] == "rid-1" and line["duration_ms"] >= 0
    assert line["customer"] == mask_customer_id(OWNER) == "C*****01"


def test_configure_logging_masks_every_line():
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", stream)
    try:
        log = logging.getLogger("corebridge.test.masking")
        log.info("account %s card %s", "110000000543", "4111 1111 1111 1111", extra={"last_name": "SMITH"})
        log.info("customer {'first_name': 'ANNA', 'name': 'A. EXAMPLE'}")
        try:
            raise ValueError("lookup of 5500-0000-0000-0004 failed")
        except ValueError:
            log.exception("failed for 120000000014")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)
    text = stream.getvalue()
    for raw in ("110000000543", "4111 1111 1111 1111", "SMITH", "ANNA", "A. EXAMPLE", "5500-0000-0000-0004",
                "120000000014"):
        assert raw not in text
    assert "********0543" in text and "************1111" in text and all(unmasked(x) is None for x in lines)


def test_masking_filter_masks_records_in_place():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "acct %s", ("110000000543",), None)
    record.first_name = "ANNA"
    MaskingFilter().filter(record)
    assert record.getMessage() == "acct ********0543" and record.first_name == "***"


@pytest.mark.parametrize(("raw", "masked"), [
    ("acct 110000000543", "acct ********0543"),
    ("iban digits 89370400440532013000", "iban digits ****************3000"),
    ("card 4111-1111-1111-1111 ok", "card ************1111 ok"),
    ("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112"),
    ("short 123456789", "short 123456789"),
    ("date 2026-11-27 13:05", "date 2026-11-27 13:05"),
    ('{"last_name": "SMITH", "x": 1}', '{"last_name": "***", "x": 1}'),
    ("name=Bob first_name='Al' hostname=h", "name=*** first_name='***' hostname=h"),
])
def test_mask_text(raw, masked):
    assert mask_text(raw) == masked


_PIECES = st.sampled_from(["1", "12", "4111", "0543", "1234567890", " ", "-", "--", "name", "Name=", "first_name",
                           "hostname", ": ", "'x'", '"y"', "a", ",", "{", "}", "=", "_"])


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_the_quick_screen_changes_no_result(text):
    """``mask_text`` returns a text without 10 digits in a row (single blanks or dashes between them) and
    without "name" unchanged after one scan: the three rules would not have changed it either."""
    from api.observability import _ACCOUNT, _CARD, _NAME_FIELD, _account, _card, _name

    full = _NAME_FIELD.sub(_name, _ACCOUNT.sub(_account, _CARD.sub(_card, text)))
    assert mask_text(text) == full


def test_the_json_lines_are_masked_once_and_still_masked(client, tokens, caplog):
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", stream)
    try:
        client.get("/healthz", headers={"X-Request-ID": "acct-110000000543"})  # a client-chosen id
        logging.getLogger("corebridge.test").info("plain", extra={"note": "card 4111-1111-1111-1111"})
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "110000000543" not in text and "4111-1111-1111-1111" not in text
    assert "acct-********0543" in text and all(unmasked(x) is None for x in text.splitlines())


def test_the_log_scanner_would_catch_leaks():
    assert unmasked("acct 110000000543") == "110000000543"
    assert unmasked("card 4111 1111 1111 1111")
    assert unmasked("12 4111-1111-1111-1111 x")
    assert unmasked("acct ********0543 card ************1111") is None
    assert unmasked("ids C0000001 2026-11-27 limit 200") is None


def test_the_session_log_scan_is_active(log_scan):
    logging.getLogger("corebridge.test").info("account %s", "110000000543")
    assert log_scan.lines > 0 and log_scan.masked_accounts > 0 and not log_scan.violations


def test_text_logs_are_masked_too_by_the_handler_and_by_the_formatter_alone():
    stream = io.StringIO()
    handler = configure_logging("INFO", "text", stream)
    try:
        log = logging.getLogger("corebridge.test.masking")
        log.info("account %s card %s", "110000000543", "4111 1111 1111 1111")
        try:
            raise ValueError("lookup of 5500-0000-0000-0004 failed")
        except ValueError:
            log.exception("failed for 120000000014")
        # the formatter masks on its own (a record that skipped the filter, an exception text cached unmasked)
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "acct %s", ("110000000543",), None)
        record.exc_text = "Traceback: card 4111111111111111"
        line = handler.formatter.format(record)  # type: ignore[union-attr]
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue() + line
    for raw in ("110000000543", "4111 1111 1111 1111", "5500-0000-0000-0004", "120000000014", "4111111111111111"):
        assert raw not in text
    assert "acct ********0543" in line and "************1111" in line
    assert text.count(" INFO corebridge.test.masking account ********0543 ") == 1
