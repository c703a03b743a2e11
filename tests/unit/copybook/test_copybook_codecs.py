"""Field codecs: golden byte vectors per usage and code page, null policy, errors, fast == checked."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.copybook import (
    CodecConfigError,
    FieldCodecError,
    RecordCodec,
    RecordDecodeError,
    field_codec,
    get_codepage,
    parse_copybook,
)
from mappings.copybook.codecs import scaled_int

EBCDIC = ("cp037", "cp500", "cp1140", "cp273")
ALL_CODEPAGES = (*EBCDIC, "latin-1", "ascii")


def codec(clause: str, codepage: str = "cp037", **options):
    """The field codec of ``05 F <clause>.``"""
    rec = parse_copybook(f"01 R.\n  05 F {clause}.\n").record()
    return field_codec(rec.children[0], codepage, **options)


def record_codec(clause: str, codepage: str = "cp037", **options) -> RecordCodec:
    return RecordCodec(parse_copybook(f"01 R.\n  05 F {clause}.\n").record(), codepage=codepage, **options)


H = bytes.fromhex


# -- golden vectors --------------------------------------------------------------------------------

GOLDEN = [
    # clause, code page, value, bytes
    ("PIC S9(5) COMP-3", "cp037", 12345, "12345C"),
    ("PIC S9(5) COMP-3", "cp037", -12345, "12345D"),
    ("PIC S9(3)V99 COMP-3", "cp037", Decimal("-1.23"), "00123D"),
    ("PIC S9(5)V99 COMP-3", "cp037", Decimal("12.50"), "0001250C"),
    ("PIC 9(4) COMP-3", "cp037", 1234, "01234F"),
    ("PIC S9(1) COMP-3", "cp037", 0, "0C"),
    ("PIC S9(18) PACKED-DECIMAL", "cp037", -999999999999999999, "0999999999999999999D"),
    ("PIC S9(3)", "cp037", -123, "F1F2D3"),
    ("PIC S9(3)", "cp037", 123, "F1F2C3"),
    ("PIC S9(3)", "cp500", -5, "F0F0D5"),
    ("PIC 9(3)", "cp037", 123, "F1F2F3"),
    ("PIC S9(3)V9", "cp273", Decimal("-12.3"), "F0F1F2D3"),
    ("PIC S9(3) SIGN LEADING", "cp037", -123, "D1F2F3"),
    ("PIC S9(3) SIGN LEADING SEPARATE", "cp037", -123, "60F1F2F3"),
    ("PIC S9(3) SIGN TRAILING SEPARATE", "cp037", 123, "F1F2F34E"),
    ("PIC S9(3)", "latin-1", -123, "31324C"),  # '12L'
    ("PIC S9(3)", "ascii", 123, "313243"),  # '12C'
    ("PIC S9(3)", "ascii", 0, "30307B"),  # '00{'
    ("PIC S9(3)", "ascii", -120, "31327D"),  # '12}'
    ("PIC 9(3)", "ascii", 7, "303037"),
    ("PIC S9(3) SIGN LEADING", "ascii", -123, "4A3233"),  # 'J23'
    ("PIC S9(3) SIGN LEADING SEPARATE", "ascii", -123, "2D313233"),  # '-123'
    ("PIC S9(3) SIGN TRAILING SEPARATE", "latin-1", 123, "3132332B"),  # '123+'
    ("PIC S9(4) COMP", "cp037", -2, "FFFE"),
    ("PIC S9(4) BINARY", "cp037", 1234, "04D2"),
    ("PIC 9(4) COMP-4", "cp037", 9999, "270F"),
    ("PIC S9(9) COMP", "cp037", -1, "FFFFFFFF"),
    ("PIC 9(9) COMP", "ascii", 1, "00000001"),
    ("PIC S9(18) COMP", "cp037", -(10**18 - 1), "F21F494C589C0001"),
    ("PIC S9(5)V99 COMP", "cp037", Decimal("-0.01"), "FFFFFFFF"),
    ("PIC S9(4) COMP-5", "cp037", -32768, "8000"),
    ("PIC 9(4) COMP-5", "cp037", 65535, "FFFF"),
    ("PIC X(5)", "cp037", "AB", "C1C2404040"),
    ("PIC X(5)", "cp500", "[!", "4A4F404040"),
    ("PIC X(5)", "cp037", "[!", "BA5A404040"),
    ("PIC X(2)", "cp1140", "€", "9F40"),
    ("PIC X(2)", "cp273", "Ä", "4A40"),
    ("PIC X(3)", "latin-1", "é", "E92020"),
    ("PIC A(3)", "ascii", "AB", "414220"),
    ("PIC X(4) JUSTIFIED RIGHT", "cp037", "AB", "4040C1C2"),
    ("PIC 9(3) BLANK WHEN ZERO", "cp037", 0, "404040"),
]


@pytest.mark.parametrize(("clause", "codepage", "value", "hexbytes"), GOLDEN)
def test_golden_vectors(clause, codepage, value, hexbytes):
    c = codec(clause, codepage)
    assert c.encode(value) == H(hexbytes)
    decoded = c.decode(H(hexbytes))
    assert decoded == value and type(decoded) is type(value)
    if isinstance(value, Decimal):
        assert decoded.as_tuple().exponent == -c.field.scale
    # the generated record decoder agrees
    rc = record_codec(clause, codepage)
    assert rc.has_fast_path
    assert rc.decode(H(hexbytes)) == {"F": value}


def test_implied_decimal_keeps_the_exponent():
    c = codec("PIC S9(5)V99 COMP-3")
    value = c.decode(c.encode(Decimal("12.5")))
    assert value == Decimal("12.50") and str(value) == "12.50"
    assert str(codec("PIC 9(3)V9(3)").decode(H("F0F0F0F0F0F0"))) == "0.000"


def test_negative_zero_decodes_as_positive_zero():
    assert str(codec("PIC S9(3)V99 COMP-3").decode(H("00000D"))) == "0.00"
    assert codec("PIC S9(3)").decode(H("F0F0D0")) == 0


@pytest.mark.parametrize(
    ("clause", "codepage", "hexbytes", "value"),
    [
        ("PIC S9(3)", "cp037", "F1F2A3", 123),  # zone A = +
        ("PIC S9(3)", "cp037", "F1F2E3", 123),  # zone E = +
        ("PIC S9(3)", "cp037", "F1F2B3", -123),  # zone B = -
        ("PIC S9(3)", "cp037", "F1F2F3", 123),  # zone F = unsigned, positive
        ("PIC 9(3)", "cp037", "F1F2C3", 123),  # C zone in an unsigned field
        ("PIC S9(3)", "ascii", "313233", 123),  # plain digits are positive
        ("PIC S9(5) COMP-3", "cp037", "12345A", 12345),
        ("PIC S9(5) COMP-3", "cp037", "12345E", 12345),
        ("PIC S9(5) COMP-3", "cp037", "12345B", -12345),
        ("PIC S9(5) COMP-3", "cp037", "12345F", 12345),
        ("PIC 9(5) COMP-3", "cp037", "12345C", 12345),
        ("PIC 9(4) COMP-3", "cp037", "12345F", 12345),  # full value, beyond the PIC digits
        ("PIC S9(4) COMP", "cp037", "7FFF", 32767),  # binary decodes the full value
        ("PIC 9(4) COMP", "cp037", "FFFF", 65535),
    ],
)
def test_decode_accepts_what_ibm_accepts(clause, codepage, hexbytes, value):
    assert codec(clause, codepage).decode(H(hexbytes)) == value
    assert record_codec(clause, codepage).decode(H(hexbytes)) == {"F": value}


# -- null policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "clause", ["PIC S9(3)V99", "PIC S9(3)V99 COMP-3", "PIC 9(4)", "PIC S9(3) SIGN LEADING SEPARATE"]
)
@pytest.mark.parametrize(("fill", "what"), [(0x00, "low-values"), (0xFF, "high-values"), (0x40, "spaces")])
def test_null_policy(clause, fill, what):
    c = codec(clause)
    raw = bytes([fill]) * c.size
    with pytest.raises(FieldCodecError, match=f"only {what}"):
        c.decode(raw)
    assert codec(clause, null_policy="null").decode(raw) is None
    zero = codec(clause, null_policy="zero").decode(raw)
    assert zero == 0 and str(zero) == ("0.00" if "V99" in clause else "0")
    # the same through the record codec (fast path + fallback)
    with pytest.raises(RecordDecodeError, match=what):
        record_codec(clause).decode(raw)
    assert record_codec(clause, null_policy="null").decode(raw) == {"F": None}
    assert record_codec(clause, null_policy="zero").decode(raw) == {"F": zero}


def test_ascii_spaces_are_not_zero():
    c = codec("PIC 9(3)", "ascii")
    with pytest.raises(FieldCodecError, match="spaces"):
        c.decode(b"   ")
    with pytest.raises(FieldCodecError, match="not a digit"):
        c.decode(b" 12")  # int() would accept this; we do not
    with pytest.raises(RecordDecodeError):
        record_codec("PIC 9(3)", "ascii").decode(b" 12")
    with pytest.raises(RecordDecodeError):
        record_codec("PIC 9(3)", "ascii").decode(b"1_2")


def test_binary_fields_ignore_the_null_policy():
    assert codec("PIC S9(4) COMP").decode(H("0000")) == 0
    assert codec("PIC S9(4) COMP").decode(H("FFFF")) == -1


def test_blank_when_zero_decodes_spaces_as_zero_whatever_the_policy():
    assert codec("PIC 9(3)V9 BLANK WHEN ZERO").decode(H("40404040")) == Decimal("0.0")


# -- decode errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clause", "codepage", "hexbytes", "message"),
    [
        ("PIC S9(5) COMP-3", "cp037", "123A5C", "digit nibble A in byte 1 (low nibble)"),
        ("PIC S9(5) COMP-3", "cp037", "123455", "sign nibble 5"),
        ("PIC S9(5) COMP-3", "cp037", "123450", "sign nibble 0"),
        ("PIC 9(5) COMP-3", "cp037", "12345D", "negative sign nibble D in unsigned"),
        ("PIC S9(3)", "cp037", "F1C1F3", "byte C1 at position 1 is not a digit (F0-F9)"),
        ("PIC S9(3)", "cp037", "F1F2FA", "sign byte FA"),
        ("PIC S9(3)", "cp037", "F1F243", "sign byte 43"),
        ("PIC 9(3)", "cp037", "F1F2D3", "negative sign in byte D3"),
        ("PIC S9(3)", "ascii", "31334A31", "expected 3 bytes"),
        ("PIC S9(3)", "ascii", "4A3233", "byte 4A at position 0 is not a digit (30-39)"),
        ("PIC S9(3) SIGN LEADING SEPARATE", "cp037", "F1F2F3F4", "not a '+' or '-' sign"),
        ("PIC X(3)", "ascii", "41C142", "byte C1 at position 1 is not valid ascii text"),
    ],
)
def test_decode_errors(clause, codepage, hexbytes, message):
    with pytest.raises(FieldCodecError) as info:
        codec(clause, codepage).decode(H(hexbytes))
    assert message in info.value.reason
    assert info.value.data == H(hexbytes)


# -- encode errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clause", "codepage", "value", "message"),
    [
        ("PIC X(3)", "cp037", "ABCD", "does not fit"),
        ("PIC X(3)", "cp037", 12, "expected str"),
        ("PIC X(3)", "ascii", "é", "cannot be written"),
        ("PIC X(3)", "cp037", "€", "cannot be written"),
        ("PIC S9(3)", "cp037", 1000, "does not fit"),
        ("PIC S9(3)V99 COMP-3", "cp037", Decimal("1000.00"), "does not fit"),
        ("PIC S9(3)V99 COMP-3", "cp037", Decimal("1.234"), "more than 2 decimal places"),
        ("PIC 9(3)", "cp037", -1, "negative value"),
        ("PIC 9(3) COMP-3", "cp037", -1, "negative value"),
        ("PIC S9(3)", "cp037", 1.5, "use decimal.Decimal"),
        ("PIC S9(3)", "cp037", True, "expected a number"),
        ("PIC S9(3)", "cp037", "12", "expected a number"),
        ("PIC S9(3)", "cp037", Decimal("NaN"), "not a finite number"),
        ("PIC S9(4) COMP", "cp037", 10000, "4 digits"),
        ("PIC S9(4) COMP-5", "cp037", 32768, "2 bytes"),
        ("PIC 9(4) COMP", "cp037", -1, "does not fit"),
    ],
)
def test_encode_errors(clause, codepage, value, message):
    with pytest.raises(FieldCodecError, match=message):
        codec(clause, codepage).encode(value)


def test_scaled_int():
    assert scaled_int(Decimal("1.5"), 2) == 150
    assert scaled_int(Decimal("-1.50"), 1) == -15
    assert scaled_int(Decimal("1E+2"), 0) == 100
    assert scaled_int(7, 3) == 7000


def test_comp5_accepts_the_full_native_range_on_encode():
    assert codec("PIC S9(4) COMP-5").encode(32767) == H("7FFF")
    assert codec("PIC 9(9) COMP-5").encode(4294967295) == H("FFFFFFFF")


def test_codepages():
    assert get_codepage("cp037") is get_codepage("cp037")
    assert get_codepage("ibm037").name == "cp037"
    assert get_codepage("latin1").name == "iso8859-1"
    assert get_codepage("cp500").ebcdic and not get_codepage("ascii").ebcdic
    for bad in ("utf-8", "no-such-codepage"):
        with pytest.raises(CodecConfigError):
            get_codepage(bad)
    with pytest.raises(CodecConfigError):
        codec("PIC 9", null_policy="maybe")
    with pytest.raises(CodecConfigError):
        codec("PIC X", trim="middle")


def test_text_trimming():
    raw = H("4040C1C24040")
    assert codec("PIC X(6)").decode(raw) == "  AB"
    assert codec("PIC X(6)", trim="both").decode(raw) == "AB"
    assert codec("PIC X(6)", trim="none").decode(raw) == "  AB  "
    assert codec("PIC X(6) JUST RIGHT").decode(raw) == "AB  "
    # only spaces are trimmed: NEL (0x15 in cp037) and low-values stay
    assert codec("PIC X(3)").decode(H("C11500")) == "A\x85\x00"


# -- fast expressions never disagree with the checked decoders -----------------------------------------

FIELD_CLAUSES = [
    "PIC S9(5) COMP-3",
    "PIC 9(4) COMP-3",
    "PIC S9(3)V99 COMP-3",
    "PIC S9(3)",
    "PIC 9(3)",
    "PIC S9(2)V9",
    "PIC S9(3) SIGN LEADING",
    "PIC S9(3) SIGN LEADING SEPARATE",
    "PIC S9(3) SIGN TRAILING SEPARATE",
    "PIC 9(2) BLANK WHEN ZERO",
    "PIC S9(4) COMP",
    "PIC 9(4) COMP-5",
    "PIC S9(3)V9 COMP",
    "PIC X(3)",
    "PIC X(3) JUSTIFIED RIGHT",
]


def _fast_value(c, raw: bytes):
    ns: dict = {}

    def const(value):
        name = f"_k{len(ns)}"
        ns[name] = value
        return name

    if c.kind == "binary":
        raw = int.from_bytes(raw, "big", signed=c.signed)
    expr = c.fast_expr("x", const)
    ns["x"] = raw
    return eval(expr, ns)  # noqa: S307 - test of the generated expressions


@st.composite
def field_and_bytes(draw):
    clause = draw(st.sampled_from(FIELD_CLAUSES))
    codepage = draw(st.sampled_from(ALL_CODEPAGES))
    c = codec(clause, codepage)
    alphabet = [
        *c.codepage.digits,
        0x40,
        0x00,
        0xFF,
        0xC1,
        0xD5,
        0x7B,
        0x7D,
        0x4A,
        0x4E,
        0x60,
        0x2B,
        0x2D,
        0x20,
    ]
    raw = draw(
        st.one_of(
            st.binary(min_size=c.size, max_size=c.size),
            st.lists(st.sampled_from(alphabet), min_size=c.size, max_size=c.size).map(bytes),
        )
    )
    return clause, codepage, raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field_and_bytes())
def test_fast_expression_equals_checked_decode(case):
    clause, codepage, raw = case
    c = codec(clause, codepage)
    try:
        expected = c.decode(raw)
    except FieldCodecError:
        expected = FieldCodecError
    try:
        actual = _fast_value(c, raw)
    except Exception:  # noqa: BLE001 - any failure sends the record to the checked path
        return
    assert expected is not FieldCodecError, f"fast path accepted {raw.hex()} that decode rejects"
    assert actual == expected and type(actual) is type(expected)
    if isinstance(expected, Decimal):
        assert actual.as_tuple() == expected.as_tuple()


@settings(max_examples=200, deadline=None)
@given(field_and_bytes())
def test_record_decode_equals_checked_decode(case):
    clause, codepage, raw = case
    rc = record_codec(clause, codepage)
    try:
        expected = rc.decode_checked(raw)
    except RecordDecodeError:
        with pytest.raises(RecordDecodeError):
            rc.decode(raw)
        return
    assert rc.decode(raw) == expected
