"""Retry: only idempotent operations, only retryable errors, full-jitter backoff inside the deadline."""

from __future__ import annotations

import random

import pytest

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    BulkheadFull,
    CircuitOpen,
    ContractViolation,
    DeadlineExceeded,
    RecordNotFound,
    Rejected,
)
from adapters.resilience import BreakerConfig, FullJitter, ManualClock, Pipeline, ResilienceConfig, is_retryable
from tests.unit.resilience.fakes import Scripted

RETRYABLE = [BackendUnavailable("refused"), BackendTimeout("slow")]
NOT_RETRYABLE = [Rejected(reason_code="51"), RecordNotFound(), CircuitOpen(retry_after=1.0), ContractViolation(),
                 BackendFault("0012"), BulkheadFull(), DeadlineExceeded(), KeyError("bug")]


class RecordingClock(ManualClock):
    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


def pipeline(clock: ManualClock, **overrides) -> Pipeline:
    cfg = {"max_attempts": 4, "backoff_base": 0.1, "backoff_cap": 1.0, "attempt_timeout": 1.0,
           "total_deadline": 30.0, "breaker": BreakerConfig(minimum_number_of_calls=1000)}
    cfg.update(overrides)
    return Pipeline("soap", ResilienceConfig(**cfg), clock=clock, rng=random.Random(7))


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
def test_retryable_error_is_retried_for_an_idempotent_operation(error) -> None:
    fake = Scripted([error, "balance"])
    p = pipeline(ManualClock())
    assert p.call(fake, idempotent=True, operation="GetBalance") == "balance"
    assert fake.calls == 2
    assert p.snapshot()["retries"] == 1


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
def test_a_write_is_never_resent(error) -> None:
    fake = Scripted([error, "posted"])
    p = pipeline(ManualClock())
    with pytest.raises(type(error)):
        p.call(fake, idempotent=False, operation="PostTransfer")
    assert fake.calls == 1


@pytest.mark.parametrize("error", NOT_RETRYABLE, ids=lambda e: type(e).__name__)
def test_non_retryable_errors_are_raised_at_once(error) -> None:
    fake = Scripted([error, "balance"])
    p = pipeline(ManualClock())
    with pytest.raises(type(error)):
        p.call(fake, idempotent=True, operation="GetBalance")
    assert fake.calls == 1
    assert not is_retryable(error, idempotent=True)


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    last = BackendTimeout("third")
    fake = Scripted([BackendUnavailable("1"), BackendUnavailable("2"), last])
    p = pipeline(ManualClock(), max_attempts=3)
    with pytest.raises(BackendTimeout) as info:
        p.call(fake, idempotent=True, operation="GetBalance")
    assert info.value is last and fake.calls == 3
    assert (info.value.backend, info.value.operation) == ("soap", "GetBalance")  # stamped by the pipeline


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    clock = RecordingClock()
    p = pipeline(clock, max_attempts=8, backoff_base=0.1, backoff_cap=0.5, budget_max_tokens=100.0)
    with pytest.raises(BackendUnavailable):
        p.call(Scripted([BackendUnavailable()]), idempotent=True, operation="GetBalance")
    assert len(clock.sleeps) == 7
    for n, slept in enumerate(clock.sleeps, start=1):
        assert 0.0 <= slept <= min(0.5, 0.1 * 2 ** (n - 1))


def test_full_jitter_spreads_over_the_whole_range() -> None:
    wait = FullJitter(base=1.0, cap=8.0, rng=random.Random(1))

    class State:
        attempt_number = 4

    samples = [wait(State()) for _ in range(2000)]  # type: ignore[arg-type]
    assert 0 <= min(samples) < 0.2 and 7.8 < max(samples) <= 8.0
    assert 3.6 < sum(samples) / len(samples) < 4.4


def test_backoff_never_sleeps_past_the_deadline_and_no_attempt_starts_after_it() -> None:
    clock = RecordingClock()
    p = pipeline(clock, max_attempts=50, backoff_base=0.5, backoff_cap=4.0, total_deadline=3.0,
                 attempt_timeout=0.4, budget_max_tokens=1000.0)
    started: list[float] = []

    def fail(timeout: float) -> str:
        started.append(clock.now())
        assert timeout <= 0.4
        clock.advance(timeout)  # a library timeout: blocks for the whole timeout
        raise BackendTimeout()

    t0 = clock.now()
    with pytest.raises(BackendTimeout):
        p.call(Scripted([fail]), idempotent=True, operation="GetBalance")
    assert len(started) >= 2
    assert all(s < t0 + 3.0 for s in started)
    assert clock.now() <= t0 + 3.0 + 1e-9


def test_an_open_breaker_ends_retries() -> None:
    clock = ManualClock()
    p = pipeline(clock, max_attempts=10, budget_max_tokens=1000.0,
                 breaker=BreakerConfig(sliding_window_size=2, minimum_number_of_calls=2))
    fake = Scripted([BackendUnavailable()])
    with pytest.raises(CircuitOpen):
        p.call(fake, idempotent=True, operation="GetBalance")
    assert fake.calls == 2
