"""The SFTP face: a real SSH server on loopback (paramiko's server side) over the batch folders.

The client sees ``config.sftp_root`` as ``/``:

  ``/outbox``   end-of-day files and payment acks; read-only (writes, removes, renames are
                refused). Files being written (``.name.tmp``) are hidden: a listed file is complete.
  ``/inbox``    upload payment files here, under a temporary name, then rename them to their
                final name; the rename (or the close of a direct upload under a final name)
                hands the file to the payment inbox. ``processed/`` and ``rejected/`` below it
                are read-only. Nothing else is writable; paths outside the root are refused.

Auth: password (``config.sftp_user`` / ``config.sftp_password``) or public key (the demo client
key ``config.client_key_path`` and any key in ``<data_dir>/keys/authorized_keys``, re-read at
each attempt). Host key: a persistent Ed25519 key at ``config.host_key_path``.

Faults: each SFTP request asks ``faults.decide("sftp", op)`` with op one of ``connect`` (before
the SSH banner), ``open``, ``read``, ``write``, ``list``, ``stat``, ``rename``, ``remove``. Latency
delays the answer; ``fault``/``http500`` answer SSH_FX_FAILURE; ``reset`` drops the connection
with a TCP RST; ``hang`` waits ``hang_s`` and then resets. An outage of face ``sftp`` closes the
listening socket and every session; its end listens again on the same port.

One thread accepts; each connection gets a thread (paramiko adds its transport thread and one
thread per SFTP channel). Accepted sockets get TCP_NODELAY: without it paramiko's small
request/response exchanges stall ~36 ms each on Nagle + delayed ACK.
"""

from __future__ import annotations

import errno
import hmac
import logging
import os
import posixpath
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.sftp import (
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)

from ..batch.files import is_complete_name
from ..batch.payments import PaymentInbox
from ..faults import FaultInjector
from .keys import ensure_ed25519_key, read_public_keys

log = logging.getLogger(__name__)

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
HOST_KEY_COMMENT = "corebridge-mock-host"
CLIENT_KEY_COMMENT = "corebridge-demo-client"


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, not an orderly FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


@dataclass(eq=False)
class _Session:
    """One client connection."""

    face: SftpFace
    sock: socket.socket
    addr: Any
    transport: paramiko.Transport | None = None
    thread: threading.Thread | None = None
    username: str = ""
    closed: threading.Event = field(default_factory=threading.Event)
    channels: list[paramiko.Channel] = field(default_factory=list)

    def close(self, *, reset: bool = False) -> None:
        if reset:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.closed.set()
        if self.transport is not None:
            self.transport.close()
        elif reset:
            _reset(self.sock)
        else:
            self.sock.close()


class _Server(paramiko.ServerInterface):
    """SSH-level policy for one connection: who may log in, which channels."""

    def __init__(self, session: _Session) -> None:
        self.session = session
        self.face = session.face

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_password(self, username: str, password: str) -> int:
        cfg = self.face.config
        ok_user = hmac.compare_digest(username.encode(), cfg.sftp_user.encode())
        ok_pass = hmac.compare_digest(password.encode(), cfg.sftp_password.encode())
        if ok_user and ok_pass:
            self.session.username = username
            return paramiko.AUTH_SUCCESSFUL
        log.info("sftp: password refused for %r from %s", username, self.session.addr)
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == self.face.config.sftp_user and key in self.face.authorized_keys():
            self.session.username = username
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        return name == "sftp" and super().check_channel_subsystem_request(channel, name)


class _Handle(SFTPHandle):
    """An open file: reads and writes go through the fault injector."""

    def __init__(self, si: _SftpInterface, local: Path, flags: int, fobj: Any, writing: bool) -> None:
        super().__init__(flags)
        self.si = si
        self.local = local
        self.writing = writing
        self.fobj = fobj
        if writing:
            self.writefile = fobj
        if not writing or flags & os.O_RDWR:
            self.readfile = fobj

    def read(self, offset: int, length: int) -> bytes | int:
        code = self.si.fault("read")
        if code is not None:
            return code
        return super().read(offset, length)

    def write(self, offset: int, data: bytes) -> int:
        code = self.si.fault("write")
        if code is not None:
            return code
        return super().write(offset, data)

    def stat(self) -> SFTPAttributes | int:
        try:
            return SFTPAttributes.from_stat(os.fstat(self.fobj.fileno()), self.local.name)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    def chattr(self, attr: SFTPAttributes) -> int:
        return SFTP_OK if self.writing else SFTP_PERMISSION_DENIED  # accepted, ignored

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.writing:
                self.si.upload_closed(self.local)


