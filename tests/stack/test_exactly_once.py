"""Exactly-once through the real stack: facade (with a SQLite store) -> resilience -> SOAP adapter ->
the in-process mock mainframe, whose FundsTransfer commits the posting and then drops the answer."""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint_demo_token
from api.bootstrap import build_gateways
from api.demo import DEMO_SCOPES, demo_settings
from api.observability import Metrics
from api.store import IntentState, StoreSettings
from api.store.sqlite import SqliteStore
from mock_mainframe.faults import FaultRule
from tests.support import customer_with_two_accounts, running_mock


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    with running_mock(tmp_path_factory.mktemp("eo-mock"), seed=11) as mm:
        yield mm


@pytest.fixture(scope="module")
def stack(mock, tmp_path_factory):
    endpoints = mock.endpoints_dict()
    settings = demo_settings(endpoints, "127.0.0.1", 8000)
    metrics = Metrics()
    gateways = build_gateways(settings, metrics)
    store = SqliteStore(tmp_path_factory.mktemp("eo-store") / "store.db")
    app = create_app(settings, gateways, metrics=metrics, store=store,
                     store_settings=StoreSettings(reconcile_interval_seconds=0.2))
    with TestClient(app) as client:
        yield client, settings, store
    store.close()


def test_lost_answer_gets_the_truth_and_a_retry_posts_nothing_more(stack, mock, caplog):
    caplog.set_level(logging.INFO, logger="corebridge.api.exactly_once")
    client, settings, store = stack
    customer, src, dst, ccy = customer_with_two_accounts(mock)
    headers = {"Authorization": f"Bearer {mint_demo_token(settings.auth, customer, DEMO_SCOPES)}",
               "Idempotency-Key": str(uuid.uuid4())}
    body = {"from_account": src, "to_account": dst, "amount": "2.50", "currency": ccy, "memo": "EXACTLY ONCE"}
    mock.faults.set_rules([FaultRule(face="soap", operation="FundsTransfer", drop_response_rate=1.0)])
    try:
        first = client.post("/v1/transfers", headers=headers, json=body)
    finally:
        mock.faults.clear()
    assert first.status_code == 201, first.text  # the posting was found by inquiry
    ref = first.json()["reference"]
    assert first.json()["status"] == "posted"
    assert any(f"transfer {ref}: outcome unknown" in r.getMessage() for r in caplog.records)  # lost, then asked
    assert [r["XFER_STAT"] for r in mock.ledger.transfers_by_ref(ref)] == ["P"]
    assert store.by_reference(ref).state is IntentState.POSTED
    retry = client.post("/v1/transfers", headers=headers, json=body)  # the client never saw the answer
    assert retry.status_code == 201 and retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    assert len(mock.ledger.transfers_by_ref(ref)) == 1
    got = client.get(f"/v1/transfers/{ref}", headers=headers)
    assert got.status_code == 200 and got.json()["status"] == "posted"


def test_a_missing_key_is_refused_before_the_core(stack, mock):
    client, settings, _ = stack
    customer, src, dst, ccy = customer_with_two_accounts(mock)
    token = mint_demo_token(settings.auth, customer, DEMO_SCOPES)
    r = client.post("/v1/transfers", headers={"Authorization": f"Bearer {token}"},
                    json={"from_account": src, "to_account": dst, "amount": "1.00", "currency": ccy})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
