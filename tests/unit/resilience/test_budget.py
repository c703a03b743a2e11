"""Retry budget: during a total outage retries stay <= 10% of first attempts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.errors import BackendUnavailable, CircuitOpen
from adapters.resilience import BreakerConfig, ManualClock, Pipeline, ResilienceConfig, RetryBudget
from tests.unit.resilience.fakes import AlwaysFailing, Scripted

CALLS = 1_000


def outage_pipeline(breaker: BreakerConfig | None) -> tuple[Pipeline, ManualClock]:
    clock = ManualClock()
    cfg = ResilienceConfig(max_attempts=3, backoff_base=0.05, backoff_cap=1.0, attempt_timeout=1.0,
                           budget_max_tokens=10.0, budget_token_ratio=0.1,
                           breaker=breaker or BreakerConfig())
    p = Pipeline("soap", cfg, clock=clock, rng=random.Random(3))
    if breaker is None:
        p.breaker.transition_to_disabled()  # the budget alone must hold the line
    return p, clock


@pytest.mark.parametrize("with_breaker", [False, True], ids=["budget-only", "full-pipeline"])
def test_retries_stay_under_ten_percent_of_first_attempts_during_a_total_outage(with_breaker: bool) -> None:
    breaker = BreakerConfig(sliding_window_type="time", window_seconds=10, minimum_number_of_calls=20,
                            wait_duration_in_open=2.0, permitted_calls_in_half_open=2) if with_breaker else None
    p, clock = outage_pipeline(breaker)
    backend = AlwaysFailing()
    for _ in range(CALLS):
        with pytest.raises((BackendUnavailable, CircuitOpen)):
            p.call(backend, idempotent=True, operation="GetBalance")
        clock.advance(0.1)  # 10 calls a second for 100 seconds
    snap = p.snapshot()
    first_attempts = snap["calls"]
    retries = snap["retries"]
    assert first_attempts == CALLS
    assert retries <= 0.10 * first_attempts, snap
    assert backend.calls <= first_attempts + retries
    assert snap["budget_tokens"] <= 5.0
    if not with_breaker:
        assert backend.calls == CALLS + retries  # every first attempt reached the backend


def test_budget_refills_with_successes_and_allows_retries_again() -> None:
    p, _ = outage_pipeline(None)
    for _ in range(20):
        with pytest.raises(BackendUnavailable):
            p.call(AlwaysFailing(), idempotent=True, operation="GetBalance")
    assert p.budget.tokens == 0.0
    for _ in range(70):  # 70 * 0.1 tokens
        p.call(Scripted(["ok"]), idempotent=True, operation="GetBalance")
    assert p.budget.tokens == pytest.approx(7.0)
    retries_before = p.snapshot()["retries"]
    assert p.call(Scripted([BackendUnavailable(), "ok"]), idempotent=True, operation="GetBalance") == "ok"
    assert p.snapshot()["retries"] == retries_before + 1  # the failure took 7 -> 6 tokens: still > 5


def test_token_bucket_is_grpc_retry_throttling() -> None:
    b = RetryBudget(max_tokens=10, token_ratio=0.1)
    assert b.allow_retry()
    for _ in range(5):
        b.on_failure()
    assert b.tokens == 5.0 and not b.allow_retry()  # needs tokens > max/2
    b.on_success()
    assert b.allow_retry()
    for _ in range(1000):
        b.on_success()
    assert b.tokens == 10.0
    for _ in range(1000):
        b.on_failure()
    assert b.tokens == 0.0


@given(st.lists(st.booleans(), max_size=300))
def test_tokens_stay_within_bounds_and_exact(outcomes: list[bool]) -> None:
    b = RetryBudget(max_tokens=10, token_ratio=0.1)
    milli = 10_000
    for ok in outcomes:
        if ok:
            b.on_success()
            milli = min(10_000, milli + 100)
        else:
            b.on_failure()
            milli = max(0, milli - 1000)
        assert b.tokens == milli / 1000
        assert b.allow_retry() == (milli > 5_000)
