"""Bulkhead: the N+1th concurrent call is refused and a hung backend holds at most N threads."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from adapters.errors import BackendTimeout, BulkheadFull
from adapters.resilience import BreakerConfig, Bulkhead, Pipeline, ResilienceConfig
from tests.unit.resilience.fakes import Hung

N = 4


def config(**overrides) -> ResilienceConfig:
    cfg = {"bulkhead_size": N, "attempt_timeout": 2.0, "total_deadline": 5.0,
           "breaker": BreakerConfig(minimum_number_of_calls=1000)}
    cfg.update(overrides)
    return ResilienceConfig(**cfg)


def test_the_n_plus_first_concurrent_call_is_refused_at_once() -> None:
    p = Pipeline("soap", config())
    backend = Hung()
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(p.call(backend, idempotent=False, operation="Get")))
               for _ in range(N)]
    for t in threads:
        t.start()
    for _ in range(N):
        assert backend.entered.acquire(timeout=5)
    assert p.snapshot()["in_flight"] == N
    start = time.monotonic()
    with pytest.raises(BulkheadFull) as info:
        p.call(backend, idempotent=True, operation="Get")
    assert time.monotonic() - start < 0.1  # refused, not queued
    assert (info.value.backend, info.value.operation) == ("soap", "Get")
    assert backend.calls == N
    backend.release.set()
    for t in threads:
        t.join(timeout=5)
    assert results == ["ok"] * N
    snap = p.snapshot()
    assert (snap["in_flight"], snap["bulkhead_rejected"]) == (0, 1)
    assert p.breaker.metrics().buffered_calls == N  # the refusal was not recorded by the breaker


def test_a_short_max_wait_admits_when_a_slot_frees_in_time() -> None:
    b = Bulkhead("soap", 1, max_wait=1.0)
    b.enter()
    threading.Timer(0.05, b.exit).start()
    start = time.monotonic()
    b.enter()
    assert 0.03 < time.monotonic() - start < 0.5
    with pytest.raises(BulkheadFull):
        b.enter(timeout=0.05)  # the caller's time left is shorter than max_wait
    b.exit()
    assert (b.in_flight, b.rejected, b.peak) == (0, 1, 1)


def test_a_hung_backend_holds_at_most_n_threads_for_async_callers() -> None:
    p = Pipeline("soap", config(attempt_timeout=0.5, total_deadline=0.6))
    backend = Hung()
    outcomes: list[str] = []
    threads_during: list[int] = []

    async def caller() -> None:
        try:
            await p.call_async(backend, idempotent=False, operation="Get")
        except BulkheadFull:
            outcomes.append("refused")
        except BackendTimeout:
            outcomes.append("timed out")

    async def main() -> None:
        baseline = threading.active_count()
        async with anyio.create_task_group() as tg:
            for _ in range(5 * N):
                tg.start_soon(caller)
            await anyio.sleep(0.2)
            threads_during.append(threading.active_count() - baseline)
            assert p.snapshot()["in_flight"] == N

    anyio.run(main)
    assert backend.max_concurrent == N
    assert threads_during[0] <= N
    assert sorted(outcomes) == ["refused"] * (4 * N) + ["timed out"] * N
    assert p.snapshot()["bulkhead_rejected"] == 4 * N
    assert p.snapshot()["in_flight"] == 0


def test_async_calls_run_in_a_worker_thread_on_the_backends_limiter() -> None:
    p = Pipeline("soap", config())
    where: list[threading.Thread] = []

    def fn(*, timeout: float) -> str:
        where.append(threading.current_thread())
        return "ok"

    async def main() -> str:
        return await p.call_async(fn, idempotent=True, operation="Get")

    assert anyio.run(main) == "ok"
    assert where[0] is not threading.main_thread()
    assert p.bulkhead.limiter.total_tokens == N
