"""Faults on demand, per face and operation, switchable at run time and reproducible by seed.

A rule says what goes wrong for a face (``soap``, ``sftp``, ``odbc``, ``batch`` or ``*``) and an
operation (``FundsTransfer``, ``*``...). Each request asks :meth:`FaultInjector.decide` once; the
draws come from one ``random.Random(seed)`` under a lock, so the same seed and the same request
order give the same faults. Rules are plain JSON (see :class:`FaultRule`) so that tests and the
admin endpoint can set them.

Error kinds:
  ``fault``   a SOAP Fault (or an SFTP failure status) that says it was injected
  ``http500`` an HTTP 500 with a plain body, not SOAP
  ``reset``   the TCP connection is reset (RST) before any response
  ``hang``    no answer for ``hang_s`` seconds (past the client's timeout), then a reset
Commit then drop: ``drop_response_rate`` applies to writes (FundsTransfer): the posting is
committed, then the connection is reset instead of answering.
Outages: ``outage(face, seconds)`` takes a face down (its listener closed) until it ends.
Batch corruption: ``corrupt`` in (``bad_packed``, ``wrong_count``, ``wrong_total``, ``truncated``)
applies to the next end-of-day files written.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

ERROR_KINDS = ("fault", "http500", "reset", "hang")
CORRUPTIONS = ("bad_packed", "wrong_count", "wrong_total", "truncated")
FACES = ("soap", "sftp", "odbc", "batch", "*")


class FaultRuleError(ValueError):
    """A rule that does not make sense; the message says which key and why."""


@dataclass
class FaultRule:
    face: str = "*"
    operation: str = "*"
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error: str = "fault"
    hang_s: float = 30.0
    drop_response_rate: float = 0.0
    corrupt: str | None = None
    remaining: int | None = None  # apply to this many requests only, then retire the rule

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        if not isinstance(data, dict):
            raise FaultRuleError("a fault rule must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultRuleError(f"unknown key(s) {unknown}; known: {sorted(known)}")
        try:
            rule = cls(**data)
        except TypeError as exc:
            raise FaultRuleError(str(exc)) from exc
        rule.validate()
        return rule

    def validate(self) -> None:
        if self.face not in FACES:
            raise FaultRuleError(f"face {self.face!r} not one of {FACES}")
        if self.error not in ERROR_KINDS:
            raise FaultRuleError(f"error {self.error!r} not one of {ERROR_KINDS}")
        if self.corrupt is not None and self.corrupt not in CORRUPTIONS:
            raise FaultRuleError(f"corrupt {self.corrupt!r} not one of {CORRUPTIONS}")
        for name in ("error_rate", "drop_response_rate"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
                raise FaultRuleError(f"{name} must be a number between 0 and 1, got {v!r}")
        for name in ("latency_ms", "jitter_ms", "hang_s"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or v < 0:
                raise FaultRuleError(f"{name} must be a number >= 0, got {v!r}")

    def matches(self, face: str, operation: str) -> bool:
        return self.face in ("*", face) and self.operation in ("*", operation)


@dataclass(frozen=True)
class FaultDecision:
    delay_s: float = 0.0
    error: str | None = None
    hang_s: float = 0.0
    drop_after_commit: bool = False

    @property
    def clean(self) -> bool:
        return self.delay_s == 0 and self.error is None and not self.drop_after_commit


NO_FAULT = FaultDecision()


class FaultInjector:
    """The one place every face asks 'what goes wrong with this request?'."""

    def __init__(self, seed: int = 0, clock: Any = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._seed = seed
        self._rng = random.Random(seed)
        self._clock = clock
        self._outages: dict[str, float] = {}
        self.outage_listeners: list[Any] = []  # callables(face, down: bool)
        self.counts: dict[str, int] = {}

    # -- configuration ---------------------------------------------------------------
    def set_rules(self, rules: list[FaultRule], seed: int | None = None) -> None:
        with self._lock:
            self._rules = list(rules)
            if seed is not None:
                self._seed = seed
            self._rng = random.Random(self._seed)
            self.counts = {}

    def add_rule(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        self.set_rules([])
        for face in list(self._outages):
            self.end_outage(face)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            return {
                "seed": self._seed,
                "rules": [asdict(r) for r in self._rules],
                "outages": {f: round(u - now, 3) for f, u in self._outages.items() if u > now},
                "counts": dict(self.counts),
            }

    # -- outages -------------------------------------------------------------------------
    def outage(self, face: str, seconds: float) -> None:
        if face not in FACES or face == "*":
            raise FaultRuleError(f"outage face {face!r} not one of soap, sftp, odbc, batch")
        if seconds <= 0:
            raise FaultRuleError("outage seconds must be > 0")
        with self._lock:
            self._outages[face] = self._clock() + seconds
        for listener in list(self.outage_listeners):
            listener(face, True)
        timer = threading.Timer(seconds, self._expire, args=(face,))
        timer.daemon = True
        timer.start()

    def _expire(self, face: str) -> None:
        with self._lock:
            until = self._outages.get(face)
            if until is None or until > self._clock() + 0.01:
                return
        self.end_outage(face)

    def end_outage(self, face: str) -> None:
        with self._lock:
            was_down = self._outages.pop(face, None) is not None
        if was_down:
            for listener in list(self.outage_listeners):
                listener(face, False)

    def is_down(self, face: str) -> bool:
        with self._lock:
            until = self._outages.get(face)
            return until is not None and until > self._clock()

    # -- decisions ---------------------------------------------------------------------
    def decide(self, face: str, operation: str) -> FaultDecision:
        with self._lock:
            delay, error, hang, drop = 0.0, None, 0.0, False
            for rule in self._rules:
                if not rule.matches(face, operation):
                    continue
                if rule.remaining is not None:
                    if rule.remaining <= 0:
                        continue
                    rule.remaining -= 1
                if rule.latency_ms or rule.jitter_ms:
                    jitter = self._rng.uniform(-rule.jitter_ms, rule.jitter_ms) if rule.jitter_ms else 0.0
                    delay += max(0.0, rule.latency_ms + jitter) / 1000.0
                if error is None and rule.error_rate and self._rng.random() < rule.error_rate:
                    error, hang = rule.error, rule.hang_s
                if rule.drop_response_rate and self._rng.random() < rule.drop_response_rate:
                    drop = True
            self._rules = [r for r in self._rules if r.remaining is None or r.remaining > 0]
            decision = FaultDecision(delay, error, hang, drop)
            if not decision.clean:
                key = f"{face}.{operation}.{error or ('drop' if drop else 'latency')}"
                self.counts[key] = self.counts.get(key, 0) + 1
            return decision

    def corruption(self) -> str | None:
        """The corruption to apply to the next batch file written (consumes a counted rule)."""
        with self._lock:
            for rule in self._rules:
                if rule.corrupt and rule.face in ("*", "batch", "sftp"):
                    if rule.remaining is not None:
                        if rule.remaining <= 0:
                            continue
                        rule.remaining -= 1
                    kind = rule.corrupt
                    self._rules = [r for r in self._rules if r.remaining is None or r.remaining > 0]
                    self.counts[f"batch.corrupt.{kind}"] = self.counts.get(f"batch.corrupt.{kind}", 0) + 1
                    return kind
        return None


__all__ = ["CORRUPTIONS", "ERROR_KINDS", "FaultDecision", "FaultInjector", "FaultRule",
           "FaultRuleError", "NO_FAULT"]
