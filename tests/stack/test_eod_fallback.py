"""The end-of-day fallback through the real stack: the facade built by the composition root
(``build_app``: SQLite intent store, ODBC inquiry fallback, end-of-day look-ups) against the in-process
mock mainframe. The core cannot be asked (TransferStatusInquiry fails on SOAP, the ODBC face is out of
reach); the mock closes the business day, ``batch pull`` ingests its TXNHIST file over SFTP, and the
reconciler decides from the file:

* the answer of a committed posting was lost -> the file holds it -> POSTED, never sent again;
* the request was reset before the core took it -> the files covering its day lack it -> "not posted",
  sent again under the same reference (postings still work), posted exactly once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
import uuid
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from adapters.sftp import SftpBatchDropbox
from api.auth import mint_demo_token
from api.batch.scheduler import pull_job
from api.batch.settings import BatchSettings
from api.batch.store import open_store
from api.bootstrap import build_app
from api.demo import DEMO_SCOPES, demo_settings
from api.settings import RoutingSettings
from api.store import IntentState, StoreSettings
from mappings.engine import MappingRegistry
from mock_mainframe.faults import FaultRule
from mock_mainframe.ledger.legacy import to_cyymmdd
from mock_mainframe.ledger.posting import TransferRequest
from tests.support import customer_with_two_accounts, running_mock

INQUIRY_DOWN = FaultRule(face="soap", operation="TransferStatusInquiry", error_rate=1.0, error="http500")


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    with running_mock(tmp_path_factory.mktemp("eod-mock"), seed=13) as mm:
        yield mm


@pytest.fixture(scope="module")
def stack(mock, tmp_path_factory):
    base = tmp_path_factory.mktemp("eod-facade")
    cfg, ep = mock.config, mock.endpoints
    endpoints = {"soap_url": ep.soap_url, "soap_user": cfg.soap_user, "soap_password": cfg.soap_password,
                 # the ODBC face out of reach: its inquiries fail like an outage
                 "odbc": f"DRIVER={{SQLite3}};Database={base}/unreachable/ledger.db",
                 "sftp_host": ep.sftp_host, "sftp_port": ep.sftp_port, "sftp_user": cfg.sftp_user,
                 "sftp_key": str(cfg.client_key_path), "sftp_fingerprint": ep.sftp_fingerprint}
    settings = demo_settings(endpoints, "127.0.0.1", 8000).model_copy(update={
        "routing": RoutingSettings(routes={"default": "soap"}, fallbacks={}),  # reads over SOAP
        "store": StoreSettings(backend="sqlite", sqlite_path=base / "store.db", end_of_day_fallback=True,
                               end_of_day_after_seconds=0, resend_after_seconds=1.0),
        "batch": BatchSettings(store=str(base / "batch.db"), work_dir=base / "batch")})
    app = build_app(settings, reconciler=False)  # the test drives the reconciler
    batch = open_store(settings.batch.store_target)
    pull = pull_job(batch, MappingRegistry.load(), settings.batch,
                    lambda: SftpBatchDropbox(settings.backends.sftp.to_adapter_settings()), outbox="/outbox")
    with TestClient(app) as client:
        yield client, settings, app.state.store, app.state.services.exactly_once, pull
    batch.close()


def _pull_closed_days(pull) -> None:
    """Ingest what the outbox holds, then let a second pass: a transfer created after this instant comes
    after those days were closed (ingestion times are kept to the second)."""
    reports = pull()
    assert all(r.status in ("loaded", "already-ingested") for r in reports), [r.as_json() for r in reports]
    time.sleep(1.1)


def _post(client, settings, customer, body) -> object:
    headers = {"Authorization": f"Bearer {mint_demo_token(settings.auth, customer, DEMO_SCOPES)}",
               "Idempotency-Key": str(uuid.uuid4())}
    return client.post("/v1/transfers", headers=headers, json=body), headers


def _close_day_and_pull(mock, pull) -> tuple[str, dt.date]:
    closed = mock.close_day()
    name = next(f for f in closed["files"] if f.startswith("TXNHIST."))
    reports = {r.file_name: r for r in pull()}
    assert reports[name].status == "loaded", reports[name].as_json()
    return name, dt.date.fromisoformat(closed["closed"])


def test_a_closed_days_file_holds_every_posting_of_that_day_while_postings_race_the_close(stack, mock):
    """What makes "absent from the file" mean "not posted that day": the mock advances the date (waiting for
    postings in flight) before it writes the day's file."""
    settings, pull = stack[1], stack[4]
    _, src, dst, ccy = customer_with_two_accounts(mock)
    posted: list[tuple[str, int]] = []
    stop = threading.Event()

    def poster(who: int) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            ref = f"RACE{who}{i:011d}"
            result = mock.engine.post(TransferRequest(ref, src, dst, Decimal("0.01"), ccy, memo="RACE"))
            assert result.posted, result
            posted.append((ref, result.post_dt))

    threads = [threading.Thread(target=poster, args=(n,), daemon=True) for n in range(2)]
    for t in threads:
        t.start()
    try:
        while len(posted) < 20:
            time.sleep(0.01)
        name, day = _close_day_and_pull(mock, pull)
        seen = len(posted)
        while len(posted) < seen + 20:  # postings go on after the close, on the next day
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    batch = open_store(settings.batch.store_target)
    try:
        in_file = {r["reference"].strip() for r in batch.query(
            "SELECT reference FROM transactions WHERE file_name = ? AND reference IS NOT NULL", (name,))}
    finally:
        batch.close()
    of_day = {ref for ref, post_dt in posted if post_dt == to_cyymmdd(day)}
    later = {ref for ref, post_dt in posted if post_dt > to_cyymmdd(day)}
    assert of_day and later and len(of_day) + len(later) == len(posted)
    assert of_day <= in_file and not later & in_file


