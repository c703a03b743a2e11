"""``canonical.builder.NOOP_WHEN``: each registered model validator really is a no-op (returns the
instance, raises nothing) wherever its condition holds, on instances of every combination of the
fields the condition reads; the C row programs skip the call there (tests/mappings/test_native_rows.py
checks that they do, and that they call it elsewhere)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from canonical import Balance, Money, Transaction
from canonical.builder import NOOP_WHEN, SameValues

_ONE = Money.of(1, "EUR").amount
MONEYS = [Money.of("1.00", "EUR"), Money.of("1.00", "EUR"), Money.of("-2.50", "EUR"), Money.of("1.00", "USD"),
          Money.of(5, "JPY"), Money.model_construct(amount=_ONE, currency="".join(["E", "UR"])),  # equal, not same
          Money.model_construct(amount=_ONE, currency="USD")]  # the same amount object as the one before

BASES = {
    Transaction: Transaction(id="1-1", account_id="1", booked_at=dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC),
                             value_date=dt.date(2026, 11, 27), amount=Money.of("1.00", "EUR")),
    Balance: Balance(account_id="1", ledger=Money.of(1, "EUR"), available=Money.of(1, "EUR"), as_of="2026-11-27"),
}


def owner(fn) -> type:
    for model in BASES:
        if any(d.func is fn for d in model.__pydantic_decorators__.model_validators.values()):
            return model
    raise AssertionError(f"{fn.__qualname__}: no model of this test owns it; add one to BASES")


def check_claim(fn, cond: SameValues, model: type) -> tuple[int, int]:
    """Every combination of values for the condition's two fields: where it holds, ``fn`` returns the
    instance and raises nothing. Returns (held, did not hold) counts."""
    b_values = [*MONEYS, None] if cond.none_ok else MONEYS
    held = not_held = 0
    for a, b in itertools.product(MONEYS, b_values):
        instance = BASES[model].model_copy(update={cond.a: a, cond.b: b})
        if cond.holds(instance):
            held += 1
            assert fn(instance) is instance, (cond, a, b)
        else:
            not_held += 1
    return held, not_held


@pytest.mark.parametrize("fn", list(NOOP_WHEN), ids=lambda fn: fn.__qualname__)
def test_each_registered_validator_is_a_no_op_where_its_condition_holds(fn):
    held, not_held = check_claim(fn, NOOP_WHEN[fn], owner(fn))
    assert held and not_held  # both sides were exercised


def test_the_odbc_models_validators_are_registered():
    assert Transaction._check in NOOP_WHEN and Balance._check in NOOP_WHEN


def test_a_wrong_claim_is_caught():
    """The check above can fail: a condition that holds where the validator refuses."""
    wrong = SameValues("amount", "running_balance", attr="amount", none_ok=True)  # amounts, not currencies
    with pytest.raises(ValueError, match="different currencies"):
        check_claim(Transaction._check, wrong, Transaction)


def test_the_condition_reads_the_instance_as_the_c_guard_does():
    t = BASES[Transaction]
    cond = NOOP_WHEN[Transaction._check]
    assert cond.holds(t)  # running_balance None
    assert cond.holds(t.model_copy(update={"running_balance": Money.of("9.00", "EUR")}))
    assert not cond.holds(t.model_copy(update={"running_balance": Money.of("9.00", "USD")}))
    assert not cond.holds(t.model_copy(update={"amount": None, "running_balance": Money.of(1, "EUR")}))
    # equal text of another str type is not trusted (the validator is called instead)
    odd = Money.model_construct(amount=Money.of(1, "EUR").amount, currency=type("S", (str,), {})("EUR"))
    assert not cond.holds(t.model_copy(update={"running_balance": odd}))
    assert not SameValues("amount", "nope").holds(t) and not SameValues("nope", "amount").holds(t)
    assert SameValues("amount", "nope", none_ok=True).holds(t) is False  # a missing field is not None
    assert cond.native() == ("amount", "running_balance", "currency", True)
