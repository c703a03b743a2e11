"""The adapter error tree: the only exceptions that leave ``adapters/``.

Every protocol adapter translates its library's exceptions (zeep, paramiko, pyodbc, sockets) into
these at its own edge, so neither the resilience pipeline nor ``api/`` ever sees a protocol
library's types. The pipeline decides from the *class* whether to retry and what a circuit breaker
records; ``api/`` maps the classes to RFC 9457 problems.

::

    CoreError                       backend, operation, outcome_unknown
    ├── BackendUnavailable          connection refused/reset, outage        (retryable if idempotent)
    ├── BackendTimeout              no answer within the timeout            (retryable if idempotent)
    ├── BackendFault                SOAP fault, system error 0012, protocol error
    ├── RecordNotFound              business outcome: the core has no such record
    ├── Rejected                    business rejection: reason_code, reason
    ├── ContractViolation           the core answered something the contract/mapping forbids
    ├── CircuitOpen                 refused locally by a circuit breaker: retry_after
    ├── BulkheadFull                refused locally: too many concurrent calls to the backend
    └── DeadlineExceeded            refused locally: the caller's deadline has passed

``outcome_unknown`` is True when a write may or may not have been applied by the core (typically a
timeout or a reset *after* the request was sent): the caller must reconcile (look the posting up)
rather than resend it.

Only the two business outcomes (``RecordNotFound``, ``Rejected``) say something about the
*request*; all others say something about the *path to the core*. Business outcomes are never
retried and never count as failures in a circuit breaker.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackendFault",
    "BackendTimeout",
    "BackendUnavailable",
    "BulkheadFull",
    "CircuitOpen",
    "ContractViolation",
    "CoreError",
    "DeadlineExceeded",
    "RecordNotFound",
    "Rejected",
]


def _rebuild(cls: type[CoreError], args: tuple[Any, ...], state: dict[str, Any]) -> CoreError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class CoreError(Exception):
    """Base of every error an adapter raises.

    The message is built lazily in ``__str__``: errors such as ``CircuitOpen`` are raised on hot
    paths where formatting text nobody reads would be the dominant cost.
    """

    default_message = "core banking call failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        backend: str | None = None,
        operation: str | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        if message is None:
            super().__init__()
        else:
            super().__init__(message)
        self.message = message
        self.backend = backend
        self.operation = operation
        self.outcome_unknown = outcome_unknown

    def _detail(self) -> str:
        return self.message or self.default_message

    def __str__(self) -> str:
        where = "/".join(p for p in (self.backend, self.operation) if p)
        text = self._detail()
        if where:
            text = f"{where}: {text}"
        if self.outcome_unknown:
            text += " (outcome unknown)"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only constructor arguments would be lost by Exception's default pickling
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class BackendUnavailable(CoreError):
    """The core could not be reached: connection refused or reset, DNS, planned or unplanned outage."""

    default_message = "backend unavailable"


class BackendTimeout(CoreError):
    """No answer within the (library-level) timeout; for a write that was sent, set ``outcome_unknown``."""

    default_message = "backend timed out"


class BackendFault(CoreError):
    """The core answered with a technical error: SOAP fault, system error 0012, a protocol error."""

    default_message = "backend fault"


class RecordNotFound(CoreError):
    """Business outcome: the record (customer, account, posting) does not exist in the core."""

    default_message = "record not found"


class Rejected(CoreError):
    """Business rejection by the core (insufficient funds, account blocked, ...)."""

    default_message = "rejected by the core"

    def __init__(
        self,
        message: str | None = None,
        *,
        reason_code: str,
        reason: str = "",
        backend: str | None = None,
        operation: str | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message, backend=backend, operation=operation, outcome_unknown=outcome_unknown)
        self.reason_code = reason_code
        self.reason = reason

    def _detail(self) -> str:
        base = self.message or self.default_message
        return f"{base}: {self.reason_code}" + (f" {self.reason}" if self.reason else "")


class ContractViolation(CoreError):
    """The core answered, but the answer violates the contract (WSDL, copybook, DDL) or a mapping."""

    default_message = "answer violates the contract"


class CircuitOpen(CoreError):
    """A circuit breaker refused the call without contacting the core.

    ``retry_after`` is a hint in seconds (for a ``Retry-After`` header): the time left until the
    breaker lets trial calls through.
    """

    default_message = "circuit open"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float,
        backend: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, backend=backend, operation=operation)
        self.retry_after = retry_after

    def _detail(self) -> str:
        return f"{self.message or self.default_message}, retry after {self.retry_after:.3f}s"


class BulkheadFull(CoreError):
    """Too many concurrent calls to this backend already; refused without contacting the core."""

    default_message = "bulkhead full"


class DeadlineExceeded(CoreError):
    """The caller's deadline passed before an attempt could start."""

    default_message = "deadline exceeded"
