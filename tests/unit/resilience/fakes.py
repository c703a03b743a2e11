"""Hand-written fakes of an adapter call ``fn(timeout=...)`` for the resilience tests.

Each honours ``timeout`` the way a library timeout does: it never blocks longer than ``timeout``
and then raises ``BackendTimeout``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from adapters.errors import BackendTimeout, BackendUnavailable


class Counting:
    """Counts calls and tracks how many run at once (max_concurrent) and the timeouts handed in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.running = 0
        self.max_concurrent = 0
        self.timeouts: list[float] = []

    def _enter(self, timeout: float) -> int:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.max_concurrent = max(self.max_concurrent, self.running)
            self.timeouts.append(timeout)
            return self.calls

    def _exit(self) -> None:
        with self._lock:
            self.running -= 1


class Scripted(Counting):
    """Answers call n with ``script[n]`` (the last entry repeats): an exception instance is raised, a
    callable is called with the timeout, anything else is returned."""

    def __init__(self, script: Iterable[Any]) -> None:
        super().__init__()
        self.script = list(script)

    def __call__(self, *, timeout: float) -> Any:
        n = self._enter(timeout)
        try:
            step = self.script[min(n, len(self.script)) - 1]
            if isinstance(step, BaseException):
                raise step
            if callable(step):
                return step(timeout)
            return step
        finally:
            self._exit()


class AlwaysFailing(Counting):
    """A total outage: every call is refused."""

    def __call__(self, *, timeout: float) -> Any:
        self._enter(timeout)
        self._exit()
        raise BackendUnavailable("connection refused")


class Slow(Counting):
    """Answers after ``latency`` seconds, or times out after ``timeout`` seconds if that is shorter."""

    def __init__(self, latency: float, on_start: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.latency = latency
        self.on_start = on_start

    def __call__(self, *, timeout: float) -> str:
        self._enter(timeout)
        if self.on_start is not None:
            self.on_start()
        try:
            if self.latency > timeout:
                threading.Event().wait(timeout)
                raise BackendTimeout(f"no answer within {timeout:.3f}s")
            threading.Event().wait(self.latency)
            return "ok"
        finally:
            self._exit()


class Hung(Counting):
    """Hangs until ``release`` is set or the timeout expires (then raises ``BackendTimeout``)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def __call__(self, *, timeout: float) -> str:
        self._enter(timeout)
        self.entered.release()
        try:
            if not self.release.wait(timeout):
                raise BackendTimeout(f"no answer within {timeout:.3f}s")
            return "ok"
        finally:
            self._exit()
