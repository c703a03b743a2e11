"""The store in one SQLite file: WAL (readers never block the writer), one connection per thread,
``busy_timeout`` so concurrent writers wait instead of failing. Every statement autocommits; the
primary key decides races between threads, as it does between processes sharing the file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from api.store.base import SCHEMA, SqlStore

__all__ = ["SqliteStore"]


class SqliteStore(SqlStore):
    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        conn = self._conn()
        conn.executescript(SCHEMA.format(blob="BLOB", real="REAL"))

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self._busy_timeout_ms / 1000)  # sets SQLite's busy timeout
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, list[Sequence[Any]]]:
        cur = self._conn().execute(sql, tuple(params))
        try:
            rows = cur.fetchall() if cur.description else []
            return cur.rowcount, rows
        finally:
            cur.close()

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()
