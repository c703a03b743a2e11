"""Resilience for calls into the core: deadline -> retry (with budget) -> circuit breaker -> bulkhead
-> per-attempt timeout -> the adapter call, composed in :mod:`adapters.resilience.pipeline`."""

from adapters.resilience.breaker import (
    BreakerConfig,
    BreakerMetrics,
    CircuitBreaker,
    Outcome,
    Permit,
    State,
    StateTransition,
)
from adapters.resilience.budget import RetryBudget
from adapters.resilience.bulkhead import Bulkhead
from adapters.resilience.clock import Clock, ManualClock, MonotonicClock
from adapters.resilience.deadline import Deadline
from adapters.resilience.pipeline import Pipeline, ResilienceConfig
from adapters.resilience.retry import RETRYABLE, FullJitter, RetryPolicy, is_retryable
from adapters.resilience.state import ResilienceRegistry

__all__ = [
    "RETRYABLE",
    "BreakerConfig",
    "BreakerMetrics",
    "Bulkhead",
    "CircuitBreaker",
    "Clock",
    "Deadline",
    "FullJitter",
    "ManualClock",
    "MonotonicClock",
    "Outcome",
    "Permit",
    "Pipeline",
    "ResilienceConfig",
    "ResilienceRegistry",
    "RetryBudget",
    "RetryPolicy",
    "State",
    "StateTransition",
    "is_retryable",
]
