"""The resilience pipeline: every policy composed in one place, around one adapter call.

Order, outermost first (as in the architecture guide)::

    deadline -> retry (tenacity, full jitter, retry budget) -> circuit breaker -> bulkhead
             -> per-attempt timeout -> fn(timeout=...)

* The **deadline** is fixed once per call (the caller's, capped at ``total_deadline``); no attempt
  starts after it.
* **Retry** wraps whole attempts: each attempt asks the breaker again, so a breaker that opened
  meanwhile ends the retries (``CircuitOpen`` is not retryable).
* The **breaker** sits outside the **bulkhead** so an open breaker refuses before taking a slot; a
  bulkhead refusal hands the breaker permit back as *ignored* (local overload says nothing about
  the core's health).
* The **per-attempt timeout** ``min(attempt_timeout, time left)`` is passed to ``fn`` as
  ``timeout=``: a thread cannot be cancelled, so the adapter must use it as its library timeout.

Business code calls :meth:`Pipeline.call` (sync), :meth:`Pipeline.call_async` (runs ``fn`` in a
worker thread on the backend's limiter) or :meth:`Pipeline.call_coro` (``fn`` is a coroutine function
of an event-loop adapter: awaited in the slot, no thread) and carries no retry logic of its own.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import RetryCallState

from adapters.errors import CircuitOpen, CoreError, DeadlineExceeded, RecordNotFound, Rejected
from adapters.resilience.breaker import BreakerConfig, CircuitBreaker, Outcome, Permit
from adapters.resilience.budget import RetryBudget
from adapters.resilience.bulkhead import Bulkhead
from adapters.resilience.clock import Clock, MonotonicClock
from adapters.resilience.deadline import Deadline
from adapters.resilience.retry import RetryPolicy

__all__ = ["Pipeline", "ResilienceConfig"]

T = TypeVar("T")


def _default_breaker() -> BreakerConfig:
    return BreakerConfig(
        failure_rate_threshold=50.0,
        slow_call_rate_threshold=80.0,
        slow_call_duration=2.0,
        sliding_window_type="time",
        window_seconds=30,
        minimum_number_of_calls=10,
        wait_duration_in_open=10.0,
        permitted_calls_in_half_open=3,
    )


@dataclass(frozen=True, slots=True)
class ResilienceConfig:
    """Settings for one backend and operation class; durations in seconds."""

    attempt_timeout: float = 5.0
    total_deadline: float = 15.0
    max_attempts: int = 3
    backoff_base: float = 0.1
    backoff_cap: float = 2.0
    min_attempt_timeout: float = 0.01  # do not start an attempt with less time than this left
    budget_max_tokens: float = 10.0
    budget_token_ratio: float = 0.1
    bulkhead_size: int = 10
    bulkhead_max_wait: float = 0.0
    breaker: BreakerConfig = field(default_factory=_default_breaker)

    def __post_init__(self) -> None:
        if self.attempt_timeout <= 0 or self.total_deadline <= 0:
            raise ValueError("attempt_timeout and total_deadline must be > 0")
        if self.min_attempt_timeout < 0:
            raise ValueError("min_attempt_timeout must be >= 0")


class Pipeline:
    """The policies for one backend and operation class (the bulkhead and budget may be shared by
    all operation classes of a backend: pass them in, see :class:`~adapters.resilience.state.ResilienceRegistry`)."""

    def __init__(
        self,
        backend: str,
        config: ResilienceConfig | None = None,
        *,
        operation_class: str = "default",
        clock: Clock | None = None,
        rng: random.Random | None = None,
        breaker: CircuitBreaker | None = None,
        bulkhead: Bulkhead | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.backend = backend
        self.operation_class = operation_class
        self.config = cfg = config or ResilienceConfig()
        self.clock = clock or MonotonicClock()
        self.breaker = breaker or CircuitBreaker(f"{backend}/{operation_class}", cfg.breaker, clock=self.clock)
        self.bulkhead = bulkhead or Bulkhead(backend, cfg.bulkhead_size, max_wait=cfg.bulkhead_max_wait)
        self.budget = budget or RetryBudget(cfg.budget_max_tokens, cfg.budget_token_ratio)
        self.retry = RetryPolicy(
            max_attempts=cfg.max_attempts,
            backoff_base=cfg.backoff_base,
            backoff_cap=cfg.backoff_cap,
            budget=self.budget,
            min_attempt_timeout=cfg.min_attempt_timeout,
            rng=rng,
        )
        self._counter_lock = threading.Lock()
        self._calls = 0
        self._attempts = 0
        self._retries = 0

    # -- public API -------------------------------------------------------------------------------

    def deadline_for(self, deadline: Deadline | float | None) -> Deadline:
        """The call's deadline: the caller's (a :class:`Deadline` or an absolute time on this
        pipeline's clock), never later than ``total_deadline`` from now."""
        own = Deadline.after(self.config.total_deadline, self.clock)
        if deadline is None:
            return own
        if not isinstance(deadline, Deadline):
            deadline = Deadline(float(deadline), self.clock)
        return own.earliest(deadline)

    def call(self, fn: Callable[..., T], *, idempotent: bool, operation: str,
             deadline: Deadline | float | None = None) -> T:
        """Call ``fn(timeout=seconds)`` in this thread under every policy; returns its result or raises
        a :class:`~adapters.errors.CoreError` (the last attempt's error when retries stop)."""
        dl = self.deadline_for(deadline)
        self._count_call()
        retrying = self.retry.retrying(idempotent=idempotent, deadline=dl, clock=self.clock,
                                       before_sleep=self._count_retry)
        return retrying(self._attempt, fn, dl, operation)

    async def call_async(self, fn: Callable[..., T], *, idempotent: bool, operation: str,
                         deadline: Deadline | float | None = None) -> T:
        """As :meth:`call`, but ``fn`` runs in a worker thread on the backend's ``CapacityLimiter`` and
        backoff sleeps don't block the event loop."""
        dl = self.deadline_for(deadline)
        self._count_call()
        retrying = self.retry.async_retrying(idempotent=idempotent, deadline=dl, clock=self.clock,
                                             before_sleep=self._count_retry)
        return await retrying(self._attempt_async, fn, dl, operation)

    async def call_coro(self, fn: Callable[..., Awaitable[T]], *, idempotent: bool, operation: str,
                        deadline: Deadline | float | None = None) -> T:
        """As :meth:`call` for a coroutine function ``fn(timeout=...)``, awaited on the event loop under the
        same policies (the retry decisions of :meth:`RetryPolicy.next_sleep`, tenacity's order)."""
        dl = self.deadline_for(deadline)
        self._count_call()
        attempt = 1
        while True:
            try:
                return await self._attempt_coro(fn, dl, operation)
            except Exception as exc:  # noqa: BLE001 - re-raised below unless the policy retries it
                sleep = self.retry.next_sleep(exc, attempt, idempotent=idempotent, deadline=dl)
                if sleep is None:
                    raise
            self._count_retry(None)
            await self.clock.sleep_async(sleep)
            attempt += 1

    def snapshot(self) -> dict[str, Any]:
        """This pipeline's state for metrics and readiness (plain values, JSON-ready)."""
        m = self.breaker.metrics()
        return {
            "backend": self.backend,
            "operation_class": self.operation_class,
            "breaker_state": m.state.value,
            "failure_rate": m.failure_rate,
            "slow_call_rate": m.slow_call_rate,
            "buffered_calls": m.buffered_calls,
            "not_permitted_calls": m.not_permitted_total,
            "calls": self._calls,
            "attempts": self._attempts,
            "retries": self._retries,
            "budget_tokens": self.budget.tokens,
            "retries_denied_by_budget": self.budget.denied,
            "in_flight": self.bulkhead.in_flight,
            "bulkhead_rejected": self.bulkhead.rejected,
            "bulkhead_size": self.bulkhead.max_concurrent,
        }

    # -- one attempt ------------------------------------------------------------------------------

    def _attempt(self, fn: Callable[..., T], deadline: Deadline, operation: str) -> T:
        permit = self._admit(deadline, operation)
        try:
            self.bulkhead.enter(deadline.remaining(), operation=operation)
        except BaseException:
            permit.ignore()
            raise
        try:
            timeout = self._attempt_timeout(permit, deadline, operation)
            start = self.clock.now()
            try:
                result = fn(timeout=timeout)
            except BaseException as exc:
                self._failed(permit, exc, self.clock.now() - start, operation)
                raise
            self._succeeded(permit, self.clock.now() - start)
            return result
        finally:
            self.bulkhead.exit()

    async def _attempt_async(self, fn: Callable[..., T], deadline: Deadline, operation: str) -> T:
        """A blocking ``fn`` run in the bulkhead's thread, admitted like a coroutine attempt."""
        def in_thread(*, timeout: float) -> Awaitable[T]:
            return self.bulkhead.run_admitted(functools.partial(fn, timeout=timeout))

        return await self._attempt_coro(in_thread, deadline, operation)

    async def _attempt_coro(self, fn: Callable[..., Awaitable[T]], deadline: Deadline, operation: str) -> T:
        permit = self._admit(deadline, operation)
        try:
            await self.bulkhead.enter_async(deadline.remaining(), operation=operation)
        except BaseException:
            permit.ignore()
            raise
        try:
            timeout = self._attempt_timeout(permit, deadline, operation)
            start = self.clock.now()
            try:
                result = await fn(timeout=timeout)
            except BaseException as exc:
                self._failed(permit, exc, self.clock.now() - start, operation)
                raise
            self._succeeded(permit, self.clock.now() - start)
            return result
        finally:
            self.bulkhead.exit()

    def _admit(self, deadline: Deadline, operation: str) -> Permit:
        with self._counter_lock:
            self._attempts += 1
        if deadline.remaining() <= 0:
            raise DeadlineExceeded(backend=self.backend, operation=operation)
        try:
            return self.breaker.acquire()
        except CircuitOpen as exc:  # named after the breaker ("backend/class"): report the backend
            exc.backend = self.backend
            exc.operation = operation
            raise

    def _attempt_timeout(self, permit: Permit, deadline: Deadline, operation: str) -> float:
        timeout = deadline.timeout_for_attempt(self.config.attempt_timeout)
        if timeout <= 0:  # the deadline passed while waiting for a bulkhead slot
            permit.ignore()
            raise DeadlineExceeded(backend=self.backend, operation=operation)
        return timeout

    def _succeeded(self, permit: Permit, duration: float) -> None:
        permit.success(duration)
        self.budget.on_success()

    def _failed(self, permit: Permit, exc: BaseException, duration: float, operation: str) -> None:
        outcome = permit.record_exception(exc, duration)
        if outcome is Outcome.FAILURE:
            self.budget.on_failure()
        elif outcome is Outcome.SUCCESS or isinstance(exc, Rejected | RecordNotFound):
            self.budget.on_success()  # the core answered
        if isinstance(exc, CoreError):
            self._stamp(exc, operation)

    def _stamp(self, exc: CoreError, operation: str) -> None:
        if exc.backend is None:
            exc.backend = self.backend
        if exc.operation is None:
            exc.operation = operation

    # -- counters ---------------------------------------------------------------------------------

    def _count_call(self) -> None:
        with self._counter_lock:
            self._calls += 1

    def _count_retry(self, retry_state: RetryCallState | None) -> None:
        with self._counter_lock:
            self._retries += 1
