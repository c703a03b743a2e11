"""The reconciler's last resort: the end-of-day files (a real SQLite batch store) when the core cannot be
asked. The core is the fake, its inquiries down; intents are written through the store's own API with
times in the past, so no test waits for a clock."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.errors import BackendUnavailable, RecordNotFound
from api.app import create_app
from api.batch.store import open_store
from api.services import Access, ExactlyOnceService, TransferService
from api.services.eod_lookup import BatchStorePostings, EndOfDayPass, Verdict
from api.services.inquiry import FallbackInquiryGateway
from api.store import IntentState, StoredResponse, StoreSettings
from api.store.postgres import PostgresStore
from api.store.sqlite import SqliteStore
from canonical import Money, Transfer, TransferStatus
from tests.api.fakes import ACCT_MAIN, ACCT_SAVINGS, OWNER, make_gateways
from tests.support import fresh_pg_database

SETTINGS = StoreSettings(end_of_day_fallback=True, end_of_day_after_seconds=600, resend_after_seconds=30,
                         stale_after_seconds=5, lease_seconds=30)
DAY0, DAY1, DAY2 = dt.date(2026, 11, 25), dt.date(2026, 11, 26), dt.date(2026, 11, 27)
T0 = time.time() - 7200  # when the lost transfer was created (two hours ago)


class InquiryDown:
    """The fake core's transfer gateway whose inquiries cannot reach the core; postings work."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        return self.inner.post(transfer, timeout=timeout)

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        raise BackendUnavailable("the core cannot be asked", backend="fake", operation="inquire")


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "store.db")
    yield s
    s.close()


@pytest.fixture
def batch(tmp_path):
    b = open_store(tmp_path / "batch.db")
    yield b
    b.close()


@pytest.fixture
def service(settings, core, store, batch, tmp_path):
    gateways = replace(make_gateways(core), transfers=InquiryDown(core.transfers))
    app = create_app(settings, gateways, store=store, store_settings=SETTINGS, reconciler=False)
    with TestClient(app):
        svc = app.state.services.exactly_once
        svc.use_end_of_day(BatchStorePostings(open_store(tmp_path / "batch.db")))
        yield svc
        svc.end_of_day.close()


def _transfer(reference: str, amount: str = "1.25") -> Transfer:
    return Transfer(reference=reference, from_account=ACCT_MAIN, to_account=ACCT_SAVINGS,
                    amount=Money.of(amount, "EUR"), memo="EOD")


def _intent(store, reference: str, *, created: float, state: IntentState, amount: str = "1.25") -> None:
    """An intent as the service leaves it: UNKNOWN after a lost answer (202 stored), or POSTED."""
    t = _transfer(reference, amount)
    store.begin(OWNER, f"key-{reference}", fingerprint="f", reference=reference, transfer=t.model_dump_json(),
                owner="ghost", now=created, lease_seconds=1, retention_seconds=30 * 86400)
    status = 202 if state is IntentState.UNKNOWN else 201
    body = t.model_copy(update={"status": TransferStatus(state.value)}).model_dump_json().encode()
    assert store.update(reference, "ghost", state=state, now=created + 5, release=True,
                        response=StoredResponse(status, {"content-type": "application/json"}, body))


def _file(batch, day: dt.date, legs: list[tuple[str, str, str]], *, ingested: float) -> None:
    """A loaded TXNHIST file of ``day`` holding ``legs`` (reference, account, signed amount)."""
    name = f"TXNHIST.D{day:%y%m%d}"
    sha = uuid.uuid4().hex * 2
    rows = [(f"{name}-{i}", acct, f"{day}T10:00:00", day.isoformat(), amount, "EUR", "TRANSFER", ref.ljust(16),
             None, "API", "transfer", "posted", None, name, sha) for i, (ref, acct, amount) in enumerate(legs)]
    with batch.transaction():
        batch.insert_transactions(rows)
        batch.record_file(name=name, sha256=sha, status="loaded", file_date=day.isoformat(), seq_no=day.toordinal(),
                          records=len(rows), rejects=0, duplicates=0, control_total="0", reason=None, report="{}")
        stamp = dt.datetime.fromtimestamp(ingested, dt.UTC).isoformat(timespec="seconds")
        batch.execute("UPDATE ingested_files SET ingested_at = ? WHERE file_name = ?", (stamp, name))


