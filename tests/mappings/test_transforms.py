"""Every transform forward and backward; hypothesis round trips for dates, times and implied decimals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canonical import Money
from mappings.engine.transforms import REGISTRY, ParamError, TransformError, validate_params


class FakeCtx:
    """What a transform factory sees of its rule: the legacy field F, flat records."""

    def __init__(self, *, numeric=False, width=None, conditions=None, numeric_fields=()):
        self.legacy_numeric = numeric
        self.width = width
        self.info = None
        self.source_text = "F"
        self.parts = 2
        self._conditions = conditions or {}
        self._numeric = set(numeric_fields)

    def getter(self, text):
        return lambda r, c: r.get(text)

    def setter(self, text):
        return lambda out, v: out.__setitem__(text, v)

    def simple_key(self, text):
        return text

    def numeric(self, text):
        return text in self._numeric

    def conditions(self, text):
        return self._conditions.get(text)

    @property
    def out_getter(self):
        return lambda out: out.get("F")


def fwd(name, params=None, ctx=None):
    td = REGISTRY[name]
    fn = td.forward(validate_params(td, params or {}), ctx or FakeCtx())
    return lambda v, record=None: fn(v, record or {}, None)


def inv(name, params=None, ctx=None):
    td = REGISTRY[name]
    fn = td.inverse(validate_params(td, params or {}), ctx or FakeCtx())
    return lambda v, out=None: fn(v, {} if out is None else out)


# -- the registry --------------------------------------------------------------------------------------
def test_the_registry_is_closed_and_every_transform_can_write():
    assert set(REGISTRY) == {"trim", "case", "null_if", "split", "concat", "decimal", "implied_decimal",
                             "integer", "date", "time", "datetime", "code", "sign_from", "money"}
    for td in REGISTRY.values():
        assert td.inverse is not None and td.doc and td.example, td.name


@pytest.mark.parametrize("name,params,message,hint", [
    ("date", {"format": "CYYMMD"}, "must be one of", "did you mean CYYMMDD?"),
    ("trim", {"sid": "left"}, "has no parameter 'sid'", "did you mean side?"),
    ("implied_decimal", {"scale": "2"}, "must be int", None),
    ("sign_from", {}, "needs the parameter 'field'", None),
    ("money", {}, "exactly one of", None),
    ("money", {"currency": "C", "currency_code": "EUR"}, "exactly one of", None),
])
def test_parameter_errors_name_the_parameter(name, params, message, hint):
    with pytest.raises(ParamError, match=message) as err:
        validate_params(REGISTRY[name], params)
    if hint:
        assert err.value.hint == hint


# -- text ----------------------------------------------------------------------------------------------
def test_trim_sides_and_padding_on_write():
    assert fwd("trim")("  AB  ") == "AB"
    assert fwd("trim", {"side": "right"})("  AB  ") == "  AB"
    assert fwd("trim", {"side": "left"})("  AB  ") == "AB  "
    assert fwd("trim")(None) is None
    with pytest.raises(TransformError, match="needs text, got int"):
        fwd("trim")(381)
    assert inv("trim", ctx=FakeCtx(width=5))("AB") == "AB   "
    assert inv("trim", {"width": 5, "justify": "right"})("AB") == "   AB"
    assert inv("trim")("AB") == "AB"  # no width known: as is
    with pytest.raises(TransformError, match="longer than the field's 3 characters"):
        inv("trim", {"width": 3})("ABCD")


def test_case_and_its_legacy_case():
    assert fwd("case", {"to": "title"})("ANDERSON") == "Anderson"
    assert fwd("case", {"to": "lower"})("A@B.COM") == "a@b.com"
    assert inv("case", {"to": "title"})("Anderson") == "ANDERSON"
    assert inv("case", {"to": "lower", "legacy": "keep"})("a@b.com") == "a@b.com"


def test_null_if():
    assert fwd("null_if")("") is None and fwd("null_if")("X") == "X"
    assert fwd("null_if", {"values": ["", "0000000", 0]})(0) is None
    assert inv("null_if")(None) == "" and inv("null_if", {"values": ["N/A"]})(None) == "N/A"


def test_split_and_merging_parts_on_write():
    assert fwd("split", {"sep": ",", "index": 1})("JONES, ANN") == "ANN"
    assert fwd("split", {"sep": ",", "index": 2})("JONES, ANN") is None
    out: dict = {}
    out["F"] = inv("split", {"sep": ",", "index": 0})("JONES", out)
    out["F"] = inv("split", {"sep": ",", "index": 1})("ANN", out)
    assert out["F"] == "JONES,ANN"
    with pytest.raises(TransformError, match="contains the separator"):
        inv("split", {"sep": ",", "index": 0})("A,B")


def test_concat_and_split_back():
    assert fwd("concat", {"sep": "-"})(["110000000543", 381]) == "110000000543-381"
    assert fwd("concat", {"sep": "-"})([None, None]) is None
    assert fwd("concat", {"sep": "-"})(["A", None]) == "A-"
    assert inv("concat", {"sep": "-"})("110000000543-381") == ["110000000543", "381"]
    with pytest.raises(TransformError, match="does not split into 2 parts"):
        inv("concat", {"sep": "-"})("nodash")


# -- numbers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,expected", [
    ("125.4", Decimal("125.40")), ("3787", Decimal("3787.00")), (Decimal("125.40"), Decimal("125.40")),
    (12, Decimal("12.00")), ("1.2E+3", Decimal("1200.00")), (" -5.99 ", Decimal("-5.99")),
])
def test_decimal_from_driver_text_or_decimal(raw, expected):
    got = fwd("decimal", {"scale": 2})(raw)
    assert got == expected and got.as_tuple().exponent == -2


@pytest.mark.parametrize("raw,message", [
    (125.4, "float"), ("12,5", "not a decimal number"), ("NaN", "not a finite number"),
    ("1.005", "more than 2 decimal places"), ([1], "needs a decimal string"),
])
def test_decimal_refuses(raw, message):
    with pytest.raises(TransformError, match=message):
        fwd("decimal", {"scale": 2})(raw)


def test_decimal_inverse_text_or_number():
    assert inv("decimal", {"scale": 2})(Decimal("1500")) == "1500.00"
    assert inv("decimal", {"scale": 2}, FakeCtx(numeric=True))(Decimal("1500")) == Decimal("1500.00")


@pytest.mark.parametrize("raw,expected", [
    ("+000000000012540", Decimal("125.40")), ("-000000000000599", Decimal("-5.99")),
    ("+000000000000000", Decimal("0.00")), ("000000000150000", Decimal("1500.00")), (12540, Decimal("125.40")),
])
def test_implied_decimal(raw, expected):
    assert fwd("implied_decimal", {"scale": 2})(raw) == expected


@pytest.mark.parametrize("raw", ["+00000000001254O", "+1.5", "", "--1", "+", "١٢٣"])
def test_implied_decimal_refuses_garbage(raw):
    with pytest.raises(TransformError, match="implied_decimal"):
        fwd("implied_decimal")(raw)


def test_implied_decimal_write():
    assert inv("implied_decimal")(Decimal("125.40")) == "+000000000012540"
    assert inv("implied_decimal")(Decimal("-5.99")) == "-000000000000599"
    assert inv("implied_decimal")(Decimal("1500")) == "+000000000150000"
    assert inv("implied_decimal", {"signed": False, "digits": 9})(Decimal("1.5")) == "000000150"
    with pytest.raises(TransformError, match="more than 2 decimal places"):
        inv("implied_decimal")(Decimal("0.001"))
    with pytest.raises(TransformError, match="does not fit in 15 digits"):
        inv("implied_decimal")(Decimal("10000000000000.00"))
    with pytest.raises(TransformError, match="unsigned"):
        inv("implied_decimal", {"signed": False})(Decimal("-1"))


@given(cents=st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1), scale=st.integers(0, 4))
def test_implied_decimal_round_trip(cents, scale):
    value = Decimal(cents).scaleb(-scale)
    text = inv("implied_decimal", {"scale": scale})(value)
    assert len(text) == 16 and text[0] in "+-"
    assert fwd("implied_decimal", {"scale": scale})(text) == value


def test_integer():
    assert fwd("integer")("000000381") == 381 and fwd("integer")(Decimal("381")) == 381
    assert fwd("integer", {"as_text": True})("000000000001") == "1"
    with pytest.raises(TransformError, match="not a whole number"):
        fwd("integer")(Decimal("1.5"))
    assert inv("integer", {"digits": 9})(381) == "000000381"
    assert inv("integer", ctx=FakeCtx(numeric=True))("381") == 381
    with pytest.raises(TransformError, match="more than 3 digits"):
        inv("integer", {"digits": 3})(1000)


# -- dates and times -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,raw,expected", [
    ("CYYMMDD", "1261127", dt.date(2026, 11, 27)),
    ("CYYMMDD", "0510619", dt.date(1951, 6, 19)),
    ("CYYMMDD", "831028", dt.date(1983, 10, 28)),        # ODBC dropped the leading zero
    ("CYYMMDD", 1261127, dt.date(2026, 11, 27)),         # copybook PIC 9(7)
    ("CYYMMDD", Decimal("1261127"), dt.date(2026, 11, 27)),  # psqlODBC
    ("CYYMMDD", "0000000", None), ("CYYMMDD", "0", None), ("CYYMMDD", 0, None), ("CYYMMDD", "       ", None),
    ("YYYYMMDD", "20261127", dt.date(2026, 11, 27)),
    ("YYMMDD", "261127", dt.date(2026, 11, 27)), ("YYMMDD", "511127", dt.date(1951, 11, 27)),
    ("YYDDD", "26331", dt.date(2026, 11, 27)), ("YYDDD", "24366", dt.date(2024, 12, 31)),
    ("YYYYDDD", "2026001", dt.date(2026, 1, 1)),
    ("ISO", "2026-11-27", dt.date(2026, 11, 27)), ("ISO", "", None),
])
def test_date_formats(fmt, raw, expected):
    assert fwd("date", {"format": fmt})(raw) == expected


def test_date_pivot():
    assert fwd("date", {"format": "YYMMDD", "pivot": 30})("290101") == dt.date(2029, 1, 1)
    assert fwd("date", {"format": "YYMMDD", "pivot": 30})("300101") == dt.date(1930, 1, 1)


@pytest.mark.parametrize("fmt,raw,message", [
    ("CYYMMDD", "1261332", "not a valid date"), ("CYYMMDD", "2261127", "century digit"),
    ("CYYMMDD", "12611270", "not 7 digits"), ("CYYMMDD", "12A1127", "not digits"),
    ("YYDDD", "26367", "out of range"), ("YYDDD", "25366", "out of range for 2025"),
    ("CYYMMDD", 12.5, "needs digits"), ("ISO", "27.11.2026", "YYYY-MM-DD"),
])
def test_date_refuses(fmt, raw, message):
    with pytest.raises(TransformError, match=message):
        fwd("date", {"format": fmt})(raw)


def test_date_write():
    d = dt.date(2026, 11, 27)
    assert inv("date")(d) == "1261127"
    assert inv("date", ctx=FakeCtx(numeric=True))(d) == 1261127
    assert inv("date")(None) == "0000000" and inv("date", ctx=FakeCtx(numeric=True))(None) == 0
    assert inv("date", {"null_as_zero": False})(None) is None
    assert inv("date", {"format": "YYDDD"})(d) == "26331"
    with pytest.raises(TransformError, match="outside 1900-2099"):
        inv("date")(dt.date(2100, 1, 1))
    with pytest.raises(TransformError, match="pivot window"):
        inv("date", {"format": "YYMMDD"})(dt.date(1949, 1, 1))


_FORMAT_RANGES = {
    "CYYMMDD": (dt.date(1900, 1, 1), dt.date(2099, 12, 31)),
    "YYYYMMDD": (dt.date(1, 1, 1), dt.date(9999, 12, 31)),
    "YYMMDD": (dt.date(1950, 1, 1), dt.date(2049, 12, 31)),
    "YYDDD": (dt.date(1950, 1, 1), dt.date(2049, 12, 31)),
    "YYYYDDD": (dt.date(1, 1, 1), dt.date(9999, 12, 31)),
    "ISO": (dt.date(1, 1, 1), dt.date(9999, 12, 31)),
}


@pytest.mark.parametrize("fmt", sorted(_FORMAT_RANGES))
@given(data=st.data())
def test_date_round_trip(fmt, data):
    lo, hi = _FORMAT_RANGES[fmt]
    d = data.draw(st.dates(min_value=lo, max_value=hi))
    text = inv("date", {"format": fmt})(d)
    assert fwd("date", {"format": fmt})(text) == d
    if fmt not in ("ISO",):
        number = inv("date", {"format": fmt}, FakeCtx(numeric=True))(d)
        assert isinstance(number, int) and fwd("date", {"format": fmt})(number) == d


@given(t=st.times().map(lambda t: t.replace(microsecond=0)), fmt=st.sampled_from(["HHMMSS", "HH:MM:SS"]))
def test_time_round_trip(t, fmt):
    assert fwd("time", {"format": fmt})(inv("time", {"format": fmt})(t)) == t
    if fmt == "HHMMSS":
        assert fwd("time")(inv("time", ctx=FakeCtx(numeric=True))(t)) == t


def test_time_forms():
    assert fwd("time")("85347") == dt.time(8, 53, 47)      # ODBC dropped the leading zero
    assert fwd("time")(135707) == dt.time(13, 57, 7)
    assert fwd("time")("000000") == dt.time(0, 0)          # midnight, not null
    assert fwd("time", {"format": "HHMM"})("0853") == dt.time(8, 53)
    with pytest.raises(TransformError, match="not a valid time"):
        fwd("time")("246000")


def test_datetime_combines_date_and_time_fields():
    f = fwd("datetime", {"time_field": "TM"})
    assert f("1261127", {"TM": "135707"}) == dt.datetime(2026, 11, 27, 13, 57, 7, tzinfo=dt.UTC)
    assert f(1261127, {"TM": 85347}) == dt.datetime(2026, 11, 27, 8, 53, 47, tzinfo=dt.UTC)
    assert f("0000000", {"TM": "000000"}) is None
    berlin = fwd("datetime", {"time_field": "TM", "tz": "Europe/Berlin"})("1261127", {"TM": "135707"})
    assert berlin.isoformat() == "2026-11-27T13:57:07+01:00"
    with pytest.raises(TransformError, match="time field TM is empty"):
        f("1261127", {})
    with pytest.raises(ParamError, match="unknown time zone"):
        fwd("datetime", {"time_field": "TM", "tz": "Mars/Olympus"})


def test_datetime_write_converts_to_the_core_zone_and_writes_the_time_field():
    back = inv("datetime", {"time_field": "TM", "tz": "Europe/Berlin"})
    out: dict = {}
    assert back(dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC), out) == "1261128"
    assert out == {"TM": "003000"}
    with pytest.raises(TransformError, match="time zone"):
        back(dt.datetime(2026, 11, 27, 23, 30), {})


@given(moment=st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2099, 12, 30),
                           timezones=st.just(dt.UTC)).map(lambda d: d.replace(microsecond=0)),
       tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
def test_datetime_round_trip(moment, tz):
    out: dict = {}
    date_text = inv("datetime", {"time_field": "TM", "tz": tz})(moment, out)
    again = fwd("datetime", {"time_field": "TM", "tz": tz})(date_text, out)
    zone = dt.UTC if tz == "UTC" else ZoneInfo(tz)
    expected = moment.astimezone(zone).replace(tzinfo=None)
    assert again.replace(tzinfo=None) == expected  # same wall clock in the core's zone
    if again.utcoffset() == moment.astimezone(zone).utcoffset():  # unambiguous local times
        assert again.astimezone(dt.UTC) == moment  # PEP 495: ambiguous times never compare equal across zones


# -- codes, signs, money ---------------------------------------------------------------------------------
def test_code_map_unknown_other_and_reverse():
    f = fwd("code", {"map": {"A": "open", "C": "closed"}})
    assert f("A") == "open" and f("C ") == "closed" and f(None) is None
    with pytest.raises(TransformError, match=r"unknown code 'X' \(known: A, C\)"):
        f("X")
    assert fwd("code", {"map": {"A": "open"}, "other": None})("X") is None
    assert fwd("code", {"map": {1: "one"}})(1) == "one"
    assert inv("code", {"map": {"A": "open", "C": "closed"}})("closed") == "C"
    assert inv("code", {"map": {"A": "open", "B": "open"}})("open") == "A"  # first legacy code wins
    assert inv("code", {"map": {"A": "open", "B": "open"}, "reverse": {"open": "B"}})("open") == "B"
    with pytest.raises(TransformError, match="no legacy code for 'frozen'"):
        inv("code", {"map": {"A": "open"}})("frozen")


def test_code_from_88_level_condition_names():
    ctx = FakeCtx(conditions={"TXD-STATUS": {"TXD-POSTED": ("P",), "TXD-REVERSED": ("R",)}})
    params = {"conditions": "TXD-STATUS", "map": {"TXD-POSTED": "posted", "TXD-REVERSED": "reversed"}}
    assert fwd("code", params, ctx)("R") == "reversed"
    assert inv("code", params, ctx)("posted") == "P"
    with pytest.raises(ParamError, match="no 88-level condition 'TXD-POSTD'") as err:
        fwd("code", {"conditions": "TXD-STATUS", "map": {"TXD-POSTD": "posted"}}, ctx)
    assert err.value.hint == "did you mean TXD-POSTED?"
    with pytest.raises(ParamError, match="no 88-level condition names known"):
        fwd("code", {"conditions": "OTHER", "map": {"X": "y"}}, ctx)


def test_sign_from_indicator():
    f = fwd("sign_from", {"field": "IND"})
    assert f(Decimal("9.99"), {"IND": "D"}) == Decimal("-9.99")
    assert f(Decimal("9.99"), {"IND": "C "}) == Decimal("9.99")
    with pytest.raises(TransformError, match="indicator IND='X' is neither D nor C"):
        f(Decimal("1"), {"IND": "X"})
    with pytest.raises(TransformError, match="already negative"):
        f(Decimal("-1"), {"IND": "D"})
    out: dict = {}
    assert inv("sign_from", {"field": "IND"})(Decimal("-9.99"), out) == Decimal("9.99") and out == {"IND": "D"}
    assert inv("sign_from", {"field": "IND"})(Decimal("0"), out) == Decimal("0") and out == {"IND": "C"}


def test_money_from_amount_and_currency_field():
    f = fwd("money", {"currency": "CUR"})
    assert f(Decimal("1500.00"), {"CUR": "JPY"}) == Money.of(1500, "JPY")
    assert f("125.4", {"CUR": "EUR "}) == Money.of(Decimal("125.40"), "EUR")
    with pytest.raises(TransformError, match="more decimal places than JPY allows"):
        f(Decimal("1500.50"), {"CUR": "JPY"})
    with pytest.raises(TransformError, match="unknown currency"):
        f(Decimal("1"), {"CUR": "XYZ"})
    assert fwd("money", {"currency_code": "EUR"})(Decimal("1")) == Money.of(1, "EUR")
    out: dict = {}
    assert inv("money", {"currency": "CUR"})(Money.of(1500, "JPY"), out) == Decimal("1500") and out == {"CUR": "JPY"}
    with pytest.raises(TransformError, match="USD amount for a EUR-only field"):
        inv("money", {"currency_code": "EUR"})(Money.of(1, "USD"))
    with pytest.raises(ParamError, match="unknown currency"):
        fwd("money", {"currency_code": "EURO"})
