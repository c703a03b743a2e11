"""Error translation at the SOAP adapter's edge: zeep, requests, urllib3, lxml and the event-loop client's
phase markers in, :mod:`adapters.errors` out.

One context manager, :func:`translate`, wraps every call the adapter makes. The class of the error says
what happened on the path to the core (the resilience pipeline retries and counts by class);
``outcome_unknown`` says whether a write (FundsTransfer) may have been applied:

=============================================================  ======================  ==================
what happened                                                  raised                  outcome_unknown
                                                                                       (FundsTransfer)
=============================================================  ======================  ==================
connection refused, DNS failure, connect timeout               BackendUnavailable      False
reset / remote disconnected / broken body after sending        BackendUnavailable      True
no answer within the call's timeout (read timeout)             BackendTimeout          True
SOAP Fault, server side (RETURN-CODE 0012, or no detail)       MainframeFault          True
SOAP Fault, client side (RETURN-CODE 0008: refused unexecuted) MainframeFault          False
HTTP 500 (or other 4xx/5xx) with a body that is not SOAP       BackendFault            True for 5xx
HTTP 502/503 from a gateway / 504                              BackendUnavailable /    True
                                                               BackendTimeout
DOCTYPE / entities / malformed or oversized XML, an answer     ContractViolation       True
that does not fit the WSDL or a mapping, a wrong REQUEST-ID
echo
a request the mappings cannot express (nothing sent)           ContractViolation       False
=============================================================  ======================  ==================

(For reads ``outcome_unknown`` is always False: nothing was changed either way.)

Messages never carry a full account number or a customer name: texts that come from the core
(fault strings, bodies, mapping values) are scrubbed (:func:`scrub`) and the library exceptions
that hold payload text are not chained (``from None``); only network exceptions, whose texts hold
the URL, are kept as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import requests
import urllib3.exceptions
import zeep.exceptions
from lxml import etree

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    ContractViolation,
    CoreError,
)
from mappings.engine import MappingApplyError

__all__ = [
    "CB_NS",
    "AnswerTimedOut",
    "ConnectFailed",
    "ConnectTimedOut",
    "ConnectionLost",
    "HostileResponse",
    "MainframeFault",
    "RequestIdMismatch",
    "ResponseTooLarge",
    "mask",
    "scrub",
    "translate",
]

BACKEND = "soap"
CB_NS = "urn:corebank:mainframe:v1"
_ERROR = f"{{{CB_NS}}}MAINFRAME-ERROR"

_LONG_DIGITS = re.compile(r"\d{5,}")
_QUOTED = re.compile(r"""'([^'\n]{5,})'|"([^"\n]{5,})\"""")


def mask(value: object) -> str:
    """An identifier for logs and messages: at most its last 4 characters (``****0016``)."""
    text = str(value).strip()
    return "****" + text[-4:] if len(text) > 4 else "****"


def scrub(text: str, limit: int = 300) -> str:
    """Core-supplied text made safe for logs: runs of 5+ digits keep their last 4, quoted values
    longer than 4 characters (names, account numbers in error texts) become their length."""
    text = _LONG_DIGITS.sub(lambda m: "*" * (len(m.group()) - 4) + m.group()[-4:], text)
    text = _QUOTED.sub(lambda m: f"<{len(m.group(1) or m.group(2))} chars>", text)
    return text if len(text) <= limit else text[:limit] + "..."


class MainframeFault(BackendFault):
    """A SOAP Fault from the core; ``error_code`` is its ``CBEnnnn`` code when the detail has one.

    ``return_code`` ``0008`` marks a request the core refused without executing it (malformed,
    unauthenticated); ``0012`` a system error during execution.
    """

    default_message = "SOAP fault"

    def __init__(self, message: str | None = None, *, error_code: str | None, return_code: str | None,
                 fault_code: str | None, operation: str | None = None, outcome_unknown: bool = False) -> None:
        super().__init__(message, backend=BACKEND, operation=operation, outcome_unknown=outcome_unknown)
        self.error_code = error_code
        self.return_code = return_code
        self.fault_code = fault_code

    def _detail(self) -> str:
        code = f"{self.error_code} " if self.error_code else ""
        return f"{code}{self.message or self.default_message}"


# -- markers raised inside the transport, translated below ---------------------------------------
class ResponseTooLarge(Exception):
    """The response body exceeded ``SoapSettings.max_response_bytes``."""


