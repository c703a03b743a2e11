"""Monotonic clocks: the real one, and a manual one that tests (and simulations) move by hand.

Every time-dependent piece of the pipeline (breaker windows and waits, deadlines, backoff sleeps)
reads time through a :class:`Clock`, so its behaviour can be checked exactly without sleeping.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import anyio
from anyio.lowlevel import checkpoint

__all__ = ["Clock", "ManualClock", "MonotonicClock"]


class Clock(Protocol):
    """Seconds on a monotonic scale (only differences mean anything) and a way to wait."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    async def sleep_async(self, seconds: float) -> None: ...


class MonotonicClock:
    """``time.monotonic`` / ``time.sleep`` / ``anyio.sleep``."""

    __slots__ = ()

    now = staticmethod(time.monotonic)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when told to; ``sleep`` advances it instantly. Thread-safe."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    async def sleep_async(self, seconds: float) -> None:
        self.sleep(seconds)
        await checkpoint()
