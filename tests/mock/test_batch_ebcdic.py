"""The mock's own EBCDIC field codec: overpunch, packed decimal, halfwords, cp037 text."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_mainframe.batch.ebcdic import (
    DataError,
    decode_halfword,
    decode_packed,
    decode_text,
    decode_zoned,
    encode_halfword,
    encode_packed,
    encode_text,
    encode_zoned,
    representable,
)


def test_text_is_blank_padded_cp037():
    assert encode_text("AB", 4) == b"\xc1\xc2\x40\x40"
    assert decode_text(b"\xc1\xc2\x40\x40") == "AB  "
    with pytest.raises(ValueError):
        encode_text("TOO LONG", 3)
    with pytest.raises(UnicodeEncodeError):
        encode_text("\u20ac", 1)  # the euro sign is not in cp037
    assert representable("CAF\u00c9 \u20ac5") == "CAF\u00c9 ?5"


def test_zoned_overpunch():
    assert encode_zoned(Decimal("-12.34"), 9, 2, signed=True).hex() == "f0f0f0f0f0f1f2f3d4"
    assert encode_zoned(Decimal("12.34"), 9, 2, signed=True).hex() == "f0f0f0f0f0f1f2f3c4"
    assert encode_zoned(1261127, 7).hex() == "f1f2f6f1f1f2f7"
    # the overpunched last byte reads as a letter or brace in cp037: {, A-I positive; }, J-R negative
    assert encode_zoned(Decimal("0.00"), 9, 2, signed=True).decode("cp037")[-1] == "{"
    assert encode_zoned(Decimal("-0.01"), 9, 2, signed=True).decode("cp037")[-1] == "J"
    assert encode_zoned(Decimal("-0.10"), 9, 2, signed=True).decode("cp037")[-1] == "}"
    assert decode_zoned(bytes.fromhex("f0f0f0f0f0f1f2f3d4"), 2, signed=True) == Decimal("-12.34")
    with pytest.raises(OverflowError):
        encode_zoned(10_000_000, 7)
    with pytest.raises(ValueError):
        encode_zoned(-1, 7)
    with pytest.raises(ValueError):
        encode_zoned(Decimal("1.234"), 9, 2)
    with pytest.raises(DataError):
        decode_zoned(b"\x40" * 7)  # blanks are not a number


def test_packed_decimal():
    assert encode_packed(Decimal("-1234.50"), 15, 2, signed=True).hex() == "000000000123450d"
    assert encode_packed(Decimal("1234.50"), 15, 2, signed=True).hex() == "000000000123450c"
    assert encode_packed(123456789, 9, signed=False).hex() == "123456789f"
    assert encode_packed(1261127, 7, signed=False).hex() == "1261127f"
    assert len(encode_packed(0, 12)) == 7
    assert decode_packed(bytes.fromhex("000000000123450d"), 2) == Decimal("-1234.50")
    with pytest.raises(DataError):
        decode_packed(bytes.fromhex("00000000012a450c"), 2)  # a digit nibble above 9
    with pytest.raises(DataError):
        decode_packed(bytes.fromhex("0000000001234505"), 2)  # a digit where the sign goes
    with pytest.raises(OverflowError):
        encode_packed(Decimal("1E13"), 15, 2, signed=True)


def test_halfword_big_endian():
    assert encode_halfword(200) == b"\x00\xc8"
    assert encode_halfword(-2) == b"\xff\xfe"
    assert decode_halfword(b"\x22\x8c") == 8844


amounts = st.decimals(min_value=Decimal("-9999999999999.99"), max_value=Decimal("9999999999999.99"),
                      places=2, allow_nan=False, allow_infinity=False)


@given(amounts)
def test_packed_round_trip(value):
    data = encode_packed(value, 15, 2, signed=True)
    assert len(data) == 8
    assert decode_packed(data, 2) == value


@given(st.decimals(min_value=Decimal("-9999999.99"), max_value=Decimal("9999999.99"), places=2,
                   allow_nan=False, allow_infinity=False))
def test_zoned_round_trip(value):
    data = encode_zoned(value, 9, 2, signed=True)
    assert all(b >> 4 == 0xF for b in data[:-1])
    assert decode_zoned(data, 2, signed=True) == value


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40))
def test_text_round_trip(value):
    data = encode_text(value, 40)
    assert len(data) == 40
    assert decode_text(data) == value.ljust(40)
