"""How cheap is a refusal while the circuit breaker is OPEN?

The refusal path is what every caller pays during an outage, so it must stay far below the 1 ms
target. Measured per call with ``perf_counter_ns`` (the timer's own cost is in both numbers) over
``calls`` acquires of an OPEN breaker on the real monotonic clock, beside a baseline measured in
the same run: a bare function call that raises and is caught. Both run in interleaved chunks with
the garbage collector paused (as ``timeit`` does), so drift and collections hit both alike.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable

from adapters.errors import CircuitOpen
from adapters.resilience import BreakerConfig, CircuitBreaker, State

BASELINE = "a bare function call that raises"
TARGET_P99_US = 1000.0


class _BaselineError(Exception):
    pass


def _bare() -> None:
    raise _BaselineError


def _sample(fn: Callable[[], object], exc: type[BaseException], n: int, out: list[int]) -> None:
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        try:
            fn()
        except exc:
            pass
        out.append(clock() - t0)


def _percentile(sorted_ns: list[int], q: float) -> float:
    index = min(len(sorted_ns) - 1, max(0, round(q * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1000.0


def run(calls: int = 200_000, chunk: int = 10_000) -> list[dict]:
    breaker = CircuitBreaker("bench", BreakerConfig(minimum_number_of_calls=1, sliding_window_size=1,
                                                    wait_duration_in_open=1e9))
    breaker.acquire().failure(0.01)
    assert breaker.state is State.OPEN
    refusals: list[int] = []
    baseline: list[int] = []
    _sample(breaker.acquire, CircuitOpen, 1_000, [])  # warm-up
    _sample(_bare, _BaselineError, 1_000, [])
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        done = 0
        while done < calls:
            n = min(chunk, calls - done)
            _sample(breaker.acquire, CircuitOpen, n, refusals)
            _sample(_bare, _BaselineError, n, baseline)
            done += n
    finally:
        if was_enabled:
            gc.enable()
    assert breaker.metrics().not_permitted_total >= calls
    refusals.sort()
    baseline.sort()
    rows = []
    for label, q in (("p50", 0.50), ("p99", 0.99)):
        value = _percentile(refusals, q)
        base = _percentile(baseline, q)
        rows.append({
            "name": f"breaker_open_rejection_{label}",
            "value": round(value, 3),
            "unit": "us",
            "baseline": BASELINE,
            "baseline_value": round(base, 3),
            "ratio": round(value / base, 2) if base else None,
            "target": f"<= {TARGET_P99_US:.0f} us",
        })
    return rows


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row))
