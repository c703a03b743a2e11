"""The canonical model: corebridge's own vocabulary, independent of any core's formats.

Adapters turn legacy records into these objects through mapping files (``mappings/``); the API
serialises them. ``canonical`` imports nothing else of ours.

* :class:`Money` - exact amount + ISO 4217 currency, checked against the currency's minor units;
* :class:`Customer`, :class:`Account`, :class:`Balance`, :class:`Transaction`,
  :class:`Transfer`, :class:`Statement`, :class:`Page` - frozen pydantic v2 models;
* :mod:`canonical.errors` - domain errors (``NotFound``, ``Rejected``, ``InvalidMoney``);
* :mod:`canonical.builder` - ``model_plan``: how generated code builds a model exactly as
  pydantic would, without a validation round (the mapping engine's fast path).

``MODELS`` maps the model names a mapping file may target to their classes.
"""

from __future__ import annotations

from pydantic import BaseModel

from .currency import MINOR_UNITS, minor_units
from .errors import CanonicalError, InvalidMoney, NotFound, Rejected
from .models import (
    Account,
    AccountStatus,
    Address,
    Balance,
    Canonical,
    Customer,
    CustomerStatus,
    CustomerType,
    Page,
    Statement,
    StatementLine,
    Transaction,
    TransactionStatus,
    Transfer,
    TransferStatus,
)
from .money import Money, normalize_amount

#: the models a mapping file may name as its ``target``
MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (Customer, Account, Balance, Transaction, Transfer, Statement, Money, Address, StatementLine)
}

__all__ = [
    "MINOR_UNITS",
    "MODELS",
    "Account",
    "AccountStatus",
    "Address",
    "Balance",
    "Canonical",
    "CanonicalError",
    "Customer",
    "CustomerStatus",
    "CustomerType",
    "InvalidMoney",
    "Money",
    "NotFound",
    "Page",
    "Rejected",
    "Statement",
    "StatementLine",
    "Transaction",
    "TransactionStatus",
    "Transfer",
    "TransferStatus",
    "minor_units",
    "normalize_amount",
]
