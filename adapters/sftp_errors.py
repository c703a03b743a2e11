"""The SFTP adapter's edge: paramiko, socket and SFTP-status exceptions become :mod:`adapters.errors`.

:func:`translate` is the one place that knows paramiko's exception zoo (httpx's
``map_httpcore_exceptions`` habit). Three errors are SFTP-specific and live here, each a subclass of
the tree so callers that only know :mod:`adapters.errors` still classify them correctly:

* :class:`HostKeyMismatch` (``BackendFault``): the server's host key is not the pinned one. It names the
  fingerprint it saw and what it expected, so an operator can tell a key rotation from an attack.
* :class:`AuthenticationFailed` (``BackendFault``): the server refused our credentials.
* :class:`RemoteFileExists` (``Rejected``): an upload would overwrite a file; refused, never retried and
  never counted by a circuit breaker (the path to the core is fine, the request is not).

A local file-system error (the download directory, the upload's source file) is *not* the core's fault:
it is raised as :class:`LocalIOError`, an ``OSError``, and passes through :func:`translate` untouched,
so a missing local file is never mistaken for a missing remote one.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator

import paramiko
from paramiko.sftp import SFTPError

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    CoreError,
    RecordNotFound,
    Rejected,
)

__all__ = [
    "AuthenticationFailed",
    "HostKeyMismatch",
    "LocalIOError",
    "RemoteFileExists",
    "convert",
    "is_connection_lost",
    "local_io",
    "translate",
]

BACKEND = "sftp"

# errno values that say "the path to the server broke", as opposed to an SFTP status from the server
_NETWORK_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.EHOSTUNREACH,
    errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT, errno.ENOTCONN, errno.EBADF,
})
# SSHException texts paramiko uses when the session went away under it
_DROPPED_TEXTS = ("connection dropped", "not active", "no existing session", "unable to open channel",
                  "error reading ssh protocol banner", "channel closed", "channel is not open",
                  "unable to connect", "transport shut down", "saw eof")


class HostKeyMismatch(BackendFault):
    """The server presented a host key other than the pinned one: nothing was sent after the handshake."""

    default_message = "host key refused"

    def __init__(self, message: str | None = None, *, hostname: str, seen_fingerprint: str, seen_type: str,
                 expected: str, operation: str | None = None) -> None:
        super().__init__(message, backend=BACKEND, operation=operation)
        self.hostname = hostname
        self.seen_fingerprint = seen_fingerprint
        self.seen_type = seen_type
        self.expected = expected

    def _detail(self) -> str:
        base = self.message or self.default_message
        return (f"{base}: {self.hostname} presented {self.seen_type} {self.seen_fingerprint}, "
                f"expected {self.expected}")


class AuthenticationFailed(BackendFault):
    """The server refused the credentials (password or key); retrying will not help."""

    default_message = "authentication failed"


class RemoteFileExists(Rejected):
    """An upload's final name already exists on the server: refused rather than overwritten."""

    default_message = "remote file already exists"

    def __init__(self, message: str | None = None, *, path: str, operation: str | None = "upload") -> None:
        super().__init__(message, reason_code="FILE_EXISTS", reason=path, backend=BACKEND, operation=operation)
        self.path = path


class LocalIOError(OSError):
    """A local file-system error during a transfer (not the core's fault, never retried)."""


@contextlib.contextmanager
def local_io() -> Iterator[None]:
    """Mark ``OSError`` from local file operations so :func:`translate` lets them through."""
    try:
        yield
    except LocalIOError:
        raise
    except OSError as exc:
        raise LocalIOError(exc.errno, exc.strerror or str(exc), exc.filename) from exc


