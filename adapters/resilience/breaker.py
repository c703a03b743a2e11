"""A circuit breaker with Resilience4j's semantics, plus generation checks.

Why our own: no maintained Python library has these semantics. pybreaker and circuitbreaker count
consecutive failures only: no failure *rate* over a sliding window (count- or time-based), no
slow-call rate, no minimum number of calls, no fixed number of half-open permits acquired
atomically, no "ignored" outcome for business rejections, and no protection against a result that
arrives after the breaker moved on. The state machine below follows Resilience4j's
``CircuitBreakerStateMachine``:

* **CLOSED**: every call is permitted; outcomes go into the sliding window. Once the window holds
  at least ``minimum_number_of_calls`` (for a count window: at most its size), a failure rate or a
  slow-call rate ``>=`` its threshold opens the breaker.
* **OPEN**: calls are refused with :class:`~adapters.errors.CircuitOpen` (``retry_after`` = time
  left). The first ``acquire`` *after* ``wait_duration_in_open`` has passed moves to HALF_OPEN.
* **HALF_OPEN**: exactly ``permitted_calls_in_half_open`` permits exist; taking one is atomic under
  the lock, so no more trial calls reach the core whatever the concurrency. When that many
  outcomes have been recorded the half-open window is evaluated: a rate ``>=`` its threshold
  opens the breaker again, otherwise it closes (with a fresh window).
* **DISABLED** permits everything and records nothing; **FORCED_OPEN** refuses everything. Both
  are left only by a manual transition.

Outcomes: *success*, *failure* (an exception of ``record_exceptions`` that is not in
``ignore_exceptions``; with Resilience4j's default every exception is recorded) and *ignored*
(``Rejected``, ``RecordNotFound`` and the locally raised refusals): an ignored outcome counts
neither way; in HALF_OPEN it hands its permit back. A call is *slow* when its duration is strictly
greater than ``slow_call_duration``; a slow call may also be a failure.

**Generations** (our addition; Resilience4j records late results into whatever state is current):
every transition increments a generation counter and each :class:`Permit` remembers the
generation it was issued in. A result reported through a permit from an earlier generation is
dropped (counted in ``metrics().stale_results``): a slow call admitted while CLOSED can neither
trip an already-open breaker nor cast a vote in a later half-open trial, and a half-open trial
from a previous period cannot close the breaker twice.

Thread-safe: one ``threading.Lock`` guards the state; the refusal path while OPEN is a lock, a
clock read, a comparison and raising an exception. State-change listeners run after that lock is
released (so they may read the breaker), one transition at a time and in order; they should be
quick and must not wait for other callers of the same breaker.

``CircuitOpen.retry_after`` is the time left in OPEN; when it is unknown (HALF_OPEN with all trial
permits taken, FORCED_OPEN) it is ``wait_duration_in_open``, a conservative hint.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, TypeVar

from adapters.errors import (
    BulkheadFull,
    CircuitOpen,
    ContractViolation,
    DeadlineExceeded,
    RecordNotFound,
    Rejected,
)
from adapters.resilience.clock import Clock, MonotonicClock
from adapters.resilience.window import CountWindow, SlidingWindow, TimeWindow, WindowSnapshot

__all__ = [
    "BreakerConfig",
    "BreakerMetrics",
    "CircuitBreaker",
    "Outcome",
    "Permit",
    "State",
    "StateTransition",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_IGNORED: tuple[type[BaseException], ...] = (
    Rejected,
    RecordNotFound,
    ContractViolation,
    CircuitOpen,
    BulkheadFull,
    DeadlineExceeded,
)


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    DISABLED = "disabled"
    FORCED_OPEN = "forced_open"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Resilience4j's parameters (defaults are Resilience4j's defaults), durations in seconds."""

    failure_rate_threshold: float = 50.0
    slow_call_rate_threshold: float = 100.0
    slow_call_duration: float = 60.0
    sliding_window_type: Literal["count", "time"] = "count"
    sliding_window_size: int = 100  # calls, for a count-based window
    window_seconds: int = 60  # seconds, for a time-based window
    minimum_number_of_calls: int = 100
    wait_duration_in_open: float = 60.0
    permitted_calls_in_half_open: int = 10
    record_exceptions: tuple[type[BaseException], ...] = (Exception,)
    ignore_exceptions: tuple[type[BaseException], ...] = field(default=DEFAULT_IGNORED)

    def __post_init__(self) -> None:
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            value = getattr(self, name)
            if not 0 < value <= 100:
                raise ValueError(f"{name} must be in (0, 100], got {value}")
        if self.sliding_window_type not in ("count", "time"):
            raise ValueError(f"sliding_window_type must be 'count' or 'time', got {self.sliding_window_type!r}")
        for name in ("sliding_window_size", "window_seconds", "minimum_number_of_calls",
                     "permitted_calls_in_half_open"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.slow_call_duration <= 0 or self.wait_duration_in_open < 0:
            raise ValueError("slow_call_duration must be > 0 and wait_duration_in_open >= 0")

    @property
    def effective_minimum_calls(self) -> int:
        """Resilience4j caps the minimum at the size of a count-based window."""
        if self.sliding_window_type == "count":
            return min(self.minimum_number_of_calls, self.sliding_window_size)
        return self.minimum_number_of_calls

    def classify(self, exc: BaseException) -> Outcome:
        """Ignored wins over recorded; an exception in neither list counts as a success."""
        if isinstance(exc, self.ignore_exceptions) or not isinstance(exc, Exception):
            return Outcome.IGNORED  # business outcomes, local refusals, cancellation, KeyboardInterrupt
        if isinstance(exc, self.record_exceptions):
            return Outcome.FAILURE
        return Outcome.SUCCESS


@dataclass(frozen=True, slots=True)
class StateTransition:
    name: str
    from_state: State
    to_state: State
    generation: int
    at: float


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """``failure_rate`` / ``slow_call_rate`` are -1.0 while fewer than the minimum calls are buffered
    (as Resilience4j reports them). ``not_permitted_calls`` counts refusals since the current
    metrics began (carried from CLOSED/HALF_OPEN into OPEN, as in Resilience4j); the ``*_total``
    counters never reset."""

    state: State
    generation: int
    failure_rate: float
    slow_call_rate: float
    buffered_calls: int
    failed_calls: int
    slow_calls: int
    not_permitted_calls: int
    not_permitted_total: int
    stale_results: int
    half_open_permits_left: int


class Permit:
    """The right to make one call; report its outcome exactly once."""

    __slots__ = ("_breaker", "generation", "_done")

    def __init__(self, breaker: CircuitBreaker, generation: int) -> None:
        self._breaker = breaker
        self.generation = generation
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def _finish(self) -> None:
        if self._done:
            raise RuntimeError("this permit's outcome was already reported")
        self._done = True

    def success(self, duration: float) -> None:
        self._finish()
        self._breaker._complete(self.generation, Outcome.SUCCESS, duration)

    def failure(self, duration: float) -> None:
        self._finish()
        self._breaker._complete(self.generation, Outcome.FAILURE, duration)

    def ignore(self) -> None:
        self._finish()
        self._breaker._complete(self.generation, Outcome.IGNORED, 0.0)

    def record(self, outcome: Outcome, duration: float) -> None:
        self._finish()
        self._breaker._complete(self.generation, outcome, duration)

    def record_exception(self, exc: BaseException, duration: float) -> Outcome:
        outcome = self._breaker.config.classify(exc)
        self.record(outcome, duration)
        return outcome


Listener = Callable[[StateTransition], None]


class CircuitBreaker:
    def __init__(self, name: str, config: BreakerConfig | None = None, *, clock: Clock | None = None) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self._clock = clock or MonotonicClock()
        self._now = self._clock.now
        self._lock = threading.Lock()
        self._listeners: tuple[Listener, ...] = ()
        self._pending: deque[StateTransition] = deque()  # transitions not yet handed to listeners
        self._dispatching = threading.RLock()
        self._generation = 0
        self._state = State.CLOSED
        self._window: SlidingWindow = self._closed_window()
        self._min_calls = self.config.effective_minimum_calls
        self._open_until = 0.0
        self._half_open_left = 0
        self._not_permitted = 0
        self._not_permitted_total = 0
        self._stale = 0

    # -- reading ----------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def generation(self) -> int:
        return self._generation

    def metrics(self) -> BreakerMetrics:
        with self._lock:
            snap: WindowSnapshot = self._window.snapshot(self._now())
            evaluated = snap.calls >= self._min_calls
            return BreakerMetrics(
                state=self._state,
                generation=self._generation,
                failure_rate=snap.failure_rate if evaluated else -1.0,
                slow_call_rate=snap.slow_call_rate if evaluated else -1.0,
                buffered_calls=snap.calls,
                failed_calls=snap.failed,
                slow_calls=snap.slow,
                not_permitted_calls=self._not_permitted,
                not_permitted_total=self._not_permitted_total,
                stale_results=self._stale,
                half_open_permits_left=self._half_open_left if self._state is State.HALF_OPEN else 0,
            )

    # -- the call path ----------------------------------------------------------------------------

    def acquire(self) -> Permit:
        """Take a permit or raise :class:`CircuitOpen`."""
        moved = False
        with self._lock:
            state = self._state
            if state is State.CLOSED or state is State.DISABLED:
                return Permit(self, self._generation)
            if state is State.OPEN:
                now = self._now()
                if now <= self._open_until:  # Resilience4j: leave OPEN only once now is *after* the wait
                    self._not_permitted += 1
                    self._not_permitted_total += 1
                    retry_after = self._open_until - now
                    raise CircuitOpen(retry_after=retry_after, backend=self.name)
                self._transition(State.HALF_OPEN, now)
                moved = True
                state = State.HALF_OPEN
            permit = None
            if state is State.HALF_OPEN and self._half_open_left > 0:
                self._half_open_left -= 1
                permit = Permit(self, self._generation)
            else:  # HALF_OPEN without permits left, or FORCED_OPEN
                self._not_permitted += 1
                self._not_permitted_total += 1
        if moved:
            self._dispatch()
        if permit is None:
            raise CircuitOpen(retry_after=self.config.wait_duration_in_open, backend=self.name)
        return permit

    def _complete(self, generation: int, outcome: Outcome, duration: float) -> None:
        moved = False
        with self._lock:
            if generation != self._generation:
                self._stale += 1
                return
            state = self._state
            if state is State.DISABLED:
                return
            if outcome is Outcome.IGNORED:
                if state is State.HALF_OPEN:
                    self._half_open_left += 1
                return
            # only CLOSED and HALF_OPEN issue permits, so those are the states left here
            cfg = self.config
            now = self._now()
            snap = self._window.record(outcome is Outcome.FAILURE, duration > cfg.slow_call_duration, now)
            if snap.calls >= self._min_calls:
                exceeded = (snap.failure_rate >= cfg.failure_rate_threshold
                            or snap.slow_call_rate >= cfg.slow_call_rate_threshold)
                if exceeded:
                    self._transition(State.OPEN, now)
                    moved = True
                elif state is State.HALF_OPEN:
                    self._transition(State.CLOSED, now)
                    moved = True
        if moved:
            self._dispatch()

    def call(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """Run ``fn`` under a permit, timing it with the breaker's clock."""
        with self.guard():
            return fn(*args, **kwargs)

    @contextmanager
    def guard(self) -> Iterator[Permit]:
        """``with breaker.guard(): ...`` acquires a permit and records the block's outcome and duration
        (unless the block reported it through the yielded permit itself)."""
        permit = self.acquire()
        start = self._now()
        try:
            yield permit
        except BaseException as exc:
            if not permit.done:
                permit.record_exception(exc, self._now() - start)
            raise
        if not permit.done:
            permit.success(self._now() - start)

    # -- transitions ------------------------------------------------------------------------------

    def _closed_window(self) -> SlidingWindow:
        if self.config.sliding_window_type == "count":
            return CountWindow(self.config.sliding_window_size)
        return TimeWindow(self.config.window_seconds, self._clock.now())

    def _transition(self, to: State, now: float) -> None:
        """Under the lock. A new generation; new metrics except when opening (Resilience4j keeps the
        metrics that tripped the breaker visible while OPEN). The event is queued for :meth:`_dispatch`."""
        frm = self._state
        self._generation += 1
        self._state = to
        if to is State.OPEN:
            self._open_until = now + self.config.wait_duration_in_open
        else:
            self._not_permitted = 0
            if to is State.HALF_OPEN:
                n = self.config.permitted_calls_in_half_open
                self._window = CountWindow(n)
                self._min_calls = n
                self._half_open_left = n
            else:
                self._window = self._closed_window()
                self._min_calls = self.config.effective_minimum_calls
        self._pending.append(StateTransition(self.name, frm, to, self._generation, now))

    def _manual(self, to: State, *, force: bool = False) -> None:
        with self._lock:
            if self._state is to and not force:
                return
            self._transition(to, self._now())
        self._dispatch()

    def transition_to_closed(self) -> None:
        self._manual(State.CLOSED)

    def transition_to_open(self) -> None:
        self._manual(State.OPEN)

    def transition_to_half_open(self) -> None:
        self._manual(State.HALF_OPEN)

    def transition_to_disabled(self) -> None:
        self._manual(State.DISABLED)

    def transition_to_forced_open(self) -> None:
        self._manual(State.FORCED_OPEN)

    def reset(self) -> None:
        """Back to a fresh CLOSED state (new window, new generation), whatever the current state."""
        self._manual(State.CLOSED, force=True)

    # -- listeners --------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(transition)`` on every state change; returns a function that removes it."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return remove

    def _dispatch(self) -> None:
        """Hand queued transitions to the listeners, outside the state lock but one at a time and in
        the order they happened (whichever thread gets here first delivers for everyone)."""
        with self._dispatching:
            while True:
                with self._lock:
                    if not self._pending:
                        return
                    event = self._pending.popleft()
                for listener in self._listeners:
                    try:
                        listener(event)
                    except Exception:
                        log.exception("circuit breaker %s: state listener failed on %s", self.name, event)
