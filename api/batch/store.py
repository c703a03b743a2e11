"""The batch read model: loaded transaction history, ingested files, claims and outgoing payments.

SQLite (WAL, the default: one file, one instance) or PostgreSQL (a ``postgresql://`` DSN: several
instances share it). Amounts are TEXT decimal strings (never REAL), so a round trip is exact.

``remote_files`` remembers the size and mtime the SFTP listing showed for each ingested or quarantined
file (name + SHA-256), so ``pull`` can skip a file it already knows without downloading it again.

Why the claim lives in the file's own transaction: a crash rolls the claim back with the data, so
nothing is ever left "claimed but not loaded"; a second instance either waits for the first to
commit and then sees the claim (skips), or, on PostgreSQL, fails ``pg_try_advisory_xact_lock`` and
skips at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "BatchStore", "open_store"]

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ingested_files (
        file_name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        status TEXT NOT NULL,              -- loaded | quarantined
        file_date TEXT,
        seq_no INTEGER,
        records INTEGER NOT NULL DEFAULT 0,
        rejects INTEGER NOT NULL DEFAULT 0,
        duplicates INTEGER NOT NULL DEFAULT 0,
        control_total TEXT,
        reason TEXT,
        report TEXT,                       -- JSON
        ingested_at TEXT NOT NULL,
        PRIMARY KEY (file_name, sha256))""",
    """CREATE TABLE IF NOT EXISTS claims (
        file_name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        owner TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (file_name, sha256))""",
    """CREATE TABLE IF NOT EXISTS transactions (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        booked_at TEXT NOT NULL,
        value_date TEXT NOT NULL,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        description TEXT NOT NULL,
        reference TEXT,
        counterparty TEXT,
        channel TEXT,
        kind TEXT,
        status TEXT NOT NULL,
        running_balance TEXT,
        file_name TEXT NOT NULL,
        file_sha256 TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS transactions_account ON transactions (account_id, booked_at)",
    # look-ups by transfer reference (the reconciler's fallback); partial: most rows carry none
    "CREATE INDEX IF NOT EXISTS transactions_reference ON transactions (reference) WHERE reference IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS remote_files (
        file_name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        modified TEXT,                     -- the listing's mtime (ISO, UTC); NULL when the server gave none
        seen_at TEXT NOT NULL,
        PRIMARY KEY (file_name, sha256))""",
    """CREATE TABLE IF NOT EXISTS payment_files (
        file_name TEXT PRIMARY KEY,
        seq_no INTEGER NOT NULL UNIQUE,
        status TEXT NOT NULL,              -- built | uploaded | acked | ack_missing
        detail_count INTEGER NOT NULL,
        control_total TEXT NOT NULL,
        ack_status TEXT,
        ack_reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS payments (
        reference TEXT PRIMARY KEY,
        file_name TEXT NOT NULL,
        rec_no INTEGER NOT NULL,
        from_account TEXT NOT NULL,
        to_account TEXT NOT NULL,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        memo TEXT,
        value_date TEXT,
        status TEXT NOT NULL,              -- pending | posted | rejected
        reason_code TEXT,
        reason TEXT,
        core_id TEXT,
        updated_at TEXT NOT NULL)""",
)

TXN_COLUMNS = ("id", "account_id", "booked_at", "value_date", "amount", "currency", "description", "reference",
               "counterparty", "channel", "kind", "status", "running_balance", "file_name", "file_sha256")

INSERT_TXN = (f"INSERT INTO transactions ({', '.join(TXN_COLUMNS)}) "  # noqa: S608 - fixed column names
              f"VALUES ({', '.join('?' for _ in TXN_COLUMNS)}) ON CONFLICT (id) DO NOTHING")


SQLITE_PAGE_SIZE = 16384
SQLITE_CACHE_KIB = 32768  # page cache per connection, allocated as used: a day's indexes stay in memory


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def open_store(target: str | Path) -> BatchStore:
    """A store on a SQLite path or a ``postgresql://`` / ``postgres://`` DSN."""
    return BatchStore(str(target))


