"""Objects the generated code builds without pydantic (``object.__new__`` + the four slots, see
:mod:`canonical.builder`; ``Money.of`` likewise) are indistinguishable from the ones pydantic
validates: the same fields, and the same behaviour under everything a caller can do with a model."""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal

import pytest
from pydantic import ValidationError

from adapters.odbc import _history_page
from canonical import Money, Page, Transaction
from mappings.engine import MappingRegistry
from tests.mappings.sameness import assert_same
from tests.mappings.test_row_reader import COLUMNS, reference, row_of


def _records(mapping):
    base = [dict(ex.input) for ex in mapping.spec.examples]
    first = base[0]
    return [*base,
            {**first, "RUN_BAL": None},  # no running balance: an optional field left out
            {**first, "TXN_STAT": "R", "CHANNEL": "POS", "TXN_REF": "R-1".ljust(16), "DR_CR_IND": "C"},
            {**first, "TXN_DESC": " " * 40, "TXN_AMT": "0.00", "RUN_BAL": "-12.5"},  # zero and a negative balance
            {**first, "CURR_CD": "JPY", "TXN_AMT": "1500", "RUN_BAL": "1065370"}]


@pytest.fixture(scope="module")
def pairs():
    """(built by the generated row function, validated by pydantic) for a spread of rows."""
    mapping = MappingRegistry.load()["odbc.txnhist"]
    fast = mapping.row_reader(COLUMNS).fast
    out = []
    for record in _records(mapping):
        built = fast(row_of(record))
        built_again = fast(row_of(record))  # a second read of the same row (the cached CYYMMDD dates)
        out.append((built, reference(mapping, record)))
        out.append((built_again, reference(mapping, record)))
    return out


def _moneys(t):
    return [m for m in (t.amount, t.running_balance) if m is not None]


def test_fields_and_slots_are_those_pydantic_sets(pairs):
    for built, validated in pairs:
        assert_same(built, validated)
        for got, want in zip(_moneys(built), _moneys(validated), strict=True):
            assert_same(got, want)
            assert got.amount.as_tuple() == want.amount.as_tuple()  # same digits and exponent, not just equal
        assert built.booked_at.tzinfo is validated.booked_at.tzinfo and built.booked_at.fold == 0


def test_equality_hash_repr_and_dumps(pairs):
    for built, validated in pairs:
        assert built == validated and validated == built and not built != validated
        assert hash(built) == hash(validated)
        assert repr(built) == repr(validated) and str(built) == str(validated)
        assert built.model_dump() == validated.model_dump()
        assert built.model_dump(mode="json") == validated.model_dump(mode="json")
        assert built.model_dump_json() == validated.model_dump_json()
        assert built.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
        assert built.model_dump_json(exclude_defaults=True) == validated.model_dump_json(exclude_defaults=True)
        assert built.model_fields_set == validated.model_fields_set
        assert built.model_extra == validated.model_extra is None
        assert built.__getstate__() == validated.__getstate__()


def test_validation_keeps_them_and_revalidates_them_alike(pairs):
    for built, validated in pairs:
        assert Transaction.model_validate(built) is built  # an instance of exactly the class is kept
        assert Transaction.model_validate(built.model_dump()) == validated
        assert Transaction.model_validate_json(built.model_dump_json()) == validated
        assert Page[Transaction](items=(built,)).items[0] is built


def test_frozen_like_validated(pairs):
    built, validated = pairs[0]
    for obj in (built, validated, built.amount):
        with pytest.raises(ValidationError, match="frozen"):
            obj.description = "x" if isinstance(obj, Transaction) else None
    with pytest.raises(ValidationError, match="frozen"):
        built.amount.amount = Decimal(1)


def test_copies_and_pickles_like_validated(pairs):
    for built, validated in pairs:
        for got, want in ((copy.copy(built), copy.copy(validated)), (copy.deepcopy(built), copy.deepcopy(validated)),
                          (built.model_copy(), validated.model_copy()),
                          (built.model_copy(deep=True), validated.model_copy(deep=True)),
                          (pickle.loads(pickle.dumps(built)), pickle.loads(pickle.dumps(validated)))):
            assert_same(got, want)
            assert got.model_fields_set == want.model_fields_set and got == built
        update = {"description": "changed", "channel": "web"}
        got, want = built.model_copy(update=update), validated.model_copy(update=update)
        assert_same(got, want)
        assert got.model_fields_set == want.model_fields_set and "channel" in got.model_fields_set
        assert built == validated and built.description != "changed"  # the original is untouched
        money = built.amount.model_copy(update={"amount": Decimal("2.00")})
        assert money.amount == Decimal("2.00") and built.amount == validated.amount


def test_each_object_has_its_own_fields_set(pairs):
    """A fields set shared between objects would let one object's copy-with-update change another's."""
    sets = [s for built, _ in pairs for s in (built.__pydantic_fields_set__,
                                             *(m.__pydantic_fields_set__ for m in _moneys(built)))]
    assert len({id(s) for s in sets}) == len(sets) and all(type(s) is set for s in sets)
    (a, _), (b, _) = pairs[0], pairs[1]  # the same row, built twice
    a.__pydantic_fields_set__.add("__probe__")  # what model_copy(update=...) does to a copy's set
    try:
        assert "__probe__" not in b.__pydantic_fields_set__
    finally:
        a.__pydantic_fields_set__.discard("__probe__")


def test_a_built_page_is_the_validated_page(pairs):
    items = tuple(built for built, _ in pairs)
    want = Page[Transaction](items=tuple(v for _, v in pairs), next_cursor="12")
    got = _history_page(items, "12")
    assert got == want and got.model_dump_json() == want.model_dump_json()
    assert got.model_fields_set == want.model_fields_set and hash(got) == hash(want)
    empty, want = _history_page((), None), Page[Transaction](items=(), next_cursor=None)
    assert empty == want and empty.model_fields_set == want.model_fields_set
    # anything but exact Transactions goes through pydantic (which reports)
    with pytest.raises(ValidationError):
        _history_page((Money.of("1.00", "EUR"),), None)

