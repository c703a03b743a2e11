"""``Pipeline.call_coro`` (an event-loop adapter awaited in the slot) and the bulkhead's async queue.

``call_coro`` does its retries without tenacity; each scenario here runs through ``Pipeline.call``
(tenacity) and ``Pipeline.call_coro`` on twin pipelines (same seed, same manual clock start) and
must end the same way: result or error, attempts, retries, sleeps, budget, timeouts handed in.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from adapters.errors import (
    BackendTimeout,
    BackendUnavailable,
    BulkheadFull,
    CircuitOpen,
    ContractViolation,
    RecordNotFound,
)
from adapters.resilience import BreakerConfig, Bulkhead, ManualClock, Pipeline, ResilienceConfig
from adapters.resilience.bulkhead import _expire
from tests.unit.resilience.fakes import Scripted

U, T = BackendUnavailable, BackendTimeout


def twin(**overrides) -> tuple[Pipeline, ManualClock]:
    cfg = {"max_attempts": 4, "backoff_base": 0.1, "backoff_cap": 1.0, "attempt_timeout": 1.0,
           "total_deadline": 30.0, "breaker": BreakerConfig(minimum_number_of_calls=1000)}
    cfg.update(overrides)
    clock = ManualClock()
    return Pipeline("soap", ResilienceConfig(**cfg), clock=clock, rng=random.Random(7)), clock


def as_coro(fake: Scripted):
    async def fn(*, timeout: float):
        return fake(timeout=timeout)

    return fn


def outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - compared between the two paths
        return ("error", type(exc).__name__)


SCENARIOS = {
    "retried then ok": ([U(), T(), "balance"], {}, True),
    "a write is never resent": ([U(), "posted"], {}, False),
    "gives up after max attempts": ([U()], {}, True),
    "business answers are not retried": ([RecordNotFound()], {}, True),
    "contract violations are not retried": ([ContractViolation()], {}, True),
    "the deadline stops retries": ([T()], {"total_deadline": 0.35, "backoff_base": 0.2}, True),
    "the budget stops retries": ([U()], {"budget_max_tokens": 2.0, "max_attempts": 10}, True),
    "an open breaker ends retries": ([U()], {"max_attempts": 10, "breaker": BreakerConfig(
        sliding_window_size=2, minimum_number_of_calls=2, wait_duration_in_open=60.0)}, True),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_call_coro_decides_as_the_tenacity_path(name) -> None:
    script, overrides, idempotent = SCENARIOS[name]
    sync_p, sync_clock = twin(**overrides)
    coro_p, coro_clock = twin(**overrides)
    sync_fake, coro_fake = Scripted(script), Scripted(script)
    sync = outcome(lambda: sync_p.call(sync_fake, idempotent=idempotent, operation="GetBalance"))
    coro = outcome(lambda: asyncio.run(coro_p.call_coro(as_coro(coro_fake), idempotent=idempotent,
                                                        operation="GetBalance")))
    assert coro == sync
    keys = ("calls", "attempts", "retries", "budget_tokens", "retries_denied_by_budget", "breaker_state", "in_flight")
    assert {k: coro_p.snapshot()[k] for k in keys} == {k: sync_p.snapshot()[k] for k in keys}
    assert coro_clock.now() == pytest.approx(sync_clock.now())  # the same backoff sleeps
    assert coro_fake.timeouts == pytest.approx(sync_fake.timeouts)
    if name == "an open breaker ends retries":
        assert coro == ("error", CircuitOpen.__name__)


def test_the_coroutine_runs_on_the_loop_not_in_a_thread() -> None:
    p, _ = twin()
    where: list[threading.Thread] = []

    async def fn(*, timeout: float) -> str:
        where.append(threading.current_thread())
        await asyncio.sleep(0)
        return "ok"

    assert asyncio.run(p.call_coro(fn, idempotent=True, operation="GetBalance")) == "ok"
    assert where == [threading.main_thread()]


def test_at_most_n_coroutines_in_flight_the_rest_queue_then_run() -> None:
    n = 3
    p = Pipeline("soap", ResilienceConfig(bulkhead_size=n, bulkhead_max_wait=2.0,
                                          breaker=BreakerConfig(minimum_number_of_calls=1000)))
    running = peak = 0

    async def fn(*, timeout: float) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return "ok"

    async def main() -> list[str]:
        return await asyncio.gather(*(p.call_coro(fn, idempotent=True, operation="Get") for _ in range(5 * n)))

    assert asyncio.run(main()) == ["ok"] * (5 * n)
    assert peak == n and p.bulkhead.peak == n
    assert (p.bulkhead.in_flight, p.bulkhead.rejected) == (0, 0)


# -- the bulkhead's async queue --------------------------------------------------------------------------------

def test_queued_async_callers_are_admitted_first_come_first_served_by_a_thread_exit() -> None:
    b = Bulkhead("soap", 1, max_wait=2.0)
    b.enter()  # a worker thread holds the only slot
    order: list[int] = []

    async def waiter(i: int) -> None:
        await b.enter_async(operation="Get")
        order.append(i)
        await asyncio.sleep(0.005)
        b.exit()

    async def main() -> None:
        tasks = []
        for i in range(4):
            tasks.append(asyncio.ensure_future(waiter(i)))
            await asyncio.sleep(0)  # queued in this order
        threading.Timer(0.05, b.exit).start()  # the thread's slot is handed to the first in the queue
        await asyncio.gather(*tasks)

    started = time.monotonic()
    asyncio.run(main())
    assert order == [0, 1, 2, 3] and time.monotonic() - started < 1.0
    assert (b.in_flight, b.rejected, b.peak) == (0, 0, 1)


def test_an_async_caller_waits_at_most_max_wait_or_its_time_left() -> None:
    b = Bulkhead("soap", 1, max_wait=0.05)
    b.enter()

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(BulkheadFull) as info:
            await b.enter_async(operation="Get")
        assert info.value.operation == "Get"
        with pytest.raises(BulkheadFull):
            await b.enter_async(0.0)  # no time left: refused without queueing
        return time.monotonic() - started

    assert 0.04 < asyncio.run(main()) < 0.5
    assert (b.rejected, len(b._waiters)) == (2, 0)
    b.exit()
    assert b.in_flight == 0


def test_a_cancelled_waiter_leaves_the_queue_and_leaks_no_slot() -> None:
    b = Bulkhead("soap", 1, max_wait=5.0)
    b.enter()

    async def main() -> None:
        task = asyncio.ensure_future(b.enter_async())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(b._waiters) == 0
        b.exit()  # nobody queued: the slot is free again
        assert b.in_flight == 0
        await b.enter_async()
        b.exit()

    asyncio.run(main())
    assert (b.in_flight, b.rejected) == (0, 0)


def test_a_sync_caller_waits_behind_queued_async_callers() -> None:
    b = Bulkhead("soap", 1, max_wait=2.0)
    b.enter()
    admitted: list[str] = []

    async def main() -> None:
        waiting = asyncio.ensure_future(b.enter_async())
        await asyncio.sleep(0.01)
        sync_thread = threading.Thread(target=lambda: (b.enter(), admitted.append("sync"), b.exit()))
        sync_thread.start()
        await asyncio.sleep(0.02)
        b.exit()  # goes to the queued async caller, not to the thread
        await waiting
        admitted.append("async")
        await asyncio.sleep(0.02)
        b.exit()
        await asyncio.to_thread(sync_thread.join, 5)

    asyncio.run(main())
    assert admitted == ["async", "sync"] and b.in_flight == 0


def test_a_slot_granted_as_the_wait_expires_is_kept_not_refused() -> None:
    b = Bulkhead("soap", 1, max_wait=5.0)
    b.enter()

    async def main() -> None:
        task = asyncio.ensure_future(b.enter_async())
        await asyncio.sleep(0.01)
        future = b._waiters[0].future
        b.exit()  # grants the slot to the waiter (its wake-up is only scheduled) ...
        _expire(future)  # ... and its timer fires in the same loop turn
        await task  # admitted: the slot was granted, so it is ours
        assert b.in_flight == 1 and b.rejected == 0
        b.exit()

    asyncio.run(main())
    assert (b.in_flight, len(b._waiters)) == (0, 0)


def test_a_slot_granted_to_a_cancelled_waiter_is_given_back() -> None:
    b = Bulkhead("soap", 1, max_wait=5.0)
    b.enter()

    async def main() -> None:
        task = asyncio.ensure_future(b.enter_async())
        await asyncio.sleep(0.01)
        b.exit()  # granted ...
        task.cancel()  # ... and cancelled before it ran
        with pytest.raises(asyncio.CancelledError):
            await task
        assert b.in_flight == 0  # the granted slot went back
        await b.enter_async()
        b.exit()

    asyncio.run(main())
    assert (b.in_flight, b.rejected, len(b._waiters)) == (0, 0, 0)
