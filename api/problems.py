"""RFC 9457 problem details: the body of every error the facade returns.

Every error response is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and ``request_id`` (plus the extension members named below). The ``type`` URIs are
stable: clients may switch on them. Bodies never carry stack traces, SQL, SOAP, backend names or
core internals; the details go to the (masked) log under the same request id.

Type URIs (``https://corebridge.example/problems/<slug>``), by status:

* 400 ``bad-request``: malformed request (a bad header value, an invalid Content-Length);
* 400 ``invalid-cursor``: a pagination cursor altered, signed with another key, or issued for
  another account or other filters;
* 400 ``on-behalf-of-required``: an admin token without a valid ``X-On-Behalf-Of``;
* 401 ``unauthorized``: no, malformed, expired, not-yet-valid or untrusted token, a refused
  algorithm, or a token in the query string (``WWW-Authenticate: Bearer ...``);
* 403 ``forbidden``: the token lacks the operation's scope (``required_scopes``), or a customer
  token names another customer in ``X-On-Behalf-Of``;
* 404 ``not-found``: no such resource, *or one that is not the caller's* (indistinguishable);
* 405 ``method-not-allowed``: with ``Allow``;
* 409 ``conflict``: the request conflicts with the resource's state (reserved for idempotency);
* 413 ``payload-too-large``: body above ``limits.max_body_bytes``;
* 422 ``validation-error``: body, query or path invalid (``errors``: ``loc``, ``msg``, ``type``);
* 422 ``rejected``: the core rejected the transfer (``reason_code`` R001-R010, ``reason``,
  ``reference``);
* 429 ``rate-limited``: with ``Retry-After``;
* 500 ``internal-error``: a bug on our side (details only in the log, under the request id);
* 502 ``backend-error``: the core answered with a fault, or with an answer that violates the
  contract or a mapping (``BackendFault``, ``ContractViolation``);
* 503 ``backend-unavailable``: the core cannot be reached (``BackendUnavailable``), a circuit
  breaker is open (``CircuitOpen``: ``Retry-After``) or the bulkhead is full (``BulkheadFull``);
* 503 ``not-ready``: ``/readyz`` while a required backend's breaker is open or the mappings are
  not loaded (``blocking``, ``backends``, ``mappings_loaded``);
* 504 ``backend-timeout``: no answer in time (``BackendTimeout``, ``DeadlineExceeded``).

A write whose outcome is unknown (``outcome_unknown: true`` on a 502/503/504) may have been
applied: look it up with ``GET /v1/transfers/{reference}`` (``reference`` is in the problem)
rather than sending it again.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

import canonical
from adapters import errors as core_errors
from api.cursors import InvalidCursor
from api.observability import request_id_var

__all__ = [
    "BAD_REQUEST",
    "BASE_URI",
    "PROBLEM_TYPES",
    "ProblemError",
    "ProblemType",
    "install_handlers",
    "openapi_responses",
    "problem_response",
    "problem_types_markdown",
]

log = logging.getLogger("corebridge.api.problems")

BASE_URI = "https://corebridge.example/problems/"
MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        return BASE_URI + self.slug


BAD_REQUEST = ProblemType("bad-request", 400, "Bad request", "The request is malformed (e.g. a bad header value).")
INVALID_CURSOR = ProblemType("invalid-cursor", 400, "Invalid cursor",
                             "The pagination cursor was altered or was issued for another listing or filter.")
ON_BEHALF_OF_REQUIRED = ProblemType("on-behalf-of-required", 400, "X-On-Behalf-Of required",
                                    "An admin token must name the customer it acts for in X-On-Behalf-Of.")
UNAUTHORIZED = ProblemType("unauthorized", 401, "Unauthorized",
                           "No valid bearer token: missing, malformed, expired, not yet valid, untrusted, or sent "
                           "in the query string.")
FORBIDDEN = ProblemType("forbidden", 403, "Forbidden", "The token lacks a scope this operation requires.")
NOT_FOUND = ProblemType("not-found", 404, "Not found",
                        "No such resource, or it does not belong to the caller (the two are indistinguishable).")
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", 405, "Method not allowed",
                                 "The resource does not support this method (see Allow).")
CONFLICT = ProblemType("conflict", 409, "Conflict", "The request conflicts with the current state of the resource.")
PAYLOAD_TOO_LARGE = ProblemType("payload-too-large", 413, "Payload too large",
                                "The request body is larger than the configured cap.")
VALIDATION = ProblemType("validation-error", 422, "Validation error",
                         "The body, query or path is invalid; `errors` lists each problem (loc, msg, type).")
REJECTED = ProblemType("rejected", 422, "Rejected by the core",
                       "The core banking system rejected the transfer; `reason_code` says why (R001-R010).")
#: the Idempotency-Key draft's 422 for a key reused with another body
KEY_REUSED = ProblemType("idempotency-key-reused", 422, "Idempotency-Key reused",
                         "This Idempotency-Key was already used with a different request body.")
RATE_LIMITED = ProblemType("rate-limited", 429, "Too many requests", "Slow down; retry after Retry-After seconds.")
INTERNAL = ProblemType("internal-error", 500, "Internal error", "An unexpected error on our side.")
BACKEND_ERROR = ProblemType("backend-error", 502, "Backend error",
                            "The core banking system answered with an error or with an invalid answer.")
BACKEND_UNAVAILABLE = ProblemType("backend-unavailable", 503, "Backend unavailable",
                                  "The core banking system cannot be reached now; retry after Retry-After seconds "
                                  "when given.")
NOT_READY = ProblemType("not-ready", 503, "Not ready",
                        "A required backend's circuit breaker is open, or the mappings are not loaded.")
BACKEND_TIMEOUT = ProblemType("backend-timeout", 504, "Backend timeout",
                              "The core banking system did not answer in time.")

PROBLEM_TYPES: tuple[ProblemType, ...] = (
    BAD_REQUEST, INVALID_CURSOR, ON_BEHALF_OF_REQUIRED, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED,
    CONFLICT, PAYLOAD_TOO_LARGE, VALIDATION, REJECTED, KEY_REUSED, RATE_LIMITED, INTERNAL, BACKEND_ERROR,
    BACKEND_UNAVAILABLE, NOT_READY, BACKEND_TIMEOUT,
)
_BY_STATUS: dict[int, ProblemType] = {}
for _p in PROBLEM_TYPES:
    _BY_STATUS.setdefault(_p.status, _p)


class ProblemError(Exception):
    """Raise to answer with a problem; ``extensions`` become extra members of the body."""

    def __init__(self, ptype: ProblemType, detail: str | None = None, *, headers: Mapping[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(detail or ptype.title)
        self.ptype = ptype
        self.detail = detail or ptype.description
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_body(ptype: ProblemType, detail: str | None = None, **extensions: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": ptype.uri, "title": ptype.title, "status": ptype.status,
                            "detail": detail or ptype.description}
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    body.update(extensions)
    return body


def problem_response(ptype: ProblemType, detail: str | None = None, *, headers: Mapping[str, str] | None = None,
                     **extensions: Any) -> Response:
    content = json.dumps(problem_body(ptype, detail, **extensions), separators=(",", ":"), default=str)
    return Response(content, status_code=ptype.status, headers=dict(headers or {}), media_type=MEDIA_TYPE)


def retry_after_header(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


# -- mapping of errors ----------------------------------------------------------------------------
def _core_error(exc: core_errors.CoreError) -> Response:
    """Map the adapter error tree; the exception text (backend, operation, core messages) is logged only."""
    ext: dict[str, Any] = {}
    if exc.outcome_unknown:
        ext["outcome_unknown"] = True
    reference = exc.__dict__.get("reference")  # set by the transfer service on a failed post
    if isinstance(reference, str):
        ext["reference"] = reference
    if isinstance(exc, core_errors.RecordNotFound):
        return problem_response(NOT_FOUND, "The requested resource does not exist.")
    if isinstance(exc, core_errors.Rejected):
        return problem_response(REJECTED, f"The core rejected the request ({exc.reason_code}).",
                                reason_code=exc.reason_code, reason=exc.reason or None, **ext)
    log.warning("core error: %s (%s)", exc, type(exc).__name__)
    if isinstance(exc, core_errors.CircuitOpen):
        return problem_response(BACKEND_UNAVAILABLE, "The core banking system is temporarily unavailable.",
                                headers=retry_after_header(exc.retry_after), **ext)
    if isinstance(exc, core_errors.BulkheadFull):
        return problem_response(BACKEND_UNAVAILABLE, "The core banking system is busy.",
                                headers=retry_after_header(1), **ext)
    if isinstance(exc, core_errors.BackendUnavailable):
        return problem_response(BACKEND_UNAVAILABLE, "The core banking system cannot be reached.", **ext)
    if isinstance(exc, core_errors.BackendTimeout | core_errors.DeadlineExceeded):
        return problem_response(BACKEND_TIMEOUT, "The core banking system did not answer in time.", **ext)
    if isinstance(exc, core_errors.ContractViolation):
        return problem_response(BACKEND_ERROR, "The core banking system sent an answer we cannot use.", **ext)
    return problem_response(BACKEND_ERROR, "The core banking system answered with an error.", **ext)


def _clean_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors without ``input``/``ctx``/``url`` (they may echo payloads)."""
    cleaned = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        msg = str(err.get("msg", "invalid"))
        if len(msg) > 300:
            msg = msg[:300] + "..."
        cleaned.append({"loc": loc, "msg": msg, "type": str(err.get("type", "value_error"))})
    return cleaned


