"""Row programs (``mappings/engine/_rowprog.c``, compiled by ``mappings.engine.native``): for every row a
program either builds exactly the object the generated Python builds, or gives the row up (and the
generated Python reads it).  ``test_row_reader.py`` holds ``row_reader`` (the program by default) to the
validating path on any row; here the program itself, on the ledger's rows, on generated rows, under an odd
decimal context, its refcounts, its refusal of malformed programs, and the adapter's setting."""

from __future__ import annotations

import decimal
import gc
import os
import sys
from decimal import Decimal

import pyodbc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, model_validator

from adapters.odbc import SQL_HISTORY, OdbcCore, OdbcSettings
from canonical.models import Transaction
from mappings.engine import MappingRegistry, native
from mock_mainframe.ledger.seed import seed_sqlite
from mock_mainframe.odbc import sqlite_connection_string
from tests.mappings.sameness import assert_same, outcome
from tests.mappings.test_row_reader import COLUMNS, ROW, reference, row_of

pytestmark = pytest.mark.skipif(not native.AVAILABLE, reason="the C extension mappings.engine._rowprog is not built")


def test_the_extension_is_built_where_ci_runs():
    """A silent fallback to the generated Python would leave the programs untested: CI must build them."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        assert native.AVAILABLE, "mappings.engine._rowprog did not build (gcc and the Python headers are needed)"


@pytest.fixture(scope="module")
def registry():
    return MappingRegistry.load()


@pytest.fixture(scope="module")
def txnhist(registry):
    return registry["odbc.txnhist"]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    seed_sqlite(path, seed=5, customers=12)
    return sqlite_connection_string(path)


@pytest.fixture(scope="module")
def cursor(ledger):
    conn = pyodbc.connect(ledger, autocommit=True)
    yield conn.cursor()
    conn.close()


def _fetch(cursor, sql, params=()):
    cursor.execute(sql, params)
    return [d[0].upper() for d in cursor.description], cursor.fetchall()


def test_the_odbc_mappings_that_compile(registry):
    assert registry["odbc.txnhist"].row_program(COLUMNS) is not None
    cols = list(registry["odbc.acctmast"].binding.root.fields)
    assert registry["odbc.acctmast"].row_program(cols) is not None
    # a transform without a native op (integer as text): no program, the generated Python reads
    assert registry["odbc.xferlog"].row_program(list(registry["odbc.xferlog"].binding.root.fields)) is None
    assert registry["odbc.txnhist"].row_reader(COLUMNS, native=False) is not registry["odbc.txnhist"].row_reader(
        COLUMNS)
    assert getattr(registry["odbc.txnhist"].row_reader(COLUMNS, native=False), "program", None) is None


def test_every_ledger_row_is_built_by_the_program_as_the_generated_python_builds_it(registry, cursor):
    cols, rows = _fetch(cursor, SQL_HISTORY["limit"].replace("ACCT_NO = ? AND ", "").replace(" LIMIT ?", ""),
                        (1_000_000_000, 0, 9_999_999))
    assert len(rows) > 1000
    mapping = registry["odbc.txnhist"]
    program = mapping.row_program(cols)
    python = mapping.row_reader(cols, native=False)(rows)
    before = program.given_up
    got = mapping.row_reader(cols)(rows)
    assert program.given_up == before  # every row of the ledger, zero balances included, built in C
    zero_balances = 0
    for g, w in zip(got, python, strict=True):
        assert_same(g, w)
        for name in ("amount", "running_balance"):
            assert_same(g.__dict__[name], w.__dict__[name])
            assert g.__dict__[name].amount.as_tuple() == w.__dict__[name].amount.as_tuple()  # places, sign
        zero_balances += not w.running_balance.amount
        assert g.model_dump_json() == w.model_dump_json()
    assert zero_balances == sum(1 for w in python if not w.running_balance.amount)


def test_every_account_row_is_built_by_the_program(registry, cursor):
    cols, rows = _fetch(cursor, "SELECT * FROM ACCTMAST")
    mapping = registry["odbc.acctmast"]
    program = mapping.row_program(cols)
    before = program.given_up
    got = mapping.row_reader(cols)(rows)
    assert program.given_up == before
    for g, w in zip(got, mapping.row_reader(cols, native=False)(rows), strict=True):
        assert_same(g, w)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=ROW)
def test_a_program_builds_the_reference_object_or_gives_the_row_up(txnhist, record):
    row = row_of(record)
    program = txnhist.row_program(COLUMNS)
    got = program.one(row)
    want = outcome(reference, txnhist, dict(record))
    if got is None:
        return  # given up: the generated Python answers (test_row_reader holds that path)
    assert not isinstance(want, tuple), f"the program built a row the mapping refuses: {want}"
    assert_same(got, want)
    for name in ("amount", "running_balance"):
        if want.__dict__[name] is not None:
            assert_same(got.__dict__[name], want.__dict__[name])
            assert got.__dict__[name].amount.as_tuple() == want.__dict__[name].amount.as_tuple()


def test_the_odd_rows_are_given_up_and_read_by_the_python(txnhist):
    good = dict(txnhist.spec.examples[0].input)
    program = txnhist.row_program(COLUMNS)
    assert program.one(row_of(good)) is not None
    for change in ({"TXN_AMT": "1.005"}, {"DR_CR_IND": "D "}, {"TXN_AMT": 5.5}, {"CURR_CD": "eur"},
                   {"POST_DT": "9999999"}, {"POST_TM": " 85347"}, {"TXN_SEQ": Decimal("12")}, {"CHANNEL": "???"},
                   {"TXN_AMT": "-5.00"}, {"POST_TM": "246000"}):
        row = row_of({**good, **change})
        assert program.one(row) is None, change
        assert_same(outcome(lambda r: txnhist.row_reader(COLUMNS)([r])[0], row),
                    outcome(reference, txnhist, {**good, **change}))
    # DECIMAL columns as psqlODBC gives them (Decimal): built by the program, as the closure builds them
    record = {**good, "TXN_AMT": Decimal("5.5"), "RUN_BAL": Decimal("-12")}
    got = program.one(row_of(record))
    assert got is not None
    assert_same(got, reference(txnhist, record))
    assert str(got.amount.amount) == "-5.50" and str(got.running_balance.amount) == "-12.00"


def test_a_date_first_seen_is_parsed_not_given_up(registry):
    """The date transforms' cache misses call the parser (as the inline form calls the closure)."""
    mapping = registry["odbc.txnhist"]
    program = mapping.row_program(COLUMNS)
    for post_dt, value_dt in (("1010203", "1010204"), ("1990230", "1010204")):  # new dates; 2099-02-30 is none
        record = {**mapping.spec.examples[0].input, "POST_DT": post_dt, "VALUE_DT": value_dt}
        got, want = program.one(row_of(record)), outcome(reference, mapping, record)
        if isinstance(want, tuple):
            assert got is None
        else:
            assert_same(got, want)


