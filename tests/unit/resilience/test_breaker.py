"""Circuit breaker: scenarios named in the issue (the state machine as a whole is checked against a
reference model in test_breaker_model.py)."""

from __future__ import annotations

import logging
import threading

import pytest

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    ContractViolation,
    RecordNotFound,
    Rejected,
)
from adapters.resilience import BreakerConfig, CircuitBreaker, ManualClock, Outcome, State


def make(clock: ManualClock | None = None, **overrides) -> CircuitBreaker:
    cfg = {"sliding_window_size": 4, "minimum_number_of_calls": 4, "failure_rate_threshold": 50.0,
           "wait_duration_in_open": 10.0, "permitted_calls_in_half_open": 2, "slow_call_duration": 1.0}
    cfg.update(overrides)
    return CircuitBreaker("core", BreakerConfig(**cfg), clock=clock or ManualClock())


def fail(breaker: CircuitBreaker, n: int = 1, duration: float = 0.1) -> None:
    for _ in range(n):
        breaker.acquire().failure(duration)


def succeed(breaker: CircuitBreaker, n: int = 1, duration: float = 0.1) -> None:
    for _ in range(n):
        breaker.acquire().success(duration)


def open_breaker(breaker: CircuitBreaker) -> None:
    fail(breaker, breaker.config.effective_minimum_calls)
    assert breaker.state is State.OPEN


def test_opens_at_failure_rate_threshold_once_minimum_calls_buffered() -> None:
    b = make()
    fail(b, 2)
    succeed(b, 1)
    assert b.state is State.CLOSED and b.metrics().failure_rate == -1.0  # 3 < minimum 4
    succeed(b, 1)  # 2 of 4 failed = 50% >= 50%
    assert b.state is State.OPEN
    assert b.metrics().failure_rate == 50.0


def test_opens_on_slow_call_rate_even_when_every_call_succeeds() -> None:
    b = make(slow_call_rate_threshold=75.0)
    succeed(b, 1, duration=1.0)  # exactly the threshold duration is not slow
    succeed(b, 3, duration=1.5)
    assert b.state is State.OPEN
    m = b.metrics()
    assert (m.slow_call_rate, m.failure_rate) == (75.0, 0.0)


def test_open_refuses_with_retry_after_then_half_opens_on_next_acquire_after_the_wait() -> None:
    clock = ManualClock()
    b = make(clock)
    open_breaker(b)
    clock.advance(4.0)
    with pytest.raises(CircuitOpen) as info:
        b.acquire()
    assert info.value.retry_after == pytest.approx(6.0)
    assert info.value.backend == "core"
    clock.advance(6.0)  # exactly at the end of the wait: still open (Resilience4j: strictly after)
    with pytest.raises(CircuitOpen):
        b.acquire()
    assert b.state is State.OPEN
    clock.advance(0.001)
    assert b.state is State.OPEN  # no timer: the transition happens on acquire
    b.acquire()
    assert b.state is State.HALF_OPEN
    assert b.metrics().not_permitted_total == 2


@pytest.mark.parametrize(
    ("outcomes", "final"),
    [(["success", "success"], State.CLOSED), (["success", "failure"], State.OPEN),
     (["failure", "failure"], State.OPEN)],
)
def test_half_open_window_evaluated_when_all_permitted_calls_completed(outcomes, final) -> None:
    clock = ManualClock()
    b = make(clock)
    open_breaker(b)
    clock.advance(10.5)
    permits = [b.acquire(), b.acquire()]
    with pytest.raises(CircuitOpen):
        b.acquire()  # both permits taken
    getattr(permits[0], outcomes[0])(0.1)
    assert b.state is State.HALF_OPEN  # not evaluated before all permitted calls completed
    getattr(permits[1], outcomes[1])(0.1)
    assert b.state is final
    if final is State.CLOSED:
        assert b.metrics().buffered_calls == 0  # a fresh window


def test_ignored_outcomes_count_neither_way_and_hand_back_half_open_permits() -> None:
    clock = ManualClock()
    b = make(clock)
    for exc in (Rejected(reason_code="51"), RecordNotFound(), ContractViolation()):
        with pytest.raises(type(exc)):
            b.call(lambda e=exc: (_ for _ in ()).throw(e))
    assert b.metrics().buffered_calls == 0
    open_breaker(b)
    clock.advance(11)
    p1, p2 = b.acquire(), b.acquire()
    p1.ignore()  # a business rejection says nothing about health: the permit goes back
    p3 = b.acquire()
    with pytest.raises(CircuitOpen):
        b.acquire()
    p2.success(0.1)
    p3.success(0.1)
    assert b.state is State.CLOSED


def test_classification_follows_resilience4j_with_ignore_winning() -> None:
    cfg = BreakerConfig(record_exceptions=(BackendUnavailable, BackendTimeout),
                        ignore_exceptions=(Rejected,))
    assert cfg.classify(BackendUnavailable()) is Outcome.FAILURE
    assert cfg.classify(Rejected(reason_code="x")) is Outcome.IGNORED
    assert cfg.classify(BackendFault()) is Outcome.SUCCESS  # neither listed: success (Resilience4j)
    default = BreakerConfig()
    assert default.classify(BackendFault()) is Outcome.FAILURE
    assert default.classify(KeyError("bug in an adapter")) is Outcome.FAILURE
    assert default.classify(RecordNotFound()) is Outcome.IGNORED
    assert default.classify(KeyboardInterrupt()) is Outcome.IGNORED


