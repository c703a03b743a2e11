"""``SftpBatchDropbox``: the :class:`~adapters.ports.BatchDropbox` port over SFTP (paramiko).

What the core's batch face needs from us, and how this module keeps it:

* **Only pinned hosts.** ``SSHClient`` with a ``RejectPolicy`` subclass and either a known_hosts file
  (``load_host_keys``) or an OpenSSH ``SHA256:`` fingerprint (:class:`PinnedFingerprintPolicy`). A
  different key stops the connection after the key exchange, before authentication, with a
  :class:`HostKeyMismatch` naming the key seen and the key expected. Never a policy that adds unknown keys, never the
  user's ``~/.ssh`` (``look_for_keys=False, allow_agent=False``, no system host keys).
* **No partial files, either way.** ``fetch`` downloads into ``.<name>.<random>.part`` in the destination
  directory, hashing (SHA-256) while writing, fsyncs, checks the byte count against the remote ``stat``,
  then ``os.replace``\\ s it into place. ``upload`` writes ``.<name>.part`` (a dot name *and* a temp suffix:
  every inbox scanner skips it), checks the remote size, then renames it to the final name with plain
  SFTP ``rename``, which (unlike ``posix-rename@openssh.com``) refuses to overwrite. An existing final name
  is refused up front with :class:`RemoteFileExists`. A stale ``.part`` left by an upload cut off before its
  rename is removed by the next upload of that name, which starts over: a partial file is never renamed.
* **Timeouts everywhere a thread could block**: TCP connect, SSH banner, authentication, channel open, and
  every SFTP request (the channel's timeout: the longest wait for any single answer; a large transfer is
  bounded per answer, not in total). ``timeout=`` on a call (the resilience pipeline's attempt budget)
  overrides ``operation_timeout`` for that call and caps the connection timeouts if it has to connect.
* **Reconnect.** Before each operation a dead transport (``is_active()``) is replaced by a new session. An
  operation that fails because the session dropped is retried once on a fresh session if it is idempotent
  (``list``, ``fetch``); ``upload`` is not retried here (its error says whether the rename may have been
  sent: ``outcome_unknown``), but running it again is safe because it starts over with a fresh temp file.
  After a timeout or a failure in the middle of a transfer the session is discarded, since paramiko's
  pipelined requests would leave it out of step.
* **One session, one lock.** paramiko's ``SFTPClient`` is not safe for concurrent use, so one SSH session
  with one SFTP channel is shared behind an ``RLock``: operations from several threads run one at a time.
  Batch traffic is a handful of files a day; a session per call would pay a key exchange and a login the
  core records (6-8 ms on loopback, more over a WAN) for every ``list``, and parallel transfers do not pay:
  two 32 MB files fetched by two sessions in parallel took longer than one after the other on one session
  (124-156 vs 188-208 MB/s; paramiko's per-byte work holds the GIL). ``close()`` does not wait for the
  lock, so it can interrupt a hung call.
* **Errors.** Every paramiko/socket/SFTP-status exception is translated at this edge
  (:mod:`adapters.sftp_errors`): no paramiko type leaves this module.
* **Speed** (``benchmarks/bench_sftp.py``; 64 MB from the mock face in another process, warm session,
  medians): ``TCP_NODELAY`` on our own socket (without it each small request stalls on Nagle + delayed
  ACK); prefetch with no cap on requests in flight (204 MB/s; a cap of 256: 199, of 64: 93, and paramiko's
  capped prefetch thread busy-waits forever if the session dies mid-file); reads of 32 KiB (paramiko's
  request size: larger reads concatenate bytes quadratically); AES-GCM preferred (204 MB/s against 169
  for paramiko's default AES-CTR + HMAC, which stays as a fallback). Bigger SSH windows or packets
  measured no better.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import logging
import os
import posixpath
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import paramiko

from adapters.errors import BackendFault, BackendTimeout, BackendUnavailable, CoreError, RecordNotFound
from adapters.ports import FetchedFile, RemoteFile
from adapters.sftp_errors import (
    AuthenticationFailed,
    HostKeyMismatch,
    LocalIOError,
    RemoteFileExists,
    convert,
    is_connection_lost,
    local_io,
    translate,
)
from adapters.sftp_hostkeys import (
    PinnedFingerprintPolicy,
    RejectUnknownHostPolicy,
    known_host_keys,
    normalise_fingerprint,
)

__all__ = [
    "AuthenticationFailed",
    "HostKeyMismatch",
    "LocalIOError",
    "PinnedFingerprintPolicy",
    "RemoteFileExists",
    "SftpBatchDropbox",
    "SftpSettings",
    "is_complete_name",
]

log = logging.getLogger(__name__)

BACKEND = "sftp"
CHUNK = 32768  # paramiko's SFTP request size; prefetched chunks come back this size
TEMP_SUFFIXES = (".part", ".tmp", ".filepart")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class SftpSettings:
    """Where the batch dropbox is and how to reach it. Secrets are left out of ``repr``.

    Pin the host key with ``known_hosts_path`` (a known_hosts file with an entry for ``[host]:port``)
    or ``host_key_fingerprint`` (``SHA256:...`` as ``ssh-keygen -lf`` prints it); at least one is
    required. With both, they must agree, and the fingerprint is what each connection checks.
    Authenticate with ``private_key_path`` (OpenSSH/PEM; ``private_key_passphrase`` if encrypted),
    ``password``, or both (the key is tried first).
    """

    host: str
    port: int = 22
    username: str
    password: str | None = field(default=None, repr=False)
    private_key_path: Path | None = None
    private_key_passphrase: str | None = field(default=None, repr=False)
    known_hosts_path: Path | None = None
    host_key_fingerprint: str | None = None
    connect_timeout: float = 10.0
    banner_timeout: float = 10.0
    auth_timeout: float = 10.0
    channel_timeout: float = 10.0
    operation_timeout: float = 30.0
    keepalive_interval: int = 30  # seconds between SSH keepalives (0: none); keeps NAT/firewall state
    outbox: str = "/outbox"  # the core's files for us (end-of-day files, acks)
    inbox: str = "/inbox"  # our files for the core (payment batches)
    download_dir: Path = Path("var/batch/incoming")
    prefetch_requests: int | None = None  # cap on read requests in flight; None: whole file (fastest)
    preferred_ciphers: tuple[str, ...] = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
    disabled_ciphers: tuple[str, ...] = ("3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc")
    disabled_macs: tuple[str, ...] = ("hmac-md5", "hmac-md5-96", "hmac-sha1-96")

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SftpSettings.host is required")
        if not 0 < int(self.port) < 65536:
            raise ValueError(f"SftpSettings.port {self.port!r} is not a TCP port")
        if not self.username:
            raise ValueError("SftpSettings.username is required")
        for name in ("private_key_path", "known_hosts_path", "download_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.known_hosts_path is None and not self.host_key_fingerprint:
            raise ValueError("pin the SFTP host key: set known_hosts_path or host_key_fingerprint "
                             "(an unpinned host is never trusted)")
        if self.host_key_fingerprint:
            object.__setattr__(self, "host_key_fingerprint", normalise_fingerprint(self.host_key_fingerprint))
        if self.password is None and self.private_key_path is None:
            raise ValueError("set password or private_key_path for the SFTP login")
        for name in ("connect_timeout", "banner_timeout", "auth_timeout", "channel_timeout", "operation_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SftpSettings.{name} must be > 0 seconds, got {getattr(self, name)!r}")
        if self.prefetch_requests is not None and self.prefetch_requests < 1:
            raise ValueError("SftpSettings.prefetch_requests must be >= 1 or None")
        for name in ("outbox", "inbox"):
            if not getattr(self, name):
                raise ValueError(f"SftpSettings.{name} must name a remote folder")


@dataclass
class _OpState:
    """What an operation tells ``_run`` about how far it got."""

    dirty: bool = False  # pipelined requests in flight: a failure leaves the session unusable
    outcome_unknown: bool = False  # a write that may have been applied is in flight (the rename)
    alive_at_failure: bool | None = None  # set when the operation closed the session itself


class _Session:
    """One SSH connection and its SFTP channel."""

    def __init__(self, client: paramiko.SSHClient, sftp: paramiko.SFTPClient) -> None:
        self.client = client
        self.sftp = sftp

    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()

    def settimeout(self, seconds: float) -> None:
        self.sftp.get_channel().settimeout(seconds)

    def close(self) -> None:
        for closer in (self.sftp.close, self.client.close):
            try:
                closer()
            except Exception:  # noqa: BLE001 - closing a broken session must not raise
                log.debug("sftp: error while closing a session", exc_info=True)


class _LocalReader:
    """The upload's source file, with its read errors marked local (not the server's fault)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, size: int = -1) -> bytes:
        with local_io():
            return self._f.read(size)


