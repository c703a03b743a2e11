"""Every endpoint through the real stack: facade -> resilience -> SOAP/ODBC adapters -> mock mainframe.

No fakes here: the mock runs in-process on free ports, the facade is built by the composition
root (``api.bootstrap.build_gateways``) exactly as ``make run`` builds it.
"""

from __future__ import annotations

import re
import time
import uuid
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint_demo_token
from api.bootstrap import build_gateways
from api.demo import DEMO_SCOPES, demo_settings
from api.observability import Metrics
from tests.support import running_mock


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    with running_mock(tmp_path_factory.mktemp("stack-mock"), seed=7) as mm:
        yield mm


@pytest.fixture(scope="module")
def stack(mock):
    endpoints = mock.endpoints_dict()
    settings = demo_settings(endpoints, "127.0.0.1", 8000)
    settings = settings.model_copy(update={"resilience": settings.resilience.model_copy(update={
        "soap": settings.resilience.soap.model_copy(update={
            "attempt_timeout": 1.0, "total_deadline": 2.0,
            "breaker": settings.resilience.soap.breaker.model_copy(update={
                "minimum_number_of_calls": 3, "sliding_window_size": 5, "wait_duration_in_open": 1.0,
                "permitted_calls_in_half_open": 1})})})})
    metrics = Metrics()
    gateways = build_gateways(settings, metrics)
    app = create_app(settings, gateways, metrics=metrics)
    with TestClient(app) as client:
        yield client, settings


def _customer_with_two_usd_accounts(mock) -> tuple[str, str, str]:
    for row in mock.ledger.query("SELECT CUST_NO FROM CUSTMAST ORDER BY CUST_NO"):
        accts = [a for a in mock.ledger.accounts_of(row["CUST_NO"].strip())
                 if a["ACCT_STAT"] == "A" and a["AVAIL_BAL"] > 100]
        by_ccy: dict[str, list] = {}
        for a in accts:
            by_ccy.setdefault(a["CURR_CD"], []).append(a["ACCT_NO"].strip())
        for ccy, nos in by_ccy.items():
            if len(nos) >= 2 and ccy != "JPY":
                return row["CUST_NO"].strip(), nos[0], nos[1]
    raise AssertionError("seed has no customer with two open accounts in one currency")


def _auth(settings, customer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_demo_token(settings.auth, customer, DEMO_SCOPES)}"}


