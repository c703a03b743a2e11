"""Request and response models of the HTTP API that the canonical models do not already cover,
and the examples the OpenAPI document shows.

Responses are canonical objects wherever one fits (``Customer``, ``Account``, ``Balance``,
``Transaction``, ``Transfer``): money is ``{"amount": "125.40", "currency": "EUR"}`` with the
amount as a string, dates ``YYYY-MM-DD``, timestamps ISO 8601 with an offset. Input models refuse
unknown fields.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from canonical import MINOR_UNITS, Account, InvalidMoney, Money, Transaction

__all__ = [
    "ACCOUNT_EXAMPLE",
    "BALANCE_EXAMPLE",
    "CUSTOMER_EXAMPLE",
    "ID_PATTERN",
    "TRANSACTION_PAGE_EXAMPLE",
    "TRANSFER_EXAMPLE",
    "AccountList",
    "Health",
    "IsoDate",
    "Readiness",
    "TransactionPage",
    "TransferRequest",
]

#: customer, account and transfer ids in paths and bodies
ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def _iso_date_only(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("dates are ISO 8601: YYYY-MM-DD")
    return value


#: a ``YYYY-MM-DD`` date (pydantic alone would read ``20261127`` as a Unix timestamp)
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_only)]
AccountId = Annotated[str, Field(pattern=ID_PATTERN, description="account id", examples=["110000000543"])]


class TransferRequest(BaseModel):
    """A transfer between two accounts; ``from_account`` must be the caller's."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [{
        "from_account": "110000000543", "to_account": "120000000014", "amount": "125.40", "currency": "EUR",
        "memo": "RENT NOVEMBER"}]})

    from_account: AccountId
    to_account: AccountId
    amount: Annotated[str, Field(strict=True, pattern=r"^\d{1,13}(\.\d{1,4})?$", examples=["125.40"],
                                 description="a positive decimal amount as a string, within the currency's "
                                             "minor units (no floats, no exponent)")]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code", examples=["EUR"],
                                   json_schema_extra={"enum": sorted(MINOR_UNITS)})]
    memo: Annotated[str | None, Field(max_length=40, pattern=r"^[\x20-\x7e]*$",
                                      description="free text for the statement (printable ASCII)")] = None

    @model_validator(mode="after")
    def _check(self) -> TransferRequest:
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unknown currency {self.currency!r}: not an ISO 4217 code")
        try:
            money = Money.of(Decimal(self.amount), self.currency)
        except InvalidMoney as exc:
            raise ValueError(str(exc)) from None
        if money.amount <= 0:
            raise ValueError("amount must be greater than zero")
        if self.from_account == self.to_account:
            raise ValueError("from_account and to_account must differ")
        return self

    @property
    def money(self) -> Money:
        return Money.of(Decimal(self.amount), self.currency)


class AccountList(BaseModel):
    items: list[Account]


class TransactionPage(BaseModel):
    """A page of transactions, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[Transaction]
    next_cursor: str | None = Field(None, description="opaque; null on the last page")


class Health(BaseModel):
    status: str = "ok"


class BackendReadiness(BaseModel):
    state: str = Field(description="worst breaker state of the backend: closed, half_open, open, ...")
    required: bool
    operations: dict[str, str] = Field(description="breaker state per operation class")


class Readiness(BaseModel):
    status: str = Field(description="ready or not_ready")
    mappings_loaded: bool
    backends: dict[str, BackendReadiness]
    blocking: list[str] = Field(default_factory=list, description="required backends whose breaker is open")


# -- examples for the OpenAPI document -------------------------------------------------------------
CUSTOMER_EXAMPLE = {
    "id": "C0000001", "type": "personal", "status": "active", "last_name": "EXAMPLE", "first_name": "ANNA",
    "birth_date": "1980-04-12", "email": "anna@example.com", "phone": None,
    "address": {"line1": "1 HIGH ST", "city": "BERLIN", "postal_code": "10115", "country": "DE"},
    "branch": "1100", "created_on": "2015-03-02",
}
ACCOUNT_EXAMPLE = {
    "id": "110000000543", "customer_id": "C0000001", "status": "open", "product": "current", "currency": "EUR",
    "title": "ANNA CURRENT", "opened_on": "2019-05-18", "closed_on": None, "branch": "1100",
}
BALANCE_EXAMPLE = {
    "account_id": "110000000543", "ledger": {"amount": "2500.00", "currency": "EUR"},
    "available": {"amount": "2400.00", "currency": "EUR"}, "as_of": "2026-11-27", "stale": False,
}
TRANSACTION_EXAMPLE = {
    "id": "110000000543-17", "account_id": "110000000543", "booked_at": "2026-11-26T14:03:00Z",
    "value_date": "2026-11-26", "amount": {"amount": "-12.99", "currency": "EUR"}, "description": "POS SHOP 3",
    "reference": None, "counterparty": None, "channel": "card", "kind": "card_purchase", "status": "posted",
    "running_balance": {"amount": "2487.01", "currency": "EUR"},
}
TRANSACTION_PAGE_EXAMPLE = {"items": [TRANSACTION_EXAMPLE], "next_cursor": "eyJhIjoi...Q.3kq9..."}
TRANSFER_EXAMPLE = {
    "reference": "CB5F3A9C01D2E4B7", "id": "4711", "from_account": "110000000543", "to_account": "120000000014",
    "amount": {"amount": "125.40", "currency": "EUR"}, "memo": "RENT NOVEMBER", "status": "posted",
    "reason_code": None, "reason": None, "posted_at": "2026-11-27T10:15:00Z", "value_date": "2026-11-27",
    "channel": "mobile",
}


def example(body: Any) -> dict[str, Any]:
    """``responses=`` content for a 200/201 JSON example."""
    return {"content": {"application/json": {"example": body}}}
