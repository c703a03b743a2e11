"""The circuit breaker against a small reference model, on hypothesis-generated histories.

The model is written for clarity, not speed: it keeps every recorded outcome with its timestamp in
a list and recomputes the window from that list each time (last N for a count window; whole
seconds ``floor(now) - W < floor(t)`` for a time window), so the breaker's ring buffer and
per-second buckets are checked against something built differently. Histories interleave
acquires, outcomes reported in any order for any outstanding permit (so stale permits from earlier
generations occur), clock steps (including steps landing exactly on the end of the open wait) and
manual transitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.errors import CircuitOpen
from adapters.resilience import BreakerConfig, CircuitBreaker, ManualClock, State

T0 = 1_000.0


@dataclass
class Record:
    t: float
    failed: bool
    slow: bool


@dataclass
class Model:
    cfg: BreakerConfig
    state: State = State.CLOSED
    gen: int = 0
    records: list[Record] = field(default_factory=list)
    kind: str = "closed"  # which window the records form: "closed" (per config) or "half_open"
    open_until: float = 0.0
    half_open_left: int = 0
    not_permitted: int = 0
    not_permitted_total: int = 0
    stale: int = 0
    transitions: list[tuple[State, State]] = field(default_factory=list)

    # the window, recomputed from the raw records
    def window(self, now: float) -> list[Record]:
        if self.kind == "half_open":
            return self.records[-self.cfg.permitted_calls_in_half_open:]
        if self.cfg.sliding_window_type == "count":
            return self.records[-self.cfg.sliding_window_size:]
        oldest_second = math.floor(now) - self.cfg.window_seconds
        return [r for r in self.records if math.floor(r.t) > oldest_second]

    def min_calls(self) -> int:
        if self.kind == "half_open":
            return self.cfg.permitted_calls_in_half_open
        if self.cfg.sliding_window_type == "count":
            return min(self.cfg.minimum_number_of_calls, self.cfg.sliding_window_size)
        return self.cfg.minimum_number_of_calls

    def rates(self, now: float) -> tuple[int, int, int]:
        w = self.window(now)
        return len(w), sum(r.failed for r in w), sum(r.slow for r in w)

    def go(self, to: State, now: float) -> None:
        self.transitions.append((self.state, to))
        self.gen += 1
        self.state = to
        if to is State.OPEN:
            self.open_until = now + self.cfg.wait_duration_in_open
            return  # the metrics that tripped it stay visible
        self.not_permitted = 0
        self.records = []
        self.kind = "half_open" if to is State.HALF_OPEN else "closed"
        if to is State.HALF_OPEN:
            self.half_open_left = self.cfg.permitted_calls_in_half_open

    def refuse(self) -> None:
        self.not_permitted += 1
        self.not_permitted_total += 1

    def acquire(self, now: float) -> int | None:
        """A permit's generation, or None when refused."""
        if self.state in (State.CLOSED, State.DISABLED):
            return self.gen
        if self.state is State.OPEN:
            if not now > self.open_until:
                self.refuse()
                return None
            self.go(State.HALF_OPEN, now)
        if self.state is State.HALF_OPEN and self.half_open_left > 0:
            self.half_open_left -= 1
            return self.gen
        self.refuse()
        return None

    def complete(self, gen: int, outcome: str, duration: float, now: float) -> None:
        if gen != self.gen:
            self.stale += 1
            return
        if self.state is State.DISABLED:
            return
        assert self.state in (State.CLOSED, State.HALF_OPEN)
        if outcome == "ignored":
            if self.state is State.HALF_OPEN:
                self.half_open_left += 1
            return
        self.records.append(Record(now, outcome == "failure", duration > self.cfg.slow_call_duration))
        calls, failed, slow = self.rates(now)
        if calls < self.min_calls():
            return
        tripped = (failed * 100.0 / calls >= self.cfg.failure_rate_threshold
                   or slow * 100.0 / calls >= self.cfg.slow_call_rate_threshold)
        if tripped:
            self.go(State.OPEN, now)
        elif self.state is State.HALF_OPEN:
            self.go(State.CLOSED, now)