class _SftpInterface(SFTPServerInterface):
    """The file system the client sees, rooted at ``config.sftp_root``."""

    def __init__(self, server: _Server, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.session = server.session
        self.face = server.face
        self.root = self.face.root
        self.ended = False

    def session_ended(self) -> None:
        self.ended = True  # handles still open now are closed by paramiko: aborted uploads

    # -- faults -----------------------------------------------------------------------------
    def fault(self, op: str) -> int | None:
        """None to go on, or the SFTP status to answer (after any injected delay)."""
        decision = self.face.faults.decide("sftp", op)
        if decision.delay_s:
            time.sleep(decision.delay_s)
        if decision.error is None:
            return None
        log.info("fault injection: sftp %s -> %s", op, decision.error)
        if decision.error == "hang":
            self.face.stopping.wait(decision.hang_s)
            self.session.close(reset=True)
        elif decision.error == "reset":
            self.session.close(reset=True)
        return SFTP_FAILURE

    # -- paths ------------------------------------------------------------------------------
    @staticmethod
    def virtual(path: str) -> str | None:
        """The normalised absolute client path, or None if it climbs above ``/``."""
        depth, parts = 0, []
        for part in path.replace("\\", "/").split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    return None
                parts.pop()
                depth -= 1
            else:
                parts.append(part)
                depth += 1
        return "/" + "/".join(parts)

    def resolve(self, path: str) -> tuple[str, Path] | int:
        vpath = self.virtual(path)
        if vpath is None:
            return SFTP_PERMISSION_DENIED
        local = self.root.joinpath(*[p for p in vpath.split("/") if p])
        try:
            real = local.resolve()
        except OSError:
            return SFTP_PERMISSION_DENIED
        if real != self.root and self.root not in real.parents:
            return SFTP_PERMISSION_DENIED  # a symlink pointing out of the root
        return vpath, local

    @staticmethod
    def writable(vpath: str) -> bool:
        """Only files directly in /inbox may be created, written, renamed or removed."""
        parts = vpath.strip("/").split("/")
        return len(parts) == 2 and parts[0] == "inbox"

    @staticmethod
    def hidden(vpath: str) -> bool:
        """Outbox files being written (dot names) do not exist for clients."""
        parts = vpath.strip("/").split("/")
        return len(parts) >= 2 and parts[0] == "outbox" and parts[-1].startswith(".")

    def enter(self, op: str, path: str, *, visible: bool = False) -> tuple[str, Path] | int:
        """The prologue of every path operation: an injected fault, then the path resolved inside the
        root (``visible``: a hidden in-progress file counts as absent)."""
        code = self.fault(op)
        if code is not None:
            return code
        r = self.resolve(path)
        if isinstance(r, int) or not visible or not self.hidden(r[0]):
            return r
        return SFTP_NO_SUCH_FILE

    # -- SFTPServerInterface ---------------------------------------------------------------------
    def canonicalize(self, path: str) -> str:
        return self.virtual(path) or "/"

    def list_folder(self, path: str) -> list[SFTPAttributes] | int:
        r = self.enter("list", path, visible=True)
        if isinstance(r, int):
            return r
        vpath, local = r
        out = []
        try:
            with os.scandir(local) as it:
                for entry in sorted(it, key=lambda e: e.name):
                    if self.hidden(posixpath.join(vpath, entry.name)):
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    out.append(SFTPAttributes.from_stat(st, entry.name))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return out

    def stat(self, path: str) -> SFTPAttributes | int:
        r = self.enter("stat", path, visible=True)
        if isinstance(r, int):
            return r
        vpath, local = r
        try:
            return SFTPAttributes.from_stat(os.stat(local), local.name)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    lstat = stat

    def open(self, path: str, flags: int, attr: SFTPAttributes) -> SFTPHandle | int:
        r = self.enter("open", path)
        if isinstance(r, int):
            return r
        vpath, local = r
        writing = bool(flags & WRITE_FLAGS)
        if writing and not self.writable(vpath):
            return SFTP_PERMISSION_DENIED
        if not writing and self.hidden(vpath):
            return SFTP_NO_SUCH_FILE
        if local.is_dir():
            return SFTP_FAILURE
        if flags & os.O_WRONLY:
            mode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            mode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            mode = "rb"
        try:
            fd = os.open(local, flags | getattr(os, "O_BINARY", 0), 0o644)
            fobj = os.fdopen(fd, mode)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        if writing:
            self.face.inbox.hold(local)
        return _Handle(self, local, flags, fobj, writing)

    def upload_closed(self, local: Path) -> None:
        """A write handle closed: hand a complete file to the inbox; park an aborted one."""
        self.face.inbox.release(local)
        if not is_complete_name(local.name) or not local.exists():
            return
        if self.ended:
            parked = local.with_name(f".{local.name}.aborted")
            try:
                os.replace(local, parked)
                log.warning("sftp: upload of %s aborted by a lost connection; parked as %s",
                            local.name, parked.name)
            except OSError:
                log.exception("sftp: could not park aborted upload %s", local)
            return
        self.face.inbox.notify(local)

    def remove(self, path: str) -> int:
        r = self.enter("remove", path)
        if isinstance(r, int):
            return r
        vpath, local = r
        if not self.writable(vpath):
            return SFTP_PERMISSION_DENIED
        try:
            os.remove(local)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def _rename(self, oldpath: str, newpath: str, *, overwrite: bool) -> int:
        code = self.fault("rename")
        if code is not None:
            return code
        old, new = self.resolve(oldpath), self.resolve(newpath)
        if isinstance(old, int):
            return old
        if isinstance(new, int):
            return new
        if not (self.writable(old[0]) and self.writable(new[0])):
            return SFTP_PERMISSION_DENIED
        src, dst = old[1], new[1]
        try:
            if overwrite:
                os.replace(src, dst)
            else:
                # link + unlink: fails (instead of overwriting) when the target exists
                os.link(src, dst)
                os.unlink(src)
        except FileExistsError:
            return SFTP_FAILURE
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return SFTP_OP_UNSUPPORTED
            return SFTPServer.convert_errno(exc.errno)
        if is_complete_name(dst.name):
            self.face.inbox.notify(dst)
        return SFTP_OK

    def rename(self, oldpath: str, newpath: str) -> int:
        return self._rename(oldpath, newpath, overwrite=False)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self._rename(oldpath, newpath, overwrite=True)

    def mkdir(self, path: str, attr: SFTPAttributes) -> int:
        return SFTP_PERMISSION_DENIED

    def rmdir(self, path: str) -> int:
        return SFTP_PERMISSION_DENIED

    def chattr(self, path: str, attr: SFTPAttributes) -> int:
        r = self.resolve(path)
        if isinstance(r, int):
            return r
        return SFTP_OK if self.writable(r[0]) and r[1].exists() else SFTP_PERMISSION_DENIED

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_PERMISSION_DENIED

    def readlink(self, path: str) -> int:
        return SFTP_OP_UNSUPPORTED


class SftpFace:
    """The SFTP server: ``start()``, ``stop()``, ``port``, ``host_key_fingerprint``."""

    def __init__(self, config: Any, ledger: Any, engine: Any, faults: FaultInjector | None = None,
                 *, inbox: PaymentInbox | None = None) -> None:
        self.config = config
        self.ledger = ledger
        self.engine = engine
        self.faults = faults if faults is not None else FaultInjector()
        self._own_inbox = inbox is None
        self.inbox = inbox if inbox is not None else PaymentInbox(config, ledger, engine, self.faults)
        self.root = Path(config.sftp_root)
        self.host_key: paramiko.Ed25519Key | None = None
        self.client_key: paramiko.Ed25519Key | None = None
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._port = int(config.sftp_port)
        self._accept_thread: threading.Thread | None = None
        self._sessions: set[_Session] = set()
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> SftpFace:
        cfg = self.config
        for d in (cfg.outbox, cfg.inbox):
            Path(d).mkdir(parents=True, exist_ok=True)
        self.inbox.ensure_dirs()
        self.root = Path(cfg.sftp_root).resolve()
        self.host_key = ensure_ed25519_key(cfg.host_key_path, HOST_KEY_COMMENT)
        self.client_key = ensure_ed25519_key(cfg.client_key_path, CLIENT_KEY_COMMENT)
        self.stopping.clear()
        if not self.faults.is_down("sftp"):
            self._open_listener()
        self.faults.outage_listeners.append(self._on_outage)
        self._accept_thread = threading.Thread(target=self._accept_loop, name="sftp-accept",
                                               daemon=True)
        self._accept_thread.start()
        if self._own_inbox:
            self.inbox.start()
        self._started = True
        log.info("sftp face listening on %s:%d (host key %s)", cfg.host, self.port,
                 self.host_key_fingerprint)
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.stopping.set()
        try:
            self.faults.outage_listeners.remove(self._on_outage)
        except ValueError:
            pass
        self._close_listener()
        sessions = self._drop_sessions()
        if self._accept_thread is not None:
            self._accept_thread.join(5)
            self._accept_thread = None
        for s in sessions:
            if s.thread is not None:
                s.thread.join(5)
        if self._own_inbox:
            self.inbox.stop()

    def __enter__(self) -> SftpFace:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- views --------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def host_key_fingerprint(self) -> str:
        assert self.host_key is not None, "start() the face first"
        return self.host_key.fingerprint

    def known_hosts_line(self) -> str:
        """The line a client pins the host key with: ``[127.0.0.1]:PORT ssh-ed25519 AAAA...``."""
        assert self.host_key is not None, "start() the face first"
        host = self.config.host if self.port == 22 else f"[{self.config.host}]:{self.port}"
        return f"{host} {self.host_key.get_name()} {self.host_key.get_base64()}"

    def authorized_keys(self) -> list[paramiko.PKey]:
        keys: list[paramiko.PKey] = [self.client_key] if self.client_key is not None else []
        return keys + read_public_keys(Path(self.config.keys_dir) / "authorized_keys")

    @property
    def session_count(self) -> int:
        with self._lock:
            return len(self._sessions)

    # -- listening socket -------------------------------------------------------------------------
    def _open_listener(self) -> None:
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        last: OSError | None = None
        for _ in range(50):  # a just-closed port can take a moment to be free again
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.config.host, self._port))
            except OSError as exc:
                sock.close()
                last = exc
                if self._port == 0:
                    raise
                time.sleep(0.1)
                continue
            sock.listen(64)
            with self._lock:
                self._listener = sock
                self._port = sock.getsockname()[1]
            return
        raise OSError(f"sftp face cannot listen on {self.config.host}:{self._port}: {last}")

    def _close_listener(self) -> None:
        with self._lock:
            sock, self._listener = self._listener, None
        if sock is None:
            return
        try:
            # close() alone leaves the socket listening while the accept thread's select()
            # still holds it; shutdown() stops it at once (Linux) and wakes that select().
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _drop_sessions(self, *, reset: bool = False) -> list[_Session]:
        with self._lock:
            sessions = list(self._sessions)
        for s in sessions:
            try:
                s.close(reset=reset)
            except Exception:  # noqa: BLE001 - keep closing the others
                log.exception("sftp: closing a session failed")
        return sessions

    def _on_outage(self, face: str, down: bool) -> None:
        if face != "sftp" or self.stopping.is_set():
            return
        if down:
            log.warning("sftp face: outage: listener and %d session(s) closed", self.session_count)
            self._close_listener()
            self._drop_sessions(reset=True)
        else:
            log.warning("sftp face: outage over: listening again on port %d", self._port)
            with self._lock:
                listening = self._listener is not None
            if not listening:
                self._open_listener()

    # -- connections ------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            with self._lock:
                lsock = self._listener
            if lsock is None:
                self.stopping.wait(0.05)
                continue
            try:
                ready, _, _ = select.select([lsock], [], [], 0.2)
                if not ready:
                    continue
                sock, addr = lsock.accept()
            except (OSError, ValueError):
                continue  # closed under us (outage or stop)
            if self.stopping.is_set() or self.faults.is_down("sftp"):
                _reset(sock)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = _Session(self, sock, addr)
            session.thread = threading.Thread(target=self._serve, args=(session,),
                                              name=f"sftp-conn-{addr[1]}", daemon=True)
            with self._lock:
                self._sessions.add(session)
            session.thread.start()

    def _serve(self, session: _Session) -> None:
        try:
            decision = self.faults.decide("sftp", "connect")
            if decision.delay_s:
                self.stopping.wait(decision.delay_s)
            if decision.error is not None:
                log.info("fault injection: sftp connect -> %s", decision.error)
                if decision.error == "hang":
                    self.stopping.wait(decision.hang_s)
                _reset(session.sock)
                return
            transport = paramiko.Transport(session.sock)
            session.transport = transport
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", SFTPServer, _SftpInterface)
            if session.closed.is_set():
                return
            try:
                transport.start_server(server=_Server(session))
            except (paramiko.SSHException, EOFError, OSError) as exc:
                log.info("sftp: handshake with %s failed: %s", session.addr, exc)
                return
            # Keep accepted channels referenced: paramiko holds them only weakly and a
            # collected Channel closes itself.
            while transport.is_active() and not session.closed.is_set():
                chan = transport.accept(0.5)
                if chan is not None:
                    session.channels = [c for c in session.channels if not c.closed] + [chan]
        except Exception:  # noqa: BLE001 - one broken connection must not hurt the face
            log.exception("sftp: connection from %s failed", session.addr)
        finally:
            if session.transport is not None:
                session.transport.close()
            else:
                try:
                    session.sock.close()
                except OSError:
                    pass
            with self._lock:
                self._sessions.discard(session)


__all__ = ["SftpFace"]