def validation_problem(errors: Iterable[Mapping[str, Any]], detail: str | None = None) -> ProblemError:
    return ProblemError(VALIDATION, detail or "The request is invalid.", errors=_clean_errors(errors))


_HTTP_DETAILS = {
    404: "No such resource.",
    405: "The resource does not support this method.",
    413: "The request body is too large.",
}


def install_handlers(app: FastAPI, *, on_contract_violation: Any = None) -> None:
    """Register the handlers that turn every error into problem+json."""

    async def problem(_: Request, exc: ProblemError) -> Response:
        return problem_response(exc.ptype, exc.detail, headers=exc.headers, **exc.extensions)

    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        ptype = _BY_STATUS.get(exc.status_code)
        headers = dict(exc.headers or {})
        if ptype is None:
            ptype = ProblemType("http-error", exc.status_code, "HTTP error", "The request could not be served.")
        return problem_response(ptype, _HTTP_DETAILS.get(exc.status_code, ptype.description), headers=headers)

    async def validation(_: Request, exc: RequestValidationError) -> Response:
        return problem_response(VALIDATION, "The request is invalid.", errors=_clean_errors(exc.errors()))

    async def core(_: Request, exc: core_errors.CoreError) -> Response:
        if isinstance(exc, core_errors.ContractViolation) and on_contract_violation is not None:
            on_contract_violation(exc.backend or "unknown", exc.operation or "unknown")
        return _core_error(exc)

    async def not_found(_: Request, exc: canonical.NotFound) -> Response:
        return problem_response(NOT_FOUND, f"No such {exc.entity}.")

    async def rejected(_: Request, exc: canonical.Rejected) -> Response:
        ext = {"reference": exc.reference} if exc.reference else {}
        return problem_response(REJECTED, f"The core rejected the request ({exc.reason_code}).",
                                reason_code=exc.reason_code, reason=exc.reason, **ext)

    async def invalid_money(_: Request, exc: canonical.InvalidMoney) -> Response:
        return problem_response(VALIDATION, "The amount is not valid money.",
                                errors=[{"loc": ["body", "amount"], "msg": str(exc)[:300], "type": "invalid_money"}])

    async def invalid_cursor(_: Request, exc: InvalidCursor) -> Response:
        return problem_response(INVALID_CURSOR, "The cursor is invalid, was altered, or belongs to another "
                                                "listing or filter; start again without a cursor.")

    app.add_exception_handler(ProblemError, problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation)  # type: ignore[arg-type]
    app.add_exception_handler(core_errors.CoreError, core)  # type: ignore[arg-type]
    app.add_exception_handler(canonical.NotFound, not_found)  # type: ignore[arg-type]
    app.add_exception_handler(canonical.Rejected, rejected)  # type: ignore[arg-type]
    app.add_exception_handler(canonical.InvalidMoney, invalid_money)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidCursor, invalid_cursor)  # type: ignore[arg-type]