def test_a_small_decimal_context_is_honoured(txnhist):
    """Decimal(text).quantize depends on the context's precision; the program reads it for every page."""
    record = {**txnhist.spec.examples[0].input, "TXN_AMT": "123456.78", "RUN_BAL": "1234567.89"}
    row = row_of(record)
    with decimal.localcontext(prec=6):
        want = outcome(reference, txnhist, dict(record))
        got = outcome(lambda r: txnhist.row_reader(COLUMNS)([r])[0], row)
        program_alone = txnhist.row_program(COLUMNS).one(row)
    assert isinstance(want, tuple)  # 8 digits do not fit a precision of 6: refused
    assert_same(got, want)
    assert program_alone is None


def test_a_page_leaks_no_references(txnhist):
    rows = [row_of(ex.input) for ex in txnhist.spec.examples] * 50
    reader = txnhist.row_reader(COLUMNS)
    reader(rows)  # warm the caches (dates, strings)
    probes = [Transaction, rows[0][0], rows[0][7], rows[0][9], txnhist.row_program(COLUMNS).ops]
    gc.collect()
    before = [sys.getrefcount(p) for p in probes]
    for _ in range(20):
        out = reader(rows)
        assert len(out) == len(rows)
        del out
    gc.collect()
    assert [sys.getrefcount(p) for p in probes] == before