def test_stale_permit_from_an_earlier_generation_changes_nothing() -> None:
    clock = ManualClock()
    b = make(clock)
    slow_closed = b.acquire()  # admitted while CLOSED, generation 0
    open_breaker(b)
    before = b.metrics()
    slow_closed.failure(30.0)
    assert b.state is State.OPEN and b.metrics().buffered_calls == before.buffered_calls
    clock.advance(11)
    trial = b.acquire()  # HALF_OPEN
    earlier_trial_gen = trial.generation
    b.acquire().success(0.1)
    trial.success(0.1)
    assert b.state is State.CLOSED
    # a late result from the CLOSED period must not vote in a later half-open trial either
    late = b.acquire()
    open_breaker(b)
    clock.advance(11)
    t1, t2 = b.acquire(), b.acquire()
    late.success(0.1)
    assert b.metrics().buffered_calls == 0 and b.state is State.HALF_OPEN
    t1.failure(0.1)
    t2.failure(0.1)
    assert b.state is State.OPEN
    assert b.metrics().stale_results == 2
    assert earlier_trial_gen < b.generation


def test_permit_reports_once() -> None:
    b = make()
    p = b.acquire()
    p.success(0.1)
    with pytest.raises(RuntimeError):
        p.failure(0.1)


def test_disabled_permits_everything_and_records_nothing() -> None:
    b = make()
    b.transition_to_disabled()
    fail(b, 50)
    assert b.state is State.DISABLED and b.metrics().buffered_calls == 0
    b.transition_to_closed()
    assert b.state is State.CLOSED


def test_forced_open_refuses_everything_until_a_manual_transition() -> None:
    clock = ManualClock()
    b = make(clock)
    b.transition_to_forced_open()
    for _ in range(3):
        clock.advance(1000)
        with pytest.raises(CircuitOpen) as info:
            b.acquire()
        assert info.value.retry_after == b.config.wait_duration_in_open
    assert b.metrics().not_permitted_calls == 3
    b.reset()
    assert b.state is State.CLOSED and b.metrics().not_permitted_calls == 0
    assert b.metrics().not_permitted_total == 3
    b.acquire().success(0.1)


def test_time_based_window_forgets_outcomes_older_than_window_seconds() -> None:
    clock = ManualClock(100.0)
    b = make(clock, sliding_window_type="time", window_seconds=10, minimum_number_of_calls=5)
    fail(b, 4)  # second 100
    clock.advance(9.5)  # second 109: those failures are still in the window
    assert b.metrics().buffered_calls == 4
    clock.advance(0.5)  # second 110: the bucket of second 100 has left the window
    assert b.metrics().buffered_calls == 0
    fail(b, 4)
    clock.advance(9.0)
    succeed(b, 1)  # 4 of 5 failed -> open
    assert b.state is State.OPEN


def test_time_based_window_spreads_over_buckets() -> None:
    clock = ManualClock(0.0)
    b = make(clock, sliding_window_type="time", window_seconds=3, minimum_number_of_calls=100)
    for _ in range(6):
        fail(b)
        clock.advance(1.0)
    assert b.metrics().buffered_calls == 2  # seconds 4 and 5 remain at t=6 (current second 6 empty)
    clock.advance(100.0)
    assert b.metrics().buffered_calls == 0


def test_listeners_see_every_transition_and_cannot_break_the_breaker(caplog) -> None:
    clock = ManualClock()
    b = make(clock)
    seen = []
    b.add_listener(lambda t: seen.append((t.from_state, t.to_state)))
    remove_bad = b.add_listener(lambda t: 1 / 0)
    with caplog.at_level(logging.ERROR):
        open_breaker(b)
    assert "state listener failed" in caplog.text
    remove_bad()
    clock.advance(11)
    succeed(b, 2)
    b.transition_to_forced_open()
    b.transition_to_forced_open()  # same state: nothing happens
    assert seen == [(State.CLOSED, State.OPEN), (State.OPEN, State.HALF_OPEN),
                    (State.HALF_OPEN, State.CLOSED), (State.CLOSED, State.FORCED_OPEN)]


def test_call_and_guard_time_the_call_with_the_clock() -> None:
    clock = ManualClock()
    b = make(clock, slow_call_rate_threshold=50.0, minimum_number_of_calls=2, sliding_window_size=2)

    def slow() -> str:
        clock.advance(2.0)
        return "done"

    assert b.call(slow) == "done"
    with b.guard():
        clock.advance(0.5)
    assert b.metrics().slow_calls == 1
    assert b.state is State.OPEN  # 1 of 2 slow = 50%


def test_concurrent_outcomes_keep_the_window_consistent() -> None:
    b = make(sliding_window_size=50, minimum_number_of_calls=10_000)
    start = threading.Barrier(8)

    def worker(i: int) -> None:
        start.wait()
        for n in range(2_000):
            p = b.acquire()
            if (n + i) % 3 == 0:
                p.failure(0.1)
            else:
                p.success(0.1)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m = b.metrics()
    assert m.buffered_calls == 50 and 0 <= m.failed_calls <= 50 and b.state is State.CLOSED


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        BreakerConfig(failure_rate_threshold=0)
    with pytest.raises(ValueError):
        BreakerConfig(permitted_calls_in_half_open=0)
    with pytest.raises(ValueError):
        BreakerConfig(sliding_window_type="sliding")  # type: ignore[arg-type]
