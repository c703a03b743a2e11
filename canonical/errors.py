"""Domain errors of the canonical model: what went wrong in business terms, not in protocol terms.

Adapters translate protocol failures into their own tree (``adapters``); these are the outcomes
the business layer reasons about and the API maps to problem+json::

    CanonicalError                  base of every domain error
    ├── NotFound                    the record does not exist (entity, key)
    ├── Rejected                    the core refused a business request (reason_code, reason)
    └── InvalidMoney (ValueError)   an amount that is not valid money in its currency
                                    (float given, too many decimals for the currency,
                                    unknown currency, not a finite number)

``InvalidMoney`` is also a ``ValueError`` so that pydantic turns it into a ``ValidationError``
when it is raised inside model validation.
"""

from __future__ import annotations

__all__ = ["CanonicalError", "InvalidMoney", "NotFound", "Rejected"]


class CanonicalError(Exception):
    """Base of the canonical model's domain errors."""


class NotFound(CanonicalError):
    """A record (customer, account, transfer, ...) does not exist."""

    def __init__(self, entity: str, key: str, message: str | None = None) -> None:
        self.entity = entity
        self.key = key
        super().__init__(message or f"{entity} {key!r} not found")


class Rejected(CanonicalError):
    """The core refused a business request; ``reason_code`` says why (e.g. ``R006``).

    A rejection is a business outcome: it never trips a circuit breaker and is never retried.
    """

    def __init__(self, reason_code: str, reason: str | None = None, *, reference: str | None = None) -> None:
        self.reason_code = reason_code
        self.reason = reason
        self.reference = reference
        text = f"rejected ({reason_code})"
        if reason:
            text += f": {reason}"
        if reference:
            text += f" [reference {reference}]"
        super().__init__(text)


class InvalidMoney(CanonicalError, ValueError):
    """An amount that is not valid money in its currency."""