def test_every_endpoint_through_the_real_stack(stack, mock):
    client, settings = stack
    customer, src, dst = _customer_with_two_usd_accounts(mock)
    h = _auth(settings, customer)
    r = client.get(f"/v1/customers/{customer}", headers=h)
    assert r.status_code == 200 and r.json()["id"] == customer
    r = client.get(f"/v1/customers/{customer}/accounts", headers=h)
    assert src in {a["id"] for a in r.json()["items"]}
    r = client.get(f"/v1/accounts/{src}", headers=h)
    assert r.status_code == 200 and r.json()["customer_id"] == customer
    r = client.get(f"/v1/accounts/{src}/balance", headers=h)
    body = r.json()
    ledger_row = mock.ledger.account(src)
    assert body["available"]["amount"] == str(ledger_row["AVAIL_BAL"]) and body["stale"] is False
    assert isinstance(body["available"]["amount"], str)
    # history: two pages, no overlap, newest first, equal to the ledger's rows
    p1 = client.get(f"/v1/accounts/{src}/transactions", params={"limit": 5}, headers=h).json()
    p2 = client.get(f"/v1/accounts/{src}/transactions", params={"limit": 5, "cursor": p1["next_cursor"]},
                    headers=h).json()
    ids = [t["id"] for t in p1["items"] + p2["items"]]
    assert len(ids) == len(set(ids)) == 10
    rows, _ = mock.ledger.history(src, limit=10)
    assert [Decimal(t["running_balance"]["amount"]) for t in p1["items"] + p2["items"]] == [
        row["RUN_BAL"] for row in rows]
    # a transfer posts once and is visible by its reference
    before = mock.ledger.account(src)["AVAIL_BAL"]
    r = client.post("/v1/transfers", headers={**h, "Idempotency-Key": str(uuid.uuid4())},
                    json={"from_account": src, "to_account": dst, "amount": "1.25", "currency": "USD",
                          "memo": "STACK TEST"})
    assert r.status_code == 201, r.text
    transfer = r.json()
    assert transfer["status"] == "posted"
    assert mock.ledger.account(src)["AVAIL_BAL"] == before - Decimal("1.25")
    ref = transfer["reference"]
    assert len(mock.ledger.transfers_by_ref(ref)) == 1
    r = client.get(f"/v1/transfers/{ref}", headers=h)
    assert r.status_code == 200 and r.json()["amount"]["amount"] == "1.25"
    # insufficient funds: the core's rejection as a problem
    r = client.post("/v1/transfers", headers=h, json={"from_account": src, "to_account": dst,
                                                      "amount": "9999999.00", "currency": "USD"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["reason_code"] in ("R006", "R007")


def test_someone_elses_account_is_404_through_the_real_stack(stack, mock):
    client, settings = stack
    customer, src, _ = _customer_with_two_usd_accounts(mock)
    other = "C0000002" if customer != "C0000002" else "C0000003"
    r = client.get(f"/v1/accounts/{src}/balance", headers=_auth(settings, other))
    assert r.status_code == 404
    assert src not in r.text


def test_soap_face_down_balance_served_stale_from_odbc_then_recovery(stack, mock):
    client, settings = stack
    customer, src, _ = _customer_with_two_usd_accounts(mock)
    h = _auth(settings, customer)
    mock.faults.outage("soap", 60)
    try:
        r = client.get(f"/v1/accounts/{src}/balance", headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["stale"] is True and r.json()["as_of"]
        for _ in range(4):  # enough failures to open the SOAP breaker
            client.get(f"/v1/customers/{customer}", headers=h)
        r = client.get(f"/v1/customers/{customer}", headers=h)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
        assert r.headers["content-type"].startswith("application/problem+json")
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "soap" in ready.text
        r = client.get(f"/v1/accounts/{src}/balance", headers=h)
        assert r.status_code == 200 and r.json()["stale"] is True
    finally:
        mock.faults.end_outage("soap")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = client.get(f"/v1/customers/{customer}", headers=h)
        if r.status_code == 200:
            break
        time.sleep(0.3)
    assert r.status_code == 200
    assert client.get(f"/v1/accounts/{src}/balance", headers=h).json()["stale"] is False
    assert client.get("/readyz").status_code == 200


def test_request_id_reaches_the_core(stack, mock, caplog):
    client, settings = stack
    customer, src, _ = _customer_with_two_usd_accounts(mock)
    with caplog.at_level("INFO"):
        r = client.get(f"/v1/accounts/{src}/balance", headers={**_auth(settings, customer),
                                                               "X-Request-ID": "stack-rid-42"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "stack-rid-42"
    assert any("stack-rid-42" in rec.getMessage() for rec in caplog.records if rec.name.startswith("mock_mainframe"))


def test_metrics_count_core_calls(stack, mock):
    client, _ = stack
    text = client.get("/metrics").text
    assert "soap" in text and "core" in text


def test_metrics_show_the_odbc_pool(stack, mock):
    """History goes over ODBC: the pool's connections and its statements (kept prepared: fewer
    prepared than executed) are on /metrics."""
    client, settings = stack
    customer, src, _ = _customer_with_two_usd_accounts(mock)
    h = _auth(settings, customer)
    for _ in range(3):
        assert client.get(f"/v1/accounts/{src}/transactions", params={"limit": 5}, headers=h).status_code == 200
    text = client.get("/metrics").text

    def value(name: str) -> float:
        found = re.search(rf'^{name}{{backend="odbc"}} ([0-9.e+]+)$', text, re.M)
        assert found, f"{name} is not on /metrics"
        return float(found.group(1))

    executed = value("corebridge_pool_statements_executed_total")
    prepared = value("corebridge_pool_statements_prepared_total")
    assert executed >= 3 and 1 <= prepared < executed
    assert value("corebridge_pool_size") >= 1 and value("corebridge_pool_exhausted_total") == 0
    assert re.search(r'^corebridge_pool_connections{backend="odbc",state="open"} [1-9]', text, re.M)

