"""Deadlines: an absolute point on the monotonic clock that every attempt of a call is measured against.

A blocking call in a thread cannot be cancelled, so a deadline is enforced by *not starting* work
after it (:class:`~adapters.errors.DeadlineExceeded`) and by handing each attempt
``min(attempt_timeout, time left)`` as the library-level timeout it must use.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.resilience.clock import Clock, MonotonicClock

__all__ = ["Deadline"]


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float
    clock: Clock

    @classmethod
    def after(cls, seconds: float, clock: Clock | None = None) -> Deadline:
        clock = clock or MonotonicClock()
        return cls(clock.now() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock.now()

    def expired(self) -> bool:
        return self.clock.now() >= self.at

    def timeout_for_attempt(self, attempt_timeout: float) -> float:
        """The timeout to hand one attempt: never past the deadline (<= 0 means: do not start)."""
        return min(attempt_timeout, self.remaining())

    def earliest(self, other: Deadline | None) -> Deadline:
        return self if other is None or self.at <= other.at else other
