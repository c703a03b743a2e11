"""The ODBC face, for real: pyodbc -> unixODBC -> the SQLite3 driver / psqlODBC -> the ledger.

What the drivers hand back (asserted below, so a driver upgrade that changes it fails here):
  SQLite3 ODBC: CHAR(n) -> str blank-padded to n; every DECIMAL(p,s) column -> str ('125.4',
                '3787', '1261127'); cursor.columns() reports the declared type verbatim.
  psqlODBC:     CHAR(n) -> str blank-padded (bpchar); DECIMAL(p,s) -> decimal.Decimal.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from mock_mainframe.config import MockConfig
from mock_mainframe.ledger.codes import RC_OK, RC_REJECTED
from mock_mainframe.ledger.posting import PostingEngine, TransferRequest
from mock_mainframe.ledger.store import TABLES, Ledger
from mock_mainframe.odbc import (
    connection_string,
    load_into_postgres,
    postgres_connection_string,
    published_columns,
    sqlite_connection_string,
)
from tests.support import require, require_tool

pyodbc = pytest.importorskip("pyodbc", reason="missing: pyodbc (needs libodbc2)")

PG_ADMIN_DSN = os.environ.get("COREBRIDGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
ORDER = {"CUSTMAST": "CUST_NO", "ACCTMAST": "ACCT_NO", "TXNHIST": "ACCT_NO, TXN_SEQ",
         "XFERLOG": "XFER_ID", "CTLREC": "CTL_KEY"}
INJECTION = "x' OR '1'='1"


def rows_as_dicts(cursor) -> list[dict]:
    cols = [d[0].upper() for d in cursor.description]
    return [dict(zip(cols, r, strict=True)) for r in cursor.fetchall()]


def exact(value) -> Decimal:
    """A DECIMAL value as the driver gave it -> Decimal, never through float."""
    assert not isinstance(value, float), f"{value!r} came back as float"
    return Decimal(value) if isinstance(value, str) else value


def as_ledger_row(table: str, odbc_row: dict) -> dict:
    """Convert an ODBC row to the ledger's normal form (Decimal money, int dates, padded CHAR)."""
    out = {}
    for col in published_columns()[table]:
        v = odbc_row[col.name]
        if col.type_name == "CHAR":
            out[col.name] = v
        elif col.scale == 0:
            d = exact(v)
            assert d == d.to_integral_value()
            out[col.name] = int(d)
        else:
            d = exact(v)
            assert d == d.quantize(Decimal("0.01")), f"{col.name}={v!r} has more than 2 decimals"
            out[col.name] = d.quantize(Decimal("0.01"))
    return out


def active_pair(ledger: Ledger, currency: str = "USD") -> tuple[str, str]:
    rows = ledger.query("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = ? "
                        "AND AVAIL_BAL > 1000 ORDER BY ACCT_NO", (currency,))
    assert len(rows) >= 2
    return rows[0]["ACCT_NO"].strip(), rows[1]["ACCT_NO"].strip()


# -- connection strings ----------------------------------------------------------------------
def test_sqlite_connection_string_is_dsn_less_and_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cs = connection_string(MockConfig(data_dir=Path("var/mock")))
    assert cs.startswith("DRIVER={SQLite3};Database=" + str(tmp_path / "var/mock/ledger.db") + ";")
    for opt in ("Timeout=5000;", "NoCreat=1;", "StepAPI=1;", "NoTXN=1;"):
        assert opt in cs
    assert "JournalMode" not in cs, "a reader must never change the writer's journal mode"
    assert sqlite_connection_string("/a b/c;d.db", Timeout="100").startswith(
        "DRIVER={SQLite3};Database={/a b/c;d.db};Timeout=100;")


