"""The registry of pipelines: one per (backend, operation class), built in one place, and the
state of each exposed for metrics and readiness.

All operation classes of one backend share that backend's bulkhead (one cap on threads per
backend, one ``CapacityLimiter``) and its retry budget (the core's health is one thing); each
operation class has its own circuit breaker, so failing batch uploads do not stop balance reads.
The configs of one backend must therefore agree on the bulkhead and budget settings.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from adapters.resilience.breaker import State
from adapters.resilience.budget import RetryBudget
from adapters.resilience.bulkhead import Bulkhead
from adapters.resilience.clock import Clock, MonotonicClock
from adapters.resilience.pipeline import Pipeline, ResilienceConfig

__all__ = ["ResilienceRegistry"]

_SHARED = ("bulkhead_size", "bulkhead_max_wait", "budget_max_tokens", "budget_token_ratio")


class ResilienceRegistry:
    def __init__(self, *, clock: Clock | None = None, rng: random.Random | None = None) -> None:
        self.clock = clock or MonotonicClock()
        self._rng = rng
        self._lock = threading.Lock()
        self._pipelines: dict[tuple[str, str], Pipeline] = {}
        self._shared: dict[str, tuple[ResilienceConfig, Bulkhead, RetryBudget]] = {}

    def pipeline(self, backend: str, operation_class: str, config: ResilienceConfig | None = None) -> Pipeline:
        """The pipeline for ``(backend, operation_class)``, built on first use with ``config``."""
        config = config or ResilienceConfig()
        with self._lock:
            key = (backend, operation_class)
            existing = self._pipelines.get(key)
            if existing is not None:
                if existing.config != config:
                    raise ValueError(f"pipeline {backend}/{operation_class} already built with another config")
                return existing
            shared = self._shared.get(backend)
            if shared is None:
                shared = (config,
                          Bulkhead(backend, config.bulkhead_size, max_wait=config.bulkhead_max_wait),
                          RetryBudget(config.budget_max_tokens, config.budget_token_ratio))
                self._shared[backend] = shared
            else:
                first = shared[0]
                differing = [n for n in _SHARED if getattr(first, n) != getattr(config, n)]
                if differing:
                    raise ValueError(f"backend {backend}: operation classes must agree on {', '.join(differing)}")
            rng = random.Random(self._rng.random()) if self._rng is not None else None
            pipeline = Pipeline(backend, config, operation_class=operation_class, clock=self.clock, rng=rng,
                                bulkhead=shared[1], budget=shared[2])
            self._pipelines[key] = pipeline
            return pipeline

    def get(self, backend: str, operation_class: str) -> Pipeline:
        return self._pipelines[(backend, operation_class)]

    def pipelines(self) -> list[Pipeline]:
        with self._lock:
            return list(self._pipelines.values())

    def snapshot(self) -> list[dict[str, Any]]:
        """One row per pipeline (see :meth:`Pipeline.snapshot`)."""
        return [p.snapshot() for p in self.pipelines()]

    def readiness(self) -> dict[str, bool]:
        """Per backend: False while any of its breakers refuses every call (OPEN or FORCED_OPEN)."""
        ready: dict[str, bool] = {}
        for p in self.pipelines():
            refusing = p.breaker.state in (State.OPEN, State.FORCED_OPEN)
            ready[p.backend] = ready.get(p.backend, True) and not refusing
        return ready
