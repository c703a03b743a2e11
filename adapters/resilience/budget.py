"""A retry budget: gRPC's retry throttling (a token bucket), shared by every call to one backend.

The bucket starts full with ``max_tokens``. Every failed attempt (the core was unreachable, timed
out or faulted) takes one token, every successful attempt (a business rejection is a success of
the path to the core) puts back ``token_ratio``; retries are allowed only while more than half
the bucket is left. During a total outage the bucket drains after about ``max_tokens / 2``
failures and stays drained, so retries stop almost at once and the outage costs the core little
more than the first attempts; in normal operation occasional failures are retried freely.

Tokens are kept in thousandths as integers (as gRPC does, which also truncates ``token_ratio`` to
three decimals), so long runs do not drift.
"""

from __future__ import annotations

import threading

__all__ = ["RetryBudget"]

_SCALE = 1000


class RetryBudget:
    def __init__(self, max_tokens: float = 10.0, token_ratio: float = 0.1) -> None:
        if max_tokens <= 0 or token_ratio <= 0:
            raise ValueError("max_tokens and token_ratio must be > 0")
        self.max_tokens = max_tokens
        self.token_ratio = token_ratio
        self._max = int(max_tokens * _SCALE)
        self._ratio = int(token_ratio * _SCALE)
        self._threshold = self._max // 2
        self._tokens = self._max
        self._lock = threading.Lock()
        self.denied = 0

    @property
    def tokens(self) -> float:
        return self._tokens / _SCALE

    def on_failure(self) -> None:
        with self._lock:
            self._tokens = max(0, self._tokens - _SCALE)

    def on_success(self) -> None:
        with self._lock:
            self._tokens = min(self._max, self._tokens + self._ratio)

    def allow_retry(self) -> bool:
        """True while tokens > max_tokens / 2; a refusal is counted in ``denied``."""
        with self._lock:
            if self._tokens > self._threshold:
                return True
            self.denied += 1
            return False
