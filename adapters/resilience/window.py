"""Sliding windows of call outcomes for the circuit breaker (Resilience4j's two kinds).

* :class:`CountWindow` keeps the last ``size`` outcomes in a ring buffer.
* :class:`TimeWindow` keeps one bucket per whole second of the monotonic clock over the last
  ``seconds`` seconds, the current (partial) second included; buckets that fall out of the window
  are subtracted when the window is moved (on every record and every snapshot), exactly like
  Resilience4j's ``SlidingTimeWindowMetrics``.

Both keep running totals, so recording and reading are O(1) (amortised for the time window).
Neither is thread-safe: the breaker calls them under its lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

__all__ = ["CountWindow", "SlidingWindow", "TimeWindow", "WindowSnapshot"]


@dataclass(frozen=True, slots=True)
class WindowSnapshot:
    calls: int = 0
    failed: int = 0
    slow: int = 0

    @property
    def failure_rate(self) -> float:
        return self.failed * 100.0 / self.calls if self.calls else 0.0

    @property
    def slow_call_rate(self) -> float:
        return self.slow * 100.0 / self.calls if self.calls else 0.0


class SlidingWindow(Protocol):
    def record(self, failed: bool, slow: bool, now: float) -> WindowSnapshot: ...

    def snapshot(self, now: float) -> WindowSnapshot: ...


class CountWindow:
    """The last ``size`` recorded outcomes."""

    __slots__ = ("_failed", "_slow", "_next", "_count", "_n_failed", "_n_slow", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a count-based window needs size >= 1")
        self.size = size
        self._failed = [False] * size
        self._slow = [False] * size
        self._next = 0
        self._count = 0
        self._n_failed = 0
        self._n_slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> WindowSnapshot:
        i = self._next
        if self._count == self.size:  # evict the oldest outcome, which sits where we write
            self._n_failed -= self._failed[i]
            self._n_slow -= self._slow[i]
        else:
            self._count += 1
        self._failed[i] = failed
        self._slow[i] = slow
        self._n_failed += failed
        self._n_slow += slow
        self._next = (i + 1) % self.size
        return WindowSnapshot(self._count, self._n_failed, self._n_slow)

    def snapshot(self, now: float) -> WindowSnapshot:
        return WindowSnapshot(self._count, self._n_failed, self._n_slow)


class TimeWindow:
    """Outcomes of the last ``seconds`` whole seconds, one bucket per second."""

    __slots__ = ("_epoch", "_calls", "_failed", "_slow", "_head", "_t_calls", "_t_failed", "_t_slow", "size")

    def __init__(self, seconds: int, now: float) -> None:
        if seconds < 1:
            raise ValueError("a time-based window needs seconds >= 1")
        self.size = seconds
        self._epoch = [0] * seconds
        self._calls = [0] * seconds
        self._failed = [0] * seconds
        self._slow = [0] * seconds
        self._head = 0
        self._epoch[0] = math.floor(now)
        self._t_calls = self._t_failed = self._t_slow = 0

    def _move(self, now: float) -> None:
        current = math.floor(now)
        behind = current - self._epoch[self._head]
        if behind <= 0:
            return
        steps = min(behind, self.size)
        while steps > 0:
            steps -= 1
            h = self._head = (self._head + 1) % self.size
            self._t_calls -= self._calls[h]
            self._t_failed -= self._failed[h]
            self._t_slow -= self._slow[h]
            self._calls[h] = self._failed[h] = self._slow[h] = 0
            self._epoch[h] = current - steps

    def record(self, failed: bool, slow: bool, now: float) -> WindowSnapshot:
        self._move(now)
        h = self._head
        self._calls[h] += 1
        self._failed[h] += failed
        self._slow[h] += slow
        self._t_calls += 1
        self._t_failed += failed
        self._t_slow += slow
        return WindowSnapshot(self._t_calls, self._t_failed, self._t_slow)

    def snapshot(self, now: float) -> WindowSnapshot:
        self._move(now)
        return WindowSnapshot(self._t_calls, self._t_failed, self._t_slow)