def test_a_lost_answer_is_resolved_to_posted_from_the_end_of_day_file(stack, mock, caplog):
    caplog.set_level(logging.INFO, logger="corebridge.api.exactly_once")
    client, settings, store, service, pull = stack
    customer, src, dst, ccy = customer_with_two_accounts(mock)
    _pull_closed_days(pull)
    body = {"from_account": src, "to_account": dst, "amount": "4.20", "currency": ccy, "memo": "EOD POSTED"}
    mock.faults.set_rules([FaultRule(face="soap", operation="FundsTransfer", drop_response_rate=1.0), INQUIRY_DOWN])
    try:
        r, headers = _post(client, settings, customer, body)
        assert r.status_code == 202 and r.json()["status"] == "unknown", r.text  # committed, answer lost
        ref = r.json()["reference"]
        mock.faults.outage("soap", 300)  # and now the SOAP face is down altogether
        assert service.reconcile() == 0  # the core cannot be asked; the day's file is not out yet
        assert store.by_reference(ref).state is IntentState.UNKNOWN
        _close_day_and_pull(mock, pull)
        assert service.reconcile() == 1
    finally:
        mock.faults.clear()
    assert store.by_reference(ref).state is IntentState.POSTED
    assert any(f"transfer {ref}: posted on" in m and "end-of-day" in m for m in caplog.messages)
    got = client.get(f"/v1/transfers/{ref}", headers=headers)
    assert got.status_code == 200 and got.json()["status"] == "posted"
    assert [t["XFER_STAT"] for t in mock.ledger.transfers_by_ref(ref)] == ["P"]  # posted once, never resent
    replay = client.post("/v1/transfers", headers=headers, json=body)
    assert replay.status_code == 201 and replay.json()["reference"] == ref


def test_a_request_the_core_never_took_is_not_posted_and_is_sent_again_once(stack, mock, caplog):
    caplog.set_level(logging.INFO, logger="corebridge.api.exactly_once")
    client, settings, store, service, pull = stack
    customer, src, dst, ccy = customer_with_two_accounts(mock)
    _pull_closed_days(pull)
    body = {"from_account": src, "to_account": dst, "amount": "3.10", "currency": ccy, "memo": "EOD RESENT"}
    mock.faults.set_rules([FaultRule(face="soap", operation="FundsTransfer", error_rate=1.0, error="reset",
                                     remaining=1), INQUIRY_DOWN])
    try:
        r, headers = _post(client, settings, customer, body)
        assert r.status_code == 202 and r.json()["status"] == "unknown", r.text  # reset: sent, fate unknown
        ref = r.json()["reference"]
        assert mock.ledger.transfers_by_ref(ref) == []  # the core never took it
        time.sleep(1.1)  # past resend_after_seconds: the lost request can no longer arrive
        # another transfer posted meanwhile: its posting in the day's file shows the file covers that moment
        witness, _ = _post(client, settings, customer, {**body, "amount": "1.10", "memo": "EOD WITNESS"})
        assert witness.status_code == 201, witness.text
        _close_day_and_pull(mock, pull)
        assert service.reconcile() == 1  # not in the file -> sent again (postings work), under the same reference
    finally:
        mock.faults.clear()
    assert store.by_reference(ref).state is IntentState.POSTED
    assert f"transfer {ref}: not in the end-of-day files that cover its sending" in caplog.messages
    assert [t["XFER_STAT"] for t in mock.ledger.transfers_by_ref(ref)] == ["P"]
    got = client.get(f"/v1/transfers/{ref}", headers=headers)
    assert got.status_code == 200 and got.json()["status"] == "posted"