configs = st.builds(
    BreakerConfig,
    failure_rate_threshold=st.sampled_from([25.0, 50.0, 100.0 / 3, 75.0, 100.0]),
    slow_call_rate_threshold=st.sampled_from([50.0, 80.0, 100.0]),
    slow_call_duration=st.just(1.0),
    sliding_window_type=st.sampled_from(["count", "time"]),
    sliding_window_size=st.integers(1, 6),
    window_seconds=st.integers(1, 5),
    minimum_number_of_calls=st.integers(1, 8),
    wait_duration_in_open=st.sampled_from([0.0, 0.5, 1.0, 2.5]),
    permitted_calls_in_half_open=st.integers(1, 4),
)

acquire = st.just(("acquire",))
complete = st.tuples(st.just("complete"), st.integers(0, 50),
                     st.sampled_from(["success", "failure", "success", "failure", "ignored"]),
                     st.sampled_from([0.0, 0.5, 1.0, 1.5]))
advance = st.tuples(st.just("advance"), st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5, 7.0]))
manual = st.tuples(st.just("manual"),
                   st.sampled_from(["closed", "open", "half_open", "disabled", "forced_open", "reset"]))
# acquires and completions dominate so the breaker moves on its own; manual transitions are rare
histories = st.lists(st.one_of(*[acquire] * 6, *[complete] * 6, *[advance] * 3, manual),
                     min_size=20, max_size=120)


def check_metrics(breaker: CircuitBreaker, model: Model, now: float) -> None:
    m = breaker.metrics()
    calls, failed, slow = model.rates(now)
    assert m.state is model.state
    assert m.generation == model.gen
    assert (m.buffered_calls, m.failed_calls, m.slow_calls) == (calls, failed, slow)
    evaluated = calls >= model.min_calls()
    assert m.failure_rate == (failed * 100.0 / calls if evaluated else -1.0)
    assert m.slow_call_rate == (slow * 100.0 / calls if evaluated else -1.0)
    assert m.not_permitted_calls == model.not_permitted
    assert m.not_permitted_total == model.not_permitted_total
    assert m.stale_results == model.stale
    if model.state is State.HALF_OPEN:
        assert m.half_open_permits_left == model.half_open_left


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs, history=histories)
def test_breaker_matches_reference_model(cfg: BreakerConfig, history: list[tuple]) -> None:
    clock = ManualClock(T0)
    breaker = CircuitBreaker("model", cfg, clock=clock)
    model = Model(cfg)
    seen: list[tuple[State, State]] = []
    breaker.add_listener(lambda t: seen.append((t.from_state, t.to_state)))
    outstanding = []  # (permit, generation)
    for step in history:
        now = clock.now()
        if step[0] == "acquire":
            expected = model.acquire(now)
            try:
                permit = breaker.acquire()
            except CircuitOpen as exc:
                assert expected is None, f"refused, model admits (state {model.state})"
                assert exc.retry_after >= 0
                if model.state is State.OPEN:
                    assert exc.retry_after == model.open_until - now
            else:
                assert expected is not None, f"admitted, model refuses (state {model.state})"
                assert permit.generation == expected
                outstanding.append(permit)
        elif step[0] == "complete":
            if not outstanding:
                continue
            _, index, outcome, duration = step
            permit = outstanding.pop(-1 - index % len(outstanding))  # small index: a recent permit
            model.complete(permit.generation, outcome, duration, now)
            if outcome == "ignored":
                permit.ignore()
            elif outcome == "success":
                permit.success(duration)
            else:
                permit.failure(duration)
        elif step[0] == "advance":
            clock.advance(step[1])
        else:
            target = step[1]
            if target == "reset":
                model.go(State.CLOSED, now)
                breaker.reset()
            else:
                to = State(target)
                if model.state is not to:
                    model.go(to, now)
                getattr(breaker, f"transition_to_{target}")()
        assert breaker.state is model.state
        check_metrics(breaker, model, clock.now())
    assert seen == model.transitions
