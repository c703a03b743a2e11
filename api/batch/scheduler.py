"""The batch pull inside ``corebridge serve``: pull + ingest every ``interval`` seconds on a daemon thread.

:class:`PullScheduler` runs a job (by default :func:`pull_job`: connect to the core's SFTP outbox,
ingest every new TXNHIST file into the batch store, disconnect) every ``batch.schedule_interval_seconds``.
A failing run is logged and the next one comes at the next interval: the facade never crashes
because of it. ``stop()`` wakes the thread and waits for the run in progress to finish (a file is
ingested all or nothing, so an interrupted process loses nothing either).

Several facade instances may each run a scheduler against one PostgreSQL store: the store's claims
make sure a file is ingested once (see :mod:`api.batch.store`).

Logs name files and counts, never account numbers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .ingest import FileReport, TxnhistIngestor
from .pull import PullDirs, pull

if TYPE_CHECKING:
    from adapters.ports import BatchDropbox
    from mappings.engine import MappingRegistry

    from .settings import BatchSettings
    from .store import BatchStore

__all__ = ["PullScheduler", "pull_job"]

log = logging.getLogger("api.batch.scheduler")


def pull_job(store: BatchStore, registry: MappingRegistry, batch: BatchSettings,
             dropbox_factory: Callable[[], BatchDropbox], *, outbox: str) -> Callable[[], list[FileReport]]:
    """One scheduled run: a fresh dropbox session, every new outbox file ingested, the session closed."""
    dirs = PullDirs(batch.work_dir)
    ingestor = TxnhistIngestor(store, registry, policy=batch.policy, quarantine_dir=dirs.quarantine,
                               rejects_dir=dirs.rejects, decoder_process=batch.decoder_process)

    def run() -> list[FileReport]:
        dropbox = dropbox_factory()
        try:
            return pull(dropbox, ingestor, outbox=outbox, dirs=dirs, pattern=batch.pattern)
        finally:
            try:
                dropbox.close()
            except Exception:  # noqa: BLE001 - the run's outcome matters, not the goodbye
                log.warning("closing the batch dropbox failed", exc_info=True)

    return run


class PullScheduler:
    """Runs ``job`` every ``interval`` seconds (the first run right away) until :meth:`stop`."""

    def __init__(self, job: Callable[[], Any], interval: float, *, name: str = "batch-pull") -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.job = job
        self.interval = float(interval)
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.runs = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_run_at: float | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> PullScheduler:
        with self._lock:
            if self.running:
                return self
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        log.info("batch pull scheduled every %.1f s", self.interval)
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the run in progress (if any); waits up to ``timeout`` seconds for it."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the batch pull did not finish within %.1f s of stop; it is abandoned", timeout or 0)

    def run_once(self) -> Any:
        """One run, errors logged and counted (never raised)."""
        started = time.monotonic()
        try:
            result = self.job()
        except Exception as exc:  # noqa: BLE001 - a failing pull must never take the facade down
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("batch pull failed (%s); next attempt in %.1f s", type(exc).__name__, self.interval,
                        exc_info=True)
            return None
        finally:
            self.runs += 1
            self.last_run_at = time.time()
        self.last_error = None
        if isinstance(result, list):
            for report in result:
                if isinstance(report, FileReport) and report.status in ("loaded", "quarantined"):
                    log.info("batch pull: %s %s (%d records, %d new, %d rejects)", report.file_name, report.status,
                             report.records, report.loaded, report.rejects)
            log.debug("batch pull: %d file(s) in %.2f s", len(result), time.monotonic() - started)
        return result

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            if self._stop.wait(self.interval):
                break

    def snapshot(self) -> dict[str, Any]:
        return {"interval_seconds": self.interval, "running": self.running, "runs": self.runs,
                "failures": self.failures, "last_error": self.last_error, "last_run_at": self.last_run_at}