class HostileResponse(Exception):
    """The response carries a DOCTYPE or an entity declaration (entity expansion, XXE)."""


class RequestIdMismatch(Exception):
    """The response echoes a REQUEST-ID other than the one sent: it answers another request."""


class _PhaseError(Exception):
    """Raised by the event-loop HTTP client: which phase of the exchange failed."""


class ConnectFailed(_PhaseError):
    """The connection could not be made (refused, unreachable): nothing was sent."""


class ConnectTimedOut(_PhaseError):
    """The TCP (or TLS) connect did not finish in time: nothing was sent."""


class AnswerTimedOut(_PhaseError):
    """The request was sent; the whole answer did not arrive in time."""


class ConnectionLost(_PhaseError):
    """The connection broke (or answered something that is not HTTP) after the request was sent."""


# -- classification --------------------------------------------------------------------------------
_CONNECT_PHASE = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                  urllib3.exceptions.NameResolutionError, ConnectionRefusedError)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (args, urllib3's ``reason``, causes), a bounded walk."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 16:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            inner = getattr(e, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)


def failed_to_connect(exc: BaseException) -> bool:
    """True when the request never left: refused, unresolvable, or the TCP connect timed out."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    return any(isinstance(e, _CONNECT_PHASE) for e in _chain(exc))


def _fault_detail(fault: zeep.exceptions.Fault) -> dict[str, str | None]:
    detail = fault.detail
    out: dict[str, str | None] = {"ERROR-CODE": None, "RETURN-CODE": None, "ERROR-TEXT": None}
    if not isinstance(detail, etree._Element):
        return out
    error = detail if detail.tag == _ERROR else detail.find(_ERROR)
    if error is None:
        return out
    for name in out:
        text = error.findtext(f"{{{CB_NS}}}{name}")
        out[name] = text.strip() if text is not None else None
    return out


def _from_fault(fault: zeep.exceptions.Fault, operation: str, write: bool) -> MainframeFault:
    d = _fault_detail(fault)
    refused_unexecuted = d["RETURN-CODE"] == "0008"
    text = d["ERROR-TEXT"] or fault.message or "SOAP fault without a message"
    return MainframeFault(scrub(text), error_code=d["ERROR-CODE"], return_code=d["RETURN-CODE"],
                          fault_code=fault.code, operation=operation,
                          outcome_unknown=write and not refused_unexecuted)


def _from_http_status(exc: zeep.exceptions.TransportError, operation: str, write: bool) -> CoreError:
    status = exc.status_code or 0
    body = exc.content if isinstance(exc.content, bytes) else b""
    snippet = scrub(body[:120].decode("utf-8", "replace").strip(), 120)
    kw: dict[str, Any] = {"backend": BACKEND, "operation": operation}
    tail = f": {snippet}" if snippet else ""
    if status == 200:
        return ContractViolation(f"HTTP 200 with a body that is not a SOAP envelope{tail}", outcome_unknown=write, **kw)
    if status in (502, 503):
        return BackendUnavailable(f"HTTP {status} from the path to the core: {snippet}",
                                  outcome_unknown=write, **kw)
    if status == 504:
        return BackendTimeout(f"HTTP 504 from the path to the core: {snippet}", outcome_unknown=write, **kw)
    return BackendFault(f"HTTP {status} without a SOAP envelope{tail}",
                        outcome_unknown=write and (status >= 500 or status == 0), **kw)


def _mapping_message(exc: MappingApplyError) -> str:
    where = ", ".join(p for p in (f"mapping {exc.mapping}", exc.rule and f"rule {exc.rule}",
                                  exc.source and f"field {exc.source}") if p)
    return f"{where}: {scrub(exc.reason)}"


@contextlib.contextmanager
def translate(operation: str, *, write: bool = False, sent: Any = None) -> Iterator[None]:
    """Re-raise whatever the call throws as an :mod:`adapters.errors` type (see the module table).

    ``write``: the operation changes the core (FundsTransfer), so errors after the request may have
    left carry ``outcome_unknown=True``. ``sent``: an object whose truthy ``attempted`` attribute says
    the HTTP request was started (before that point nothing can have reached the core).
    """
    try:
        yield
    except CoreError:
        raise
    except zeep.exceptions.Fault as exc:
        raise _from_fault(exc, operation, write) from None
    except requests.exceptions.RequestException as exc:
        raise _from_requests(exc, operation, write, getattr(sent, "read", None)) from exc
    except zeep.exceptions.TransportError as exc:
        raise _from_http_status(exc, operation, write) from None
    except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden, HostileResponse) as exc:
        raise ContractViolation(f"response refused: it carries a DOCTYPE or entity declarations "
                                f"({type(exc).__name__})", backend=BACKEND, operation=operation,
                                outcome_unknown=write) from None
    except ResponseTooLarge as exc:
        raise ContractViolation(f"response refused: {exc}", backend=BACKEND, operation=operation,
                                outcome_unknown=write) from None
    except RequestIdMismatch as exc:
        raise ContractViolation(f"response answers another request: {exc}", backend=BACKEND,
                                operation=operation, outcome_unknown=write) from None
    except _PhaseError as exc:  # the event-loop path's HTTP client (adapters.soap_http)
        raise _from_phase(exc, operation, write) from exc
    except MappingApplyError as exc:
        attempted = bool(getattr(sent, "attempted", True))
        raise ContractViolation(_mapping_message(exc), backend=BACKEND, operation=operation,
                                outcome_unknown=write and attempted) from None
    except (zeep.exceptions.Error, etree.LxmlError) as exc:
        # XMLSyntaxError, XMLParseError, UnexpectedElementError, ValidationError, LookupError ...
        attempted = bool(getattr(sent, "attempted", True))
        where = "the response" if attempted else "the request"
        raise ContractViolation(f"{where} does not fit the contract: {type(exc).__name__}: "
                                f"{scrub(str(exc) or repr(exc), 200)}", backend=BACKEND, operation=operation,
                                outcome_unknown=write and attempted) from None
    except OSError as exc:  # a socket error that escaped requests' wrapping
        raise _from_requests(exc, operation, write, getattr(sent, "read", None)) from exc


def _from_requests(exc: BaseException, operation: str, write: bool, budget: float | None = None) -> CoreError:
    kw: dict[str, Any] = {"backend": BACKEND, "operation": operation}
    text = type(exc).__name__
    within = f"within {budget:g} s" if isinstance(budget, int | float) and budget > 0 else "in time"
    if failed_to_connect(exc):
        if isinstance(exc, requests.exceptions.ConnectTimeout) or any(
                isinstance(e, urllib3.exceptions.ConnectTimeoutError) and
                not isinstance(e, urllib3.exceptions.NewConnectionError) for e in _chain(exc)):
            return BackendUnavailable(f"cannot connect: connect timed out ({text})", **kw)
        return BackendUnavailable(f"cannot connect: {_root_text(exc)}", **kw)
    if isinstance(exc, requests.exceptions.Timeout):
        return BackendTimeout(f"no answer {within} ({_root_text(exc)})", outcome_unknown=write, **kw)
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError | OSError):
        return BackendUnavailable(f"connection lost: {_root_text(exc)}", outcome_unknown=write, **kw)
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema):
        return BackendFault(f"bad endpoint URL: {text}", **kw)
    return BackendFault(f"HTTP error: {_root_text(exc)}", outcome_unknown=write, **kw)


def _from_phase(exc: _PhaseError, operation: str, write: bool) -> CoreError:
    kw: dict[str, Any] = {"backend": BACKEND, "operation": operation}
    if isinstance(exc, ConnectTimedOut):
        return BackendUnavailable(f"cannot connect: connect timed out ({exc})", **kw)
    if isinstance(exc, ConnectFailed):
        return BackendUnavailable(f"cannot connect: {scrub(str(exc), 160)}", **kw)
    if isinstance(exc, AnswerTimedOut):
        return BackendTimeout(str(exc), outcome_unknown=write, **kw)
    return BackendUnavailable(f"connection lost: {scrub(str(exc), 160)}", outcome_unknown=write, **kw)


def _root_text(exc: BaseException) -> str:
    """The innermost wrapped exception's class and text (``ConnectionResetError: [Errno 104] ...``)."""
    inner = exc
    for _ in range(8):
        nested = [a for a in getattr(inner, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(inner, "reason", None)
        nxt = nested[-1] if nested else reason if isinstance(reason, BaseException) else inner.__cause__
        if nxt is None or nxt is inner:
            break
        inner = nxt
    text = str(inner)
    return f"{type(inner).__name__}: {scrub(text, 160)}" if text else type(inner).__name__
