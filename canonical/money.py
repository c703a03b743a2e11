"""Money: an exact decimal amount in an ISO 4217 currency, valid for that currency's minor units.

Rules (one place, used by the model and by the mapping engine's ``money`` transform):

* the amount is a ``Decimal``, an ``int`` or a plain decimal string (``"125.40"``, ``"-5"``);
  a ``float`` is refused everywhere (``0.1 + 0.2`` is not money), so are ``bool``, NaN,
  infinities and exponent strings such as ``"1e3"``;
* the currency is a known ISO 4217 code (``canonical.currency.MINOR_UNITS``);
* the amount is quantized to the currency's minor units when that is exact (``1500.00`` JPY
  becomes ``1500``, ``125.4`` EUR becomes ``125.40``) and refused when it is not (``1500.50``
  JPY, ``0.001`` EUR);
* negative zero becomes zero.

JSON: ``{"amount": "125.40", "currency": "EUR"}``: the amount is a string, never a number.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_serializer, model_validator

from .currency import MINOR_UNITS
from .errors import InvalidMoney

__all__ = ["Money", "normalize_amount"]

_PLAIN = re.compile(r"[+-]?\d+(\.\d+)?\Z")
#: amounts must be below 10**18 in magnitude (DB2 cores carry DECIMAL(31,x) at most; 18 integer
#: digits hold any real balance, VND and IRR included, and keep every quantize exact)
MAX_INTEGER_DIGITS = 18
_QUANTUM = {n: Decimal(1).scaleb(-n) for n in range(0, 5)}
_ZERO = {n: Decimal(0).quantize(q) for n, q in _QUANTUM.items()}
_QUANTUM_OF = {code: _QUANTUM[units] for code, units in MINOR_UNITS.items()}  # currency -> its quantum


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise InvalidMoney("amount must be a decimal string or Decimal, not a bool")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise InvalidMoney(
            f"amount {value!r} is a float: floats are not money; send the amount as a decimal "
            f"string such as \"{value:.2f}\""
        )
    if isinstance(value, str):
        text = value.strip()
        if not _PLAIN.match(text):
            raise InvalidMoney(f"amount {value!r} is not a plain decimal number such as \"125.40\"")
        return Decimal(text)
    raise InvalidMoney(f"amount must be a decimal string or Decimal, not {type(value).__name__}")


def normalize_amount(value: Any, currency: Any) -> tuple[Decimal, str]:
    """Check and quantize an amount for a currency; return ``(amount, currency)``.

    Raises :class:`~canonical.errors.InvalidMoney` with a message that names the rule broken.
    """
    units = MINOR_UNITS.get(currency) if isinstance(currency, str) else None
    if units is None:
        if not isinstance(currency, str):
            raise InvalidMoney(f"currency must be an ISO 4217 code string, not {type(currency).__name__}")
        hint = " (codes are upper case)" if currency.upper() in MINOR_UNITS else ""
        raise InvalidMoney(f"unknown currency {currency!r}: not an ISO 4217 code we carry{hint}")
    amount = value if type(value) is Decimal else _as_decimal(value)
    try:
        quantized = amount.quantize(_QUANTUM[units])
    except InvalidOperation:
        raise InvalidMoney(f"amount {amount} is not a finite number or too large") from None
    if quantized != amount:
        if not amount.is_finite():
            raise InvalidMoney(f"amount {amount} is not a finite number")
        raise InvalidMoney(
            f"amount {amount} has more decimal places than {currency} allows ({units}): "
            "refusing to round money"
        )
    if quantized.adjusted() >= MAX_INTEGER_DIGITS:
        raise InvalidMoney(f"amount {amount} has more than {MAX_INTEGER_DIGITS} integer digits")
    if not quantized:
        quantized = _ZERO[units]  # no negative zero
    return quantized, currency


_AmountJson = WithJsonSchema(
    {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["125.40", "-5.99", "1500"]}
)


class Money(BaseModel):
    """An exact amount in a currency. Signed: a debit is negative where a model says so."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Annotated[Decimal, _AmountJson, Field(description="exact decimal amount, as a string in JSON")]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        if isinstance(data, dict):
            extra = set(data) - {"amount", "currency"}
            if extra or "amount" not in data or "currency" not in data:
                return data  # let pydantic report missing / extra fields in its own words
            amount, currency = normalize_amount(data["amount"], data["currency"])
            return {"amount": amount, "currency": currency}
        return data

    @field_serializer("amount", when_used="json")
    def _amount_as_string(self, amount: Decimal) -> str:
        return f"{amount:f}"

    # -- construction helpers ---------------------------------------------------------------
    @classmethod
    def of(cls, amount: Any, currency: str) -> Money:
        """Checked construction without a pydantic round: the same rules, a fraction of the cost.

        The mapping engine builds every Money through here.
        """
        quantum = _QUANTUM_OF.get(currency) if type(currency) is str else None
        if quantum is not None and type(amount) is Decimal and amount.is_finite():
            # fast path: the common case of an exact Decimal; everything else takes normalize_amount
            quantized = amount.quantize(quantum)
            if quantized == amount and quantized and quantized.adjusted() < MAX_INTEGER_DIGITS:
                amount = quantized
            else:
                amount, currency = normalize_amount(amount, currency)
        else:
            amount, currency = normalize_amount(amount, currency)
        m = _new(cls)
        _set_dict(m, {"amount": amount, "currency": currency})
        _set_fields_set(m, {"amount", "currency"})  # a fresh set: model_copy updates it
        _set_extra(m, None)
        _set_private(m, None)
        return m

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls.of(0, currency)

    # -- small arithmetic the business layer needs -------------------------------------------
    def __neg__(self) -> Money:
        return Money.of(-self.amount, self.currency)

    def __abs__(self) -> Money:
        return Money.of(abs(self.amount), self.currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise InvalidMoney(f"currency mismatch: {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money.of(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money.of(self.amount - other.amount, self.currency)

    @property
    def is_negative(self) -> bool:
        return self.amount < 0

    def __str__(self) -> str:
        return f"{self.amount:f} {self.currency}"


_new = object.__new__
# the slot descriptors pydantic's own model_construct fills, called directly (half the cost of
# object.__setattr__; Money.of is on the hot path of every mapped record)
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
