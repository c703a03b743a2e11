"""The ODBC adapter's edge: pyodbc and driver errors become :mod:`adapters.errors`.

:func:`convert` is the one place that reads SQLSTATEs and driver texts; :func:`translate` is the
context manager the adapter wraps every database call and every mapping in. Besides the error to
raise, :func:`convert` says whether the connection must be thrown away (:attr:`Translated.broken`).

=========================================================  ====================  ========
what the driver says                                       raised                discard
=========================================================  ====================  ========
our watchdog cancelled the statement (time is up)          BackendTimeout        yes
SQLSTATE HYT00 / HYT01, 57014, SQLite ``interrupted``      BackendTimeout        yes
SQLSTATE 08xxx, 57P01-57P03 (admin shutdown, crash),       BackendUnavailable    yes
``OperationalError``, ``InterfaceError``, a closed
connection, psqlODBC's "connection has been lost"
SQLite ``database is locked`` / ``busy``, SQLSTATE 40xxx   BackendUnavailable    no
SQLSTATE 28xxx, "authentication failed" (a login the       BackendFault          yes
core refuses: retrying will not help)
SQLSTATE 42xxx, ``ProgrammingError``, SQLite ``no such     ContractViolation     no
table``/``no such column`` (the DDL we were promised is
not what the core has), ``DataError``, undecodable text
``MappingApplyError`` (a row the mapping file refuses)     ContractViolation     no
anything else from pyodbc                                  BackendFault          yes
=========================================================  ====================  ========

Both drivers we run against report in their own way: the SQLite3 ODBC driver says ``HY000`` for
nearly everything (a missing table included) with the SQLite text, psqlODBC gives real SQLSTATEs
(``42P01``, ``08S01``, ``57P01`` for a terminated backend, first ``57P01`` and then ``08S01``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pyodbc

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    ContractViolation,
    CoreError,
)
from mappings.engine import MappingApplyError

__all__ = ["BACKEND", "CallState", "Translated", "convert", "sqlstate", "translate"]

BACKEND = "odbc"

_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})  # PostgreSQL: admin/crash shutdown, cannot connect now
_TIMEOUT_STATES = frozenset({"HYT00", "HYT01", "57014"})
_LOST_TEXTS = ("connection has been lost", "connection lost", "connection is closed", "closed connection",
               "server closed the connection", "could not receive data", "could not send data",
               "communication link failure", "connect failed", "unable to open database", "disk i/o error")
_BUSY_TEXTS = ("database is locked", "database table is locked", "sqlite_busy")
_CONTRACT_TEXTS = ("no such table", "no such column", "does not exist")
_AUTH_TEXTS = ("authentication failed", "password", "login failed", "permission denied")


@dataclass
class CallState:
    """What the pool's watchdog did to the call (set before the driver's error surfaces)."""

    timeout: float | None = None
    timed_out: bool = False
    broken: bool = False  # set by translate(): the connection must not go back to the pool


@dataclass(frozen=True)
class Translated:
    error: CoreError
    broken: bool


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a pyodbc error (``''`` when it carries none, e.g. a closed connection)."""
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], str) and len(args[0]) == 5:
        return args[0].upper()
    return ""


def _text(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    return str(args[1] if len(args) >= 2 else (args[0] if args else exc))


def convert(exc: BaseException, operation: str, *, timed_out: bool = False,
            timeout: float | None = None, connecting: bool = False) -> Translated | None:
    """The :mod:`adapters.errors` equivalent of ``exc`` and whether its connection is broken; None for
    an exception that is not ours to translate (a programming error of our own)."""
    kw = {"backend": BACKEND, "operation": operation}
    within = f" within {timeout:.3f} s" if timeout is not None else ""
    if isinstance(exc, CoreError):
        return Translated(exc, broken=timed_out)
    if isinstance(exc, MappingApplyError):
        return Translated(ContractViolation(f"a row the mapping refuses: {exc}", **kw), broken=timed_out)
    if isinstance(exc, UnicodeDecodeError):
        return Translated(ContractViolation(f"undecodable text from the driver: {exc}", **kw), broken=timed_out)
    if not isinstance(exc, pyodbc.Error):
        return None
    state, text = sqlstate(exc), _text(exc)
    low = text.lower()
    if timed_out:
        return Translated(BackendTimeout(f"no answer{within}: statement cancelled", **kw), broken=True)
    if state in _TIMEOUT_STATES or "interrupted" in low or "timeout expired" in low:
        return Translated(BackendTimeout(f"no answer{within} ({state or 'timeout'}: {text})", **kw), broken=True)
    if state.startswith("28") or (connecting and any(t in low for t in _AUTH_TEXTS)):
        return Translated(BackendFault(f"the core refused the login ({state}): {text}", **kw), broken=True)
    if (state.startswith("08") or state in _LOST_STATES or any(t in low for t in _LOST_TEXTS)
            or isinstance(exc, pyodbc.OperationalError | pyodbc.InterfaceError)
            or (not state and isinstance(exc, pyodbc.ProgrammingError) and "closed" in low)):
        what = "cannot connect" if connecting else "connection lost"
        return Translated(BackendUnavailable(f"{what} ({state or type(exc).__name__}): {text}", **kw), broken=True)
    if state.startswith("40") or any(t in low for t in _BUSY_TEXTS):
        return Translated(BackendUnavailable(f"the core is busy ({state}): {text}", **kw), broken=False)
    if connecting:
        return Translated(BackendUnavailable(f"cannot connect ({state}): {text}", **kw), broken=True)
    if state == "42501":  # insufficient privilege: a grant is missing, not a column
        return Translated(BackendFault(f"permission denied ({state}): {text}", **kw), broken=False)
    if (state.startswith("42") or isinstance(exc, pyodbc.ProgrammingError | pyodbc.DataError)
            or any(t in low for t in _CONTRACT_TEXTS)):
        return Translated(ContractViolation(f"the tables differ from the DDL contract ({state}): {text}", **kw),
                          broken=False)
    return Translated(BackendFault(f"database error ({state or type(exc).__name__}): {text}", **kw), broken=True)


@contextlib.contextmanager
def translate(operation: str, state: CallState | None = None, *, connecting: bool = False) -> Iterator[None]:
    """Re-raise pyodbc's and the mapping engine's exceptions as :mod:`adapters.errors` types.

    ``state`` (optional) carries the watchdog's verdict in and the "discard this connection" verdict
    out: ``state.broken`` is set when the connection must not be reused.
    """
    try:
        yield
    except Exception as exc:
        timed_out = state.timed_out if state is not None else False
        got = convert(exc, operation, timed_out=timed_out, timeout=state.timeout if state else None,
                      connecting=connecting)
        if got is None:
            raise
        if state is not None:
            state.broken = state.broken or got.broken
        if got.error is exc:
            raise
        raise got.error from exc
