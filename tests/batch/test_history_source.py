"""History from the batch read model: the store source (paging, keyset cursor, date filters), the merge
with a core source (de-duplicated by transaction id, newest first, combined cursor), and both through
the facade (``batch.history_mode`` replace / merge) over the in-process mock mainframe."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint_demo_token
from api.batch import TxnhistIngestor, open_store
from api.batch.history import BatchHistoryAccountSource, MergedHistory, StoreHistorySource, row_to_transaction
from api.batch.settings import BatchSettings
from api.bootstrap import build_gateways
from api.demo import DEMO_SCOPES, demo_settings
from api.observability import Metrics
from canonical import Money, Page, Transaction
from mappings.engine import MappingRegistry
from tests.support import running_mock

ACCT = "1000000001"
OTHER_ACCT = "1000000002"
T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def txn(seq: int, *, account: str = ACCT, hours: float | None = None, amount: str = "-1.00") -> Transaction:
    booked = T0 + dt.timedelta(hours=seq if hours is None else hours)
    return Transaction(id=f"{account}-{seq}", account_id=account, booked_at=booked, value_date=booked.date(),
                       amount=Money(amount=Decimal(amount), currency="USD"), description=f"T{seq}",
                       running_balance=Money(amount=Decimal("100.00"), currency="USD"))


def store_row(t: Transaction) -> tuple:
    rb = t.running_balance
    return (t.id, t.account_id, t.booked_at.isoformat(), t.value_date.isoformat(), f"{t.amount.amount:f}",
            t.amount.currency, t.description, t.reference, t.counterparty, t.channel, t.kind, str(t.status),
            None if rb is None else f"{rb.amount:f}", "TXNHIST.TEST", "0" * 64)


class FakeCore:
    """A core history source: newest first by booked_at, an index cursor (like the ODBC ``TXN_SEQ`` one)."""

    def __init__(self, items: list[Transaction]) -> None:
        self.items = sorted(items, key=lambda t: (t.booked_at, t.id), reverse=True)
        self.calls = 0

    def history(self, account_id, *, from_date=None, to_date=None, limit=50, cursor=None, timeout=None):
        self.calls += 1
        rows = [t for t in self.items if t.account_id == account_id
                and (from_date is None or t.booked_at.date() >= from_date)
                and (to_date is None or t.booked_at.date() <= to_date)]
        start = int(cursor) if cursor else 0
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return Page[Transaction](items=tuple(page), next_cursor=str(start + limit) if more else None)

    def accounts_of(self, customer_id, *, timeout=None):
        return []

    def account(self, account_id, *, timeout=None):
        raise AssertionError("not used")

    def balance(self, account_id, *, timeout=None):
        raise AssertionError("not used")


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "batch.db")
    yield s
    s.close()


def fill(store, items: list[Transaction]) -> None:
    with store.transaction():
        store.insert_transactions([store_row(t) for t in items])


def walk(source, account_id: str = ACCT, limit: int = 3, **kw) -> list[Transaction]:
    out: list[Transaction] = []
    cursor = None
    for _ in range(100):
        page = source.history(account_id, limit=limit, cursor=cursor, **kw)
        assert len(page.items) <= limit
        out += page.items
        cursor = page.next_cursor
        if cursor is None:
            return out
        assert page.items, "a page with a next cursor is never empty"
    raise AssertionError("no end of history")


# -- the store source ------------------------------------------------------------------------------
def test_store_source_pages_newest_first_with_a_keyset_cursor(store):
    items = [txn(i) for i in range(1, 11)] + [txn(1, account=OTHER_ACCT)]
    fill(store, items)
    source = StoreHistorySource(store)
    first = source.history(ACCT, limit=4)
    assert [t.id for t in first.items] == [f"{ACCT}-{i}" for i in (10, 9, 8, 7)]
    assert first.next_cursor and first.next_cursor.startswith("store:")
    got = walk(source, limit=4)
    assert [t.id for t in got] == [f"{ACCT}-{i}" for i in range(10, 0, -1)]
    assert got[0] == items[9]  # exact round trip: amounts, running balance, dates
    # a row loaded between two pages (newer than the first page) does not shift the keyset
    fill(store, [txn(11)])
    second = source.history(ACCT, limit=4, cursor=first.next_cursor)
    assert [t.id for t in second.items] == [f"{ACCT}-{i}" for i in (6, 5, 4, 3)]
    assert source.history("9999999999").items == ()


def test_same_timestamp_rows_are_ordered_by_id_and_never_lost(store):
    items = [txn(i, hours=1) for i in range(1, 8)]
    fill(store, items)
    got = walk(StoreHistorySource(store), limit=2)
    assert [t.id for t in got] == sorted((t.id for t in items), reverse=True)


def test_store_source_filters_on_the_booking_date(store):
    fill(store, [txn(i, hours=24 * i) for i in range(1, 6)])  # one a day: 21st .. 25th
    source = StoreHistorySource(store)
    got = walk(source, from_date=dt.date(2026, 11, 22), to_date=dt.date(2026, 11, 24), limit=1)
    assert [t.booked_at.day for t in got] == [24, 23, 22]
    assert walk(source, from_date=dt.date(2026, 11, 26)) == []


def test_store_source_refuses_foreign_cursors(store):
    source = StoreHistorySource(store)
    for bad in ("odbc:374", "store:!!!", "store:e30", "merged:e30"):
        with pytest.raises(ValueError, match="not a history cursor"):
            source.history(ACCT, cursor=bad)


# -- the merge -------------------------------------------------------------------------------------
def test_merge_is_the_union_without_duplicates_newest_first(store):
    core_items = [txn(i) for i in range(5, 15)]  # intraday and recent: the core's replica
    stored = [txn(i) for i in range(1, 9)]  # end-of-day files: overlap 5..8 with the core
    fill(store, stored)
    core = FakeCore(core_items)
    merged = MergedHistory(StoreHistorySource(store), core)
    for limit in (1, 2, 3, 5, 50):
        got = walk(merged, limit=limit)
        ids = [t.id for t in got]
        assert len(ids) == len(set(ids)), f"duplicates at limit {limit}"
        assert ids == [f"{ACCT}-{i}" for i in range(14, 0, -1)], f"limit {limit}"


def test_merge_interleaves_by_time_and_respects_filters(store):
    fill(store, [txn(i, hours=2 * i) for i in range(1, 6)])  # even hours
    core = FakeCore([txn(100 + i, hours=2 * i + 1) for i in range(1, 6)])  # odd hours
    merged = MergedHistory(StoreHistorySource(store), core)
    got = walk(merged, limit=3)
    assert [t.booked_at for t in got] == sorted((t.booked_at for t in got), reverse=True)
    assert len(got) == 10
    one_day = walk(MergedHistory(StoreHistorySource(store), FakeCore([txn(200, hours=48)])),
                   from_date=dt.date(2026, 11, 22), to_date=dt.date(2026, 11, 22))
    assert [t.id for t in one_day] == [f"{ACCT}-200"]


def test_merge_with_an_empty_side(store):
    fill(store, [txn(i) for i in range(1, 4)])
    assert [t.id for t in walk(MergedHistory(StoreHistorySource(store), FakeCore([])), limit=2)] == [
        f"{ACCT}-3", f"{ACCT}-2", f"{ACCT}-1"]
    empty = open_store(Path(store.target).with_name("empty.db"))
    try:
        got = walk(MergedHistory(StoreHistorySource(empty), FakeCore([txn(i) for i in range(1, 4)])), limit=2)
        assert [t.id for t in got] == [f"{ACCT}-3", f"{ACCT}-2", f"{ACCT}-1"]
    finally:
        empty.close()
    with pytest.raises(ValueError, match="not a history cursor"):
        MergedHistory(StoreHistorySource(store), FakeCore([])).history(ACCT, cursor="store:e30")


def test_the_account_source_delegates_all_but_history(store):
    fill(store, [txn(1)])
    core = FakeCore([txn(2)])
    replace = BatchHistoryAccountSource(core, store, "replace")
    assert [t.id for t in replace.history(ACCT).items] == [f"{ACCT}-1"]
    assert replace.accounts_of("C1") == []
    merge = BatchHistoryAccountSource(core, store, "merge")
    assert [t.id for t in merge.history(ACCT).items] == [f"{ACCT}-2", f"{ACCT}-1"]
    with pytest.raises(ValueError):
        BatchHistoryAccountSource(core, store, "core")
    assert BatchSettings().history_mode == "core" and not BatchSettings().uses_store


# -- through the facade, over the in-process mock -------------------------------------------------
@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    with running_mock(tmp_path_factory.mktemp("history-mock"), seed=7) as mm:
        yield mm


@pytest.fixture(scope="module")
def loaded(mock, tmp_path_factory):
    """The mock's TXNHIST file ingested into a store, plus one row only the store holds."""
    work = tmp_path_factory.mktemp("history-batch")
    path = work / "batch.db"
    files = sorted(mock.config.outbox.glob("TXNHIST.D*"))
    assert files, "the mock writes a TXNHIST file for the last business day"
    with open_store(path) as store:
        ingestor = TxnhistIngestor(store, MappingRegistry.load(), quarantine_dir=work / "quarantine")
        for f in files:
            report = ingestor.ingest(f, hashlib.sha256(f.read_bytes()).hexdigest(), f.name)
            assert report.status == "loaded", report.reason
        account = store.scalar("SELECT account_id FROM transactions GROUP BY account_id ORDER BY COUNT(*) DESC, "
                               "account_id LIMIT 1")
        newest = row_to_transaction(store.query(
            "SELECT * FROM transactions WHERE account_id = ? ORDER BY booked_at DESC LIMIT 1", (account,))[0])
        extra = newest.model_copy(update={"id": f"{account}-99999999", "description": "ONLY IN THE STORE",
                                          "booked_at": newest.booked_at - dt.timedelta(seconds=1)})
        fill(store, [extra])
        ids = {r["id"] for r in store.query("SELECT id FROM transactions WHERE account_id = ?", (account,))}
    owner = mock.ledger.query("SELECT CUST_NO FROM ACCTMAST WHERE TRIM(ACCT_NO) = ?", (account,))[0]["CUST_NO"]
    return path, account, owner.strip(), ids, newest.booked_at.date()


