"""A bounded pool of pyodbc connections, and the watchdog that enforces per-call timeouts.

**Pool.** A pyodbc connection must not be used by two threads at once, so each call checks one out
for its exclusive use: a ``BoundedSemaphore`` of ``size`` permits bounds the connections in use, and a
``queue.LifoQueue`` holds the idle ones (last in, first out: the warmest connection is reused and the
others age out). Connections are opened lazily, only when no idle one is left, so at most ``size`` are
ever open. A checkout waits at most ``checkout_timeout`` (never longer than the call's own time left)
for a permit, then raises :class:`~adapters.errors.BulkheadFull`: a local refusal, which the resilience
pipeline neither retries nor counts against the core. A connection that failed in a way that leaves it
unusable (connection lost, timed out, cancelled) is closed instead of returned, and its permit freed,
so the next checkout opens a fresh one. An idle connection older than ``max_idle`` seconds is closed at
checkout rather than reused (firewalls silently drop idle TCP sessions).

**Timeouts.** The drivers cannot be trusted with the query timeout: the SQLite3 ODBC driver accepts
``SQL_ATTR_QUERY_TIMEOUT`` and ignores it, and psqlODBC refuses pyodbc's ``Connection.timeout`` outright
(``SQLSetConnectAttr`` 113, "unsupported connect attribute"). Both honour ``SQLCancel`` from another
thread (``sqlite3_interrupt`` / ``PQcancel``), measured at 0.5 s for a 0.5 s timeout. So one watchdog
thread per pool cancels the statement of any call that outlives its deadline, and the call then raises
:class:`~adapters.errors.BackendTimeout` and its connection is discarded. The thread sleeps until the
earliest deadline of the calls in flight; arming a call is two attribute writes under a per-connection
lock, and wakes the thread only when the new deadline is earlier than the one it sleeps towards. Where
the driver does accept ``Connection.timeout`` (whole seconds), it is set too, as a second line.

**Statements.** Each connection keeps the cursors of its last ``statement_cache`` statements (least
recently used out), keyed by SQL text: pyodbc prepares a statement once per cursor and skips
``SQLPrepare`` (and the parameter descriptions) when the same SQL text runs again on it, so a call
repeating an earlier call's statement only binds and executes. The sources of that SQL are the
adapter's own constants; a call's parameters are always bound. After a call that succeeded, each
cursor it used has its result set closed (``nextset()``: ``SQLMoreResults`` then ``SQLFreeStmt(SQL_CLOSE)``,
the prepared statement kept), so no kept cursor holds rows, locks or a read snapshot between calls;
after a call that failed, its cursors are closed. Measured on the SQLite3 ODBC driver: a history
call ~55 us cheaper (``benchmarks/bench_odbc.py``). ``statement_cache=0``: a new cursor per statement.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pyodbc

from adapters.errors import BackendUnavailable, BulkheadFull
from adapters.odbc_errors import BACKEND, CallState, translate

__all__ = ["OdbcPool", "PooledConnection"]

log = logging.getLogger("adapters.odbc")

INF = math.inf


class PooledConnection:
    """One open pyodbc connection and the watchdog's view of the call running on it."""

    __slots__ = ("cursor", "deadline", "fired", "lock", "native_timeout", "number", "opened_at", "prepared",
                 "executed", "raw", "released_at", "reused", "statements", "timeout_set", "used")

    def __init__(self, raw: Any, number: int, native_timeout: bool, timeout_set: int) -> None:
        self.raw = raw
        self.number = number
        self.opened_at = self.released_at = time.monotonic()
        self.native_timeout = native_timeout
        self.timeout_set = timeout_set
        self.reused = False  # True once it has served a call and come back from the idle stack
        self.lock = threading.Lock()
        self.cursor: Any = None  # the statement in flight, while armed
        self.deadline = INF
        self.fired = False
        # SQL text -> a cursor that has prepared it, its result set closed (least recently used first)
        self.statements: OrderedDict[str, Any] = OrderedDict()
        self.used: list[tuple[str, Any]] = []  # the cursors of the call in progress
        self.prepared = 0  # cursors this connection opened (each prepares its statement once)
        self.executed = 0  # statements it ran

    def fire(self, now: float) -> bool:
        """Cancel the statement in flight if its deadline has passed (called by the watchdog)."""
        with self.lock:
            if self.cursor is None or self.deadline > now:
                return False
            self.fired = True
            with contextlib.suppress(pyodbc.Error):
                self.cursor.cancel()
            return True

    def close(self) -> None:
        for _, cur in [*self.used, *self.statements.items()]:
            _close_quietly(cur)
        self.used.clear()
        self.statements.clear()
        with contextlib.suppress(pyodbc.Error):
            self.raw.close()