def _both_legs(ref: str, amount: str = "1.25") -> list[tuple[str, str, str]]:
    return [(ref, ACCT_MAIN, f"-{amount}"), (ref, ACCT_SAVINGS, amount)]


def test_a_reference_in_the_files_resolves_to_posted_without_calling_the_core(service, store, batch, core):
    ref = "CB00000000E0D001"
    _intent(store, ref, created=T0, state=IntentState.UNKNOWN)
    _file(batch, DAY1, [*_both_legs(ref), ("CB00000000AAAAAA", ACCT_MAIN, "-9.00")], ingested=T0 + 3600)
    assert service.reconcile() == 1
    intent = store.by_reference(ref)
    assert intent.state is IntentState.POSTED
    assert intent.response.status == 201
    posted = Transfer.model_validate_json(intent.response.body)
    assert posted.status is TransferStatus.POSTED and posted.value_date == DAY1
    assert posted.amount.amount == Decimal("1.25")
    assert core.attempts(ref) == []  # nothing was sent


def test_legs_that_contradict_the_intent_are_reported_and_decide_nothing(service, store, batch, core, caplog):
    ref = "CB00000000E0D002"
    _intent(store, ref, created=T0, state=IntentState.UNKNOWN)
    _file(batch, DAY1, _both_legs(ref, "12.50"), ingested=T0 + 3600)
    with caplog.at_level(logging.ERROR, logger="corebridge.api.eod_lookup"):
        assert service.reconcile() == 0
    assert store.by_reference(ref).state is IntentState.UNKNOWN
    assert any(f"transfer {ref}: the end-of-day files hold 2 leg(s)" in r.getMessage() for r in caplog.records)
    assert core.attempts(ref) == []


def test_absent_from_files_covering_every_possible_day_counts_as_not_posted_and_is_sent_again(
        service, store, batch, core):
    ref, witness = "CB00000000E0D003", "CB00000000E0D0FF"
    _file(batch, DAY0, [], ingested=T0 - 600)  # closed before the transfer was created: the lower bound
    _intent(store, ref, created=T0, state=IntentState.UNKNOWN)
    _intent(store, witness, created=T0 + 120, state=IntentState.POSTED)  # created after ref could arrive
    _file(batch, DAY1, _both_legs(witness, "3.00"), ingested=T0 + 3600)  # the upper bound
    assert service.reconcile() == 1
    assert store.by_reference(ref).state is IntentState.POSTED
    assert [a.status for a in core.attempts(ref)] == [TransferStatus.POSTED]  # sent again, once, same reference


@pytest.mark.parametrize("case", ["no file closed before the transfer", "no witness after it",
                                  "witness created before the arrival deadline", "a day between is missing"])
def test_absence_without_full_coverage_decides_nothing(service, store, batch, core, case):
    ref, witness = "CB00000000E0D004", "CB00000000E0D0FE"
    if case != "no file closed before the transfer":
        _file(batch, DAY0, [], ingested=T0 - 600)
    _intent(store, ref, created=T0, state=IntentState.UNKNOWN)
    if case != "no witness after it":
        created = T0 + 20 if case == "witness created before the arrival deadline" else T0 + 120
        _intent(store, witness, created=created, state=IntentState.POSTED)
        day = DAY2 if case == "a day between is missing" else DAY1
        _file(batch, day, _both_legs(witness, "3.00"), ingested=T0 + 3600)
    assert service.reconcile() == 0
    assert store.by_reference(ref).state is IntentState.UNKNOWN
    assert core.attempts(ref) == []


