"""The ledger store: one source of truth behind every face (SQLite file, or PostgreSQL).

Each thread gets its own connection (sqlite3 and psycopg connections are not shared between
threads). SQL is written once with ``?`` placeholders; the PostgreSQL dialect rewrites them.
Rows come back as dicts keyed by the DB2 column names, CHAR values still blank-padded (that is
the contract), amounts as ``Decimal`` and dates as CYYMMDD integers.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from .legacy import from_cyymmdd, money, to_cyymmdd

MONEY_COLUMNS = frozenset(
    {"LEDGER_BAL", "AVAIL_BAL", "HOLD_AMT", "TXN_AMT", "RUN_BAL", "XFER_AMT"}
)
INT_COLUMNS = frozenset(
    {"BIRTH_DT", "CREATE_DT", "OPEN_DT", "CLOSE_DT", "LAST_TXN_DT", "LAST_SEQ", "TXN_SEQ",
     "POST_DT", "POST_TM", "VALUE_DT", "XFER_ID"}
)
TABLES = ("CUSTMAST", "ACCTMAST", "TXNHIST", "XFERLOG", "CTLREC")


def ddl_text() -> str:
    """The published DDL (mock_mainframe/ddl/ledger.sql)."""
    return resources.files("mock_mainframe").joinpath("ddl/ledger.sql").read_text()


def ddl_statements() -> list[str]:
    lines = [ln for ln in ddl_text().splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _normalise(columns: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in zip(columns, row, strict=True):
        if name in MONEY_COLUMNS:
            out[name] = money(value)
        elif name in INT_COLUMNS:
            out[name] = int(value)
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class Dialect:
    name: str
    begin: str
    for_update: str
    # Run right after ``begin`` by a writer that allocates XFER_ID as MAX + 1: SQLite's
    # BEGIN IMMEDIATE already serialises writers; PostgreSQL's row locks do not (two postings
    # on different accounts read the same MAX and collide on the primary key), so lock the log
    # table in a self-conflicting mode that plain SELECTs (ODBC readers) do not wait for.
    serialize_writers: str = ""

    def sql(self, text: str) -> str:
        return text if self.name == "sqlite" else text.replace("?", "%s")


SQLITE = Dialect("sqlite", "BEGIN IMMEDIATE", "")
POSTGRES = Dialect("postgres", "BEGIN", " FOR UPDATE",
                   "LOCK TABLE XFERLOG IN SHARE ROW EXCLUSIVE MODE")


class Ledger:
    """Thread-safe access to the ledger; one connection per thread."""

    def __init__(self, path: Path | None = None, *, pg_dsn: str | None = None,
                 txn_limit: Decimal = Decimal("25000.00")) -> None:
        if (path is None) == (pg_dsn is None):
            raise ValueError("give exactly one of path (SQLite) or pg_dsn (PostgreSQL)")
        self.path = path
        self.pg_dsn = pg_dsn
        self.dialect = SQLITE if path is not None else POSTGRES
        self.txn_limit = txn_limit
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------------
    def connect(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(conn, "closed", False):
            # a psycopg connection the server dropped (restart, terminated backend) stays
            # closed for good: replace it, or this thread would answer 0012 forever
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            conn = None
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _open(self) -> Any:
        if self.path is not None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        import psycopg  # only when the PostgreSQL store is chosen

        return psycopg.connect(self.pg_dsn, autocommit=True)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001, S110 - closing at shutdown, nothing to do
                    pass
            self._all.clear()
        self._local = threading.local()

    # -- low-level helpers -----------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = (), conn: Any = None) -> list[dict[str, Any]]:
        conn = conn or self.connect()
        cur = conn.execute(self.dialect.sql(sql), tuple(params))
        cols = [d[0].upper() for d in cur.description]
        return [_normalise(cols, r) for r in cur.fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = (), conn: Any = None) -> None:
        conn = conn or self.connect()
        conn.execute(self.dialect.sql(sql), tuple(params))

    def create_schema(self) -> None:
        conn = self.connect()
        for stmt in ddl_statements():
            conn.execute(stmt)

    def drop_schema(self) -> None:
        conn = self.connect()
        for table in TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")  # noqa: S608 - fixed table names

    # -- control record ----------------------------------------------------------------
    def control(self, key: str) -> str | None:
        rows = self.query("SELECT CTL_VALUE FROM CTLREC WHERE CTL_KEY = ?", (key.ljust(8),))
        return rows[0]["CTL_VALUE"].rstrip() if rows else None

    def set_control(self, key: str, value: str, conn: Any = None) -> None:
        conn = conn or self.connect()
        conn.execute(self.dialect.sql("DELETE FROM CTLREC WHERE CTL_KEY = ?"), (key.ljust(8),))
        conn.execute(self.dialect.sql("INSERT INTO CTLREC (CTL_KEY, CTL_VALUE) VALUES (?, ?)"),
                     (key.ljust(8), value.ljust(64)))

    def business_date(self) -> dt.date:
        value = self.control("BUSDATE")
        if value is None:
            raise RuntimeError("ledger has no business date (not seeded)")
        d = from_cyymmdd(int(value))
        assert d is not None
        return d

    def set_business_date(self, d: dt.date) -> None:
        self.set_control("BUSDATE", str(to_cyymmdd(d)))

    def advance_business_date(self, d: dt.date) -> None:
        """Set the date in one writer transaction, serialised with postings (they read the date inside
        theirs): once this returns, every posting of the old date is committed and none can follow it."""
        conn = self.connect()
        conn.execute(self.dialect.begin)
        try:
            if self.dialect.serialize_writers:
                conn.execute(self.dialect.serialize_writers)
            self.set_control("BUSDATE", str(to_cyymmdd(d)), conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- inquiries -------------------------------------------------------------------
    def customer(self, cust_no: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM CUSTMAST WHERE CUST_NO = ?", (cust_no.ljust(10),))
        return rows[0] if rows else None

    def accounts_of(self, cust_no: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM ACCTMAST WHERE CUST_NO = ? ORDER BY ACCT_NO",
                          (cust_no.ljust(10),))

    def account(self, acct_no: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM ACCTMAST WHERE ACCT_NO = ?", (acct_no.ljust(12),))
        return rows[0] if rows else None

    def history(self, acct_no: str, *, from_dt: int = 0, to_dt: int = 9_999_999,
                limit: int = 50, before_seq: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Newest first; continue with ``before_seq`` = the last TXN_SEQ of the previous page."""
        seq_cap = before_seq if before_seq is not None else 10**10
        rows = self.query(
            "SELECT * FROM TXNHIST WHERE ACCT_NO = ? AND POST_DT >= ? AND POST_DT <= ? "
            "AND TXN_SEQ < ? ORDER BY TXN_SEQ DESC LIMIT ?",
            (acct_no.ljust(12), from_dt, to_dt, seq_cap, limit + 1),
        )
        return rows[:limit], len(rows) > limit

    def transfers_by_ref(self, ref: str) -> list[dict[str, Any]]:
        """Every posting attempt under a reference, oldest first (the core does not de-duplicate)."""
        return self.query("SELECT * FROM XFERLOG WHERE XFER_REF = ? ORDER BY XFER_ID",
                          (ref.ljust(16),))

    def transactions_on(self, post_dt: int) -> Iterator[dict[str, Any]]:
        """Every TXNHIST row posted on a business day, in file order (account, sequence)."""
        conn = self.connect()
        cur = conn.execute(
            self.dialect.sql("SELECT * FROM TXNHIST WHERE POST_DT = ? ORDER BY ACCT_NO, TXN_SEQ"),
            (post_dt,),
        )
        cols = [d[0].upper() for d in cur.description]
        while True:
            batch = cur.fetchmany(1000)
            if not batch:
                return
            for r in batch:
                yield _normalise(cols, r)

    def balance_totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Per currency: (sum of LEDGER_BAL, sum of AVAIL_BAL), summed in Decimal."""
        totals: dict[str, tuple[Decimal, Decimal]] = {}
        for row in self.query("SELECT CURR_CD, LEDGER_BAL, AVAIL_BAL FROM ACCTMAST"):
            led, av = totals.get(row["CURR_CD"], (Decimal("0.00"), Decimal("0.00")))
            totals[row["CURR_CD"]] = (led + row["LEDGER_BAL"], av + row["AVAIL_BAL"])
        return totals
