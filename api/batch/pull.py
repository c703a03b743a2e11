"""``batch pull``: list the core's outbox, download new TXNHIST files, ingest each one.

The adapter downloads into a temp name and renames when complete (with its SHA-256), so a file
handed to the ingestor is always whole. After ingestion a loaded file moves to ``archive/``; a
quarantined one is already in ``quarantine/``; one the store knew is removed again.

A listing entry whose name, size and mtime match a file already ingested or quarantined is not
downloaded at all (re-runs and scheduled pulls cost one listing). Any other size or mtime under a
known name is downloaded, and its SHA-256 decides: the same content is a no-op, other content is
ingested and reported as changed.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.ports import BatchDropbox

from .ingest import FileReport, TxnhistIngestor

__all__ = ["PullDirs", "pull"]

TXNHIST_PATTERN = "TXNHIST.D*"


@dataclass(frozen=True)
class PullDirs:
    """The local folders of a pull, under one work directory."""

    root: Path

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects"


def pull(dropbox: BatchDropbox, ingestor: TxnhistIngestor, *, outbox: str, dirs: PullDirs,
         pattern: str = TXNHIST_PATTERN, on_file: Callable[[str, int], None] | None = None) -> list[FileReport]:
    """Every matching outbox file, in name order (so sequence numbers come in order)."""
    reports: list[FileReport] = []
    for remote in dropbox.list(outbox, pattern):
        known = ingestor.known_listing(remote.name, remote.size, remote.modified)
        if known is not None:
            reports.append(known)
            continue
        if on_file is not None:
            on_file(remote.name, remote.size)
        fetched = dropbox.fetch(outbox, remote.name, dirs.incoming)
        report = ingestor.ingest(fetched.path, fetched.sha256, remote.name, size=fetched.size,
                                 modified=remote.modified)
        if report.status == "loaded":
            dirs.archive.mkdir(parents=True, exist_ok=True)
            shutil.move(str(fetched.path), dirs.archive / remote.name)
        elif report.status != "quarantined":
            with contextlib.suppress(OSError):
                fetched.path.unlink()
        reports.append(report)
    return reports