def test_an_unreadable_batch_store_decides_nothing_and_sends_nothing(service, store, batch, core, caplog):
    ref, witness = "CB00000000E0D007", "CB00000000E0D0FD"
    _file(batch, DAY0, [], ingested=T0 - 600)
    _intent(store, ref, created=T0, state=IntentState.UNKNOWN)
    _intent(store, witness, created=T0 + 120, state=IntentState.POSTED)
    _file(batch, DAY1, _both_legs(witness, "3.00"), ingested=T0 + 3600)
    service.end_of_day.close()  # the read model's database is gone
    with caplog.at_level(logging.ERROR, logger="corebridge.api.exactly_once"):
        assert service.reconcile() == 0
    assert store.by_reference(ref).state is IntentState.UNKNOWN
    assert any(f"transfer {ref}: reconciliation failed" in m for m in caplog.messages)
    assert core.attempts(ref) == []


def test_young_intents_are_not_looked_up_in_the_files(service, store, batch, core):
    ref = "CB00000000E0D005"
    _intent(store, ref, created=time.time() - 60, state=IntentState.UNKNOWN)  # younger than 600 s
    _file(batch, DAY1, _both_legs(ref), ingested=time.time())
    assert service.reconcile() == 0
    assert store.by_reference(ref).state is IntentState.UNKNOWN


def test_without_the_fallback_the_files_are_not_read(settings, core, store, batch):
    ref = "CB00000000E0D006"
    gateways = replace(make_gateways(core), transfers=InquiryDown(core.transfers))
    app = create_app(settings, gateways, store=store, store_settings=SETTINGS, reconciler=False)
    _intent(store, ref, created=T0, state=IntentState.UNKNOWN)
    _file(batch, DAY1, _both_legs(ref), ingested=T0 + 3600)
    with TestClient(app):
        assert app.state.services.exactly_once.reconcile() == 0
    assert store.by_reference(ref).state is IntentState.UNKNOWN


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def batch_target(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "batch.db")
        return
    with fresh_pg_database("cb_eod") as dsn:
        yield dsn


def test_batch_store_postings_query_in_chunks_and_only_loaded_files(batch_target):
    refs = [f"CB0000000000{i:04X}" for i in range(7)]
    writer = open_store(batch_target)
    postings = BatchStorePostings(open_store(batch_target), chunk=3)
    try:
        _file(writer, DAY1, [leg for r in refs for leg in _both_legs(r)], ingested=T0)
        with writer.transaction():  # rows of a file that is not (or no longer) loaded do not count
            writer.insert_transactions([("Q-1", ACCT_MAIN, "2026-11-27T10:00:00", "2026-11-27", "-1.00", "EUR", "X",
                                         "CB00000000QQQQQQ", None, None, None, "posted", None, "TXNHIST.D261127",
                                         "q")])
            writer.record_file(name="TXNHIST.D261127", sha256="q", status="quarantined", file_date="2026-11-27",
                               seq_no=1, records=1, rejects=0, duplicates=0, control_total=None, reason="bad",
                               report=json.dumps({}))
        legs = postings.legs([*refs, "CB00000000QQQQQQ", "CB00000000NOTHER"])
        assert sorted({leg.reference for leg in legs}) == sorted(refs)
        assert len(legs) == 2 * len(refs) and all(leg.business_date == DAY1 for leg in legs)
        assert {(leg.account_id, leg.amount) for leg in legs if leg.reference == refs[0]} == {
            (ACCT_MAIN, Decimal("-1.25")), (ACCT_SAVINGS, Decimal("1.25"))}
        [loaded] = postings.files()
        assert loaded.file_name == "TXNHIST.D261126" and loaded.business_date == DAY1
        second = int(T0)  # kept to the second: ingested at some instant of [second, second + 1)
        assert loaded.ingested_before(second + 1) and not loaded.ingested_before(second + 0.99)
    finally:
        postings.close()
        writer.close()


def test_use_end_of_day_needs_a_store_that_lists_postings(core, batch, tmp_path):
    class NoListing:
        """A store without ``posted_after``."""

    gateways = make_gateways(core)
    access = Access(gateways.accounts)
    service = ExactlyOnceService(TransferService(gateways.transfers, access), gateways.transfers, access,
                                 NoListing(), SETTINGS)  # type: ignore[arg-type]
    postings = BatchStorePostings(batch)
    with pytest.raises(TypeError, match="NoListing cannot list posted intents"):
        service.use_end_of_day(postings)
    service.use_end_of_day(None)  # off is always fine
    assert service.end_of_day is None


