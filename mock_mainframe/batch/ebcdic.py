"""The mock's own small EBCDIC field codec: just what its batch files need.

It is deliberately separate from the record codec in ``mappings/`` (the other side of the
contract): if both sides shared one codec, a bug in it would be invisible to contract tests.

Usages (IBM Enterprise COBOL, code page 037):
  ``X``       PIC X(n): text, padded on the right with EBCDIC blanks (0x40)
  ``9``       PIC [S]9(n)[V9(m)] DISPLAY (zoned): one digit per byte, zone F; a signed field
              carries its sign as an *overpunch* in the zone of the last byte (C +, D -)
  ``COMP-3``  packed decimal: two digits per byte, the last nibble is the sign
              (C +, D -, F unsigned); length = digits // 2 + 1
  ``COMP``    binary, big-endian; PIC S9(4) COMP is a halfword (2 bytes)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

CODEPAGE = "cp037"
BLANK = 0x40  # an EBCDIC space
_POSITIVE_SIGNS = frozenset({0xA, 0xC, 0xE, 0xF})
_NEGATIVE_SIGNS = frozenset({0xB, 0xD})


class DataError(ValueError):
    """Bytes that are not a valid value for their PICTURE (the mainframe's S0C7 data exception)."""


# -- scalar codecs ------------------------------------------------------------------------
def _scaled(value: int | Decimal | str, scale: int) -> int:
    """The value as an integer count of 10**-scale units; refuses to round."""
    d = Decimal(value).scaleb(scale)
    if not d.is_finite() or d != d.to_integral_value():
        raise ValueError(f"{value!r} does not fit a field with {scale} decimal places")
    return int(d)


def _unscaled(n: int, scale: int) -> Decimal | int:
    return Decimal(n).scaleb(-scale) if scale else n


def encode_text(value: str, length: int) -> bytes:
    """PIC X(length): blank-padded cp037; too long is an error, never silently cut."""
    if len(value) > length:
        raise ValueError(f"{value!r} longer than PIC X({length})")
    return value.ljust(length).encode(CODEPAGE)


def representable(value: str) -> str:
    """``value`` with every character cp037 cannot carry replaced by '?' (as a core's input
    conversion would have done), so that one odd memo cannot stop an end-of-day run."""
    return value.encode(CODEPAGE, errors="replace").decode(CODEPAGE)


def decode_text(data: bytes) -> str:
    """cp037 maps all 256 byte values, so any bytes decode (trailing blanks kept)."""
    return data.decode(CODEPAGE)


def encode_zoned(value: int | Decimal, digits: int, scale: int = 0, signed: bool = False) -> bytes:
    n = _scaled(value, scale)
    if n < 0 and not signed:
        raise ValueError(f"negative value {value} for an unsigned PIC 9 field")
    text = str(abs(n))
    if len(text) > digits:
        raise OverflowError(f"{value} does not fit PIC 9({digits - scale})V9({scale})")
    out = bytearray(0xF0 | int(c) for c in text.rjust(digits, "0"))
    if signed:
        out[-1] = (0xD0 if n < 0 else 0xC0) | (out[-1] & 0x0F)
    return bytes(out)


def decode_zoned(data: bytes, scale: int = 0, signed: bool = False) -> Decimal | int:
    n, negative = 0, False
    last = len(data) - 1
    for i, b in enumerate(data):
        zone, digit = b >> 4, b & 0x0F
        if digit > 9:
            raise DataError(f"non-numeric byte {b:#04x} in zoned field {data.hex()}")
        if i == last and signed and zone != 0xF:
            if zone in _NEGATIVE_SIGNS:
                negative = True
            elif zone not in _POSITIVE_SIGNS:
                raise DataError(f"bad overpunch zone {zone:X} in zoned field {data.hex()}")
        elif zone != 0xF:
            raise DataError(f"non-numeric byte {b:#04x} in zoned field {data.hex()}")
        n = n * 10 + digit
    return _unscaled(-n if negative else n, scale)


def packed_length(digits: int) -> int:
    return digits // 2 + 1


def encode_packed(value: int | Decimal, digits: int, scale: int = 0, signed: bool = True) -> bytes:
    n = _scaled(value, scale)
    if n < 0 and not signed:
        raise ValueError(f"negative value {value} for an unsigned COMP-3 field")
    text = str(abs(n))
    if len(text) > digits:
        raise OverflowError(f"{value} does not fit {digits} packed digits with scale {scale}")
    sign = "D" if n < 0 else ("C" if signed else "F")
    return bytes.fromhex(text.rjust(2 * packed_length(digits) - 1, "0") + sign)


def decode_packed(data: bytes, scale: int = 0) -> Decimal | int:
    nibbles = data.hex()
    body, sign = nibbles[:-1], int(nibbles[-1], 16) if nibbles else -1
    if not body.isdigit() or not (sign in _POSITIVE_SIGNS or sign in _NEGATIVE_SIGNS):
        raise DataError(f"invalid packed decimal {nibbles}")
    n = int(body)
    return _unscaled(-n if sign in _NEGATIVE_SIGNS else n, scale)


def encode_halfword(value: int) -> bytes:
    return struct.pack(">h", value)


def decode_halfword(data: bytes) -> int:
    return struct.unpack(">h", data)[0]


# -- fields and layouts -------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One elementary item of a copybook record, at a byte offset."""

    name: str
    length: int
    usage: str  # "X", "9" (zoned DISPLAY), "COMP-3", "COMP"
    digits: int = 0
    scale: int = 0
    signed: bool = False
    offset: int = 0
    variant: str = ""  # "" = always present; otherwise one alternative of a REDEFINES

    @property
    def is_filler(self) -> bool:
        return self.name == "FILLER"

    @property
    def picture(self) -> str:
        if self.usage == "X":
            return f"X({self.length})"
        whole = self.digits - self.scale
        pic = ("S" if self.signed else "") + f"9({whole})" + (f"V9({self.scale})" if self.scale else "")
        return pic + ("" if self.usage == "9" else f" {self.usage}")

    def encode(self, value: Any) -> bytes:
        if self.usage == "X":
            return encode_text(value, self.length)
        if self.usage == "9":
            return encode_zoned(value, self.digits, self.scale, self.signed)
        if self.usage == "COMP-3":
            return encode_packed(value, self.digits, self.scale, self.signed)
        if self.usage == "COMP":
            return encode_halfword(value)
        raise ValueError(f"unknown usage {self.usage}")

    def decode(self, data: bytes) -> Any:
        if self.usage == "X":
            return decode_text(data)
        if self.usage == "9":
            return decode_zoned(data, self.scale, self.signed)
        if self.usage == "COMP-3":
            return decode_packed(data, self.scale)
        return decode_halfword(data)


def x(name: str, length: int, variant: str = "") -> Field:
    return Field(name, length, "X", variant=variant)


def zoned(name: str, digits: int, scale: int = 0, signed: bool = False, variant: str = "") -> Field:
    return Field(name, digits, "9", digits, scale, signed, variant=variant)


def packed(name: str, digits: int, scale: int = 0, signed: bool = False) -> Field:
    return Field(name, packed_length(digits), "COMP-3", digits, scale, signed)


def halfword(name: str) -> Field:
    return Field(name, 2, "COMP", 4, 0, True)


def filler(length: int) -> Field:
    return Field("FILLER", length, "X")


@dataclass(frozen=True)
class Redefines:
    """Layout marker: the fields that follow overlay ``target`` (and the fields after it)."""

    target: str


class Layout:
    """A fixed-length record layout: fields at offsets, checked to add up to ``length``."""

    def __init__(self, name: str, length: int, items: Iterable[Field | Redefines]) -> None:
        self.name = name
        self.length = length
        fields: list[Field] = []
        offset = 0
        end = 0
        for item in items:
            if isinstance(item, Redefines):
                offset = next(f.offset for f in fields if f.name == item.target)
                continue
            fields.append(replace(item, offset=offset))
            offset += item.length
            end = max(end, offset)
        if end != length:
            raise ValueError(f"layout {name} is {end} bytes, not {length}")
        self.fields: tuple[Field, ...] = tuple(fields)
        self._by_name = {f.name: f for f in fields if not f.is_filler}

    def __repr__(self) -> str:
        return f"Layout({self.name!r}, {self.length})"

    def field(self, name: str) -> Field:
        return self._by_name[name]

    def slice(self, name: str) -> slice:
        f = self._by_name[name]
        return slice(f.offset, f.offset + f.length)

    def _selected(self, variant: str) -> Sequence[Field]:
        return [f for f in self.fields if f.variant in ("", variant)]

    def encode(self, values: Mapping[str, Any], variant: str = "") -> bytes:
        """A record from ``values`` (by field name); FILLER and unnamed fields stay blank."""
        out = bytearray([BLANK]) * self.length
        unknown = set(values) - set(self._by_name)
        if unknown:
            raise KeyError(f"{self.name} has no field(s) {sorted(unknown)}")
        for f in self._selected(variant):
            if f.is_filler or f.name not in values:
                continue
            out[f.offset:f.offset + f.length] = f.encode(values[f.name])
        return bytes(out)

    def decode(self, record: bytes, variant: str = "") -> dict[str, Any]:
        """Every named field; raises :class:`DataError` on the first invalid numeric field."""
        if len(record) != self.length:
            raise DataError(f"{self.name} record is {len(record)} bytes, not {self.length}")
        return {f.name: f.decode(record[f.offset:f.offset + f.length])
                for f in self._selected(variant) if not f.is_filler}


__all__ = ["BLANK", "CODEPAGE", "DataError", "Field", "Layout", "Redefines", "decode_halfword",
           "decode_packed", "decode_text", "decode_zoned", "encode_halfword", "encode_packed",
           "encode_text", "encode_zoned", "filler", "halfword", "packed", "packed_length",
           "representable", "x", "zoned"]