def test_malformed_programs_are_refused():
    Program = native._rowprog.Program
    with pytest.raises(ValueError, match="register"):
        Program(((native.CONST, 5, None),), 2, 0)  # writes register 5 of 2
    with pytest.raises(ValueError, match="bad register"):
        Program(((native.STRIP, 0, 7, 0),), 1, 0)  # reads register 7
    with pytest.raises(ValueError, match="opcode"):
        Program(((99, 0),), 1, 0)
    with pytest.raises(ValueError, match="argument count"):
        Program(((native.LOAD, 0),), 1, 0)
    with pytest.raises(ValueError, match="result register"):
        Program(((native.CONST, 0, None),), 1, 3)
    with pytest.raises(ValueError, match="strip side"):
        Program(((native.LOAD, 0, 0), (native.STRIP, 1, 0, 9)), 2, 1)
    with pytest.raises(TypeError, match="not a pydantic model"):
        Program(((native.BUILD, 0, dict, (), (), (frozenset(),), ()),), 1, 0)
    for check in ((99,), (1, None), (2, (3,)), (5, object, []), (6, (3, int)), "str"):
        with pytest.raises(ValueError, match="malformed check"):
            Program(((native.LOAD, 0, 0), (native.CHECK, 0, 0, check, 0, None)), 1, 0)
    with pytest.raises(ValueError, match="decimal scale"):
        Program(((native.LOAD, 0, 0), (native.DECIMAL, 1, 0, Decimal, Decimal("0.01"), 5000)), 2, 1)
    with pytest.raises(ValueError, match="bad argument types"):
        Program(((native.LOAD, 0, 0), (native.LOOKUP, 1, 0, [], None)), 2, 1)


def test_the_adapter_setting_chooses_the_path(registry, ledger, cursor):
    cols, _ = _fetch(cursor, SQL_HISTORY["limit"], ("x", 0, 0, 0, 0))
    program = registry["odbc.txnhist"].row_program(cols)
    account = cursor.execute("SELECT ACCT_NO FROM ACCTMAST ORDER BY ACCT_NO").fetchone()[0]
    pages = {}
    for native_rows in (False, True):
        core = OdbcCore(OdbcSettings(connection_string=ledger, pool_size=1, native_rows=native_rows), registry)
        try:
            before = program.rows
            pages[native_rows] = core.history(account, limit=1000)
            ran = program.rows - before
        finally:
            core.close()
        assert ran == (len(pages[native_rows].items) if native_rows else 0)
    assert len(pages[True].items) > 10
    for g, w in zip(pages[True].items, pages[False].items, strict=True):
        assert_same(g, w)


def test_bad_rows_at_block_edges_go_to_the_python_alone(txnhist):
    """Programs run 64 rows at a time, op by op: a row given up anywhere leaves its neighbours built."""
    good = [row_of(ex.input) for ex in txnhist.spec.examples]
    rows = [good[i % len(good)] for i in range(200)]
    odd = row_of({**txnhist.spec.examples[0].input, "DR_CR_IND": "D "})  # the closures strip it: valid
    for i in (0, 63, 64, 127, 128, 199):
        rows[i] = odd
    program = txnhist.row_program(COLUMNS)
    before = program.given_up, program.rows
    got = txnhist.row_reader(COLUMNS)(rows)
    assert (program.given_up - before[0], program.rows - before[1]) == (6, 200)
    want = txnhist.row_reader(COLUMNS, native=False)(rows)
    for g, w in zip(got, want, strict=True):
        assert_same(g, w)
    bad = list(rows)
    bad[130] = row_of({**txnhist.spec.examples[0].input, "TXN_AMT": "1.005"})
    assert_same(outcome(txnhist.row_reader(COLUMNS), bad), outcome(txnhist.row_reader(COLUMNS, native=False), bad))


