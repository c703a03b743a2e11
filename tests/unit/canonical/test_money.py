"""Money: exact decimals, the currency's minor units, no floats anywhere, strings in JSON."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from canonical import MINOR_UNITS, InvalidMoney, Money, normalize_amount


def test_jpy_with_zero_decimals_is_quantized_to_whole_yen():
    m = Money(amount="1500.00", currency="JPY")
    assert m.amount == Decimal("1500") and m.amount.as_tuple().exponent == 0
    assert m.model_dump_json() == '{"amount":"1500","currency":"JPY"}'


def test_jpy_with_sen_is_refused_not_rounded():
    with pytest.raises(ValidationError, match="more decimal places than JPY allows"):
        Money(amount="1500.50", currency="JPY")
    with pytest.raises(InvalidMoney, match="refusing to round"):
        Money.of(Decimal("1500.50"), "JPY")


@pytest.mark.parametrize("amount,currency,expected", [
    ("125.4", "EUR", "125.40"),
    ("125", "USD", "125.00"),
    (Decimal("-5.990"), "GBP", "-5.99"),
    (7, "CHF", "7.00"),
    ("1.234", "BHD", "1.234"),
    ("1.5", "KWD", "1.500"),
    ("0.001", "BHD", "0.001"),
    ("-0.00", "EUR", "0.00"),
    ("+12", "JPY", "12"),
])
def test_amounts_are_quantized_to_the_minor_units(amount, currency, expected):
    m = Money(amount=amount, currency=currency)
    assert m.model_dump(mode="json") == {"amount": expected, "currency": currency}
    assert Money.of(amount, currency) == m


@pytest.mark.parametrize("amount,currency,message", [
    ("0.001", "EUR", "more decimal places than EUR allows (2)"),
    ("1.2345", "BHD", "more decimal places than BHD allows (3)"),
    ("1", "eur", "unknown currency 'eur'"),
    ("1", "XXX", "unknown currency 'XXX'"),
    ("1e3", "EUR", "not a plain decimal number"),
    ("NaN", "EUR", "not a plain decimal number"),
    ("12,50", "EUR", "not a plain decimal number"),
    (Decimal("NaN"), "EUR", "not a finite number"),
    (Decimal("Infinity"), "EUR", "not a finite number"),
    (Decimal("1E+18"), "EUR", "more than 18 integer digits"),
    (True, "EUR", "not a bool"),
    (None, "EUR", "not NoneType"),
])
def test_invalid_money_is_refused_with_a_clear_message(amount, currency, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Money(amount=amount, currency=currency)
    with pytest.raises(InvalidMoney):
        Money.of(amount, currency)


@pytest.mark.parametrize("value", [125.4, 0.1, 1500.0, float("nan")])
def test_float_is_refused_everywhere(value):
    with pytest.raises(ValidationError, match="float"):
        Money(amount=value, currency="EUR")
    with pytest.raises(InvalidMoney, match="floats are not money"):
        Money.of(value, "EUR")
    with pytest.raises(ValidationError, match="float"):
        Money.model_validate_json(json.dumps({"amount": value, "currency": "EUR"}))


def test_json_amount_is_a_string_and_reads_back():
    m = Money(amount="125.40", currency="EUR")
    data = json.loads(m.model_dump_json())
    assert data == {"amount": "125.40", "currency": "EUR"} and isinstance(data["amount"], str)
    assert Money.model_validate_json(m.model_dump_json()) == m
    assert m.model_dump() == {"amount": Decimal("125.40"), "currency": "EUR"}  # python mode keeps Decimal


def test_json_schema_says_string():
    schema = Money.model_json_schema()
    assert schema["properties"]["amount"]["type"] == "string"
    assert schema["additionalProperties"] is False


def test_money_is_frozen_and_refuses_extra_fields():
    m = Money(amount="1", currency="EUR")
    with pytest.raises(ValidationError):
        m.amount = Decimal("2")  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Money(amount="1", currency="EUR", note="x")
    with pytest.raises(ValidationError, match="currency"):
        Money(amount="1")


def test_nested_in_a_model_float_is_refused_too():
    class Holder(BaseModel):
        price: Money

    with pytest.raises(ValidationError, match="float"):
        Holder.model_validate({"price": {"amount": 9.99, "currency": "EUR"}})
    assert Holder.model_validate({"price": {"amount": "9.99", "currency": "EUR"}}).price.amount == Decimal("9.99")


def test_fast_constructor_equals_validated_model_and_behaves_like_one():
    fast = Money.of(Decimal("-125.40"), "EUR")
    slow = Money(amount="-125.4", currency="EUR")
    assert fast == slow and hash(fast) == hash(slow)
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == {"amount", "currency"}
    assert Money.model_validate(fast) is fast


def test_arithmetic_keeps_currency_and_refuses_mixing():
    a, b = Money.of("10.00", "EUR"), Money.of("2.50", "EUR")
    assert (a - b) == Money.of("7.50", "EUR") and (a + b).amount == Decimal("12.50")
    assert (-a).amount == Decimal("-10.00") and abs(-a) == a and (-a).is_negative
    assert str(a) == "10.00 EUR" and Money.zero("JPY").amount == Decimal("0")
    with pytest.raises(InvalidMoney, match="currency mismatch"):
        a + Money.of(1, "USD")


def test_minor_units_table():
    assert MINOR_UNITS["JPY"] == 0 and MINOR_UNITS["EUR"] == 2 and MINOR_UNITS["BHD"] == 3
    assert MINOR_UNITS["KWD"] == 3 and MINOR_UNITS["KRW"] == 0 and MINOR_UNITS["CLF"] == 4
    assert all(len(c) == 3 and c.isupper() for c in MINOR_UNITS)


@given(cents=st.integers(min_value=-(10**17), max_value=10**17),
       currency=st.sampled_from(["EUR", "USD", "JPY", "BHD", "CHF"]))
def test_any_exact_amount_round_trips_through_json(cents, currency):
    units = MINOR_UNITS[currency]
    amount = Decimal(cents).scaleb(-units)
    m = Money.of(amount, currency)
    assert Money.model_validate_json(m.model_dump_json()) == m
    assert normalize_amount(str(amount), currency) == (m.amount, currency)
    assert m.amount.as_tuple().exponent == -units


@given(value=st.decimals(allow_nan=False, allow_infinity=False, places=4,
                         min_value=Decimal("-1e12"), max_value=Decimal("1e12")))
def test_fast_path_and_model_agree(value):
    try:
        expected = Money(amount=value, currency="EUR")
    except ValidationError:
        with pytest.raises(InvalidMoney):
            Money.of(value, "EUR")
    else:
        assert Money.of(value, "EUR") == expected


def test_money_built_by_of_can_be_copied_with_an_update_and_stays_independent():
    m = Money.of(Decimal("1.00"), "EUR")
    other = Money.of(Decimal("3.00"), "EUR")
    copied = m.model_copy(update={"amount": Decimal("2.00")})
    assert copied.amount == Decimal("2.00") and copied.currency == m.currency
    assert m.amount == Decimal("1.00")
    assert other.model_fields_set == {"amount", "currency"}
