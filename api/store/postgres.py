"""The store in PostgreSQL, shared by several facade instances.

A small bounded pool of psycopg connections (autocommit: each statement is its own transaction), so
an instance holds at most ``pool_size`` connections however many worker threads it runs.
``PRIMARY KEY (principal, idem_key)`` with ``INSERT ... ON CONFLICT DO NOTHING`` decides races between
instances; leases are conditional ``UPDATE``s. A broken connection is discarded and the statement
retried once on a new one (every statement here is safe to repeat).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import psycopg

from api.store.base import SCHEMA, SqlStore

__all__ = ["PostgresStore", "StorePoolExhausted"]

_LOCK_ID = 0x63625F69  # advisory lock around the schema creation ("cb_i")


class StorePoolExhausted(RuntimeError):
    """No store connection became free within ``checkout_timeout``."""


class PostgresStore(SqlStore):
    placeholder = "%s"

    def __init__(self, dsn: str, *, pool_size: int = 8, connect_timeout: float = 5.0,
                 checkout_timeout: float = 10.0) -> None:
        super().__init__()
        self._dsn = dsn
        self._connect_timeout = max(1, int(connect_timeout))
        self._checkout_timeout = checkout_timeout
        self._size = pool_size
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()
        self._closed = False
        with psycopg.connect(dsn, autocommit=True, connect_timeout=self._connect_timeout) as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                for statement in SCHEMA.format(blob="BYTEA", real="DOUBLE PRECISION").split(";"):
                    if statement.strip():
                        conn.execute(statement)  # type: ignore[call-overload]

    def _checkout(self) -> psycopg.Connection[Any]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._created < self._size
                if grow:
                    self._created += 1
            if grow:
                try:
                    return psycopg.connect(self._dsn, autocommit=True, connect_timeout=self._connect_timeout)
                except BaseException:
                    with self._lock:
                        self._created -= 1
                    raise
            try:
                conn = self._idle.get(timeout=self._checkout_timeout)
            except queue.Empty:
                raise StorePoolExhausted(f"no store connection free within {self._checkout_timeout}s") from None
        if conn.closed:
            self._discard(conn)
            return self._checkout()
        return conn

    def _checkin(self, conn: psycopg.Connection[Any]) -> None:
        if self._closed or conn.closed:
            self._discard(conn)
        else:
            self._idle.put(conn)

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            self._created -= 1
        conn.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, list[Sequence[Any]]]:
        for attempt in (1, 2):
            conn = self._checkout()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, tuple(params))  # type: ignore[arg-type]
                    rows = cur.fetchall() if cur.description else []
                    count = cur.rowcount
            except psycopg.OperationalError:
                self._discard(conn)
                if attempt == 2:
                    raise
                continue
            except BaseException:
                self._checkin(conn)
                raise
            self._checkin(conn)
            return count, rows
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            self._discard(conn)