def test_postgres_connection_string_from_libpq_dsn():
    cfg = MockConfig(odbc="postgres", pg_dsn="postgresql://postgres@127.0.0.1:5432/corebank_mock")
    assert connection_string(cfg) == ("DRIVER={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;"
                                      "Database=corebank_mock;Uid=postgres;Pwd={};")
    cs = postgres_connection_string("host=db.example port=6543 dbname=core user=cb password=p;w}x "
                                    "sslmode=require")
    assert cs == ("DRIVER={PostgreSQL Unicode};Server=db.example;Port=6543;Database=core;Uid=cb;"
                  "Pwd={p;w}}x};SSLmode=require;")
    with pytest.raises(ValueError, match="pg_dsn"):
        connection_string(MockConfig(odbc="postgres"))
    with pytest.raises(ValueError, match="unknown ODBC backend"):
        connection_string(MockConfig(odbc="db2"))


def test_published_columns_cover_every_table():
    tables = published_columns()
    assert list(tables) == list(TABLES)
    assert [c.name for c in tables["CTLREC"]] == ["CTL_KEY", "CTL_VALUE"]
    assert sum(len(v) for v in tables.values()) == 15 + 14 + 15 + 13 + 2
    assert all(not c.nullable for v in tables.values() for c in v)


# -- SQLite through the SQLite3 ODBC driver -----------------------------------------------------
@pytest.fixture
def sqlite_cs(ledger) -> str:
    require("SQLite3" in pyodbc.drivers(), "ODBC driver SQLite3 (Debian libsqliteodbc)")
    ledger.connect()  # the mock opens first: its connection puts the file in WAL mode
    return sqlite_connection_string(ledger.path)


@pytest.fixture
def odbc(sqlite_cs):
    conn = pyodbc.connect(sqlite_cs, autocommit=True, timeout=10)
    yield conn
    conn.close()


def test_missing_file_is_an_error_not_a_new_empty_ledger(tmp_path):
    require("SQLite3" in pyodbc.drivers(), "ODBC driver SQLite3 (Debian libsqliteodbc)")
    missing = tmp_path / "no-such-ledger.db"
    with pytest.raises(pyodbc.Error, match="connect failed"):
        pyodbc.connect(sqlite_connection_string(missing), timeout=5)
    assert not missing.exists()


def test_driver_reports_the_published_ddl(odbc):
    cur = odbc.cursor()
    assert {t.table_name.upper() for t in cur.tables(tableType="TABLE")} == set(TABLES)
    for table, cols in published_columns().items():
        reported = list(cur.columns(table=table))
        assert [c.column_name.upper() for c in reported] == [c.name for c in cols], table
        for want, got in zip(cols, reported, strict=True):
            assert got.type_name.replace(" ", "").upper() == want.declared, (table, want.name)
            assert got.nullable == pyodbc.SQL_NO_NULLS
            if want.type_name == "CHAR":
                assert got.column_size == want.size
            # the driver reports every column as SQL_VARCHAR, DECIMAL(p,s) included
            assert got.data_type == pyodbc.SQL_VARCHAR


