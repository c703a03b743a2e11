"""``FakeBatchDropbox``: an in-memory :class:`~adapters.ports.BatchDropbox` for tests of the layers above.

It keeps the real adapter's promises, and ``tests/contract/test_sftp_adapter.py`` runs the same port
tests against both, so the two cannot drift apart:

* ``list`` shows complete regular files only (no dot names, no ``.part``/``.tmp``/``.filepart``),
  sorted by name; a missing folder or file is ``RecordNotFound``.
* ``fetch`` writes a temp file in ``dest_dir`` and renames it into place, returning its SHA-256.
* ``upload`` refuses an existing final name (``RemoteFileExists``), clears a stale ``.<name>.part``,
  and publishes under the final name only when the whole file is there.
* after ``close()`` every call raises ``BackendUnavailable``.

The "server side" is plain methods (``put``, ``read``, ``names``), and ``fail_next`` makes the next
call of an operation raise a given error, for tests of retries and error mapping upstream.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import os
import posixpath
import tempfile
import threading
from pathlib import Path

from adapters.errors import BackendUnavailable, CoreError, RecordNotFound
from adapters.ports import FetchedFile, RemoteFile
from adapters.sftp import is_complete_name
from adapters.sftp_errors import RemoteFileExists

BACKEND = "sftp"


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        raise ValueError(f"{name!r} is not a plain file name")


class FakeBatchDropbox:
    """Folders of files in memory, behind one lock (safe to share between threads)."""

    def __init__(self, folders: tuple[str, ...] = ("/outbox", "/inbox"), *,
                 download_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, dict[str, tuple[bytes, dt.datetime]]] = {self._norm(f): {} for f in folders}
        self._failures: dict[str, list[CoreError]] = {}
        self._closed = False
        self.download_dir = download_dir or Path(tempfile.gettempdir()) / "fake-dropbox"
        self.calls: list[tuple[str, str]] = []  # (operation, remote path) in call order

    # -- the server side (for tests) -------------------------------------------------------------
    def put(self, folder: str, name: str, data: bytes, *, modified: dt.datetime | None = None) -> None:
        """Place a file as the core would (no temp-name protocol: it appears at once)."""
        with self._lock:
            self._folder(folder, "put")[name] = (bytes(data), modified or dt.datetime.now(dt.UTC))

    def read(self, folder: str, name: str) -> bytes | None:
        with self._lock:
            entry = self._files.get(self._norm(folder), {}).get(name)
            return entry[0] if entry is not None else None

    def names(self, folder: str) -> set[str]:
        """Every name in ``folder``, temp names included."""
        with self._lock:
            return set(self._files.get(self._norm(folder), {}))

    def fail_next(self, operation: str, error: CoreError) -> None:
        """The next call of ``operation`` (``list``/``fetch``/``upload``) raises ``error``."""
        with self._lock:
            self._failures.setdefault(operation, []).append(error)

    # -- the port ----------------------------------------------------------------------------------
    def list(self, folder: str, pattern: str = "*", *, timeout: float | None = None) -> list[RemoteFile]:
        with self._lock:
            self._enter("list", folder)
            files = self._folder(folder, "list")
            return [RemoteFile(name=n, size=len(data), modified=modified)
                    for n, (data, modified) in sorted(files.items())
                    if is_complete_name(n) and fnmatch.fnmatchcase(n, pattern)]

    def fetch(self, folder: str, name: str, dest_dir: Path | None = None, *,
              timeout: float | None = None) -> FetchedFile:
        _check_name(name)
        dest = Path(dest_dir) if dest_dir is not None else self.download_dir
        dest.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._enter("fetch", posixpath.join(folder, name))
            entry = self._folder(folder, "fetch").get(name)
            if entry is None:
                raise RecordNotFound(f"no remote file {posixpath.join(folder, name)}", backend=BACKEND,
                                     operation="fetch")
            data = entry[0]
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, dest / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return FetchedFile(name=name, path=dest / name, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    def upload(self, local: Path, folder: str, name: str, *, timeout: float | None = None) -> None:
        _check_name(name)
        if not is_complete_name(name):
            raise ValueError(f"{name!r} is a temporary-file name; the core would never take it")
        data = Path(local).read_bytes()  # a missing local file is the caller's OSError, as in the adapter
        final = posixpath.join(folder, name)
        with self._lock:
            self._enter("upload", final)
            files = self._folder(folder, "upload")
            if name in files:
                raise RemoteFileExists(path=final)
            files.pop(f".{name}.part", None)  # a stale temp from a cut-off upload
            files[name] = (data, dt.datetime.now(dt.UTC))

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> FakeBatchDropbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _norm(folder: str) -> str:
        return posixpath.normpath("/" + folder.strip("/"))

    def _folder(self, folder: str, operation: str) -> dict[str, tuple[bytes, dt.datetime]]:
        files = self._files.get(self._norm(folder))
        if files is None:
            raise RecordNotFound(f"no remote folder {folder}", backend=BACKEND, operation=operation)
        return files

    def _enter(self, operation: str, path: str) -> None:
        if self._closed:
            raise BackendUnavailable("the SFTP dropbox is closed", backend=BACKEND, operation=operation)
        self.calls.append((operation, path))
        pending = self._failures.get(operation)
        if pending:
            raise pending.pop(0)
