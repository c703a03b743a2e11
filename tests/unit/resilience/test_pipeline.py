"""The composed pipeline: order of the policies, snapshot and the per-backend registry."""

from __future__ import annotations

import random

import anyio
import pytest

from adapters.errors import BackendUnavailable, BulkheadFull, CircuitOpen, RecordNotFound, Rejected
from adapters.resilience import (
    BreakerConfig,
    Bulkhead,
    ManualClock,
    Pipeline,
    ResilienceConfig,
    ResilienceRegistry,
    State,
)
from tests.unit.resilience.fakes import Scripted

SMALL_BREAKER = BreakerConfig(sliding_window_size=2, minimum_number_of_calls=2, wait_duration_in_open=5.0,
                              permitted_calls_in_half_open=1)


def make(clock: ManualClock, **overrides) -> Pipeline:
    cfg = {"breaker": SMALL_BREAKER, "bulkhead_size": 2, "max_attempts": 1}
    cfg.update(overrides)
    return Pipeline("soap", ResilienceConfig(**cfg), operation_class="read", clock=clock, rng=random.Random(1))


def test_an_open_breaker_refuses_before_the_bulkhead_and_the_call() -> None:
    clock = ManualClock()
    p = make(clock)
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            p.call(Scripted([BackendUnavailable()]), idempotent=True, operation="GetBalance")
    fake = Scripted(["never"])
    with pytest.raises(CircuitOpen) as info:
        p.call(fake, idempotent=True, operation="GetBalance")
    assert fake.calls == 0 and p.bulkhead.peak == 1 and p.bulkhead.rejected == 0
    assert (info.value.backend, info.value.operation) == ("soap", "GetBalance")
    assert info.value.retry_after == pytest.approx(5.0)
    snap = p.snapshot()
    assert (snap["breaker_state"], snap["failure_rate"], snap["not_permitted_calls"]) == ("open", 100.0, 1)


def test_a_bulkhead_refusal_hands_the_half_open_permit_back() -> None:
    clock = ManualClock()
    p = make(clock, bulkhead_size=1)
    p.breaker.transition_to_half_open()  # one trial permit
    p.bulkhead.enter()  # someone else holds the only slot
    with pytest.raises(BulkheadFull):
        p.call(Scripted(["ok"]), idempotent=True, operation="GetBalance")
    p.bulkhead.exit()
    assert p.call(Scripted(["ok"]), idempotent=True, operation="GetBalance") == "ok"  # the permit came back
    assert p.breaker.state is State.CLOSED


def test_business_outcomes_neither_trip_the_breaker_nor_drain_the_budget() -> None:
    clock = ManualClock()
    p = make(clock, max_attempts=3)
    for err in [Rejected(reason_code="51")] * 5 + [RecordNotFound()] * 5:
        with pytest.raises(type(err)):
            p.call(Scripted([err]), idempotent=True, operation="PostTransfer")
    snap = p.snapshot()
    assert snap["breaker_state"] == "closed" and snap["buffered_calls"] == 0
    assert snap["budget_tokens"] == 10.0 and snap["retries"] == 0


def test_snapshot_has_what_metrics_and_readiness_need() -> None:
    p = make(ManualClock())
    p.call(Scripted(["ok"]), idempotent=True, operation="GetBalance")
    snap = p.snapshot()
    assert snap == {
        "backend": "soap", "operation_class": "read", "breaker_state": "closed",
        "failure_rate": -1.0, "slow_call_rate": -1.0,  # 1 buffered call < minimum of 2: not evaluated
        "buffered_calls": 1, "not_permitted_calls": 0, "calls": 1, "attempts": 1,
        "retries": 0, "budget_tokens": 10.0, "retries_denied_by_budget": 0, "in_flight": 0,
        "bulkhead_rejected": 0, "bulkhead_size": 2,
    }


def test_async_call_goes_through_the_same_policies() -> None:
    clock = ManualClock()
    p = make(clock, max_attempts=3)
    fake = Scripted([BackendUnavailable(), "ok"])

    async def main() -> str:
        return await p.call_async(fake, idempotent=True, operation="GetBalance")

    assert anyio.run(main) == "ok"
    snap = p.snapshot()
    assert (snap["attempts"], snap["retries"], snap["in_flight"]) == (2, 1, 0)


def test_registry_shares_bulkhead_and_budget_per_backend_not_the_breaker() -> None:
    reg = ResilienceRegistry(clock=ManualClock(), rng=random.Random(2))
    cfg = ResilienceConfig(breaker=SMALL_BREAKER, bulkhead_size=3)
    read = reg.pipeline("soap", "read", cfg)
    write = reg.pipeline("soap", "write", cfg)
    other = reg.pipeline("odbc", "read", cfg)
    assert reg.pipeline("soap", "read", cfg) is read
    assert read.bulkhead is write.bulkhead and read.budget is write.budget
    assert read.breaker is not write.breaker and other.bulkhead is not read.bulkhead
    assert isinstance(read.bulkhead, Bulkhead) and read.bulkhead.limiter.total_tokens == 3
    with pytest.raises(ValueError, match="bulkhead_size"):
        reg.pipeline("soap", "batch", ResilienceConfig(breaker=SMALL_BREAKER, bulkhead_size=4))
    with pytest.raises(ValueError):
        reg.pipeline("soap", "read", ResilienceConfig())
    write.breaker.transition_to_forced_open()
    assert reg.readiness() == {"soap": False, "odbc": True}
    assert [(r["backend"], r["operation_class"]) for r in reg.snapshot()] == [
        ("soap", "read"), ("soap", "write"), ("odbc", "read")]


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        ResilienceConfig(attempt_timeout=0)
    with pytest.raises(ValueError):
        Pipeline("soap", ResilienceConfig(max_attempts=0))