class _Checked(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    x: str

    @model_validator(mode="after")
    def _refuse_bad(self):
        if self.x == "bad":
            raise ValueError("bad")
        return self


def test_model_validators_run_last_and_may_refuse():
    after = _Checked.__pydantic_decorators__.model_validators["_refuse_bad"].func
    program = native._rowprog.Program(
        ((native.LOAD, 0, 0), (native.BUILD, 1, _Checked, ("x",), (0,), (frozenset({"x"}),), (after,))), 2, 1)
    rows = [("ok",), ("bad",), ("fine",)] * 50
    out = program.run(rows, lambda row: ("fallback", row))
    assert len(out) == 150
    for row, got in zip(rows, out, strict=True):
        if row == ("bad",):
            assert got == ("fallback", row)
        else:
            want = _Checked(x=row[0])
            assert type(got) is _Checked and got == want and got.__pydantic_fields_set__ == {"x"}
    assert program.one(("bad",)) is None


class _Pair(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    x: str
    y: str | None = None

    @model_validator(mode="after")
    def _same(self):
        _Pair.calls.append((self.x, self.y))
        if self.y is not None and self.y != self.x:
            raise ValueError("x and y differ")
        return self


def test_a_guarded_validator_is_called_only_where_its_guard_does_not_hold():
    """``NOOP_WHEN``'s conditions as BUILD guards: the program skips the validator where the guard
    holds (y None, or y the same text as x) and calls it elsewhere, where it may refuse."""
    _Pair.calls = []
    fn = _Pair.__pydantic_decorators__.model_validators["_same"].func
    guard = ("x", "y", None, True)
    program = native._rowprog.Program(
        ((native.LOAD, 0, 0), (native.LOAD, 1, 1),
         (native.BUILD, 2, _Pair, ("x", "y"), (0, 1), (frozenset({"x", "y"}),), ((fn, guard),))), 3, 2)
    other_eur = "".join(["E", "UR"])  # equal text, another object
    rows = [("EUR", "EUR"), ("EUR", None), ("EUR", other_eur), ("EUR", "USD"), ("EUR", _Str("EUR"))] * 30
    out = program.run(rows, lambda row: ("fallback", row))
    # called for the rows whose guard does not hold: a str subclass (passes) and USD (refused)
    calls, _Pair.calls = _Pair.calls, []
    assert [type(y) for _, y in calls] == [str, _Str] * 30 and {y for _, y in calls} == {"EUR", "USD"}
    for row, got in zip(rows, out, strict=True):
        if row[1] == "USD":
            assert got == ("fallback", row)
        else:
            assert type(got) is _Pair and got == _Pair(x=row[0], y=row[1])
    unguarded = native._rowprog.Program(program_ops(program)[:2] + (
        (native.BUILD, 2, _Pair, ("x", "y"), (0, 1), (frozenset({"x", "y"}),), (fn,)),), 3, 2)
    _Pair.calls = []
    unguarded.run(rows, lambda row: None)
    assert len(_Pair.calls) == len(rows)
    for bad in ((fn, ("x", "y", None)), (fn, ("x", 1, None, True)), (fn, ("x", "y", None, 1)), (None, guard),
                (fn,), (fn, guard, guard), "not callable"):
        with pytest.raises(ValueError, match="a validator is a callable"):
            native._rowprog.Program(program_ops(program)[:2] + (
                (native.BUILD, 2, _Pair, ("x", "y"), (0, 1), (frozenset({"x", "y"}),), (bad,)),), 3, 2)


class _Str(str):
    pass


def program_ops(program) -> tuple:
    return program.ops


def test_threads_with_their_own_decimal_contexts_share_a_program(txnhist):
    """The ODBC adapter maps pages on its pool's threads: one program, each run with its caller's context."""
    import threading

    big = {**txnhist.spec.examples[0].input, "TXN_AMT": "123456.78"}  # 8 digits: refused under prec=6
    rows = [row_of(ex.input) for ex in txnhist.spec.examples] * 30 + [row_of(big)]
    reader = txnhist.row_reader(COLUMNS)
    wants = {}
    for prec in (28, 6):
        with decimal.localcontext(prec=prec):
            wants[prec] = outcome(txnhist.row_reader(COLUMNS, native=False), rows)
    assert isinstance(wants[6], tuple) and not isinstance(wants[28], tuple)
    failures = []

    def work(prec):
        with decimal.localcontext(prec=prec):
            for _ in range(30):
                got = outcome(reader, rows)
                try:
                    if isinstance(wants[prec], tuple):
                        assert got == wants[prec]
                    else:
                        for g, w in zip(got, wants[prec], strict=True):
                            assert_same(g, w)
                except AssertionError as exc:  # pragma: no cover - reported below
                    failures.append((prec, exc))
                    return

    threads = [threading.Thread(target=work, args=(p,)) for p in (28, 6, 28, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# -- Decimals filled in directly (decimal_of_text) ---------------------------------------------------------
def test_decimals_are_filled_in_directly_on_this_cpython():
    """The import-time proof passed (CPython 3.11's _decimal, 64-bit libmpdec): the fast path runs. Where
    it did not, the programs would use Decimal(text), with the same results but slower: CI must see it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and sys.implementation.name == "cpython" \
            and sys.version_info[:2] == (3, 11) and sys.maxsize > 2**32:
        assert native._rowprog.FAST_DECIMAL


def _padded(text: str, pad: int) -> str:
    return text + ("." if pad and "." not in text else "") + "0" * pad


_TEXTS = st.builds(
    lambda sign, whole, frac, pad: (sign + whole + ("." + frac if frac else ""), pad),
    st.sampled_from(["", "-"]), st.from_regex(r"[0-9]{1,21}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{1,7}", fullmatch=True)), st.integers(0, 4))


@pytest.mark.skipif(not getattr(native._rowprog, "FAST_DECIMAL", False), reason="the fast path is off here")
@settings(max_examples=2000, deadline=None)
@given(_TEXTS)
def test_a_decimal_filled_in_is_the_decimal_of_its_text(case):
    text, pad = case
    got = native._rowprog.exact_decimal(text, pad)
    want = Decimal(_padded(text, pad))
    if got is None:  # left to Decimal(text): only coefficients over 19 digits
        assert len(want.as_tuple().digits) > 19
        return
    assert type(got) is Decimal
    assert got.as_tuple() == want.as_tuple() and str(got) == str(want) and repr(got) == repr(want)
    assert got == want and hash(got) == hash(want) and got.is_signed() == want.is_signed()
    assert got + 1 == want + 1 and got * 3 == want * 3 and -got == -want
    assert got.quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_EVEN) == want.quantize(
        Decimal("0.01"), rounding=decimal.ROUND_HALF_EVEN)
    assert got.adjusted() == want.adjusted() and got.is_zero() == want.is_zero()


def test_decimals_filled_in_are_freed_and_odd_texts_are_refused():
    if not native._rowprog.FAST_DECIMAL:
        pytest.skip("the fast path is off here")
    for text in ("", "-", "1e5", ".5", "5.", "1..2", "+1", " 1", "1 ", "١٢", "1.2.3"):
        assert native._rowprog.exact_decimal(text) is None, text
    assert native._rowprog.exact_decimal("12345678901234567890") is None  # 20 digits
    assert native._rowprog.exact_decimal("1234567890123456789") == Decimal("1234567890123456789")
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(20_000):
        native._rowprog.exact_decimal("-12345.67", 2)
    gc.collect()
    assert sys.getallocatedblocks() - before < 100
