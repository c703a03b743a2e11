"""The background reconciler: one daemon thread per facade instance.

Every ``reconcile_interval_seconds`` it resolves UNKNOWN intents (and PENDING/SENT ones left stale
by a crash) by asking the core by reference, and, for old intents the core cannot be asked about, the
end-of-day files (:meth:`ExactlyOnceService.reconcile`, :mod:`api.services.eod_lookup`); every
``sweep_interval_seconds`` it deletes expired idempotency keys (:meth:`ExactlyOnceService.sweep`).
Several instances may run it against one shared store: each intent is driven under a lease, so
two reconcilers never work on the same intent at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from api.services.exactly_once import ExactlyOnceService

__all__ = ["Reconciler"]

log = logging.getLogger("corebridge.api.reconciler")


class Reconciler:
    def __init__(self, service: ExactlyOnceService, *, interval: float | None = None,
                 sweep_interval: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.interval = interval if interval is not None else service.settings.reconcile_interval_seconds
        self.sweep_interval = (sweep_interval if sweep_interval is not None
                               else service.settings.sweep_interval_seconds)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0
        self.runs = 0

    def run_once(self) -> tuple[int, int]:
        """One pass: ``(intents resolved, keys swept)``; the sweep only when it is due."""
        resolved = self.service.reconcile()
        swept = 0
        now = self._clock()
        if now >= self._next_sweep:
            swept = self.service.sweep()
            self._next_sweep = now + self.sweep_interval
        self.runs += 1
        if resolved or swept:
            log.info("reconciler: %d intent(s) resolved, %d key(s) expired", resolved, swept)
        return resolved, swept

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the store may be down for a moment; try again next round
                log.warning("reconciler pass failed", exc_info=True)
            self._stop.wait(self.interval)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="corebridge-reconciler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
