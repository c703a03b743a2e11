"""``CompiledMapping.row_reader``: rows as sequences (what pyodbc gives the ODBC adapter) read by
column position give exactly what ``read(dict(zip(columns, row)))`` gives -- the same canonical
objects (equal, same JSON, same fields set) for valid rows, the same MappingApplyError for bad ones --
while valid rows are built by the generated function alone (no dict, no pydantic round)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.odbc import SQL_HISTORY
from mappings.engine import MappingApplyError, MappingRegistry
from tests.mappings.sameness import assert_same as same_model
from tests.mappings.sameness import outcome

#: the adapter's history statement's columns, in its order
COLUMNS = tuple(SQL_HISTORY["limit"].split("SELECT ", 1)[1].split(" FROM", 1)[0].replace(" ", "").split(","))


@pytest.fixture(scope="module")
def txnhist():
    return MappingRegistry.load()["odbc.txnhist"]


def reference(mapping, record):
    """read() through the closures and pydantic only (what every fast path must reproduce)."""
    out = mapping.read_dict(record)
    try:
        return mapping._validate(out)
    except ValidationError as exc:
        raise mapping._validation_error(exc, record, None) from None


def assert_same(got, want):
    """Equal, same types, same __dict__ order, same fields set, same JSON; or the same error."""
    same_model(got, want)
    if isinstance(want, tuple):
        return
    assert got.model_dump_json() == want.model_dump_json()
    for name, value in want.__dict__.items():
        if hasattr(value, "__pydantic_fields_set__"):  # the Money inside, built the same way too
            assert_same(got.__dict__[name], value)
        else:
            assert type(got.__dict__[name]) is type(value) and got.__dict__[name] == value


def row_of(record: dict, columns=COLUMNS) -> tuple:
    return tuple(record.get(c) for c in columns)


def read_one(mapping, row, columns=COLUMNS):
    return mapping.row_reader(columns)([row])[0]


def test_the_columns_are_the_statements():
    assert COLUMNS[:3] == ("ACCT_NO", "TXN_SEQ", "POST_DT") and len(COLUMNS) == 15


def test_examples_are_built_by_the_generated_row_function(txnhist):
    reader = txnhist.row_reader(COLUMNS)
    assert "r[0]" in reader.source and ".get(" not in reader.source.split("\n", 1)[1].split("p2")[0]
    for ex in txnhist.spec.examples:
        row = row_of(ex.input)
        want = reference(txnhist, dict(zip(COLUMNS, row, strict=True)))
        assert_same(reader.fast(row), want)  # the generated function by itself: no fallback
        assert_same(reader([row])[0], want)


def test_one_reader_per_column_list(txnhist):
    assert txnhist.row_reader(list(COLUMNS)) is txnhist.row_reader(COLUMNS)
    assert txnhist.row_reader(COLUMNS[::-1]) is not txnhist.row_reader(COLUMNS)


def test_column_order_missing_and_duplicate_columns_read_like_the_dict(txnhist):
    record = dict(txnhist.spec.examples[0].input)
    reordered = COLUMNS[::-1]
    assert_same(read_one(txnhist, row_of(record, reordered), reordered), reference(txnhist, record))
    # a column the statement lacks is None, as dict.get gives it: an optional field is left out...
    without = tuple(c for c in COLUMNS if c != "TXN_DESC")
    want = reference(txnhist, {k: v for k, v in record.items() if k != "TXN_DESC"})
    assert_same(read_one(txnhist, row_of(record, without), without), want)
    assert want.description == ""
    # ...a required one is the same error
    without = tuple(c for c in COLUMNS if c != "TXN_AMT")
    got = outcome(read_one, txnhist, row_of(record, without), without)
    assert got == outcome(reference, txnhist, {k: v for k, v in record.items() if k != "TXN_AMT"})
    assert got[0] == "MappingApplyError" and "TXN_AMT" in got[1]
    # a column named twice: the last one wins, as in dict(zip(...))
    twice = (*COLUMNS, "TXN_DESC")
    got = read_one(txnhist, (*row_of(record), "SECOND  "), twice)
    assert got.description == "SECOND"
    assert_same(got, reference(txnhist, dict(zip(twice, (*row_of(record), "SECOND  "), strict=True))))


def test_a_bad_row_in_a_page_is_reported_as_read_reports_it(txnhist):
    good = [row_of(ex.input) for ex in txnhist.spec.examples]
    bad = row_of({**txnhist.spec.examples[0].input, "TXN_AMT": "1.005"})
    reader = txnhist.row_reader(COLUMNS)
    with pytest.raises(MappingApplyError) as got:
        reader([*good, bad, *good])
    with pytest.raises(MappingApplyError) as want:
        txnhist.read(dict(zip(COLUMNS, bad, strict=True)))
    assert str(got.value) == str(want.value) and "more than 2 decimal places" in str(got.value)
    # a row only the closures can read (a float-free int amount) does not spoil the page
    odd = row_of({**txnhist.spec.examples[0].input, "TXN_AMT": 7, "TXN_SEQ": Decimal("383")})
    page = reader([*good, odd, *good])
    assert len(page) == 2 * len(good) + 1 and page[len(good)].amount.amount == Decimal("-7.00")
    for got_obj, row in zip(page, [*good, odd, *good], strict=True):
        assert_same(got_obj, reference(txnhist, dict(zip(COLUMNS, row, strict=True))))
    assert reader(iter(good)) == reader(good)  # any iterable of rows
    assert reader([]) == []


# -- the property: a row of text as the SQLite ODBC driver gives it (or Decimal as psqlODBC does) ---------
def mostly(good, odd):
    return st.integers(0, 24).flatmap(lambda i: odd if i == 13 else good)


TEXT = st.sampled_from(["", " ", "  X ", "110000000543", "A" * 300, "\u00a0", "x\ty", None, 5, Decimal("1")])
PLACES2 = st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=0, max_value=10**9)
AMOUNT_TEXT = st.one_of(PLACES2.map(lambda d: f"{d:f}"), st.integers(0, 10**7).map(str),
                        st.decimals(allow_nan=False, allow_infinity=False, places=1, min_value=0,
                                    max_value=10**5).map(lambda d: f"{d:f}"))
ODD_AMOUNT = st.sampled_from(["1.005", "-5.00", " 12.50 ", "1e3", "1E+20", "NaN", "sNaN", "Infinity", "-0", "0.00",
                              "12,50", "", " ", "\u0661\u0662", "1_000", "x", None, 1.5, 7, Decimal("-1.00"),
                              Decimal("12.5"), Decimal("NaN"), True, "9" * 25])
SIGNED = st.one_of(PLACES2, PLACES2.map(lambda d: -d))
DATE = st.sampled_from(["1261127", "1241127", "1240229", "0991231", "991231", "1000101"])
ODD_DATE = st.sampled_from(["0", "0000000", "2261127", "1261340", "1260229", "1261127 ", " 1261127", "", "x",
                            None, 1261127, Decimal("1261127"), 1.5, "\u0661261127", "12611270"])
TIME = st.integers(0, 235959).filter(lambda t: t % 10000 < 6000 and t % 100 < 60)
ODD_TIME = st.sampled_from(["", " ", "0", "000000", "246000", "126000", "125960", "-1", "+85347", " 85347",
                            "85347 ", "1234567", "12:34:56", "\u0668\u0665\u0663\u0664\u0667", None, 85347, True,
                            Decimal("85347"), 1.5])
ROW = st.fixed_dictionaries({
    "ACCT_NO": mostly(st.from_regex(r"1[0-9]{11}", fullmatch=True), TEXT),
    "TXN_SEQ": mostly(st.integers(1, 10**9).map(str), st.sampled_from(["007", "0", " 12", "12 ", "-5", "+5", "x",
                                                                          "\u0661", "", None, 5, Decimal("3"),
                                                                          Decimal("3.5"), True])),
    "POST_DT": mostly(DATE, ODD_DATE),
    "POST_TM": mostly(TIME.map(str), ODD_TIME),
    "VALUE_DT": mostly(DATE, ODD_DATE),
    "TXN_CD": mostly(st.sampled_from(["TFO", "POS", "SAL", "DDR", " ATM", "FEE "]),
                     st.sampled_from(["XYZ", "", None, 5])),
    "DR_CR_IND": mostly(st.sampled_from(["D", "C"]), st.sampled_from([" D", "C ", "X", "", "d", None, 1])),
    "TXN_AMT": mostly(st.one_of(AMOUNT_TEXT, PLACES2), ODD_AMOUNT),
    "RUN_BAL": mostly(st.one_of(SIGNED.map(lambda d: f"{d:f}"), SIGNED), ODD_AMOUNT),
    "CURR_CD": mostly(st.sampled_from(["EUR", "USD", "JPY", "GBP", "KWD"]),
                      st.sampled_from([" USD", "USD ", "eur", "XXX", "", None, 5])),
    "TXN_DESC": mostly(st.text(max_size=40).map(lambda s: s.ljust(40)), TEXT),
    "TXN_REF": mostly(st.sampled_from([" " * 16, "MOB-7".ljust(16), " R "]), TEXT),
    "CNTR_ACCT": mostly(st.sampled_from([" " * 12, "159000000016"]), TEXT),
    "CHANNEL": mostly(st.sampled_from(["MOB", "POS", "BAT", "WEB"]), st.sampled_from(["???", None, "", " POS"])),
    "TXN_STAT": mostly(st.sampled_from(["P", "R"]), st.sampled_from(["X", None, "", " P"])),
})


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=ROW)
def test_the_row_reader_is_the_validating_path_on_any_row(txnhist, record):
    row = row_of(record)
    want = outcome(reference, txnhist, dict(record))
    assert_same(outcome(read_one, txnhist, row), want)
    if not isinstance(want, tuple):
        # the generated function gives up (then the closures answer) but never gives something else
        try:
            fast = txnhist.row_reader(COLUMNS).fast(row)
        except Exception:  # noqa: BLE001 - giving up is allowed, a different answer is not
            return
        assert_same(fast, want)
    else:
        with pytest.raises(Exception):  # noqa: B017 - a row the mapping refuses never passes the fast path
            txnhist.row_reader(COLUMNS).fast(row)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amount=AMOUNT_TEXT, balance=SIGNED.map(lambda d: f"{d:f}"), time=TIME.map(str), seq=st.integers(1, 10**9),
       date=DATE, currency=st.sampled_from(["EUR", "USD", "GBP", "CHF"]), ind=st.sampled_from(["D", "C"]))
def test_rows_as_the_sqlite_driver_gives_them_never_leave_the_fast_path(txnhist, amount, balance, time, seq, date,
                                                                          currency, ind):
    """Every valid row of the shapes the ledger holds is built by the generated function itself."""
    record = {**txnhist.spec.examples[0].input, "TXN_AMT": amount, "RUN_BAL": balance, "POST_TM": time,
              "TXN_SEQ": str(seq), "POST_DT": date, "CURR_CD": currency, "DR_CR_IND": ind}
    assert_same(txnhist.row_reader(COLUMNS).fast(row_of(record)), reference(txnhist, record))


def test_a_mapping_with_nested_paths_reads_each_row_as_its_dict():
    """Rows are flat: a mapping reading a group's field (``TXD-CNTR-INFO.TXD-CNTR-ACCT``) gets no
    generated row function, and every row is read through its dict (the same result, no shortcut)."""
    mapping = MappingRegistry.load()["batch.txnhist.detail"]
    ex = mapping.spec.examples[0]
    columns = tuple(ex.input)
    reader = mapping.row_reader(columns)
    assert not hasattr(reader, "fast")
    row = tuple(ex.input[c] for c in columns)
    assert reader([row]) == [mapping.read(dict(zip(columns, row, strict=True)))]
