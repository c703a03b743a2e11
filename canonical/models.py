"""The canonical banking objects every adapter produces and every API route serialises.

All models are frozen and refuse unknown fields. Money is :class:`~canonical.money.Money`
(amounts as strings in JSON), dates are ISO 8601 (``2026-11-27``), timestamps ISO 8601 with an
offset. A date given as ``20261127`` or as a number is refused, because pydantic would read it
as a Unix timestamp.

Enumerations serialise as their lower-case values (``"open"``, ``"posted"``).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .builder import NOOP_WHEN, PASSTHROUGH, SameValues
from .currency import MINOR_UNITS
from .money import Money

__all__ = [
    "Account",
    "AccountStatus",
    "Address",
    "Balance",
    "Customer",
    "CustomerStatus",
    "CustomerType",
    "Page",
    "Statement",
    "StatementLine",
    "Transaction",
    "TransactionStatus",
    "Transfer",
    "TransferStatus",
]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_date(value: Any) -> Any:
    if isinstance(value, dt.date) or value is None:
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        return value
    if isinstance(value, (str, int, float, Decimal)):
        raise ValueError(f"dates are ISO 8601 (YYYY-MM-DD), not {value!r}")
    return value


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, dt.datetime) or value is None:
        return value
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        return value
    if isinstance(value, (str, int, float, Decimal)):
        raise ValueError(f"timestamps are ISO 8601 with an offset (2026-11-27T13:57:07Z), not {value!r}")
    return value


def _iso_date_or_datetime(value: Any) -> Any:
    if isinstance(value, str) and "T" in value:
        return _iso_datetime(value)
    return _iso_date(value)


# date / datetime instances pass these guards unchanged (canonical.builder relies on it)
PASSTHROUGH.update({_iso_date: dt.date, _iso_datetime: dt.datetime, _iso_date_or_datetime: dt.date})

Date = Annotated[dt.date, BeforeValidator(_iso_date)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]
Id = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(max_length=256)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=32)]


class Canonical(BaseModel):
    """Base of the canonical models: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _same_currency(*moneys: Money | None) -> None:
    codes = {m.currency for m in moneys if m is not None}
    if len(codes) > 1:
        raise ValueError(f"amounts in different currencies: {', '.join(sorted(codes))}")


# -- customers -------------------------------------------------------------------------------
class CustomerType(enum.StrEnum):
    PERSONAL = "personal"
    BUSINESS = "business"


class CustomerStatus(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    CLOSED = "closed"


class Address(Canonical):
    line1: Text
    city: Text
    postal_code: str | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]


class Customer(Canonical):
    id: Id
    type: CustomerType
    status: CustomerStatus
    last_name: Text
    first_name: Text | None = None
    birth_date: Date | None = None
    email: Text | None = None
    phone: str | None = None
    address: Address | None = None
    branch: str | None = None
    created_on: Date | None = None


# -- accounts and balances -------------------------------------------------------------------
class AccountStatus(enum.StrEnum):
    OPEN = "open"
    DORMANT = "dormant"
    FROZEN = "frozen"
    CLOSED = "closed"


class Account(Canonical):
    id: Id
    customer_id: Id
    status: AccountStatus
    product: Code = Field(description="product kind, e.g. current, savings")
    currency: CurrencyCode
    title: Text | None = None
    opened_on: Date
    closed_on: Date | None = None
    branch: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Account:
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unknown currency {self.currency!r}")
        if self.closed_on is not None and self.closed_on < self.opened_on:
            raise ValueError(f"closed_on {self.closed_on} is before opened_on {self.opened_on}")
        return self


class Balance(Canonical):
    account_id: Id
    ledger: Money = Field(description="booked balance")
    available: Money = Field(description="what can be spent now: ledger minus holds")
    as_of: Annotated[dt.date | AwareDatetime, BeforeValidator(_iso_date_or_datetime)]
    stale: bool = Field(False, description="served from a cache because the core did not answer")

    @model_validator(mode="after")
    def _check(self) -> Balance:
        _same_currency(self.ledger, self.available)
        return self


# -- transactions -----------------------------------------------------------------------------
class TransactionStatus(enum.StrEnum):
    POSTED = "posted"
    REVERSED = "reversed"


class Transaction(Canonical):
    id: Id
    account_id: Id
    booked_at: Timestamp
    value_date: Date
    amount: Money = Field(description="signed: negative for a debit")
    description: Text = ""
    reference: str | None = None
    counterparty: str | None = None
    channel: Code | None = None
    kind: Code | None = Field(None, description="transaction kind, e.g. card_purchase, transfer_out")
    status: TransactionStatus = TransactionStatus.POSTED
    running_balance: Money | None = None

    @model_validator(mode="after")
    def _check(self) -> Transaction:
        rb = self.running_balance
        if rb is not None and rb.currency != self.amount.currency:
            _same_currency(self.amount, rb)
        return self


# validators that change nothing where their currencies agree (row programs skip those calls)
NOOP_WHEN.update({
    Balance._check: SameValues("ledger", "available", attr="currency"),
    Transaction._check: SameValues("amount", "running_balance", attr="currency", none_ok=True),
})


# -- transfers --------------------------------------------------------------------------------
class TransferStatus(enum.StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class Transfer(Canonical):
    reference: Id = Field(description="the caller's reference (idempotency key)")
    id: Id | None = Field(None, description="the core's posting id, once it has one")
    from_account: Id
    to_account: Id
    amount: Money
    memo: Text | None = None
    status: TransferStatus = TransferStatus.PENDING
    reason_code: str | None = None
    reason: Text | None = None
    posted_at: Timestamp | None = None
    value_date: Date | None = None
    channel: Code | None = None


# -- statements -------------------------------------------------------------------------------
class StatementLine(Canonical):
    value_date: Date
    description: Text = ""
    amount: Money = Field(description="signed: negative for a debit")


class Statement(Canonical):
    """One account's statement for a period (a business day): opening + lines = closing."""

    account_id: Id
    period: Date
    opening_balance: Money
    closing_balance: Money
    lines: tuple[StatementLine, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Statement:
        _same_currency(self.opening_balance, self.closing_balance, *(ln.amount for ln in self.lines))
        total = self.opening_balance.amount + sum((ln.amount.amount for ln in self.lines), Decimal(0))
        if total != self.closing_balance.amount:
            raise ValueError(
                f"opening {self.opening_balance.amount} + lines != closing {self.closing_balance.amount}"
            )
        return self


# -- pages ------------------------------------------------------------------------------------
T = TypeVar("T")


class Page(Canonical, Generic[T]):
    """A page of results; ``next_cursor`` is opaque and ``None`` on the last page."""

    items: tuple[T, ...] = ()
    next_cursor: str | None = None