def is_complete_name(name: str) -> bool:
    """False for names uploaders use while a transfer runs (dot names, .part/.tmp/.filepart)."""
    return bool(name) and not name.startswith(".") and not name.lower().endswith(TEMP_SUFFIXES)


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        raise ValueError(f"{name!r} is not a plain file name")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_private_key(settings: SftpSettings) -> paramiko.PKey | None:
    if settings.private_key_path is None:
        return None
    try:
        return paramiko.PKey.from_path(settings.private_key_path, settings.private_key_passphrase)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise ValueError(f"cannot load the SFTP private key {settings.private_key_path}: {exc}") from None


class SftpBatchDropbox:
    """:class:`~adapters.ports.BatchDropbox` over SFTP; see the module docstring for the guarantees.

    Construction reads the private key and the known_hosts file (a misconfiguration fails here, as a
    ``ValueError``) but does not connect: the first operation does.
    """

    backend = BACKEND

    def __init__(self, settings: SftpSettings) -> None:
        self.settings = settings
        self._pkey = _load_private_key(settings)
        self._check_pins()
        self._lock = threading.RLock()
        self._session: _Session | None = None
        self._closed = False
        self.sessions_opened = 0  # how many SSH sessions this adapter has opened (reconnects show here)

    # -- the port ------------------------------------------------------------------------------
    def list(self, folder: str, pattern: str = "*", *, timeout: float | None = None) -> list[RemoteFile]:
        """Complete regular files in ``folder`` matching ``pattern`` (fnmatch, case-sensitive), by name.

        Names of transfers in progress (dot names, ``.part``/``.tmp``/``.filepart``) are never listed.
        """

        def op(session: _Session, state: _OpState) -> list[RemoteFile]:
            out = []
            try:
                entries = session.sftp.listdir_attr(folder)
            except FileNotFoundError:
                raise RecordNotFound(f"no remote folder {folder}", backend=BACKEND, operation="list") from None
            for attr in entries:
                name = attr.filename
                if attr.st_mode is not None and not stat.S_ISREG(attr.st_mode):
                    continue
                if not is_complete_name(name) or not fnmatch.fnmatchcase(name, pattern):
                    continue
                modified = dt.datetime.fromtimestamp(attr.st_mtime or 0, tz=dt.UTC)
                out.append(RemoteFile(name=name, size=int(attr.st_size or 0), modified=modified))
            return sorted(out, key=lambda f: f.name)

        return self._run("list", op, idempotent=True, timeout=timeout)

    def fetch(self, folder: str, name: str, dest_dir: Path | None = None, *,
              timeout: float | None = None) -> FetchedFile:
        """Download ``folder/name`` to ``dest_dir/name`` (default: ``settings.download_dir``).

        The file appears under its name only when complete, fsynced and of the remote size; an
        existing local file of that name is replaced. Missing remote file: :class:`RecordNotFound`.
        """
        _check_name(name)
        dest = Path(dest_dir) if dest_dir is not None else self.settings.download_dir
        with local_io():
            dest.mkdir(parents=True, exist_ok=True)
        remote = posixpath.join(folder, name)

        def op(session: _Session, state: _OpState) -> FetchedFile:
            try:
                attr = session.sftp.stat(remote)
            except FileNotFoundError:
                raise RecordNotFound(f"no remote file {remote}", backend=BACKEND, operation="fetch") from None
            if attr.st_mode is not None and not stat.S_ISREG(attr.st_mode):
                raise RecordNotFound(f"{remote} is not a regular file", backend=BACKEND, operation="fetch")
            size = int(attr.st_size or 0)
            with local_io():
                fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest)
            tmp = Path(tmp_name)
            try:
                digest, received = self._download(session, state, remote, size, fd)
                if received != size:
                    raise BackendFault(f"{remote}: received {received} bytes but the server's stat said {size}",
                                       backend=BACKEND, operation="fetch")
                final = dest / name
                with local_io():
                    os.replace(tmp, final)
                    _fsync_dir(dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            return FetchedFile(name=name, path=final, size=size, sha256=digest)

        return self._run("fetch", op, idempotent=True, timeout=timeout)

    def upload(self, local: Path, folder: str, name: str, *, timeout: float | None = None) -> None:
        """Publish ``local`` as ``folder/name``: upload as ``.<name>.part``, verify its size, rename.

        Refuses (:class:`RemoteFileExists`) if ``folder/name`` exists. ``name`` must be a complete name
        (no leading dot, no temp suffix), or the core would never read it.
        """
        _check_name(name)
        if not is_complete_name(name):
            raise ValueError(f"{name!r} is a temporary-file name; the core would never take it")
        final = posixpath.join(folder, name)
        temp = posixpath.join(folder, f".{name}.part")
        with local_io():
            src = open(local, "rb")  # closed in the finally below
        try:
            with local_io():
                size = os.fstat(src.fileno()).st_size

            def op(session: _Session, state: _OpState) -> None:
                sftp = session.sftp
                if _exists(sftp, final):
                    raise RemoteFileExists(path=final)
                with contextlib.suppress(FileNotFoundError):
                    sftp.remove(temp)  # a stale temp from an upload cut off before its rename
                with local_io():
                    src.seek(0)
                state.dirty = True
                sftp.putfo(_LocalReader(src), temp, file_size=size, confirm=False)
                state.dirty = False
                got = sftp.stat(temp).st_size
                if got != size:
                    _remove_quietly(sftp, temp)
                    raise BackendFault(f"{temp} is {got} bytes on the server but {size} here: not published",
                                       backend=BACKEND, operation="upload")
                if _exists(sftp, final):  # published by someone else meanwhile
                    _remove_quietly(sftp, temp)
                    raise RemoteFileExists(path=final)
                state.outcome_unknown = True
                try:
                    sftp.rename(temp, final)  # SSH_FXP_RENAME: never overwrites (unlike posix-rename)
                except OSError as exc:
                    if is_connection_lost(exc) or isinstance(exc, socket.timeout):
                        raise  # the rename may have been applied: outcome unknown
                    state.outcome_unknown = False
                    if _exists(sftp, final):
                        _remove_quietly(sftp, temp)
                        raise RemoteFileExists(path=final) from exc
                    raise
                state.outcome_unknown = False

            self._run("upload", op, idempotent=False, timeout=timeout)
        finally:
            src.close()

    def close(self) -> None:
        """Close the session; later calls raise ``BackendUnavailable``. Does not wait for a running call."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> SftpBatchDropbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.settings
        return f"SftpBatchDropbox({s.username}@{s.host}:{s.port})"

    # -- sessions ------------------------------------------------------------------------------
    def _run(self, operation: str, fn: Callable[[_Session, _OpState], T], *, idempotent: bool,
             timeout: float | None) -> T:
        attempts = 2 if idempotent else 1
        with self._lock:
            for attempt in range(1, attempts + 1):
                session = self._ensure_session(operation, timeout)
                state = _OpState()
                op_timeout = timeout if timeout is not None else self.settings.operation_timeout
                try:
                    with translate(operation):
                        session.settimeout(op_timeout)
                    return fn(session, state)
                except BaseException as exc:
                    alive = state.alive_at_failure if state.alive_at_failure is not None else session.alive()
                    lost = is_connection_lost(exc) or not alive
                    if lost or state.dirty or isinstance(exc, socket.timeout):
                        self._discard(session)
                    err = convert(exc, operation, outcome_unknown=state.outcome_unknown, timeout=op_timeout)
                    if err is None:
                        raise
                    if lost and attempt < attempts and not self._closed:
                        log.warning("sftp %s: session lost (%s); retrying once on a new session", operation, err)
                        continue
                    if err is exc:
                        raise
                    raise err from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_session(self, operation: str, limit: float | None = None) -> _Session:
        if self._closed:
            raise BackendUnavailable("the SFTP dropbox is closed", backend=BACKEND, operation=operation)
        session = self._session
        if session is not None and not session.alive():
            log.warning("sftp: session to %s:%d is gone; reconnecting", self.settings.host, self.settings.port)
            self._discard(session)
            session = None
        if session is None:
            session = self._connect(operation, limit)
            if self._closed:  # close() ran while we were connecting
                session.close()
                raise BackendUnavailable("the SFTP dropbox is closed", backend=BACKEND, operation=operation)
            self._session = session
        return session

    def _discard(self, session: _Session) -> None:
        if self._session is session:
            self._session = None
        session.close()

    def _connect(self, operation: str, limit: float | None = None) -> _Session:
        """A new session; ``limit`` (the call's ``timeout``) caps each of the connection timeouts."""
        s = self.settings

        def capped(value: float) -> float:
            return value if limit is None else min(value, limit)
        sock: socket.socket | None = None
        client: paramiko.SSHClient | None = None
        started = time.monotonic()
        try:
            with translate(operation):
                sock = socket.create_connection((s.host, s.port), timeout=capped(s.connect_timeout))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client = paramiko.SSHClient()
                self._install_pin(client)
                client.connect(
                    s.host, s.port, username=s.username, password=s.password, pkey=self._pkey, sock=sock,
                    timeout=capped(s.connect_timeout), banner_timeout=capped(s.banner_timeout),
                    auth_timeout=capped(s.auth_timeout), channel_timeout=capped(s.channel_timeout),
                    allow_agent=False, look_for_keys=False,
                    disabled_algorithms={"ciphers": list(s.disabled_ciphers), "macs": list(s.disabled_macs)},
                    transport_factory=self._transport,
                )
                transport = client.get_transport()
                if transport is None or not transport.is_active():
                    raise BackendUnavailable("the SSH session closed during login", backend=BACKEND,
                                             operation=operation)
                if s.keepalive_interval:
                    transport.set_keepalive(s.keepalive_interval)
                sftp = client.open_sftp()
        except BaseException as exc:
            if client is not None:
                client.close()
            if sock is not None:
                sock.close()
            if isinstance(exc, HostKeyMismatch | AuthenticationFailed):
                log.error("sftp: %s", exc)
            waited = time.monotonic() - started
            if isinstance(exc, BackendUnavailable) and waited >= 0.9 * capped(s.banner_timeout):
                # paramiko reports a banner that never came as "No existing session" or "Error reading
                # SSH protocol banner", depending on where its reader thread noticed: both are our timeout
                raise BackendTimeout(f"no SSH banner within {capped(s.banner_timeout):.2f} s", backend=BACKEND,
                                     operation=operation) from exc
            if isinstance(exc, Exception) and not isinstance(exc, CoreError | LocalIOError):
                # paramiko raises a bare Exception in a few corners of connect (e.g. a known_hosts
                # key type it cannot negotiate): still nothing of paramiko's may leave this module
                raise BackendFault(f"cannot establish the SSH session: {exc!r}", backend=BACKEND,
                                   operation=operation) from exc
            raise
        self.sessions_opened += 1
        log.info("sftp: connected to %s:%d as %s (session %d)", s.host, s.port, s.username, self.sessions_opened)
        return _Session(client, sftp)

    def _transport(self, sock: Any, disabled_algorithms: dict[str, Any] | None = None) -> paramiko.Transport:
        """paramiko's Transport with our cipher preference first (the others stay as fallbacks)."""
        transport = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
        options = transport.get_security_options()
        offered = list(options.ciphers)
        first = [c for c in self.settings.preferred_ciphers if c in offered]
        options.ciphers = tuple(first + [c for c in offered if c not in first])
        return transport

    def _install_pin(self, client: paramiko.SSHClient) -> None:
        s = self.settings
        if s.host_key_fingerprint:
            client.set_missing_host_key_policy(PinnedFingerprintPolicy(s.host_key_fingerprint))
            return
        assert s.known_hosts_path is not None
        with local_io():
            client.load_host_keys(str(s.known_hosts_path))  # re-read per connection: rotation needs no restart
        client.set_missing_host_key_policy(RejectUnknownHostPolicy(s.known_hosts_path))

    def _check_pins(self) -> None:
        """Fail at construction when the known_hosts pin cannot work or disagrees with the fingerprint."""
        s = self.settings
        if s.known_hosts_path is None:
            return
        try:
            keys = known_host_keys(s.known_hosts_path, s.host, s.port)
        except (OSError, paramiko.SSHException) as exc:
            raise ValueError(f"cannot read known_hosts file {s.known_hosts_path}: {exc}") from None
        if not keys:
            raise ValueError(f"known_hosts file {s.known_hosts_path} has no key for {s.host}:{s.port}")
        if s.host_key_fingerprint and s.host_key_fingerprint not in {k.fingerprint for k in keys}:
            seen = ", ".join(f"{k.get_name()} {k.fingerprint}" for k in keys)
            raise ValueError(f"known_hosts file {s.known_hosts_path} pins {seen} for {s.host}:{s.port}, "
                             f"which disagrees with host_key_fingerprint {s.host_key_fingerprint}")

    # -- transfer ------------------------------------------------------------------------------
    def _download(self, session: _Session, state: _OpState, remote: str, size: int, fd: int) -> tuple[str, int]:
        """Copy ``remote`` into the open local ``fd`` with prefetch; returns (sha256 hex, bytes)."""
        out = os.fdopen(fd, "wb")
        digest = hashlib.sha256()
        received = 0
        try:
            remote_file = session.sftp.open(remote, "rb")
            state.dirty = True
            try:
                remote_file.prefetch(size, self.settings.prefetch_requests)
                while True:
                    data = remote_file.read(CHUNK)
                    if not data:
                        break
                    digest.update(data)
                    try:
                        out.write(data)
                    except OSError as exc:
                        raise LocalIOError(exc.errno, exc.strerror or str(exc), exc.filename) from exc
                    received += len(data)
            except BaseException:
                # drop the session first: closing a file with prefetched reads still in flight would
                # wait for every one of them
                state.alive_at_failure = session.alive()
                self._discard(session)
                raise
            finally:
                remote_file.close()
            state.dirty = False
            with local_io():
                out.flush()
                os.fsync(out.fileno())
        finally:
            with contextlib.suppress(OSError):
                out.close()
        return digest.hexdigest(), received


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> None:
    with contextlib.suppress(OSError):
        sftp.remove(path)