class BatchStore:
    """A thin SQL layer over SQLite or PostgreSQL; SQL is written with ``?`` placeholders."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.is_pg = target.startswith(("postgresql://", "postgres://")) or "dbname=" in target
        self._lock = threading.RLock()
        if self.is_pg:
            import psycopg

            self._conn: Any = psycopg.connect(target, autocommit=True)
        else:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
            # a new database gets 16 KiB pages (bulk loads of a day's history: ~20% faster inserts than 4 KiB);
            # an existing one keeps its page size (this is a no-op once the file has content)
            self._conn.execute("PRAGMA page_size=16384")  # SQLITE_PAGE_SIZE; PRAGMAs take no parameters
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute("PRAGMA cache_size=-32768")  # SQLITE_CACHE_KIB (negative: KiB, not pages)
        with self.transaction():
            for statement in SCHEMA:
                self.execute(statement)

    # -- plumbing -----------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.is_pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: list[Sequence[Any]]) -> int:
        """Returns the number of rows changed."""
        if not rows:
            return 0
        if self.is_pg:
            with self._conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
                return int(cur.rowcount)
        return int(self._conn.executemany(sql, rows).rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[BatchStore]:
        """One transaction (SQLite: BEGIN IMMEDIATE, so writers queue instead of deadlocking)."""
        with self._lock:
            if self.is_pg:
                with self._conn.transaction():
                    yield self
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> BatchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingestion ----------------------------------------------------------------------------
    def known_file(self, name: str, sha256: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM ingested_files WHERE file_name = ? AND sha256 = ?", (name, sha256))
        return rows[0] if rows else None

    def claim(self, name: str, sha256: str, owner: str) -> bool:
        """Inside a transaction: True if this transaction now owns the file, False if another has it."""
        if self.is_pg:
            key = zlib.crc32(f"{name}\x00{sha256}".encode()) - 2**31
            if not self.scalar("SELECT pg_try_advisory_xact_lock(?)", (key,)):
                return False
        cur = self.execute("INSERT INTO claims (file_name, sha256, owner, claimed_at) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT DO NOTHING", (name, sha256, owner, now()))
        return cur.rowcount == 1

    def last_sequence(self, prefix: str) -> int | None:
        return self.scalar("SELECT MAX(seq_no) FROM ingested_files WHERE status = 'loaded' AND file_name LIKE ?",
                           (prefix + "%",))

    def insert_transactions(self, rows: list[Sequence[Any]]) -> int:
        """Insert rows (TXN_COLUMNS order); returns how many were new (ids already held are skipped)."""
        if not rows:
            return 0
        return self.executemany(INSERT_TXN, rows)

    def record_file(self, *, name: str, sha256: str, status: str, file_date: str | None, seq_no: int | None,
                    records: int, rejects: int, duplicates: int, control_total: str | None, reason: str | None,
                    report: str) -> None:
        self.execute(
            "INSERT INTO ingested_files (file_name, sha256, status, file_date, seq_no, records, rejects, duplicates,"
            " control_total, reason, report, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, sha256, status, file_date, seq_no, records, rejects, duplicates, control_total, reason, report,
             now()))

    def remember_remote(self, name: str, sha256: str, size: int, modified: str | None) -> None:
        """The listing's size and mtime of a file now ingested or quarantined (latest sighting wins)."""
        self.execute("INSERT INTO remote_files (file_name, sha256, size, modified, seen_at) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT (file_name, sha256) DO UPDATE SET size = excluded.size, "
                     "modified = excluded.modified, seen_at = excluded.seen_at", (name, sha256, size, modified, now()))

    def known_remote(self, name: str, size: int, modified: str | None) -> dict[str, Any] | None:
        """The ingested or quarantined file this listing entry names (same name, size and recorded mtime)."""
        rows = self.query(
            "SELECT r.sha256, r.modified, f.status, f.ingested_at FROM remote_files r JOIN ingested_files f "
            "ON f.file_name = r.file_name AND f.sha256 = r.sha256 WHERE r.file_name = ? AND r.size = ? "
            "AND (r.modified IS NULL OR r.modified = ?) ORDER BY f.ingested_at DESC", (name, size, modified))
        return rows[0] if rows else None

    def versions_of(self, name: str) -> list[dict[str, Any]]:
        """Every file ingested or quarantined under ``name`` (one per SHA-256), oldest first."""
        return self.query("SELECT sha256, status, ingested_at FROM ingested_files WHERE file_name = ? "
                          "ORDER BY ingested_at", (name,))

    def transaction_count(self) -> int:
        return int(self.scalar("SELECT COUNT(*) FROM transactions"))

    # -- payments -----------------------------------------------------------------------------
    def next_payment_seq(self) -> int:
        return int(self.scalar("SELECT COALESCE(MAX(seq_no), 0) FROM payment_files")) + 1

    def payments_by_reference(self, references: Sequence[str]) -> list[dict[str, Any]]:
        if not references:
            return []
        marks = ", ".join("?" for _ in references)
        sql = f"SELECT * FROM payments WHERE reference IN ({marks})"  # noqa: S608 - only ? placeholders
        return self.query(sql, tuple(references))

    def payment_file(self, name: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM payment_files WHERE file_name = ?", (name,))
        return rows[0] if rows else None

    def payments_of(self, name: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM payments WHERE file_name = ? ORDER BY rec_no", (name,))

    def set_file_status(self, name: str, status: str, *, ack_status: str | None = None,
                        ack_reason: str | None = None) -> None:
        self.execute("UPDATE payment_files SET status = ?, ack_status = COALESCE(?, ack_status), "
                     "ack_reason = COALESCE(?, ack_reason), updated_at = ? WHERE file_name = ?",
                     (status, ack_status, ack_reason, now(), name))
