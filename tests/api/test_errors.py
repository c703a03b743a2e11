"""Errors are RFC 9457 problems everywhere, map the adapter error tree, and leak no internals."""

from __future__ import annotations

import pytest

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    BulkheadFull,
    CircuitOpen,
    ContractViolation,
    DeadlineExceeded,
    RecordNotFound,
)
from tests.api.fakes import ACCT_MAIN, ACCT_OTHER, OWNER
from tests.api.helpers import assert_problem

LEAKY = "soap:Server zeep.exceptions.Fault Traceback (most recent call last) pyodbc SELECT * FROM ACCTMAST"


@pytest.mark.parametrize(("error", "status", "slug"), [
    (CircuitOpen(LEAKY, retry_after=12.2, backend="soap", operation="BalanceInquiry"), 503, "backend-unavailable"),
    (BulkheadFull(LEAKY, backend="soap"), 503, "backend-unavailable"),
    (BackendUnavailable(LEAKY, backend="soap"), 503, "backend-unavailable"),
    (BackendTimeout(LEAKY, backend="soap"), 504, "backend-timeout"),
    (DeadlineExceeded(LEAKY, backend="soap"), 504, "backend-timeout"),
    (BackendFault(LEAKY, backend="soap"), 502, "backend-error"),
    (ContractViolation(LEAKY, backend="odbc", operation="balance"), 502, "backend-error"),
    (RecordNotFound(LEAKY, backend="soap"), 404, "not-found"),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_backend_errors(client, tokens, core, error, status, slug):
    core.fail_next("balance", error)
    r = client.get(f"/v1/accounts/{ACCT_MAIN}/balance", headers=tokens.headers())
    body = assert_problem(r, status, slug)
    assert "ACCTMAST" not in r.text and "BalanceInquiry" not in r.text
    if isinstance(error, CircuitOpen):
        assert r.headers["retry-after"] == "13"
    if isinstance(error, BulkheadFull):
        assert r.headers["retry-after"] == "1"
    assert "outcome_unknown" not in body


def test_unknown_ids_are_404(client, tokens):
    assert_problem(client.get("/v1/accounts/999999999999", headers=tokens.headers()), 404, "not-found")
    assert_problem(client.get("/v1/transfers/NO-SUCH-REF", headers=tokens.headers()), 404, "not-found")


def test_contract_violations_are_counted(client, tokens, core, app):
    core.fail_next("account", ContractViolation("bad date", backend="soap", operation="AccountInquiry"))
    assert_problem(client.get(f"/v1/accounts/{ACCT_MAIN}", headers=tokens.headers()), 502)
    text = client.get("/metrics").text
    assert 'corebridge_mapping_errors_total{backend="soap",operation="AccountInquiry"} 1.0' in text


def test_insufficient_funds_is_a_rejection_with_the_reason_code(client, tokens, core):
    body = {"from_account": ACCT_MAIN, "to_account": ACCT_OTHER, "amount": "5000.00", "currency": "EUR"}
    r = client.post("/v1/transfers", json=body, headers=tokens.headers())
    problem = assert_problem(r, 422, "rejected")
    assert problem["reason_code"] == "R006" and problem["reason"] == "INSUFFICIENT FUNDS"
    assert problem["reference"].startswith("CB")
    assert core.attempts(problem["reference"])[0].status == "rejected"


def test_currency_mismatch_is_rejected_by_the_core(client, tokens):
    body = {"from_account": ACCT_MAIN, "to_account": ACCT_OTHER, "amount": "1.00", "currency": "USD"}
    problem = assert_problem(client.post("/v1/transfers", json=body, headers=tokens.headers()), 422, "rejected")
    assert problem["reason_code"] == "R005"


def test_outcome_unknown_gives_the_reference_to_look_up(client, tokens, core):
    core.fail_next("post", BackendTimeout("read timed out after sending", backend="soap", outcome_unknown=True))
    body = {"from_account": ACCT_MAIN, "to_account": ACCT_OTHER, "amount": "3.00", "currency": "EUR"}
    problem = assert_problem(client.post("/v1/transfers", json=body, headers=tokens.headers()), 504,
                             "backend-timeout")
    assert problem["outcome_unknown"] is True and problem["reference"].startswith("CB")
    assert client.get(f"/v1/transfers/{problem['reference']}", headers=tokens.headers()).status_code == 404


def test_unhandled_errors_are_a_bare_500(client, tokens, core):
    core.fail_next("customer", RuntimeError(LEAKY))  # type: ignore[arg-type]
    body = assert_problem(client.get(f"/v1/customers/{OWNER}", headers=tokens.headers()), 500, "internal-error")
    assert set(body) == {"type", "title", "status", "detail", "request_id"}


def test_unknown_route_and_method_are_problems(client, tokens):
    assert_problem(client.get("/v1/nothing-here"), 404, "not-found")
    r = client.delete(f"/v1/accounts/{ACCT_MAIN}", headers=tokens.headers())
    assert_problem(r, 405, "method-not-allowed")
    assert "GET" in r.headers["allow"]


# -- validation -----------------------------------------------------------------------------------------
GOOD = {"from_account": ACCT_MAIN, "to_account": ACCT_OTHER, "amount": "10.00", "currency": "EUR"}


@pytest.mark.parametrize(("body", "field"), [
    (GOOD | {"admin": True}, "admin"),
    (GOOD | {"amount": 10.0}, "amount"),
    (GOOD | {"amount": 10}, "amount"),
    (GOOD | {"amount": "10.001"}, None),
    (GOOD | {"amount": "1e3"}, "amount"),
    (GOOD | {"amount": "-5.00"}, "amount"),
    (GOOD | {"amount": "0.00"}, None),
    (GOOD | {"currency": "eur"}, "currency"),
    (GOOD | {"currency": "XXX"}, None),
    (GOOD | {"to_account": ACCT_MAIN}, None),
    (GOOD | {"memo": "x" * 41}, "memo"),
    ({k: v for k, v in GOOD.items() if k != "currency"}, "currency"),
], ids=lambda v: None)
def test_invalid_transfer_bodies_are_422_problems(client, tokens, body, field):
    r = client.post("/v1/transfers", json=body, headers=tokens.headers())
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"] and all(set(e) == {"loc", "msg", "type"} for e in problem["errors"])
    if field:
        assert any(field in e["loc"] for e in problem["errors"]), problem


def test_malformed_json_is_a_422_problem(client, tokens):
    r = client.post("/v1/transfers", content=b'{"from_account": ', headers=tokens.headers() |
                    {"Content-Type": "application/json"})
    assert_problem(r, 422, "validation-error")


def test_invalid_query_and_path_are_422_problems(client, tokens):
    h = tokens.headers()
    assert_problem(client.get(f"/v1/accounts/{ACCT_MAIN}/transactions?from=20261101", headers=h), 422)
    assert_problem(client.get(f"/v1/accounts/{ACCT_MAIN}/transactions?from=2026-11-20&to=2026-11-01", headers=h), 422)
    assert_problem(client.get("/v1/accounts/bad%20id", headers=h), 422)


def test_body_too_large_is_413(client, tokens):
    big = GOOD | {"memo": "x" * 20_000}
    r = client.post("/v1/transfers", json=big, headers=tokens.headers())
    assert_problem(r, 413, "payload-too-large")


def test_chunked_body_too_large_is_413(client, tokens):
    def chunks():
        for _ in range(20):
            yield b"x" * 1024

    r = client.post("/v1/transfers", content=chunks(), headers=tokens.headers() | {"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload-too-large")


def test_chunked_body_under_the_cap_is_served(client, tokens):
    import json

    payload = json.dumps(GOOD).encode()

    def chunks():
        yield payload[:10]
        yield payload[10:]

    r = client.post("/v1/transfers", content=chunks(), headers=tokens.headers() | {"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_authentication_comes_before_validation(client):
    r = client.post("/v1/transfers", json={"nonsense": 1})
    assert_problem(r, 401, "unauthorized")
