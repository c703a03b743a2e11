"""Bulkhead: a cap on concurrent calls to one backend, so a slow or hung core ties up at most
``max_concurrent`` threads and the rest of the service keeps its capacity.

Admission is a counter under a ``threading.Condition``, shared by sync and async callers of the
backend. A call that finds the bulkhead full is refused with :class:`~adapters.errors.BulkheadFull`
at once (``max_wait=0``) or after waiting at most ``max_wait`` seconds (never past the caller's
deadline): queueing behind a hung backend only moves the timeout somewhere less visible.

Async callers that may wait queue as futures (FIFO) and are handed a slot by :meth:`exit` (through
``call_soon_threadsafe``, so a slot freed by a worker thread wakes a waiter on the loop), not by
polling. They either await a coroutine in the slot (an event-loop adapter) or run the blocking
adapter function in a worker thread through ``anyio.to_thread.run_sync(fn, limiter=...)`` with one
``anyio.CapacityLimiter`` per backend, sized like the bulkhead: the limiter keeps this backend's
threads out of anyio's shared default pool (40 threads for everything), and since admission already
caps the calls at ``max_concurrent`` the limiter never makes anyone wait. Threads are not abandoned
on cancellation, so a thread is accounted for until the adapter returns (which it does at the latest
after its library timeout).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import anyio
import anyio.to_thread

from adapters.errors import BulkheadFull

__all__ = ["Bulkhead"]

T = TypeVar("T")


class _Waiter:
    """An async caller queued for a slot; ``granted`` is set under the bulkhead's lock."""

    __slots__ = ("future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.granted = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


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
        self._waiters: deque[_Waiter] = deque()
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
            if wait > 0 and self._cond.wait_for(self._free, wait):
                self._take()
                return
            raise self._refuse(operation)

    def _free(self) -> bool:  # under the condition's lock; queued async callers go first
        return self._in_flight < self.max_concurrent and not self._waiters

    def exit(self) -> None:
        with self._cond:
            if self._in_flight <= 0:
                raise RuntimeError("bulkhead exit without enter")
            while self._waiters:  # hand the slot straight to the oldest async waiter
                waiter = self._waiters.popleft()
                if waiter.loop.is_closed():
                    continue
                waiter.granted = True
                if asyncio._get_running_loop() is waiter.loop:  # same thread: no self-pipe write needed
                    waiter.loop.call_soon(_wake, waiter.future)
                else:
                    waiter.loop.call_soon_threadsafe(_wake, waiter.future)
                return
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
        """Like :meth:`enter` without blocking the event loop (waiting, if allowed, in a FIFO queue)."""
        wait = self.max_wait if timeout is None else min(self.max_wait, timeout)
        with self._cond:
            if not self._waiters and self._take():
                return
            if wait <= 0:
                raise self._refuse(operation)
            waiter = _Waiter(asyncio.get_running_loop())
            self._waiters.append(waiter)
        # a timer on the waiter's own future, not wait_for(shield(...)): that cost two more futures and a
        # task switch per queued call on the facade's hot path
        timer = waiter.loop.call_later(wait, _expire, waiter.future)
        try:
            await waiter.future
        except BaseException as exc:  # timed out or cancelled: leave the queue (a slot granted meanwhile is ours)
            timed_out = isinstance(exc, TimeoutError)
            with self._cond:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
                    if timed_out:
                        raise self._refuse(operation) from None
            if granted and timed_out:
                return
            if granted:
                self.exit()
            raise
        finally:
            timer.cancel()

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
