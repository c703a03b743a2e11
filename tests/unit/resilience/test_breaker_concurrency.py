"""Half-open permits hold under 1,000 concurrent callers: exactly N trial calls reach the core."""

from __future__ import annotations

import threading
import time

import pytest

from adapters.errors import BackendUnavailable, CircuitOpen
from adapters.resilience import BreakerConfig, CircuitBreaker, ManualClock, State

CALLERS = 1_000


def half_open_ready(permits: int) -> tuple[CircuitBreaker, ManualClock]:
    clock = ManualClock()
    cfg = BreakerConfig(sliding_window_size=10, minimum_number_of_calls=10, wait_duration_in_open=5.0,
                        permitted_calls_in_half_open=permits)
    b = CircuitBreaker("core", cfg, clock=clock)
    for _ in range(10):
        b.acquire().failure(0.1)
    assert b.state is State.OPEN
    clock.advance(5.5)  # the next acquire moves OPEN -> HALF_OPEN, racing with 999 others
    return b, clock


def run_concurrently(n: int, target) -> None:
    barrier = threading.Barrier(n)

    def go() -> None:
        barrier.wait(timeout=30)
        target()

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)


@pytest.mark.parametrize("permits", [1, 5])
def test_exactly_n_half_open_permits_among_1000_concurrent_callers(permits: int) -> None:
    b, _ = half_open_ready(permits)
    admitted, refused = [], []
    lock = threading.Lock()

    def caller() -> None:
        try:
            p = b.acquire()
        except CircuitOpen:
            with lock:
                refused.append(1)
        else:
            with lock:
                admitted.append(p)

    run_concurrently(CALLERS, caller)
    assert len(admitted) == permits
    assert len(refused) == CALLERS - permits
    assert b.state is State.HALF_OPEN
    assert b.metrics().not_permitted_total == CALLERS - permits
    assert len({p.generation for p in admitted}) == 1


def test_no_more_than_n_trial_calls_reach_the_core_while_they_are_in_flight() -> None:
    permits = 3
    b, _ = half_open_ready(permits)
    in_core = threading.Semaphore(0)
    release = threading.Event()
    reached = []
    lock = threading.Lock()

    def core_call() -> str:
        with lock:
            reached.append(1)
        in_core.release()
        release.wait(timeout=30)
        raise BackendUnavailable("still down")

    def caller() -> None:
        try:
            b.call(core_call)
        except (CircuitOpen, BackendUnavailable):
            pass

    helper = threading.Thread(target=run_concurrently, args=(CALLERS, caller))
    helper.start()
    for _ in range(permits):
        assert in_core.acquire(timeout=30)
    # every other caller is refused without waiting for the trial calls
    assert not in_core.acquire(timeout=0.2)
    release.set()
    helper.join(timeout=60)
    assert len(reached) == permits
    assert b.state is State.OPEN  # all trials failed


def test_listeners_see_transitions_in_order_under_contention() -> None:
    clock = ManualClock()
    cfg = BreakerConfig(sliding_window_size=4, minimum_number_of_calls=4, wait_duration_in_open=0.01,
                        permitted_calls_in_half_open=2)
    b = CircuitBreaker("core", cfg, clock=clock)
    events = []

    def slow_listener(event) -> None:  # sleeping widens the window in which deliveries could overtake
        time.sleep(0.0002)
        events.append(event)

    b.add_listener(slow_listener)
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            clock.advance(0.005)
            stop.wait(0.0005)

    def worker(i: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                p = b.acquire()
            except CircuitOpen:
                continue
            if (n * 7 + i) % 3:
                p.failure(0.01)
            else:
                p.success(0.01)

    ticker = threading.Thread(target=tick)
    ticker.start()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in workers:
        t.start()
    time.sleep(0.4)
    stop.set()
    for t in [*workers, ticker]:
        t.join()
    assert len(events) > 10
    for before, after in zip(events, events[1:], strict=False):
        assert after.generation == before.generation + 1
        assert after.from_state is before.to_state
    assert events[-1].to_state is b.state