def _close_quietly(cur: Any) -> None:
    try:
        cur.close()
    except pyodbc.Error:
        log.debug("odbc: closing a cursor failed", exc_info=True)


class OdbcPool:
    """See the module docstring. Thread-safe; ``close()`` closes idle connections now and in-use ones
    when they come back."""

    def __init__(self, connection_string: str, *, size: int, login_timeout: float, query_timeout: float,
                 checkout_timeout: float, max_idle: float | None, statement_cache: int = 16,
                 connect: Callable[..., Any] = pyodbc.connect) -> None:
        if size < 1:
            raise ValueError("pool size must be >= 1")
        if statement_cache < 0:
            raise ValueError("statement_cache must be >= 0")
        self._cs = connection_string
        self.size = size
        self.login_timeout = login_timeout
        self.query_timeout = query_timeout
        self.checkout_timeout = checkout_timeout
        self.max_idle = max_idle
        self.statement_cache = statement_cache
        self._connect_fn = connect
        self._idle: queue.LifoQueue[PooledConnection] = queue.LifoQueue()
        self._permits = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._all: set[PooledConnection] = set()
        self._closed = False
        self._numbers = 0
        self.opened = self.discarded = self.peak_open = self.exhausted = self.cancelled = 0
        self._prepared_closed = self._executed_closed = 0  # counts of connections since closed
        # the watchdog
        self._wcond = threading.Condition(threading.Lock())
        self._wake_at = INF
        self._watchdog: threading.Thread | None = None

    # -- checkout and return ---------------------------------------------------------------------
    def checkout(self, operation: str, remaining: float, *, fresh: bool = False) -> PooledConnection:
        """A connection for this thread's exclusive use; give it back with :meth:`release`.

        ``fresh``: the caller just found a pooled connection dead, so the idle ones are suspect (the
        server may have restarted): close the one it would get and open a new one instead.
        """
        if self._closed:
            raise BackendUnavailable("the ODBC pool is closed", backend=BACKEND, operation=operation)
        wait = max(0.0, min(self.checkout_timeout, remaining))
        if not self._permits.acquire(timeout=wait):
            with self._lock:
                self.exhausted += 1
            raise BulkheadFull(f"all {self.size} ODBC connections busy for {wait:.3f} s", backend=BACKEND,
                               operation=operation)
        try:
            while True:
                try:
                    pc = self._idle.get_nowait()
                except queue.Empty:
                    break
                if fresh:
                    self._discard(pc, "idle beside a dead one")
                    break
                if self.max_idle is not None and time.monotonic() - pc.released_at > self.max_idle:
                    self._discard(pc, "idle too long")
                    continue
                return pc
            return self._open(operation, remaining)
        except BaseException:
            self._permits.release()
            raise

    def release(self, pc: PooledConnection, *, broken: bool) -> None:
        try:
            if broken or self._closed:
                self._discard(pc, "broken" if broken else "pool closed")
            else:
                pc.released_at = time.monotonic()
                pc.reused = True
                self._idle.put(pc)
        finally:
            self._permits.release()

    def _open(self, operation: str, remaining: float) -> PooledConnection:
        # SQL_ATTR_LOGIN_TIMEOUT is whole seconds (libpq's connect_timeout: at least 2)
        login = max(1, math.ceil(min(self.login_timeout, remaining)))
        with translate(operation, CallState(timeout=float(login)), connecting=True):
            raw = self._connect_fn(self._cs, timeout=login, autocommit=True)
        native, seconds = True, max(1, math.ceil(self.query_timeout))
        try:
            raw.timeout = seconds
        except pyodbc.Error:
            native, seconds = False, 0  # psqlODBC: the watchdog alone enforces timeouts
        with self._lock:
            self._numbers += 1
            pc = PooledConnection(raw, self._numbers, native, seconds)
            self._all.add(pc)
            self.opened += 1
            self.peak_open = max(self.peak_open, len(self._all))
        log.debug("odbc: opened connection #%d (%d open)", pc.number, len(self._all))
        return pc

    def _discard(self, pc: PooledConnection, why: str) -> None:
        with self._lock:
            if pc not in self._all:
                return
            self._all.discard(pc)
            self.discarded += 1
            self._prepared_closed += pc.prepared
            self._executed_closed += pc.executed
        pc.close()
        log.info("odbc: closed connection #%d (%s)", pc.number, why)

    # -- per-call timeouts -------------------------------------------------------------------------
    def arm(self, pc: PooledConnection, deadline: float) -> None:
        """Cancel the call's statement in flight (the cursor :meth:`execute` last gave it) if the call is
        still running at ``deadline`` (monotonic)."""
        if pc.native_timeout:
            seconds = max(1, math.ceil(deadline - time.monotonic()))
            if seconds != pc.timeout_set:
                with contextlib.suppress(pyodbc.Error):
                    pc.raw.timeout = seconds
                    pc.timeout_set = seconds
        with pc.lock:
            pc.deadline = deadline
            pc.fired = False
        if deadline < self._wake_at:
            with self._wcond:
                if deadline < self._wake_at:
                    self._wake_at = deadline
                    if self._watchdog is None:
                        self._watchdog = threading.Thread(target=self._watch, name="odbc-watchdog", daemon=True)
                        self._watchdog.start()
                    self._wcond.notify()

    def execute(self, pc: PooledConnection, sql: str, params: tuple[Any, ...]) -> Any:
        """Run ``sql`` with bound ``params`` on ``pc`` (armed) and return its cursor: the cursor that ran
        this SQL text before on ``pc`` where one is kept (already prepared), else a new one. It is the
        watchdog's target from now until the next statement or :meth:`disarm`."""
        cur = pc.statements.pop(sql, None)
        if cur is None:
            cur = pc.raw.cursor()
            pc.prepared += 1
        pc.used.append((sql, cur))
        with pc.lock:
            pc.cursor = cur
        pc.executed += 1
        cur.execute(sql, params)
        return cur

    def finish(self, pc: PooledConnection, *, keep: bool) -> None:
        """The call's statements are done: with ``keep`` (the call succeeded) each cursor's result set
        is closed and the cursor kept for its SQL text; otherwise (or where closing the result set
        fails, or another result set follows) the cursor is closed."""
        used, pc.used = pc.used, []
        for sql, cur in used:
            if keep and self.statement_cache:
                try:
                    more = cur.nextset()
                except pyodbc.Error:
                    more = True
                if not more:
                    old = pc.statements.pop(sql, None)  # the same SQL twice in one call
                    if old is not None:
                        _close_quietly(old)
                    pc.statements[sql] = cur
                    if len(pc.statements) > self.statement_cache:
                        _close_quietly(pc.statements.popitem(last=False)[1])
                    continue
            _close_quietly(cur)

    def disarm(self, pc: PooledConnection, state: CallState) -> None:
        """The call is over; records in ``state`` whether the watchdog cancelled it."""
        with pc.lock:
            pc.cursor = None
            pc.deadline = INF
            if pc.fired:
                state.timed_out = True
                state.broken = True

    def _watch(self) -> None:
        while True:
            with self._wcond:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    if self._wake_at <= now:
                        break
                    self._wcond.wait(None if self._wake_at == INF else self._wake_at - now)
                self._wake_at = INF
            with self._lock:
                conns = list(self._all)
            now, earliest = time.monotonic(), INF
            for pc in conns:
                d = pc.deadline
                if d <= now:
                    if pc.fire(now):
                        with self._lock:
                            self.cancelled += 1
                        log.warning("odbc: cancelled the statement on connection #%d (time is up)", pc.number)
                elif d < earliest:
                    earliest = d
            if earliest < INF:
                with self._wcond:
                    self._wake_at = min(self._wake_at, earliest)

    # -- state -------------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Plain numbers for metrics: connections open/idle/in use, and counters since start."""
        with self._lock:
            open_now = len(self._all)
            prepared = self._prepared_closed + sum(pc.prepared for pc in self._all)
            executed = self._executed_closed + sum(pc.executed for pc in self._all)
            kept = sum(len(pc.statements) for pc in self._all)
        idle = self._idle.qsize()
        return {"size": self.size, "open": open_now, "idle": idle, "in_use": max(0, open_now - idle),
                "peak_open": self.peak_open, "opened": self.opened, "discarded": self.discarded,
                "exhausted": self.exhausted, "cancelled": self.cancelled, "executed": executed,
                "prepared": prepared, "statements_kept": kept}

    def close(self) -> None:
        """Close the idle connections now; the ones in use are closed when released."""
        self._closed = True
        with self._wcond:
            self._wcond.notify_all()
        while True:
            try:
                pc = self._idle.get_nowait()
            except queue.Empty:
                break
            self._discard(pc, "pool closed")