def facade(mock, store_path: Path, mode: str) -> tuple[TestClient, Any]:
    endpoints = mock.endpoints_dict()
    settings = demo_settings(endpoints, "127.0.0.1", 8000)
    settings = settings.model_copy(update={"batch": BatchSettings(store=str(store_path), history_mode=mode)})
    metrics = Metrics()
    app = create_app(settings, build_gateways(settings, metrics), metrics=metrics)
    return TestClient(app), settings


def get_all(client: TestClient, headers: dict[str, str], account: str, **params) -> list[dict]:
    out: list[dict] = []
    query: dict = {"limit": 4, **params}
    for _ in range(200):
        r = client.get(f"/v1/accounts/{account}/transactions", headers=headers, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["items"]
        if not body.get("next_cursor"):
            return out
        query = {**query, "cursor": body["next_cursor"]}
    raise AssertionError("no end of history")


@pytest.mark.parametrize("mode", ["core", "replace", "merge"])
def test_history_mode_through_the_facade(mock, loaded, mode):
    store_path, account, owner, stored_ids, day = loaded
    client, settings = facade(mock, store_path, mode)
    with client:
        headers = {"Authorization": f"Bearer {mint_demo_token(settings.auth, owner, DEMO_SCOPES)}"}
        got = get_all(client, headers, account, **{"from": day.isoformat(), "to": day.isoformat()})
    ids = [t["id"] for t in got]
    assert len(ids) == len(set(ids)), "no transaction twice"
    stamps = [t["booked_at"] for t in got]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    core_ids = _core_ids(mock, account, day)
    assert core_ids and stored_ids - core_ids == {f"{account}-99999999"}
    extra = f"{account}-99999999"
    if mode == "core":
        assert set(ids) == core_ids and extra not in ids
    elif mode == "replace":
        assert set(ids) == stored_ids and extra in ids
    else:
        assert set(ids) == core_ids | stored_ids and extra in ids
        assert core_ids <= set(ids)


def _core_ids(mock, account: str, day: dt.date) -> set[str]:
    from mock_mainframe.ledger.legacy import to_cyymmdd

    rows = mock.ledger.query("SELECT TXN_SEQ FROM TXNHIST WHERE TRIM(ACCT_NO) = ? AND POST_DT = ?",
                             (account, to_cyymmdd(day)))
    return {f"{account}-{int(r['TXN_SEQ'])}" for r in rows}