# -- OpenAPI -------------------------------------------------------------------------------------
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `type` is one of the stable URIs listed in the API description.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri", "examples": [NOT_FOUND.uri]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "description": "validation-error: one entry per invalid field",
                   "items": {"type": "object", "properties": {
                       "loc": {"type": "array", "items": {"type": "string"}},
                       "msg": {"type": "string"}, "type": {"type": "string"}}}},
        "reason_code": {"type": "string", "description": "rejected: the core's reason code (R001-R010)"},
        "reason": {"type": ["string", "null"]},
        "outcome_unknown": {"type": "boolean", "description": "a write may have been applied: look it up"},
        "reference": {"type": "string"},
        "required_scopes": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": True,
}

_EXAMPLE_FOR_STATUS: dict[int, ProblemType] = {
    400: BAD_REQUEST, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT, 413: PAYLOAD_TOO_LARGE,
    422: VALIDATION, 429: RATE_LIMITED, 500: INTERNAL, 502: BACKEND_ERROR, 503: BACKEND_UNAVAILABLE,
    504: BACKEND_TIMEOUT,
}


def openapi_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problem+json answers for the given statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        types = [p for p in PROBLEM_TYPES if p.status == status]
        example_type = _EXAMPLE_FOR_STATUS.get(status, types[0] if types else INTERNAL)
        out[status] = {
            "description": "; ".join(f"{p.title} ({p.uri})" for p in types) or example_type.title,
            "content": {MEDIA_TYPE: {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "example": {"type": example_type.uri, "title": example_type.title, "status": status,
                            "detail": example_type.description, "request_id": "3q2-7rYtQkWzX1cVb9aD0w"},
            }},
        }
    return out


def problem_types_markdown() -> str:
    rows = "\n".join(f"| `{p.uri}` | {p.status} | {p.description} |" for p in PROBLEM_TYPES)
    return "| type | status | meaning |\n|---|---|---|\n" + rows
