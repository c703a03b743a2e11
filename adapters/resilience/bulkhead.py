"""Bulkhead: a cap on concurrent calls to one backend, so a slow or hung core ties up at most
``max_concurrent`` threads and the rest of the service keeps its capacity.

Admission is a counter under a ``threading.Condition``, shared by sync and async callers of the
backend. A call that finds the bulkhead full is refused with :class:`~adapters.errors.BulkheadFull`
at once (``max_wait=0``) or after waiting at most ``max_wait`` seconds (never past the caller's
deadline): queueing behind a hung backend only moves the timeout somewhere less visible.

Async callers run the blocking adapter function in a worker thread through
``anyio.to_thread.run_sync(fn, limiter=...)`` with one ``anyio.CapacityLimiter`` per backend, sized
like the bulkhead: the limiter keeps this backend's threads out of anyio's shared default pool
(40 threads for everything), and since admission already caps the calls at ``max_concurrent`` the
limiter never makes anyone wait. Threads are not abandoned on cancellation, so a thread is
accounted for until the adapter returns (which it does at the latest after its library timeout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import anyio
import anyio.to_thread

from adapters.errors import BulkheadFull

__all__ = ["Bulkhead"]

T = TypeVar("T")

_ASYNC_POLL = 0.002  # seconds between admission checks for an async caller allowed to wait


class Bulkhead:
    def __init__(self, name: str, max_concurrent: int, *, max_wait: float = 0.0) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0")
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_wait = max_wait
        self._cond = threading.Condition(threading.Lock())
        self._in_flight = 0
        self._peak = 0
        self._rejected = 0
        self.limiter = anyio.CapacityLimiter(max_concurrent)

    # -- state ------------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def peak(self) -> int:
        return self._peak

    @property
    def rejected(self) -> int:
        return self._rejected

    # -- admission --------------------------------------------------------------------------------

    def _take(self) -> bool:  # under the condition's lock
        if self._in_flight >= self.max_concurrent:
            return False
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)
        return True

    def _refuse(self, operation: str | None) -> BulkheadFull:  # under the condition's lock
        self._rejected += 1
        return BulkheadFull(backend=self.name, operation=operation)

    def enter(self, timeout: float | None = None, *, operation: str | None = None) -> None:
        """Take a slot, waiting at most ``min(max_wait, timeout)`` seconds, or raise ``BulkheadFull``."""
        wait = self.max_wait if timeout is None else min(self.max_wait, timeout)
        with self._cond:
            if self._take():
                return
            if wait > 0 and self._cond.wait_for(lambda: self._in_flight < self.max_concurrent, wait):
                self._take()
                return
            raise self._refuse(operation)

    def exit(self) -> None:
        with self._cond:
            if self._in_flight <= 0:
                raise RuntimeError("bulkhead exit without enter")
            self._in_flight -= 1
            self._cond.notify()

    @contextmanager
    def slot(self, timeout: float | None = None, *, operation: str | None = None) -> Iterator[None]:
        self.enter(timeout, operation=operation)
        try:
            yield
        finally:
            self.exit()

    async def enter_async(self, timeout: float | None = None, *, operation: str | None = None) -> None:
        """Like :meth:`enter` without blocking the event loop (waiting, if allowed, by polling)."""
        wait = self.max_wait if timeout is None else min(self.max_wait, timeout)
        until = time.monotonic() + wait
        while True:
            with self._cond:
                if self._take():
                    return
                if time.monotonic() >= until:
                    raise self._refuse(operation)
            await anyio.sleep(min(_ASYNC_POLL, max(0.0, until - time.monotonic())))

    # -- running ----------------------------------------------------------------------------------

    def run(self, fn: Callable[..., T], /, *args: object, timeout: float | None = None) -> T:
        """Run ``fn(*args)`` in the calling thread inside a slot."""
        with self.slot(timeout):
            return fn(*args)

    async def run_in_thread(self, fn: Callable[..., T], /, *args: object, timeout: float | None = None,
                            operation: str | None = None) -> T:
        """Run the blocking ``fn(*args)`` in a worker thread inside a slot, on this backend's limiter."""
        await self.enter_async(timeout, operation=operation)
        try:
            return await self.run_admitted(fn, *args)
        finally:
            self.exit()

    async def run_admitted(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run ``fn(*args)`` in a worker thread on this backend's limiter; the caller holds a slot."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)
