"""The canonical models: frozen, strict about dates and currencies, money as strings in JSON."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

import canonical
from canonical import (
    MODELS,
    Account,
    AccountStatus,
    Balance,
    CanonicalError,
    Customer,
    InvalidMoney,
    Money,
    NotFound,
    Page,
    Rejected,
    Statement,
    Transaction,
    Transfer,
    TransferStatus,
)

UTC = dt.UTC


def txn(**over):
    data = dict(id="110000000543-382", account_id="110000000543",
                booked_at=dt.datetime(2026, 11, 27, 13, 57, 7, tzinfo=UTC), value_date=dt.date(2026, 11, 27),
                amount=Money.of(Decimal("-125.40"), "EUR"), description="RENT NOVEMBER",
                reference="MOB-20261127-001", counterparty="159000000016", channel="mobile", kind="transfer_out",
                running_balance=Money.of(Decimal("83286.80"), "EUR"))
    data.update(over)
    return Transaction.model_validate(data)


def test_transaction_json_has_iso_dates_and_string_amounts():
    data = json.loads(txn().model_dump_json())
    assert data["booked_at"] == "2026-11-27T13:57:07Z" and data["value_date"] == "2026-11-27"
    assert data["amount"] == {"amount": "-125.40", "currency": "EUR"}
    assert data["status"] == "posted"
    assert Transaction.model_validate_json(txn().model_dump_json()) == txn()


@pytest.mark.parametrize("field,value,message", [
    ("value_date", "20261127", "ISO 8601"),
    ("value_date", 20261127, "ISO 8601"),
    ("booked_at", "1261127", "ISO 8601"),
    ("booked_at", 1764251827, "ISO 8601"),
    ("booked_at", dt.datetime(2026, 11, 27, 13, 57, 7), "timezone"),
    ("amount", {"amount": 1.5, "currency": "EUR"}, "float"),
    ("running_balance", Money.of(1, "USD"), "different currencies"),
    ("channel", "Mobile", "pattern"),
    ("id", "", "at least 1"),
])
def test_transaction_refuses(field, value, message):
    with pytest.raises(ValidationError, match=message):
        txn(**{field: value})


def test_models_are_frozen_and_refuse_unknown_fields():
    t = txn()
    with pytest.raises(ValidationError):
        t.amount = Money.of(1, "EUR")  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        txn(colour="red")


def test_balance_currencies_must_agree_and_as_of_is_date_or_datetime():
    b = Balance(account_id="1", ledger=Money.of(1, "EUR"), available=Money.of(1, "EUR"), as_of="2026-11-27")
    assert b.as_of == dt.date(2026, 11, 27) and b.stale is False
    b2 = Balance(account_id="1", ledger=Money.of(1, "EUR"), available=Money.of(1, "EUR"),
                 as_of="2026-11-27T10:00:00+01:00", stale=True)
    assert isinstance(b2.as_of, dt.datetime) and b2.stale
    with pytest.raises(ValidationError, match="different currencies"):
        Balance(account_id="1", ledger=Money.of(1, "EUR"), available=Money.of(1, "USD"), as_of="2026-11-27")


def test_account_rules():
    base = dict(id="1", customer_id="C1", status="open", product="current", currency="EUR", opened_on="2020-01-01")
    assert Account(**base).status is AccountStatus.OPEN
    with pytest.raises(ValidationError, match="unknown currency"):
        Account(**{**base, "currency": "XYZ"})
    with pytest.raises(ValidationError, match="before opened_on"):
        Account(**{**base, "closed_on": "2019-01-01"})
    with pytest.raises(ValidationError, match="status"):
        Account(**{**base, "status": "A"})


def test_transfer_defaults_and_json():
    t = Transfer(reference="REF-1", from_account="1", to_account="2", amount={"amount": "1500", "currency": "JPY"})
    assert t.status is TransferStatus.PENDING and t.id is None
    assert json.loads(t.model_dump_json())["amount"] == {"amount": "1500", "currency": "JPY"}
    assert {s.value for s in TransferStatus} == {"pending", "posted", "rejected", "unknown"}


def test_customer_address_country_is_iso():
    data = dict(id="C1", type="personal", status="active", last_name="X",
                address={"line1": "1 A ST", "city": "B", "country": "DE"})
    assert Customer(**data).address.country == "DE"
    with pytest.raises(ValidationError, match="pattern"):
        Customer(**{**data, "address": {"line1": "1 A ST", "city": "B", "country": "DEU"}})


def test_statement_lines_must_add_up():
    line = {"value_date": "2026-11-27", "description": "X", "amount": {"amount": "-1.00", "currency": "EUR"}}
    ok = Statement(account_id="1", period="2026-11-27", opening_balance={"amount": "10.00", "currency": "EUR"},
                   closing_balance={"amount": "9.00", "currency": "EUR"}, lines=[line])
    assert len(ok.lines) == 1
    with pytest.raises(ValidationError, match="lines != closing"):
        Statement(account_id="1", period="2026-11-27", opening_balance={"amount": "10.00", "currency": "EUR"},
                  closing_balance={"amount": "10.00", "currency": "EUR"}, lines=[line])


def test_generic_page():
    page = Page[Transaction](items=[txn()], next_cursor="abc")
    data = json.loads(page.model_dump_json())
    assert data["next_cursor"] == "abc" and data["items"][0]["amount"]["amount"] == "-125.40"
    assert Page[Transaction].model_validate_json(page.model_dump_json()) == page
    with pytest.raises(ValidationError):
        Page[Transaction](items=[{"id": "x"}])


def test_domain_errors():
    nf = NotFound("account", "110000000543")
    assert isinstance(nf, CanonicalError) and "account '110000000543' not found" in str(nf)
    r = Rejected("R006", "INSUFFICIENT FUNDS", reference="MOB-1")
    assert r.reason_code == "R006" and "R006" in str(r) and "MOB-1" in str(r)
    assert issubclass(InvalidMoney, ValueError) and issubclass(InvalidMoney, CanonicalError)
    for name in ("CanonicalError", "NotFound", "Rejected", "InvalidMoney"):
        assert name in canonical.errors.__doc__


def test_models_registry_names_mapping_targets():
    assert {"Customer", "Account", "Balance", "Transaction", "Transfer", "Statement"} <= set(MODELS)
    assert MODELS["Transaction"] is Transaction


def test_no_float_anywhere_in_the_json_schemas():
    for model in (Customer, Account, Balance, Transaction, Transfer, Statement):
        text = json.dumps(model.model_json_schema())
        assert '"number"' not in text, model.__name__