@pytest.mark.parametrize("table", ["CUSTMAST", "ACCTMAST", "TXNHIST"])
def test_rows_read_through_odbc_equal_the_ledger(odbc, ledger, table):
    cur = odbc.cursor()
    cur.execute(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")  # noqa: S608
    types = {d[0].upper(): d[1] for d in cur.description}
    got = rows_as_dicts(cur)
    want = ledger.query(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")  # noqa: S608
    assert len(got) == len(want) > 0
    cols = published_columns()[table]
    for c in cols:
        assert types[c.name] is str, f"{table}.{c.name}: {types[c.name]}"
    for g in got:  # what the driver gives, before any conversion
        for c in cols:
            assert isinstance(g[c.name], str)
            if c.type_name == "CHAR":
                assert len(g[c.name]) == c.size, (c.name, g[c.name])
    assert [as_ledger_row(table, g) for g in got] == want
    char_cols = [c.name for c in cols if c.type_name == "CHAR" and c.size > 1]
    assert any(g[name].endswith(" ") for g in got for name in char_cols), "trailing blanks kept"


def test_decimal_columns_come_back_as_exact_strings(odbc, ledger):
    cur = odbc.cursor()
    cur.execute("SELECT CURR_CD, LEDGER_BAL, AVAIL_BAL, HOLD_AMT, OPEN_DT FROM ACCTMAST")
    rows = cur.fetchall()
    samples = {r.LEDGER_BAL for r in rows}
    assert all(isinstance(v, str) for v in samples)
    assert any("." in v for v in samples)
    totals: dict[str, Decimal] = {}
    for r in rows:
        assert Decimal(r.AVAIL_BAL) == Decimal(r.LEDGER_BAL) - Decimal(r.HOLD_AMT)
        assert r.OPEN_DT.isdigit() and len(r.OPEN_DT) == 7
        totals[r.CURR_CD] = totals.get(r.CURR_CD, Decimal(0)) + Decimal(r.LEDGER_BAL)
    assert totals == {k: v[0] for k, v in ledger.balance_totals().items()}
    # expressions have no declared type: with StepAPI=1 (our string) they come back as str too,
    # with the driver's default StepAPI=0 as int/float (so a SQL SUM of money would be a float)
    cur.execute("SELECT LEDGER_BAL * 1, COUNT(*) FROM ACCTMAST")
    assert all(isinstance(v, str) for v in cur.fetchone())
    c0 = pyodbc.connect(sqlite_connection_string(ledger.path, StepAPI="0"), autocommit=True)
    try:
        v, n = c0.cursor().execute("SELECT LEDGER_BAL * 1, COUNT(*) FROM ACCTMAST").fetchone()
        assert isinstance(v, float) and isinstance(n, int)
    finally:
        c0.close()


def test_bound_parameters_defeat_injection(odbc, ledger):
    cur = odbc.cursor()
    acct = ledger.query("SELECT ACCT_NO FROM ACCTMAST ORDER BY ACCT_NO LIMIT 1")[0]["ACCT_NO"]
    assert cur.execute("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_NO = ?", acct).fetchall()[0][0] == acct
    for payload in (INJECTION, INJECTION.ljust(12), "'; DROP TABLE ACCTMAST; --"):
        assert cur.execute("SELECT * FROM ACCTMAST WHERE ACCT_NO = ?", payload).fetchall() == []
        assert cur.execute("SELECT * FROM TXNHIST WHERE ACCT_NO = ? AND TXN_SEQ > ?",
                           payload, 0).fetchall() == []
    n = cur.execute("SELECT COUNT(*) FROM ACCTMAST").fetchone()[0]
    assert int(n) == len(ledger.query("SELECT * FROM ACCTMAST")) > 0


def test_isql_reads_rows_with_the_dsn_less_string(sqlite_cs, ledger):
    isql = require_tool("isql")
    out = subprocess.run([isql, "-k", sqlite_cs, "-b", "-d|"], capture_output=True, text=True,
                         input="SELECT ACCT_NO, CURR_CD, LEDGER_BAL FROM ACCTMAST ORDER BY ACCT_NO\n",
                         timeout=30, check=True).stdout
    rows = [ln.split("|") for ln in out.splitlines() if ln.strip()]
    want = ledger.query("SELECT ACCT_NO, CURR_CD, LEDGER_BAL FROM ACCTMAST ORDER BY ACCT_NO")
    assert [(a, c, Decimal(b)) for a, c, b in rows] == [
        (w["ACCT_NO"], w["CURR_CD"], w["LEDGER_BAL"]) for w in want]


def test_isql_through_a_private_dsn(sqlite_cs, ledger, tmp_path):
    """A DSN in a temporary odbc.ini (ODBCINI/ODBCSYSINI): nothing registered system-wide."""
    isql, odbcinst = require_tool("isql"), require_tool("odbcinst")
    driver = subprocess.run([odbcinst, "-q", "-d", "-n", "SQLite3"], capture_output=True, text=True,
                            check=True).stdout
    (tmp_path / "odbcinst.ini").write_text(driver)
    dsn = f"corebank_mock_{uuid.uuid4().hex[:8]}"
    (tmp_path / "odbc.ini").write_text(
        f"[{dsn}]\nDriver=SQLite3\nDatabase={ledger.path.resolve()}\n"
        "Timeout=5000\nNoCreat=1\nStepAPI=1\nNoTXN=1\n")
    env = {**os.environ, "ODBCSYSINI": str(tmp_path), "ODBCINI": str(tmp_path / "odbc.ini")}
    listed = subprocess.run([odbcinst, "-q", "-s"], capture_output=True, text=True, env=env).stdout
    assert f"[{dsn}]" in listed
    out = subprocess.run([isql, dsn, "-b", "-d|"], capture_output=True, text=True, env=env,
                         input="SELECT CUST_NO, LAST_NAME FROM CUSTMAST ORDER BY CUST_NO\n",
                         timeout=30, check=True).stdout
    rows = [ln.split("|") for ln in out.splitlines() if ln.strip()]
    want = ledger.query("SELECT CUST_NO, LAST_NAME FROM CUSTMAST ORDER BY CUST_NO")
    assert [r[0].strip() for r in rows] == [w["CUST_NO"].strip() for w in want]
    assert rows[0][1].rstrip() == want[0]["LAST_NAME"].rstrip()
    system = subprocess.run([odbcinst, "-q", "-s"], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items()
                                 if k not in ("ODBCINI", "ODBCSYSINI")}).stdout
    assert dsn not in system


def test_a_posting_is_visible_to_an_open_reader(sqlite_cs, odbc, ledger, engine):
    a, b = active_pair(ledger)
    cur = odbc.cursor()
    q = "SELECT LEDGER_BAL, LAST_SEQ FROM ACCTMAST WHERE ACCT_NO = ?"
    before = Decimal(cur.execute(q, a.ljust(12)).fetchone()[0])
    # pyodbc's default autocommit=False: NoTXN=1 keeps that reader from pinning a snapshot
    default_reader = pyodbc.connect(sqlite_cs, timeout=10)
    dcur = default_reader.cursor()
    assert Decimal(dcur.execute(q, a.ljust(12)).fetchone()[0]) == before
    r = engine.post(TransferRequest("ODBC-SEE-1", a, b, Decimal("12.34"), "USD"))
    assert r.return_code == RC_OK
    assert Decimal(cur.execute(q, a.ljust(12)).fetchone()[0]) == before - Decimal("12.34")
    assert Decimal(dcur.execute(q, a.ljust(12)).fetchone()[0]) == before - Decimal("12.34")
    txns = cur.execute("SELECT ACCT_NO, DR_CR_IND, TXN_AMT, TXN_REF FROM TXNHIST WHERE TXN_REF = ? "
                       "ORDER BY DR_CR_IND", "ODBC-SEE-1".ljust(16)).fetchall()
    assert [(t[0].strip(), t[1], Decimal(t[2])) for t in txns] == [
        (b, "C", Decimal("12.34")), (a, "D", Decimal("12.34"))]
    assert txns[0][3] == "ODBC-SEE-1      "
    log = cur.execute("SELECT XFER_STAT, RTN_CD FROM XFERLOG WHERE XFER_REF = ?",
                      "ODBC-SEE-1".ljust(16)).fetchall()
    assert [tuple(x) for x in log] == [("P", "0000")]
    default_reader.close()


def test_without_notxn_a_default_reader_keeps_a_stale_snapshot(ledger, engine, sqlite_cs):
    """Why the connection string carries NoTXN=1 (documents the driver's behaviour)."""
    a, b = active_pair(ledger)
    stale = pyodbc.connect(sqlite_connection_string(ledger.path, NoTXN="0"), timeout=10)
    try:
        cur = stale.cursor()
        q = "SELECT LEDGER_BAL FROM ACCTMAST WHERE ACCT_NO = ?"
        before = Decimal(cur.execute(q, a.ljust(12)).fetchone()[0])
        assert engine.post(TransferRequest("ODBC-STALE", a, b, Decimal("1.00"), "USD")).posted
        assert Decimal(cur.execute(q, a.ljust(12)).fetchone()[0]) == before  # snapshot held
        stale.commit()
        assert Decimal(cur.execute(q, a.ljust(12)).fetchone()[0]) == before - 1
    finally:
        stale.close()


def test_reader_is_not_blocked_by_an_open_write_transaction(odbc, ledger):
    """WAL: while the core holds the write lock, ODBC readers see the last commit at once."""
    import sqlite3

    a, _ = active_pair(ledger)
    cur = odbc.cursor()
    q = "SELECT LEDGER_BAL FROM ACCTMAST WHERE ACCT_NO = ?"
    before = Decimal(cur.execute(q, a.ljust(12)).fetchone()[0])
    writer = sqlite3.connect(ledger.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE ACCTMAST SET LEDGER_BAL = 0 WHERE ACCT_NO = ?", (a.ljust(12),))
        t0 = time.perf_counter()
        assert Decimal(cur.execute(q, a.ljust(12)).fetchone()[0]) == before
        assert time.perf_counter() - t0 < 1.0, "the reader waited on the writer's lock"
        writer.execute("ROLLBACK")
    finally:
        writer.close()


def test_streaming_scan_while_postings_commit(odbc, ledger, engine):
    """A reader walking TXNHIST with fetchmany(1000) while the core posts: both finish."""
    a, b = active_pair(ledger)
    n_before = len(ledger.query("SELECT ACCT_NO FROM TXNHIST"))
    results = []

    def post_some() -> None:
        for i in range(20):
            results.append(engine.post(TransferRequest(f"SCAN-{i}", a, b, Decimal("1.00"), "USD")))

    cur = odbc.cursor()
    cur.execute("SELECT * FROM TXNHIST")
    t = threading.Thread(target=post_some)
    seen = len(cur.fetchmany(1000))
    t.start()
    while batch := cur.fetchmany(1000):
        seen += len(batch)
    t.join(30)
    assert all(r.return_code == RC_OK for r in results) and len(results) == 20
    assert n_before <= seen <= n_before + 40  # one statement: a snapshot, possibly a bit later
    n_after = cur.execute("SELECT COUNT(*) FROM TXNHIST").fetchone()[0]
    assert int(n_after) == n_before + 40


# -- PostgreSQL: loaded from the seed, then the single store of truth --------------------------
@pytest.fixture(scope="module")
def pg_admin_dsn() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            ok = True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        ok = False
    require(ok, f"PostgreSQL at {PG_ADMIN_DSN} (set COREBRIDGE_TEST_PG_DSN)")
    return PG_ADMIN_DSN


@pytest.fixture(scope="module")
def pg_dsn(pg_admin_dsn, seeded_template):
    """A fresh database per test module run, loaded from the seeded ledger, dropped afterwards."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"cb_mock_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    dsn = make_conninfo(pg_admin_dsn, dbname=name)
    try:
        yield dsn
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_ledger(pg_dsn, seeded_template):
    load_into_postgres(seeded_template, pg_dsn)  # each test starts from the seed again
    led = Ledger(pg_dsn=pg_dsn)
    yield led
    led.close()


@pytest.fixture
def pg_odbc(pg_ledger, pg_dsn):
    require("PostgreSQL Unicode" in pyodbc.drivers(), "ODBC driver 'PostgreSQL Unicode' (odbc-postgresql)")
    conn = pyodbc.connect(postgres_connection_string(pg_dsn), autocommit=True, timeout=10)
    yield conn
    conn.close()


@pytest.mark.postgres
def test_load_into_postgres_copies_every_row_exactly(pg_dsn, seeded_template):
    counts = load_into_postgres(seeded_template, pg_dsn)
    sqlite_side, pg_side = Ledger(seeded_template), Ledger(pg_dsn=pg_dsn)
    try:
        for table in TABLES:
            want = sqlite_side.query(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")  # noqa: S608
            got = pg_side.query(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")  # noqa: S608
            assert counts[table] == len(want)
            assert got == want, table  # Decimal amounts, int dates, CHAR padding: all equal
        assert pg_side.balance_totals() == sqlite_side.balance_totals()
        assert pg_side.business_date() == sqlite_side.business_date()
    finally:
        sqlite_side.close()
        pg_side.close()
    # loading again replaces the tables (no duplicates), also into an existing database
    assert load_into_postgres(seeded_template, pg_dsn, create_database=False) == counts


@pytest.mark.postgres
def test_psqlodbc_returns_decimal_and_padded_char(pg_odbc, pg_ledger):
    cur = pg_odbc.cursor()
    for table in ("CUSTMAST", "ACCTMAST", "TXNHIST"):
        cur.execute(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")  # noqa: S608
        cols = published_columns()[table]
        types = {d[0].upper(): d[1] for d in cur.description}
        for c in cols:
            assert types[c.name] is (str if c.type_name == "CHAR" else Decimal), (table, c.name)
        got = rows_as_dicts(cur)
        for g in got[:50]:
            for c in cols:
                if c.type_name == "CHAR":
                    assert len(g[c.name]) == c.size
        want = pg_ledger.query(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")  # noqa: S608
        assert [as_ledger_row(table, g) for g in got] == want
    assert cur.execute("SELECT * FROM ACCTMAST WHERE ACCT_NO = ?", INJECTION).fetchall() == []


@pytest.mark.postgres
def test_psqlodbc_reports_the_published_ddl(pg_odbc):
    cur = pg_odbc.cursor()
    for table, cols in published_columns().items():
        reported = list(cur.columns(table=table.lower()))
        assert [c.column_name.upper() for c in reported] == [c.name for c in cols], table
        for want, got in zip(cols, reported, strict=True):
            assert got.type_name == ("bpchar" if want.type_name == "CHAR" else "numeric")
            assert got.column_size == want.size
            assert got.nullable == pyodbc.SQL_NO_NULLS
            if want.type_name == "DECIMAL":
                assert got.decimal_digits == want.scale


@pytest.mark.postgres
def test_postings_on_postgres_are_read_back_through_psqlodbc(pg_ledger, pg_odbc):
    engine = PostingEngine(pg_ledger)
    a, b = active_pair(pg_ledger)
    totals = pg_ledger.balance_totals()
    bal = {x: pg_ledger.account(x)["LEDGER_BAL"] for x in (a, b)}
    results = [engine.post(TransferRequest("PG-1", a, b, Decimal("100.10"), "USD")),
               engine.post(TransferRequest("PG-2", b, a, Decimal("0.35"), "USD")),
               engine.post(TransferRequest("PG-1", a, b, Decimal("1.00"), "USD")),  # reused ref
               engine.post(TransferRequest("PG-3", a, "000000000000", Decimal("1.00"), "USD")),
               engine.post(TransferRequest("PG-4", a, b, Decimal("1.001"), "USD"))]
    assert [(r.return_code, r.reason_code) for r in results] == [
        (RC_OK, ""), (RC_OK, ""), (RC_OK, ""), (RC_REJECTED, "R002"), (RC_REJECTED, "R008")]
    assert [r.xfer_id for r in results] == [1, 2, 3, 4, 5]
    cur = pg_odbc.cursor()
    q = "SELECT LEDGER_BAL, AVAIL_BAL, HOLD_AMT FROM ACCTMAST WHERE ACCT_NO = ?"
    led_a, av_a, hold_a = cur.execute(q, a).fetchone()
    led_b, _, _ = cur.execute(q, b).fetchone()
    assert isinstance(led_a, Decimal)
    assert led_a == bal[a] - Decimal("100.10") + Decimal("0.35") - Decimal("1.00")
    assert led_b == bal[b] + Decimal("100.10") - Decimal("0.35") + Decimal("1.00")
    assert av_a == led_a - hold_a
    log = cur.execute("SELECT XFER_ID, XFER_STAT, XFER_AMT FROM XFERLOG WHERE XFER_REF = ? "
                      "ORDER BY XFER_ID", "PG-1").fetchall()
    assert [tuple(x) for x in log] == [(Decimal(1), "P", Decimal("100.10")),
                                       (Decimal(3), "P", Decimal("1.00"))]
    n = cur.execute("SELECT COUNT(*) FROM TXNHIST WHERE TXN_REF = ?", "PG-1").fetchone()[0]
    assert n == 4
    sums = dict(cur.execute("SELECT CURR_CD, SUM(LEDGER_BAL) FROM ACCTMAST GROUP BY CURR_CD").fetchall())
    assert sums == {k: v[0] for k, v in totals.items()}
    assert pg_ledger.balance_totals() == totals
    hist, _ = pg_ledger.history(a, limit=3)
    assert [h["TXN_REF"] for h in hist] == ["PG-1".ljust(16), "PG-2".ljust(16), "PG-1".ljust(16)]


@pytest.mark.postgres
def test_postgres_posting_waits_for_a_row_lock_and_sees_the_committed_balance(pg_ledger, pg_dsn):
    """SELECT ... FOR UPDATE: a concurrent debit is not lost and funds are re-checked."""
    import psycopg

    engine = PostingEngine(pg_ledger)
    a, b = active_pair(pg_ledger)
    start = pg_ledger.account(a)
    out = []
    with psycopg.connect(pg_dsn) as other:
        other.execute("SELECT * FROM ACCTMAST WHERE ACCT_NO = %s FOR UPDATE", (a,))
        other.execute("UPDATE ACCTMAST SET LEDGER_BAL = LEDGER_BAL - 100, AVAIL_BAL = AVAIL_BAL - 100 "
                      "WHERE ACCT_NO = %s", (a,))
        t = threading.Thread(target=lambda: out.append(
            engine.post(TransferRequest("PG-LOCK", a, b, Decimal("10.00"), "USD"))))
        t.start()
        time.sleep(0.5)
        assert t.is_alive(), "the posting should wait for the row lock"
        other.commit()
        t.join(10)
    assert out and out[0].return_code == RC_OK
    assert pg_ledger.account(a)["LEDGER_BAL"] == start["LEDGER_BAL"] - 110


@pytest.mark.postgres
def test_concurrent_postings_on_postgres_get_unique_transfer_ids(pg_ledger):
    engine = PostingEngine(pg_ledger)
    accts = [r["ACCT_NO"].strip() for r in pg_ledger.query(
        "SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'USD' ORDER BY ACCT_NO")]
    totals = pg_ledger.balance_totals()
    results = []

    def work(k: int) -> None:
        for i in range(25):
            src, dst = accts[(k + i) % len(accts)], accts[(k * 3 + i + 1) % len(accts)]
            results.append(engine.post(TransferRequest(f"PGC-{k}-{i}", src, dst, Decimal("1.00"), "USD")))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 100
    assert all(r.return_code in (RC_OK, RC_REJECTED) for r in results), {r.message for r in results}
    assert sorted(r.xfer_id for r in results) == list(range(1, 101))
    assert pg_ledger.balance_totals() == totals


@pytest.mark.postgres
def test_postgres_ledger_reconnects_after_the_server_drops_it(pg_ledger, pg_dsn):
    import psycopg

    engine = PostingEngine(pg_ledger)
    a, b = active_pair(pg_ledger)
    pid = pg_ledger.connect().info.backend_pid
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    first = engine.post(TransferRequest("PG-DROP-1", a, b, Decimal("1.00"), "USD"))
    assert first.return_code == "0012"  # the connection died under this call
    second = engine.post(TransferRequest("PG-DROP-2", a, b, Decimal("1.00"), "USD"))
    assert second.return_code == RC_OK, second.message
