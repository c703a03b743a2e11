"""Deadlines on the real clock: no call outlives its deadline by more than 50 ms."""

from __future__ import annotations

import random
import threading
import time

import anyio
import pytest

from adapters.errors import BackendTimeout, DeadlineExceeded
from adapters.resilience import BreakerConfig, Deadline, ManualClock, MonotonicClock, Pipeline, ResilienceConfig
from tests.unit.resilience.fakes import Scripted, Slow

TOLERANCE = 0.050
CONCURRENT = 10


def config(total: float) -> ResilienceConfig:
    return ResilienceConfig(attempt_timeout=0.2, total_deadline=total, max_attempts=5, backoff_base=0.02,
                            backoff_cap=0.08, budget_max_tokens=1000.0, bulkhead_size=CONCURRENT,
                            breaker=BreakerConfig(minimum_number_of_calls=1000))


@pytest.mark.parametrize("total", [0.5, 0.35])
def test_sync_calls_end_within_50ms_of_their_deadline(total: float) -> None:
    p = Pipeline("soap", config(total))
    backend = Slow(latency=0.5)
    overruns: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        start = time.monotonic()
        with pytest.raises(BackendTimeout):
            p.call(backend, idempotent=True, operation="GetBalance")
        with lock:
            overruns.append(time.monotonic() - (start + total))

    threads = [threading.Thread(target=caller) for _ in range(CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overruns) == CONCURRENT
    assert max(overruns) <= TOLERANCE, overruns
    assert backend.calls >= 2 * CONCURRENT  # retried within the deadline
    assert max(backend.timeouts) <= 0.2
    assert min(backend.timeouts) > 0


def test_async_calls_end_within_50ms_of_their_deadline() -> None:
    total = 0.5
    p = Pipeline("soap", config(total))
    backend = Slow(latency=0.5)
    overruns: list[float] = []

    async def caller() -> None:
        start = time.monotonic()
        with pytest.raises(BackendTimeout):
            await p.call_async(backend, idempotent=True, operation="GetBalance")
        overruns.append(time.monotonic() - (start + total))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(CONCURRENT):
                tg.start_soon(caller)

    anyio.run(main)
    assert len(overruns) == CONCURRENT
    assert max(overruns) <= TOLERANCE, overruns


def test_caller_deadline_is_honoured_and_capped_by_total_deadline() -> None:
    clock = MonotonicClock()
    p = Pipeline("soap", config(0.5), clock=clock)
    seen: list[float] = []
    start = time.monotonic()
    p.call(Scripted([lambda t: seen.append(t)]), idempotent=True, operation="GetBalance",
           deadline=Deadline.after(0.1, clock))
    p.call(Scripted([lambda t: seen.append(t)]), idempotent=True, operation="GetBalance",
           deadline=clock.now() + 60.0)  # later than total_deadline: capped
    assert seen[0] <= 0.1 and seen[1] <= 0.2
    assert time.monotonic() - start < 0.1


def test_no_attempt_starts_after_the_deadline() -> None:
    clock = ManualClock()
    p = Pipeline("soap", config(0.5), clock=clock)
    fake = Scripted(["never"])
    with pytest.raises(DeadlineExceeded) as info:
        p.call(fake, idempotent=True, operation="GetBalance", deadline=clock.now())
    assert fake.calls == 0
    assert (info.value.backend, info.value.operation) == ("soap", "GetBalance")


def test_each_attempt_gets_at_most_the_time_left() -> None:
    clock = ManualClock()
    p = Pipeline("soap", config(1.0), clock=clock, rng=random.Random(0))
    seen: list[float] = []

    def slow_then_ok(timeout: float) -> str:
        seen.append(timeout)
        clock.advance(timeout)
        if len(seen) < 3:
            raise BackendTimeout()
        return "ok"

    # two 0.2 s attempts and two backoffs of at most 0.02 + 0.04 s leave 0.04..0.1 s for the third
    start = clock.now()
    assert p.call(Scripted([slow_then_ok]), idempotent=True, operation="GetBalance",
                  deadline=Deadline.after(0.5, clock)) == "ok"
    assert seen[:2] == [pytest.approx(0.2)] * 2
    assert 0.01 <= seen[2] <= 0.1  # the last attempt only got what was left
    assert clock.now() - start == pytest.approx(0.5)
