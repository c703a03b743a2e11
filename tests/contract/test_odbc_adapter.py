"""``OdbcCore`` against the mock's ODBC face, for real: pyodbc -> unixODBC -> the SQLite3 driver on the
mock's ledger file, and the SAME tests through psqlODBC on a PostgreSQL copy of that ledger
(``load_into_postgres`` into a fresh database, marked ``postgres``).

Every adapter operation is compared with what the mock's own ledger holds (read by another path:
``sqlite3`` / ``psycopg``): history paged across many pages with no duplicates and no gaps, CHAR
keys found padded or not, balances equal to the ledger's ``Decimal`` values, an SQL-injection payload
that finds nothing, the connection pool (bounded, broken connections replaced), timeouts.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    BulkheadFull,
    ContractViolation,
    RecordNotFound,
)
from adapters.odbc import (
    SQL_ACCOUNT,
    SQL_BALANCE,
    SQL_CUSTOMER,
    SQL_HISTORY,
    SQL_TRANSFERS,
    STATEMENTS,
    OdbcCore,
    OdbcSettings,
    TransferInquiry,
    redact,
    to_cyymmdd,
)
from adapters.odbc_errors import convert
from adapters.ports import AccountSource, CustomerSource
from canonical import Account, Balance, Customer, Page, Transaction, Transfer
from mappings.engine import MAPPINGS_DIR
from mappings.engine.contracts import load_ddl
from mock_mainframe.ledger.legacy import from_cyymmdd
from mock_mainframe.ledger.posting import PostingEngine, TransferRequest
from mock_mainframe.ledger.store import Ledger
from mock_mainframe.odbc import load_into_postgres, postgres_connection_string, sqlite_connection_string
from tests.support import fresh_pg_database, require

pyodbc = pytest.importorskip("pyodbc", reason="missing: pyodbc (needs libodbc2)")

pytestmark = pytest.mark.contract

INJECTIONS = ("' OR 1=1 --", "x' OR '1'='1", "1'; DROP TABLE ACCTMAST; --")


@dataclass
class Face:
    """One way to reach the ledger over ODBC, and the ledger itself (read by another path)."""

    name: str
    connection_string: str
    ledger: Ledger
    references: dict[str, str]  # kind -> a transfer reference posted on this face
    dsn: str | None = None


def strip(value: str) -> str:
    return value.rstrip(" ")


def post_samples(ledger: Ledger) -> dict[str, str]:
    """Posting attempts to look up: one posted, one rejected, one reference used twice."""
    rows = ledger.query("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'EUR' "
                        "AND AVAIL_BAL > 1000 ORDER BY ACCT_NO")
    src, dst = strip(rows[0]["ACCT_NO"]), strip(rows[1]["ACCT_NO"])
    engine = PostingEngine(ledger)
    tag = uuid.uuid4().hex[:8].upper()
    refs = {"posted": f"ODBC-P-{tag}", "rejected": f"ODBC-R-{tag}", "twice": f"ODBC-T-{tag}"}
    assert engine.post(TransferRequest(refs["posted"], src, dst, Decimal("12.34"), "EUR", memo="LUNCH")).posted
    [poor] = ledger.query("SELECT ACCT_NO, AVAIL_BAL FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'EUR' "
                          "AND AVAIL_BAL < 20000 AND ACCT_NO <> ? ORDER BY ACCT_NO LIMIT 1", (dst.ljust(12),))
    too_much = poor["AVAIL_BAL"] + Decimal("1.00")
    assert not engine.post(TransferRequest(refs["rejected"], strip(poor["ACCT_NO"]), dst, too_much, "EUR")).posted
    for amount in ("1.00", "2.00"):
        assert engine.post(TransferRequest(refs["twice"], dst, src, Decimal(amount), "EUR")).posted
    return refs


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def face(request, mock):
    if mock is None:
        pytest.skip("compares with the mock's ledger; not run against a real core")
    if request.param == "sqlite":
        require("SQLite3" in pyodbc.drivers(), "ODBC driver SQLite3 (Debian libsqliteodbc)")
        yield Face("sqlite", mock.odbc_connection_string, mock.ledger, post_samples(mock.ledger))
        return
    require("PostgreSQL Unicode" in pyodbc.drivers(), "ODBC driver 'PostgreSQL Unicode' (Debian odbc-postgresql)")
    with fresh_pg_database("cb_odbc_adapter") as dsn:
        load_into_postgres(mock.config.ledger_path, dsn)
        ledger = Ledger(pg_dsn=dsn)
        try:
            yield Face("postgres", postgres_connection_string(dsn, CommLog="0"), ledger, post_samples(ledger), dsn)
        finally:
            ledger.close()


def make_core(face: Face, registry, *, application: str | None = None, **settings) -> OdbcCore:
    """An adapter of its own on ``face``; on PostgreSQL ``application`` names its connections."""
    cs = face.connection_string
    if application and face.dsn:
        cs += f"pqopt={{application_name={application}}};"
    return OdbcCore(OdbcSettings(connection_string=cs, **settings), registry)


def server_pids(face: Face, application: str) -> list[int]:
    rows = face.ledger.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                             "AND application_name = ?", (application,))
    return [int(r["PID"]) for r in rows]


@pytest.fixture(scope="module")
def odbc(face, registry):
    core = make_core(face, registry)
    yield core
    core.close()


def accounts(ledger: Ledger) -> list[dict]:
    return ledger.query("SELECT * FROM ACCTMAST ORDER BY ACCT_NO")


def busiest_accounts(ledger: Ledger, n: int = 3) -> list[str]:
    rows = ledger.query("SELECT ACCT_NO, COUNT(*) AS N FROM TXNHIST GROUP BY ACCT_NO ORDER BY 2 DESC, 1 LIMIT ?",
                        (n,))
    return [strip(r["ACCT_NO"]) for r in rows]


def ledger_history(ledger: Ledger, acct: str, *, from_dt: int = 0, to_dt: int = 9_999_999) -> list[dict]:
    rows, more = ledger.history(acct, from_dt=from_dt, to_dt=to_dt, limit=10**7)
    assert not more
    return rows


def page_through(odbc: OdbcCore, acct: str, limit: int, **filters) -> tuple[list[Transaction], int]:
    items: list[Transaction] = []
    cursor, pages = None, 0
    while True:
        page = odbc.history(acct, limit=limit, cursor=cursor, **filters)
        assert isinstance(page, Page) and len(page.items) <= limit
        items.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            return items, pages
        assert len(page.items) == limit  # only a last page may be short
        cursor = page.next_cursor


# -- the ports --------------------------------------------------------------------------------------------
def test_the_adapter_implements_the_read_ports(odbc):
    assert isinstance(odbc, CustomerSource)
    assert isinstance(odbc, AccountSource)
    assert isinstance(odbc, TransferInquiry)
    assert not hasattr(odbc, "post")  # the ODBC face is a read replica: it never posts


def test_customer_equals_the_ledger(odbc, face):
    for row in face.ledger.query("SELECT * FROM CUSTMAST ORDER BY CUST_NO"):
        got = odbc.customer(strip(row["CUST_NO"]))
        assert isinstance(got, Customer)
        assert (got.id, got.last_name, got.address.city) == (strip(row["CUST_NO"]), strip(row["LAST_NAME"]),
                                                             strip(row["CITY"]))
        assert got.birth_date == from_cyymmdd(row["BIRTH_DT"])


def test_accounts_of_every_customer_equal_the_ledger(odbc, face):
    for row in face.ledger.query("SELECT CUST_NO FROM CUSTMAST ORDER BY CUST_NO"):
        cust = strip(row["CUST_NO"])
        got = odbc.accounts_of(cust)
        expected = face.ledger.accounts_of(cust)
        assert [a.id for a in got] == [strip(r["ACCT_NO"]) for r in expected]
        assert all(isinstance(a, Account) and a.customer_id == cust for a in got)


def test_account_equals_the_ledger(odbc, face):
    for row in accounts(face.ledger):
        got = odbc.account(strip(row["ACCT_NO"]))
        assert (got.id, got.customer_id, got.currency) == (strip(row["ACCT_NO"]), strip(row["CUST_NO"]),
                                                           row["CURR_CD"])
        assert got.opened_on == from_cyymmdd(row["OPEN_DT"])
        assert got.closed_on == from_cyymmdd(row["CLOSE_DT"])


def test_balances_equal_the_ledgers_decimals_exactly(odbc, face):
    business_date = face.ledger.business_date()
    totals: dict[str, list[Decimal]] = {}
    for row in accounts(face.ledger):
        got = odbc.balance(strip(row["ACCT_NO"]))
        assert isinstance(got, Balance) and got.stale is False and got.as_of == business_date
        for money, column in ((got.ledger, "LEDGER_BAL"), (got.available, "AVAIL_BAL")):
            assert type(money.amount) is Decimal and money.currency == row["CURR_CD"]
            assert money.amount == row[column], (row["ACCT_NO"], column)
        exponent = -2 if row["CURR_CD"] != "JPY" else 0
        assert got.ledger.amount.as_tuple().exponent == exponent  # cents kept ('83286.8' -> 83286.80)
        sums = totals.setdefault(row["CURR_CD"], [Decimal(0), Decimal(0)])
        sums[0] += got.ledger.amount
        sums[1] += got.available.amount
    assert {c: tuple(v) for c, v in totals.items()} == face.ledger.balance_totals()


def test_history_pages_through_every_row_without_gaps_or_duplicates(odbc, face):
    for acct in busiest_accounts(face.ledger) + [strip(accounts(face.ledger)[0]["ACCT_NO"])]:
        expected = ledger_history(face.ledger, acct)
        for limit in (7, 50, 1000):
            items, pages = page_through(odbc, acct, limit)
            ids = [t.id for t in items]
            assert len(ids) == len(set(ids))
            assert ids == [f"{acct}-{r['TXN_SEQ']}" for r in expected]
            assert pages == max(1, -(-len(expected) // limit))  # a full last page already says "no more"
            if limit == 7:
                assert pages > 10
                for txn, row in zip(items, expected, strict=True):
                    sign = -1 if row["DR_CR_IND"] == "D" else 1
                    assert txn.amount.amount == sign * row["TXN_AMT"]
                    assert txn.running_balance.amount == row["RUN_BAL"]
                    assert txn.value_date == from_cyymmdd(row["VALUE_DT"])


def test_history_of_every_account_in_one_page_each_equals_the_ledger(odbc, face):
    for row in accounts(face.ledger):
        acct = strip(row["ACCT_NO"])
        page = odbc.history(acct, limit=100_000)
        assert page.next_cursor is None
        assert [t.id for t in page.items] == [f"{acct}-{r['TXN_SEQ']}" for r in ledger_history(face.ledger, acct)]


def test_history_items_are_what_the_mapping_reads_from_the_row_dicts(odbc, face, registry):
    """The adapter reads rows by column position (``row_reader``): the objects (and the page) are the
    ones ``read(dict(zip(columns, row)))`` and a validated ``Page`` give, for the driver's own values
    (text for DECIMAL columns on SQLite, Decimal on PostgreSQL)."""
    mapping = registry["odbc.txnhist"]
    conn = pyodbc.connect(face.connection_string, autocommit=True)
    try:
        for acct in busiest_accounts(face.ledger, 2):
            cur = conn.cursor()
            cur.execute(SQL_HISTORY["limit"], (acct.ljust(12), 10**9, 0, 9_999_999, 60))
            cols = [d[0].upper() for d in cur.description]
            want = [mapping.read(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]
            page = odbc.history(acct, limit=60)
            assert page == Page[Transaction](items=tuple(want), next_cursor=page.next_cursor)
            assert type(page) is Page[Transaction] and page.__pydantic_fields_set__ == {"items", "next_cursor"}
            assert page.model_dump_json() == Page[Transaction](items=tuple(want),
                                                               next_cursor=page.next_cursor).model_dump_json()
            for got, expected in zip(page.items, want, strict=True):
                assert got.__pydantic_fields_set__ == expected.__pydantic_fields_set__
                assert [type(v) for v in got.__dict__.values()] == [type(v) for v in expected.__dict__.values()]
    finally:
        conn.close()


def test_history_filters_by_posting_date(odbc, face):
    acct = busiest_accounts(face.ledger, 1)[0]
    rows = ledger_history(face.ledger, acct)
    dates = sorted({r["POST_DT"] for r in rows})
    low, high = from_cyymmdd(dates[len(dates) // 4]), from_cyymmdd(dates[len(dates) // 2])
    items, _ = page_through(odbc, acct, 5, from_date=low, to_date=high)
    expected = ledger_history(face.ledger, acct, from_dt=to_cyymmdd(low), to_dt=to_cyymmdd(high))
    assert expected and [t.id for t in items] == [f"{acct}-{r['TXN_SEQ']}" for r in expected]
    assert all(low <= t.booked_at.date() <= high for t in items)
    # a period without postings is an empty last page, not an error
    empty = odbc.history(acct, from_date=dt.date(1990, 1, 1), to_date=dt.date(1990, 12, 31))
    assert empty.items == () and empty.next_cursor is None


def test_cursors_and_limits_are_checked(odbc, face):
    acct = busiest_accounts(face.ledger, 1)[0]
    for bad in ("abc", "-1", "1e3", "", "0", "99999999999"):
        with pytest.raises(ValueError, match="cursor"):
            odbc.history(acct, cursor=bad)
    with pytest.raises(ValueError, match="limit"):
        odbc.history(acct, limit=0)
    # the first sequence number ends the history: nothing older than it
    assert odbc.history(acct, cursor="1").items == ()


def test_unknown_keys_are_record_not_found(odbc):
    with pytest.raises(RecordNotFound):
        odbc.customer("C9999999")
    with pytest.raises(RecordNotFound):
        odbc.accounts_of("C9999999")
    for op in (odbc.account, odbc.balance, odbc.history):
        with pytest.raises(RecordNotFound) as info:
            op("199999999999")
        assert info.value.backend == "odbc" and "199999999999" not in str(info.value)
    with pytest.raises(RecordNotFound):
        odbc.inquire("NO-SUCH-REF")


def test_inquire_returns_every_attempt_under_a_reference(odbc, face):
    [posted] = odbc.inquire(face.references["posted"])
    assert isinstance(posted, Transfer)
    assert (posted.status, posted.amount.amount, posted.memo) == ("posted", Decimal("12.34"), "LUNCH")
    assert posted.posted_at is not None and posted.reason_code is None
    [rejected] = odbc.inquire(face.references["rejected"])
    assert (rejected.status, rejected.reason_code, rejected.reason) == ("rejected", "R006", "INSUFFICIENT FUNDS")
    twice = odbc.inquire(face.references["twice"])
    assert [t.amount.amount for t in twice] == [Decimal("1.00"), Decimal("2.00")]
    assert int(twice[0].id) < int(twice[1].id)


# -- keys: CHAR padding and injection ----------------------------------------------------------------------
def test_keys_are_found_padded_or_not(odbc, face):
    row = accounts(face.ledger)[0]
    acct, cust = strip(row["ACCT_NO"]), strip(row["CUST_NO"])
    assert len(cust) < 10  # CUST_NO is CHAR(10): the stored key carries blanks
    for key in (cust, cust.ljust(10)):
        assert odbc.customer(key).id == cust
        assert [a.id for a in odbc.accounts_of(key)] == [strip(r["ACCT_NO"]) for r in face.ledger.accounts_of(cust)]
    ref = face.references["posted"]
    assert len(ref) < 16
    for key in (ref, ref.ljust(16)):
        assert odbc.inquire(key)[0].reference == ref
    assert odbc.account(acct.ljust(12)).id == acct


@pytest.mark.postgres
@pytest.mark.parametrize("face", ["postgres"], indirect=True)  # SQLite has no FETCH FIRST
def test_fetch_first_pages_like_limit(face, registry):
    acct = busiest_accounts(face.ledger, 1)[0]
    with make_core(face, registry, limit_syntax="fetch_first") as core, make_core(face, registry) as limit:
        assert page_through(core, acct, 9) == page_through(limit, acct, 9)


def test_without_padding_char_semantics_show(face, registry):
    cust = strip(accounts(face.ledger)[0]["CUST_NO"])
    with make_core(face, registry, pad_keys=False) as core:
        if face.name == "sqlite":  # SQLite compares CHAR exactly, blanks included
            with pytest.raises(RecordNotFound):
                core.customer(cust)
        else:  # PostgreSQL's bpchar ignores trailing blanks
            assert core.customer(cust).id == cust
        assert core.customer(cust.ljust(10)).id == cust


@pytest.mark.parametrize("payload", INJECTIONS)
def test_an_injection_payload_finds_nothing_and_fails_cleanly(odbc, face, payload):
    before = len(accounts(face.ledger))
    for op in (odbc.account, odbc.balance, odbc.history, odbc.customer, odbc.accounts_of, odbc.inquire):
        with pytest.raises(RecordNotFound) as info:
            op(payload)
        assert not isinstance(info.value.__cause__, pyodbc.Error)
    assert len(accounts(face.ledger)) == before
    assert odbc.stats()["discarded"] == 0


# -- the DDL contract ------------------------------------------------------------------------------------
def selected_columns(sql: str) -> tuple[str, list[str]]:
    m = re.match(r"SELECT (.*?) FROM (\w+)", sql)
    assert m, sql
    cols = []
    for item in m.group(1).split(","):
        item = item.strip()
        alias = re.search(r"\bAS (\w+)$", item)
        cols.append(alias.group(1) if alias else item.split(".")[-1])
    return m.group(2), cols


def test_every_column_the_adapter_reads_is_in_the_ddl():
    """The mapping files' own fields are checked by tests/mappings/test_contracts.py; this checks the
    adapter's SQL (tables, selected columns and filter columns) against the same DDL."""
    tables = load_ddl(MAPPINGS_DIR / "ddl" / "ledger.sql").tables
    for sql in STATEMENTS:
        table, cols = selected_columns(sql)
        names = {c for c in re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", sql)} - {"AS_OF_DT"}
        known = {c for t in tables.values() for c in t}
        assert table in tables, sql
        assert names <= known, (sql, names - known)
        assert {c for c in cols if c != "AS_OF_DT"} <= known


def test_every_field_a_mapping_reads_is_selected(face, registry):
    """A mapping that starts reading a column the SQL does not select would silently get None."""
    class Recording(dict):
        def __init__(self, *a):
            super().__init__(*a)
            self.read: set[str] = set()

        def __getitem__(self, key):
            self.read.add(key)
            return super().__getitem__(key)

    ledger = face.ledger
    acct = busiest_accounts(ledger, 1)[0]
    cust = strip(ledger.account(acct)["CUST_NO"])
    cases = {"odbc.custmast": (SQL_CUSTOMER, (cust.ljust(10),)), "odbc.acctmast": (SQL_ACCOUNT, (acct,)),
             "odbc.acctmast_balance": (SQL_BALANCE, (acct,)),
             "odbc.xferlog": (SQL_TRANSFERS, (face.references["posted"].ljust(16),)),
             "odbc.txnhist": (SQL_HISTORY["limit"], (acct, 10**9, 0, 9_999_999, 1))}
    conn = pyodbc.connect(face.connection_string, autocommit=True, timeout=5)
    try:
        for name, (sql, params) in cases.items():
            cur = conn.execute(sql, params)
            cols = [d[0].upper() for d in cur.description]
            record = Recording(zip(cols, cur.fetchone(), strict=True))
            registry[name].read(record)
            assert record.read <= set(cols), (name, record.read - set(cols))
    finally:
        conn.close()


def test_a_missing_table_is_a_contract_violation(face, registry, tmp_path):
    if face.name == "sqlite":
        empty = tmp_path / "empty.db"
        sqlite3.connect(empty).execute("CREATE TABLE OTHER (X CHAR(1))").connection.close()
        cs = sqlite_connection_string(empty)
        with OdbcCore(OdbcSettings(connection_string=cs), registry) as core:
            with pytest.raises(ContractViolation, match="no such table"):
                core.balance("110000000543")
            assert core.stats()["discarded"] == 0  # the connection is fine; the tables are not
        return
    with fresh_pg_database("cb_odbc_empty") as dsn:
        cs = postgres_connection_string(dsn, CommLog="0")
        with OdbcCore(OdbcSettings(connection_string=cs), registry) as core:
            with pytest.raises(ContractViolation, match="42P01"):
                core.account("110000000543")


def test_a_row_the_mapping_refuses_is_a_contract_violation(mock, registry, tmp_path):
    if mock is None:
        pytest.skip("needs the mock's ledger file")
    copy = tmp_path / "ledger.db"
    with sqlite3.connect(mock.config.ledger_path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
        acct = dst.execute("SELECT ACCT_NO FROM ACCTMAST ORDER BY ACCT_NO LIMIT 1").fetchone()[0]
        dst.execute("UPDATE ACCTMAST SET ACCT_STAT = 'X' WHERE ACCT_NO = ?", (acct,))
    with OdbcCore(OdbcSettings(connection_string=sqlite_connection_string(copy)), registry) as core:
        with pytest.raises(ContractViolation, match="ACCT_STAT") as info:
            core.account(acct.strip())
        assert info.value.operation == "account"
        assert core.balance(acct.strip()).account_id == acct.strip()  # the balance mapping does not read it
        assert core.stats()["discarded"] == 0
    # a history row (read by position, off the dict) refused in the middle of a page: the same
    with sqlite3.connect(copy) as dst:
        seq = dst.execute("SELECT TXN_SEQ FROM TXNHIST WHERE ACCT_NO = ? ORDER BY TXN_SEQ DESC LIMIT 1 OFFSET 2",
                          (acct,)).fetchone()[0]
        dst.execute("UPDATE TXNHIST SET TXN_AMT = 1.005 WHERE ACCT_NO = ? AND TXN_SEQ = ?", (acct, seq))
    with OdbcCore(OdbcSettings(connection_string=sqlite_connection_string(copy)), registry) as core:
        with pytest.raises(ContractViolation, match="TXN_AMT") as info:
            core.history(acct.strip(), limit=10)
        assert info.value.operation == "history" and "decimal places" in str(info.value)
        assert core.history(acct.strip(), limit=2).items  # the rows before it still read


@pytest.mark.parametrize("exc,expected,broken", [
    (pyodbc.Error("HY000", "[SQLite]no such table: TXNHIST (1) (1) (SQLExecDirectW)"), ContractViolation, False),
    (pyodbc.ProgrammingError("42703", 'ERROR: column "x" does not exist'), ContractViolation, False),
    (pyodbc.Error("HY000", "[SQLite]database is locked (5) (5) (SQLExecDirectW)"), BackendUnavailable, False),
    (pyodbc.Error("HY000", "[SQLite]interrupted (9) (9) (SQLFetch)"), BackendTimeout, True),
    (pyodbc.Error("57014", "ERROR: canceling statement due to statement timeout"), BackendTimeout, True),
    (pyodbc.OperationalError("HYT00", "[HYT00] Timeout expired"), BackendTimeout, True),
    (pyodbc.Error("57P01", "FATAL: terminating connection due to administrator command;\nThe connection has "
                           "been lost (35)"), BackendUnavailable, True),
    (pyodbc.OperationalError("08S01", "SQLExecDirectW unable due to the connection lost (35)"),
     BackendUnavailable, True),
    (pyodbc.ProgrammingError("Attempt to use a closed connection."), BackendUnavailable, True),
    (pyodbc.Error("28P01", "FATAL: password authentication failed"), BackendFault, True),
    (pyodbc.Error("HY000", "[SQLite]something else (1)"), BackendFault, True),
])
def test_driver_errors_translate_at_the_edge(exc, expected, broken):
    got = convert(exc, "balance")
    assert type(got.error) is expected and got.broken is broken
    assert (got.error.backend, got.error.operation) == ("odbc", "balance")
    assert type(convert(exc, "balance", timed_out=True, timeout=0.25).error) is BackendTimeout
    assert convert(ValueError("ours"), "balance") is None  # a bug of ours is not the core's fault


def test_an_unreachable_core_is_backend_unavailable(face, registry, tmp_path):
    if face.name == "sqlite":
        cs = sqlite_connection_string(tmp_path / "no-such-ledger.db")
    else:
        cs = face.connection_string.replace("Port=5432", "Port=1")
    with OdbcCore(OdbcSettings(connection_string=cs, login_timeout=2), registry) as core:
        with pytest.raises(BackendUnavailable) as info:
            core.account("110000000543")
        assert info.value.backend == "odbc" and info.value.operation == "account"
        assert core.stats()["open"] == 0


# -- the pool ---------------------------------------------------------------------------------------------
def test_more_threads_than_connections_all_succeed_within_the_pool_size(face, registry):
    accts = [strip(r["ACCT_NO"]) for r in accounts(face.ledger)][:24]
    expected = {a: [f"{a}-{r['TXN_SEQ']}" for r in ledger_history(face.ledger, a)][:20] for a in accts}
    errors: list[BaseException] = []
    seen_open: list[int] = []
    with make_core(face, registry, application="cb_pool_test", pool_size=3, checkout_timeout=30) as core:
        def worker(chunk: list[str]) -> None:
            try:
                for _ in range(3):
                    for a in chunk:
                        assert [t.id for t in core.history(a, limit=20).items] == expected[a]
                        assert core.balance(a).account_id == a
                        seen_open.append(core.stats()["open"])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(accts[i::12],)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stats = core.stats()
        if face.dsn:  # what the server sees: never more than the pool's connections
            assert 0 < len(server_pids(face, "cb_pool_test")) <= 3
    assert not errors, errors[:3]
    assert max(seen_open) <= 3 and stats["peak_open"] <= 3 and stats["exhausted"] == 0
    assert stats["opened"] == stats["peak_open"]  # opened lazily, never replaced


def test_an_exhausted_pool_refuses_locally(face, registry):
    acct = strip(accounts(face.ledger)[0]["ACCT_NO"])
    with make_core(face, registry, pool_size=1, checkout_timeout=0.2) as core:
        core.balance(acct)
        held = core.pool.checkout("test", 1.0)  # another caller holds the only connection
        try:
            started = time.monotonic()
            with pytest.raises(BulkheadFull):
                core.balance(acct)
            assert 0.15 <= time.monotonic() - started < 2.0
            with pytest.raises(BulkheadFull):
                core.balance(acct, timeout=0.05)  # never waits longer than the call's own time
        finally:
            core.pool.release(held, broken=False)
        assert core.balance(acct).account_id == acct
        assert core.stats()["exhausted"] == 2


def test_an_idle_connection_past_max_idle_is_replaced(face, registry):
    acct = strip(accounts(face.ledger)[0]["ACCT_NO"])
    with make_core(face, registry, max_idle=0.05) as core:
        core.balance(acct)
        time.sleep(0.1)
        core.balance(acct)
        assert (core.stats()["opened"], core.stats()["discarded"], core.stats()["open"]) == (2, 1, 1)


class _WrappedCursor:
    """A real pyodbc cursor; subclasses override what they test, the rest reaches the cursor."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def __getattr__(self, name):
        return getattr(self._cursor, name)


class _WrappedConnection:
    """A real pyodbc connection whose cursors ``wrap`` gives; other attributes (``timeout`` set by the
    pool included) reach the connection, private ones stay on the wrapper."""

    def __init__(self, conn) -> None:
        self._conn = conn

    def wrap(self, cursor):
        raise NotImplementedError

    def cursor(self):
        return self.wrap(self._conn.cursor())

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._conn, name, value)


# -- kept statements ---------------------------------------------------------------------------------
def test_each_statement_is_prepared_once_per_connection(face, registry):
    """A connection keeps a cursor per SQL text, so a repeated statement skips the prepare; with
    ``statement_cache=0`` every statement gets a new cursor. The answers are the same."""
    acct = busiest_accounts(face.ledger, 1)[0]
    results = {}
    for cache in (16, 0):
        with make_core(face, registry, pool_size=1, statement_cache=cache) as core:
            got = [(core.balance(acct), core.history(acct, limit=7)) for _ in range(5)]
            stats = core.stats()
        assert stats["executed"] == 10 and stats["opened"] == 1
        assert (stats["prepared"], stats["statements_kept"]) == ((2, 2) if cache else (10, 0))
        results[cache] = got
    assert results[16] == results[0]
    assert all(item == results[16][0] for item in results[16])


def test_kept_statements_are_bounded_least_recently_used_first(face, registry):
    acct = busiest_accounts(face.ledger, 1)[0]
    with make_core(face, registry, pool_size=1, statement_cache=2) as core:
        for _ in range(3):
            core.balance(acct)
            core.history(acct, limit=3)
        assert (core.stats()["prepared"], core.stats()["statements_kept"]) == (2, 2)
        core.account(acct)  # a third statement: the balance's cursor (least recently used) is closed
        core.history(acct, limit=3)
        assert (core.stats()["prepared"], core.stats()["statements_kept"]) == (3, 2)
        core.balance(acct)  # prepared again
        assert (core.stats()["prepared"], core.stats()["statements_kept"]) == (4, 2)


def test_a_kept_statement_holds_no_rows_locks_or_snapshot(face, registry, mock):
    """After each call the kept cursors' result sets are closed, so an idle connection holds nothing.
    psqlODBC with server-side cursors (``UseDeclareFetch=1``, as DB2 CLI reads) shows an unclosed one
    as a transaction left open ("idle in transaction": fails if ``finish`` keeps a cursor without
    closing its result set). SQLite (``StepAPI=1``) ends a key lookup's statement when its one row is
    read, so there the test checks the outcome only: the log is not pinned and the posting is seen."""
    rows = face.ledger.query("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'EUR' "
                             "AND AVAIL_BAL > 1000 ORDER BY ACCT_NO DESC LIMIT 2")
    src, dst = (strip(r["ACCT_NO"]) for r in rows)
    engine = PostingEngine(face.ledger)
    app = f"cb_kept_{uuid.uuid4().hex[:6]}"
    cs = face.connection_string
    if face.dsn:
        cs += f"pqopt={{application_name={app}}};UseDeclareFetch=1;Fetch=2;"
    with OdbcCore(OdbcSettings(connection_string=cs, pool_size=1), registry) as core:
        before = core.balance(src).available.amount  # one row read of a statement that could give more
        ref = f"ODBC-K-{uuid.uuid4().hex[:8].upper()}"
        assert engine.post(TransferRequest(ref, src, dst, Decimal("1.25"), "EUR")).posted
        if face.dsn:
            states = face.ledger.query("SELECT state FROM pg_stat_activity WHERE application_name = ?", (app,))
            assert [r["STATE"] for r in states] == ["idle"]  # not "idle in transaction"
        else:
            with sqlite3.connect(mock.config.ledger_path) as db:
                busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0  # no reader pins the log
        newest = ledger_history(face.ledger, src)[0]
        assert core.history(src, limit=1).items[0].id == f"{src}-{newest['TXN_SEQ']}"  # the posting, seen
        assert core.balance(src).available.amount == before - Decimal("1.25")
        assert core.stats()["opened"] == 1  # all on the one kept connection


class _FailOnce(_WrappedConnection):
    """A real pyodbc connection whose cursors fail one execute of ``sql`` ("database is locked")."""

    def __init__(self, conn, sql: str) -> None:
        super().__init__(conn)
        self._sql, self._failed, self._closed = sql, False, []

    @property
    def closed(self) -> list:
        """The cursors closed so far."""
        return self._closed

    def wrap(self, cursor):
        return _FailOnceCursor(self, cursor)


class _FailOnceCursor(_WrappedCursor):
    def __init__(self, owner: _FailOnce, cursor) -> None:
        super().__init__(cursor)
        self._owner = owner

    def execute(self, sql, params=()):
        if sql == self._owner._sql and not self._owner._failed:
            self._owner._failed = True
            self._cursor.execute(sql, params)  # prepared and run, then the driver "fails" it
            raise pyodbc.Error("HY000", "[SQLite]database is locked (5) (5) (SQLExecDirectW)")
        return self._cursor.execute(sql, params)

    def close(self):
        self._owner._closed.append(self)
        self._cursor.close()


def test_a_failed_statement_closes_its_cursor_and_keeps_the_connection(face, registry):
    acct = busiest_accounts(face.ledger, 1)[0]
    conns: list[_FailOnce] = []

    def connect(cs, **kw):
        conns.append(_FailOnce(pyodbc.connect(cs, **kw), SQL_BALANCE))
        return conns[-1]

    with OdbcCore(OdbcSettings(connection_string=face.connection_string, pool_size=1), registry,
                  connect=connect) as core:
        core.history(acct, limit=2)
        with pytest.raises(BackendUnavailable, match="locked"):
            core.balance(acct)
        [conn] = conns
        assert len(conn.closed) == 1  # the balance's cursor, not the history's kept one
        assert core.stats()["statements_kept"] == 1 and core.stats()["discarded"] == 0
        assert core.balance(acct).account_id == acct  # a new cursor on the same connection
        assert (core.stats()["prepared"], core.stats()["statements_kept"], core.stats()["opened"]) == (3, 2, 1)


@pytest.mark.postgres
@pytest.mark.parametrize("face", ["postgres"], indirect=True)  # pg_terminate_backend breaks a connection
def test_a_broken_connection_is_replaced(face, registry, caplog):
    acct = busiest_accounts(face.ledger, 1)[0]

    def terminate() -> int:
        pids = server_pids(face, "cb_broken_test")
        for pid in pids:
            face.ledger.query("SELECT pg_terminate_backend(?) AS T", (pid,))
        return len(pids)

    with make_core(face, registry, application="cb_broken_test", pool_size=2) as core:
        expected = core.balance(acct)
        assert terminate() == 1
        time.sleep(0.2)
        with caplog.at_level(logging.INFO, logger="adapters.odbc"):
            assert core.balance(acct) == expected  # the dead pooled connection was replaced
        stats = core.stats()
        assert (stats["opened"], stats["discarded"], stats["open"]) == (2, 1, 1)
        assert "dead" in caplog.text and acct not in caplog.text

        # the server drops every connection (a restart): each call still succeeds
        held = core.pool.checkout("test", 1.0)
        page = core.history(acct, limit=5)  # opens the second connection
        core.pool.release(held, broken=False)
        assert core.stats()["idle"] == 2
        assert terminate() == 2
        time.sleep(0.2)
        for _ in range(4):
            assert core.history(acct, limit=5) == page
            assert core.balance(acct) == expected
        assert core.stats()["open"] <= 2 and core.stats()["peak_open"] <= 2


# -- timeouts ---------------------------------------------------------------------------------------------
SLOW_SQLITE = ("WITH RECURSIVE C(X) AS (SELECT 1 UNION ALL SELECT X + 1 FROM C WHERE X < 1000000000) "
               "SELECT COUNT(*) FROM C")


class _SlowCursor(_WrappedCursor):
    """A real pyodbc cursor that first runs a long statement on the same connection."""

    def __init__(self, cursor, slow_sql: str) -> None:
        super().__init__(cursor)
        self._slow = slow_sql

    def execute(self, sql, params=()):
        self._cursor.execute(self._slow).fetchall()
        return self._cursor.execute(sql, params)


class _SlowConnection(_WrappedConnection):
    def __init__(self, conn, slow_sql: str) -> None:
        super().__init__(conn)
        self._slow = slow_sql

    def wrap(self, cursor):
        return _SlowCursor(cursor, self._slow)


def test_a_slow_statement_is_cancelled_at_the_calls_timeout(face, registry, caplog):
    """The drivers ignore (SQLite) or refuse (psqlODBC) the ODBC query timeout: the pool's watchdog
    cancels the statement (``SQLCancel``) when the call's time is up."""
    acct = strip(accounts(face.ledger)[0]["ACCT_NO"])
    slow = SLOW_SQLITE if face.name == "sqlite" else "SELECT pg_sleep(30)"
    core = OdbcCore(OdbcSettings(connection_string=face.connection_string, query_timeout=5.0), registry,
                    connect=lambda cs, **kw: _SlowConnection(pyodbc.connect(cs, **kw), slow))
    with core, caplog.at_level(logging.WARNING, logger="adapters.odbc"):
        for timeout in (0.3, 0.6):
            started = time.monotonic()
            with pytest.raises(BackendTimeout) as info:
                core.balance(acct, timeout=timeout)
            took = time.monotonic() - started
            assert timeout <= took < timeout + 1.0, took
            assert info.value.operation == "balance" and f"{timeout:.3f}" in str(info.value)
        stats = core.stats()
        assert (stats["cancelled"], stats["discarded"], stats["open"]) == (2, 2, 0)
    assert "cancelled" in caplog.text and acct not in caplog.text


@pytest.mark.postgres
@pytest.mark.parametrize("face", ["postgres"], indirect=True)  # SQLite in WAL mode never blocks a reader
def test_a_locked_table_times_out_and_the_next_call_succeeds(face, registry):
    import psycopg

    acct = strip(accounts(face.ledger)[0]["ACCT_NO"])
    with make_core(face, registry, query_timeout=0.5) as core, psycopg.connect(face.dsn) as locker:
        expected = core.balance(acct)
        locker.execute("LOCK TABLE ACCTMAST IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(BackendTimeout):
            core.balance(acct)  # no timeout given: the settings' query_timeout
        assert 0.5 <= time.monotonic() - started < 1.5
        locker.rollback()
        assert core.balance(acct) == expected


# -- settings ---------------------------------------------------------------------------------------------
def test_the_connection_string_stays_out_of_repr():
    cs = "DRIVER={PostgreSQL Unicode};Server=db;Uid=cb;Pwd={s3cr;et};"
    settings = OdbcSettings(connection_string=cs)
    assert "s3cr" not in repr(settings) and "Server=db" not in repr(settings)
    assert redact(cs) == "DRIVER={PostgreSQL Unicode};Server=db;Uid=cb;Pwd=***;"
    assert redact("DSN=core;PASSWORD=x;UID=y") == "DSN=core;PASSWORD=***;UID=y"
    with pytest.raises(ValueError, match="DRIVER"):
        OdbcSettings(connection_string="Server=db")
    with pytest.raises(ValueError, match="pool_size"):
        OdbcSettings(connection_string=cs, pool_size=0)


def test_dates_become_cyymmdd():
    assert to_cyymmdd(dt.date(2026, 11, 27)) == 1261127
    assert to_cyymmdd(dt.date(1999, 1, 2)) == 990102
    with pytest.raises(ValueError):
        to_cyymmdd(dt.date(1899, 12, 31))