class _Primary:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        return transfer.model_copy(update={"status": TransferStatus.POSTED})

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        if self.error is not None:
            raise self.error
        return [_transfer(reference).model_copy(update={"status": TransferStatus.POSTED, "channel": "SOAP"})]


class _Fallback:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        self.asked.append(reference)
        return [_transfer(reference).model_copy(update={"status": TransferStatus.POSTED, "channel": "ODBC"})]


def test_inquiries_fall_back_to_the_second_face_only_when_the_first_cannot_answer():
    down, fallback = _Primary(BackendUnavailable("down", backend="soap", operation="inquire")), _Fallback()
    assert [t.channel for t in FallbackInquiryGateway(down, fallback).inquire("CB1")] == ["ODBC"]
    up = FallbackInquiryGateway(_Primary(None), fallback)
    assert [t.channel for t in up.inquire("CB2")] == ["SOAP"]
    with pytest.raises(RecordNotFound):  # "not found" is an answer, not a failure
        FallbackInquiryGateway(_Primary(RecordNotFound("none", backend="soap", operation="inquire")),
                               fallback).inquire("CB3")
    assert fallback.asked == ["CB1"]
    assert up.post(_transfer("CB4")).status is TransferStatus.POSTED


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_posted_after_lists_postings_created_later_oldest_first(backend, tmp_path):
    def check(intents) -> None:
        for n, (state, created) in enumerate([(IntentState.POSTED, 100.0), (IntentState.POSTED, 300.0),
                                              (IntentState.UNKNOWN, 250.0), (IntentState.POSTED, 200.0)]):
            _intent(intents, f"CB00000000F0D00{n}", created=created, state=state)
        assert [i.reference for i in intents.posted_after(150.0, 10)] == ["CB00000000F0D003", "CB00000000F0D001"]
        assert [i.created_at for i in intents.posted_after(150.0, 1)] == [200.0]

    if backend == "sqlite":
        s = SqliteStore(tmp_path / "store.db")
        try:
            check(s)
        finally:
            s.close()
        return
    with fresh_pg_database("cb_eod_store") as dsn:
        s = PostgresStore(dsn)
        try:
            check(s)
        finally:
            s.close()


def test_each_intent_gets_witnesses_after_its_own_deadline(store, batch, tmp_path):
    """An old intent's many later postings must not crowd out the witnesses a newer intent needs."""
    old, new = "CB00000000E0D008", "CB00000000E0D009"
    _file(batch, DAY0, [], ingested=T0 - 600)
    _intent(store, old, created=T0, state=IntentState.UNKNOWN)
    _intent(store, new, created=T0 + 1000, state=IntentState.UNKNOWN)
    early = [f"CB00000000E0DA0{n}" for n in range(3)]  # after old's deadline, before new's
    for n, ref in enumerate(early):
        _intent(store, ref, created=T0 + 100 + n, state=IntentState.POSTED)
    _intent(store, "CB00000000E0DA09", created=T0 + 1100, state=IntentState.POSTED)  # after new's deadline
    _file(batch, DAY1, [leg for r in early for leg in _both_legs(r)], ingested=T0 + 3600)
    _file(batch, DAY2, _both_legs("CB00000000E0DA09"), ingested=T0 + 3700)
    postings = BatchStorePostings(open_store(tmp_path / "batch.db"))
    try:
        view = EndOfDayPass(postings, store, [store.by_reference(old), store.by_reference(new)],
                            resend_after_seconds=30, witnesses=2)
        verdicts = {ref: view.answer(store.by_reference(ref), _transfer(ref)).verdict for ref in (old, new)}
    finally:
        postings.close()
    assert verdicts == {old: Verdict.NOT_POSTED, new: Verdict.NOT_POSTED}
