"""A polling thread that can also be woken at once: the inbox's fallback trigger.

The SFTP face wakes it (:meth:`PollingWatcher.kick`) when an upload is renamed to its final
name or closed; the poll every ``interval`` seconds catches files that arrive any other way
(a local copy, a restart with files already waiting).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PollingWatcher:
    """Calls ``callback()`` every ``interval`` seconds, or as soon as :meth:`kick` is called."""

    def __init__(self, callback: Callable[[], object], interval: float = 0.5,
                 name: str = "batch-watcher") -> None:
        self._callback = callback
        self.interval = interval
        self.name = name
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._callback()
            except Exception:  # noqa: BLE001 - a watcher must outlive one bad pass
                log.exception("%s: pass failed", self.name)
            self._wake.wait(self.interval)
            self._wake.clear()