def is_connection_lost(exc: BaseException) -> bool:
    """True when ``exc`` says the session (TCP or SSH transport) went away, as opposed to a refusal,
    an SFTP status or a timeout. Only these make an idempotent operation worth one more try."""
    if isinstance(exc, BackendUnavailable):
        return True
    if isinstance(exc, CoreError | LocalIOError | socket.timeout | paramiko.AuthenticationException):
        return False
    if isinstance(exc, EOFError | ConnectionError):
        return True
    if isinstance(exc, paramiko.SSHException):
        cause = exc.__cause__ or exc.__context__
        return (isinstance(cause, EOFError | ConnectionError)
                or any(t in str(exc).lower() for t in _DROPPED_TEXTS))
    if isinstance(exc, OSError):
        return exc.errno in _NETWORK_ERRNOS
    return False


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, socket.timeout):
        return True
    if not isinstance(exc, paramiko.SSHException):
        return False  # an OSError's text may hold a file name: only paramiko's own texts are read
    text = str(exc).lower()
    cause = exc.__cause__ or exc.__context__
    return "timeout" in text or "timed out" in text or isinstance(cause, socket.timeout)


def convert(exc: BaseException, operation: str, *, outcome_unknown: bool = False,
            timeout: float | None = None) -> CoreError | None:
    """The :mod:`adapters.errors` equivalent of ``exc``, or None for an exception that is not ours
    to translate (a programming error, a :class:`LocalIOError`). A :class:`CoreError` is returned as is."""
    if isinstance(exc, CoreError):
        return exc
    if isinstance(exc, LocalIOError) or not isinstance(exc, paramiko.SSHException | SFTPError | EOFError | OSError):
        return None
    kw = {"backend": BACKEND, "operation": operation}
    text = str(exc) or type(exc).__name__
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyMismatch(hostname=exc.hostname, seen_fingerprint=exc.key.fingerprint,
                               seen_type=exc.key.get_name(),
                               expected=f"{exc.expected_key.get_name()} {exc.expected_key.fingerprint} "
                                        "(from known_hosts)", operation=operation)
    if isinstance(exc, paramiko.AuthenticationException):
        if _is_timeout(exc):
            return BackendTimeout(f"no answer to authentication in time: {text}", **kw)
        if is_connection_lost(exc) or "transport shut down" in text or "saw EOF" in text:
            return BackendUnavailable(f"connection lost during authentication: {text}", **kw)
        return AuthenticationFailed(f"server refused the credentials: {text}", **kw)
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return BackendUnavailable(f"cannot connect: {text}", **kw)
    if _is_timeout(exc):
        within = f" within {timeout:g} s" if timeout is not None else " in time"
        return BackendTimeout(f"no answer{within} ({text})", outcome_unknown=outcome_unknown, **kw)
    if isinstance(exc, socket.gaierror):
        return BackendUnavailable(f"cannot resolve the server: {text}", **kw)
    if is_connection_lost(exc):
        return BackendUnavailable(f"connection lost: {text}", outcome_unknown=outcome_unknown, **kw)
    if isinstance(exc, paramiko.SSHException):
        return BackendFault(f"SSH protocol error: {text}", outcome_unknown=outcome_unknown, **kw)
    if isinstance(exc, FileNotFoundError):
        return RecordNotFound(f"no such remote file: {exc.filename or text}", **kw)
    if isinstance(exc, PermissionError):
        return BackendFault(f"permission denied by the server: {exc.filename or text}", **kw)
    if isinstance(exc, SFTPError | OSError):
        # an SFTP status such as SSH_FX_FAILURE: the server answered, but with an error
        return BackendFault(f"SFTP error: {text}", outcome_unknown=outcome_unknown, **kw)
    return None


@contextlib.contextmanager
def translate(operation: str, *, outcome_unknown: bool = False) -> Iterator[None]:
    """Re-raise anything paramiko, sockets or the SFTP protocol throw as an :mod:`adapters.errors` type.

    ``outcome_unknown`` marks errors from a write that may have reached the server (the upload's
    rename): the caller must look before it sends the file again.
    """
    try:
        yield
    except (CoreError, LocalIOError):
        raise
    except (paramiko.SSHException, SFTPError, EOFError, OSError) as exc:
        err = convert(exc, operation, outcome_unknown=outcome_unknown)
        if err is None:  # pragma: no cover - every branch of convert() answers for these types
            raise
        raise err from exc
