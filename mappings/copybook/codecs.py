"""Field-level decoders and encoders: text, zoned decimal, packed decimal (COMP-3), binary.

Every codec has a checked ``decode(raw) -> value`` and ``encode(value) -> bytes`` that raise
:class:`~mappings.copybook.errors.FieldCodecError` with a precise reason; the record compiler
additionally asks each codec for a *fast expression* (``fast_expr``) used in generated code.
A fast expression either returns exactly what ``decode`` returns or raises; it never accepts
bytes that ``decode`` would reject (the generated code then falls back to ``decode``).

Numbers: integers without scale decode to ``int``; with an implied decimal point (``V``) to
``decimal.Decimal`` with exponent ``-scale`` (``S9(5)V99`` holding 12.5 -> ``Decimal('12.50')``).
Zero is always decoded and encoded as positive.

Signs, as IBM does them:

* zoned (DISPLAY): EBCDIC zone nibble of the sign byte ``C`` = +, ``D`` = -, ``F`` = unsigned
  (also ``A``/``E`` = + and ``B`` = - on decode); every other byte must be ``F0``-``F9``.
  ASCII code pages use the overpunch letters ``{ABCDEFGHI`` = +0..+9 and ``}JKLMNOPQR`` =
  -0..-9 (plain digits are positive).  Encoding writes ``C``/``D`` (``{A-I``/``}J-R`` in ASCII)
  for signed fields and plain digits for unsigned ones.  SIGN SEPARATE uses ``+``/``-``.
* packed (COMP-3): sign nibble ``C``/``D``/``F`` (also ``A``/``E`` = + and ``B`` = - on decode);
  encoding writes ``C``/``D`` for signed fields and ``F`` for unsigned ones.
* binary (COMP, COMP-4, BINARY, COMP-5): big-endian two's complement of 2, 4 or 8 bytes.  The
  full binary value is decoded; on encode COMP/COMP-4/BINARY values are limited to the PICTURE
  digits and COMP-5 values to the capacity of the bytes.

Numeric fields made only of low-values (``00``), high-values (``FF``) or spaces are handled by
an explicit ``null_policy``: ``"error"`` (default), ``"null"`` (``None``) or ``"zero"``.  Binary
fields have no invalid bit patterns, so the policy does not apply to them.
"""

from __future__ import annotations

import codecs as _pycodecs
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded
from functools import lru_cache

from .errors import CodecConfigError, FieldCodecError
from .layout import Field, Usage

__all__ = [
    "CODEPAGES",
    "NULL_POLICIES",
    "BinaryCodec",
    "CodePage",
    "FieldCodec",
    "PackedCodec",
    "TextCodec",
    "ZonedCodec",
    "field_codec",
    "get_codepage",
    "scaled_int",
]

#: Code pages this codec is tested with (aliases accepted through :func:`codecs.lookup`).
CODEPAGES = ("cp037", "cp500", "cp1140", "cp273", "latin-1", "ascii")
NULL_POLICIES = ("error", "null", "zero")
TRIMS = ("right", "both", "none")

#: Exact decimal arithmetic, independent of the caller's decimal context.
DECIMAL_CONTEXT = Context(prec=100, traps=[InvalidOperation, Inexact, Rounded])
_mul = DECIMAL_CONTEXT.multiply
_SCALES = [Decimal(1).scaleb(-s) for s in range(40)]  # 1, 0.1, 0.01, ...
_ZEROS = [Decimal(0).scaleb(-s) for s in range(40)]  # 0, 0.0, 0.00, ...

_EBCDIC_SIGN_ZONES = {0xC: 1, 0xA: 1, 0xE: 1, 0xF: 1, 0xD: -1, 0xB: -1}
_ASCII_POS = "{ABCDEFGHI"
_ASCII_NEG = "}JKLMNOPQR"
_PACKED_SIGNS = {"c": 1, "a": 1, "e": 1, "f": 1, "d": -1, "b": -1}
# sign nibble -> prefix for int(): KeyError for an invalid nibble
_PACKED_PREFIX = {"c": "", "a": "", "e": "", "f": "", "d": "-", "b": "-"}
_PACKED_PREFIX_UNSIGNED = {"c": "", "a": "", "e": "", "f": ""}


class CodePage:
    """A single-byte code page plus the tables zoned decimals need."""

    def __init__(self, name: str) -> None:
        try:
            info = _pycodecs.lookup(name)
        except LookupError:
            raise CodecConfigError(f"unknown code page {name!r}; supported: {', '.join(CODEPAGES)}") from None
        allowed = {_pycodecs.lookup(c).name for c in CODEPAGES}
        if info.name not in allowed:
            raise CodecConfigError(f"code page {name!r} is not supported; supported: {', '.join(CODEPAGES)}")
        self.name = info.name
        table = []
        for b in range(256):
            try:
                table.append(bytes([b]).decode(self.name))
            except UnicodeDecodeError:
                table.append("\ufffe")  # undefined: charmap_decode raises
        self.decoding_table = "".join(table)
        self.ebcdic = "0".encode(self.name) == b"\xf0"
        self.space = " ".encode(self.name)[0]
        self.plus = "+".encode(self.name)[0]
        self.minus = "-".encode(self.name)[0]
        self.digits = "0123456789".encode(self.name)  # byte of each unsigned digit
        # sign byte -> (digit, sign); sign 0 = invalid
        sign_byte: dict[int, tuple[int, int]] = {}
        if self.ebcdic:
            for zone, sign in _EBCDIC_SIGN_ZONES.items():
                for d in range(10):
                    sign_byte[zone << 4 | d] = (d, sign)
        else:
            for d in range(10):
                sign_byte[self.digits[d]] = (d, 1)
                sign_byte[ord(_ASCII_POS[d])] = (d, 1)
                sign_byte[ord(_ASCII_NEG[d])] = (d, -1)
        self.sign_byte = sign_byte
        #: translate table: unsigned digit bytes -> b"0".."9", everything else -> b"x"
        self.digit_table = bytes(
            (0x30 + self.digits.index(b)) if b in self.digits else 0x78 for b in range(256)
        )
        #: per byte value: the ASCII digit (bytes) of an overpunched sign byte, b"x" if invalid
        self.sign_digit = [bytes([0x30 + sign_byte[b][0]]) if b in sign_byte else b"x" for b in range(256)]
        #: per byte value: +1 / -1 for a valid sign byte, 0 otherwise
        self.sign_value = [sign_byte[b][1] if b in sign_byte else 0 for b in range(256)]
        self.separate_signs = {self.plus: 1, self.minus: -1}
        #: b"0".."9" -> unsigned digit bytes of this code page
        self.from_ascii_digits = bytes.maketrans(b"0123456789", self.digits)
        if self.ebcdic:
            self.positive_sign = [0xC0 | d for d in range(10)]
            self.negative_sign = [0xD0 | d for d in range(10)]
        else:
            self.positive_sign = [ord(c) for c in _ASCII_POS]
            self.negative_sign = [ord(c) for c in _ASCII_NEG]

    def __repr__(self) -> str:
        return f"CodePage({self.name!r})"

    def decode_text(self, raw: bytes) -> str:
        return _pycodecs.charmap_decode(raw, "strict", self.decoding_table)[0]

    def encode_text(self, text: str) -> bytes:
        return text.encode(self.name)


@lru_cache(maxsize=32)
def get_codepage(name: str) -> CodePage:
    """The :class:`CodePage` called *name* (``cp037``, ``cp500``, ``cp1140``, ``cp273``,
    ``latin-1``, ``ascii``; Python aliases such as ``ibm037`` work too)."""
    return CodePage(name)


def scaled_int(value: object, scale: int) -> int:
    """*value* times 10**scale as an exact int; FieldCodecError if that needs rounding."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        if isinstance(value, float):
            raise FieldCodecError(f"float {value!r} given; use decimal.Decimal or int for exact amounts")
        raise FieldCodecError(f"expected a number (int or Decimal), got {type(value).__name__} {value!r}")
    if isinstance(value, int):
        return value * 10**scale
    if not value.is_finite():
        raise FieldCodecError(f"{value} is not a finite number")
    sign, digits, exp = value.as_tuple()
    n = int("".join(map(str, digits)) or "0")
    shift = exp + scale  # type: ignore[operator]
    if shift >= 0:
        n *= 10**shift
    else:
        n, rest = divmod(n, 10**-shift)
        if rest:
            raise FieldCodecError(f"{value} has more than {scale} decimal places")
    return -n if sign else n


class FieldCodec:
    """Base class: converts one elementary field between bytes and a Python value."""

    kind = ""
    #: struct format code used by the record compiler (binary fields get a native one)
    struct_code: str

    def __init__(self, field: Field, codepage: CodePage) -> None:
        self.field = field
        self.size = field.length
        self.codepage = codepage
        self.struct_code = f"{self.size}s"

    def decode(self, raw: bytes) -> object:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, value: object) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def fast_expr(self, src: str, const) -> str:
        """A Python expression computing the value from the struct item in variable *src*.

        *const(value)* registers a constant and returns the name to use in the expression.
        """
        c = const(self.decode)
        return f"{c}({src})"

    def fast_check_expr(self, src: str, const) -> str:
        """An expression that raises exactly when :meth:`fast_expr` does, cheaper where it can be
        (numbers skip their scaling): for fields a projection validates but does not return."""
        return self.fast_expr(src, const)

    @property
    def fast_needs_fallback(self) -> bool:
        """Whether the fast expression can raise on bytes ``decode`` accepts."""
        return False

    def zero_bytes(self) -> bytes:
        """Canonical filler for this field (spaces for text, zero for numbers)."""
        return self.encode(0)


class TextCodec(FieldCodec):
    """PIC X / PIC A: code-page text, padded with spaces."""

    kind = "text"

    def __init__(self, field: Field, codepage: CodePage, trim: str = "right") -> None:
        super().__init__(field, codepage)
        if trim not in TRIMS:
            raise CodecConfigError(f"trim must be one of {TRIMS}, not {trim!r}")
        self.trim = trim
        self.justified = field.justified
        self.pad = bytes([codepage.space])

    def trim_expr(self, expr: str, any_blank: bool = False) -> str:
        """The trimming of the string *expr*; *any_blank*: it is known to hold no whitespace
        other than blanks (then the much faster argument-less strip methods are exact)."""
        chars = "" if any_blank else "' '"
        if self.trim == "none":
            return expr
        if self.trim == "both":
            return f"{expr}.strip({chars})"
        return f"{expr}.lstrip({chars})" if self.justified else f"{expr}.rstrip({chars})"

    def trim_text(self, text: str) -> str:
        if self.trim == "none":
            return text
        if self.trim == "both":
            return text.strip(" ")
        return text.lstrip(" ") if self.justified else text.rstrip(" ")

    def decode(self, raw: bytes) -> str:
        try:
            text = self.codepage.decode_text(raw)
        except UnicodeDecodeError as exc:
            raise FieldCodecError(
                f"byte {raw[exc.start]:02X} at position {exc.start} is not valid {self.codepage.name} text",
                raw,
            ) from None
        return self.trim_text(text)

    def fast_expr(self, src: str, const) -> str:
        decode, table = const(_pycodecs.charmap_decode), const(self.codepage.decoding_table)
        return self.trim_expr(f"{decode}({src}, None, {table})[0]")

    def encode(self, value: object) -> bytes:
        if not isinstance(value, str):
            raise FieldCodecError(
                f"expected str for PIC {self.field.pic}, got {type(value).__name__} {value!r}"
            )
        try:
            data = self.codepage.encode_text(value)
        except UnicodeEncodeError as exc:
            raise FieldCodecError(
                f"character {value[exc.start]!r} cannot be written in code page {self.codepage.name}"
            ) from None
        if len(data) > self.size:
            raise FieldCodecError(
                f"text of {len(data)} characters does not fit PIC {self.field.pic} ({self.size})"
            )
        padding = self.pad * (self.size - len(data))
        return padding + data if self.justified else data + padding

    def zero_bytes(self) -> bytes:
        return self.pad * self.size


class _NumericCodec(FieldCodec):
    def __init__(self, field: Field, codepage: CodePage, null_policy: str = "error") -> None:
        super().__init__(field, codepage)
        if null_policy not in NULL_POLICIES:
            raise CodecConfigError(f"null_policy must be one of {NULL_POLICIES}, not {null_policy!r}")
        self.null_policy = null_policy
        self.scale = field.scale
        self.signed = field.signed
        self.digits = field.digits
        self.limit = 10**field.digits
        self._q = _SCALES[self.scale]
        self._zero = _ZEROS[self.scale] if self.scale else 0
        self._spaces = bytes([codepage.space]) * self.size
        self._lows = b"\x00" * self.size
        self._highs = b"\xff" * self.size

    def scaled(self, n: int):
        return _mul(n, self._q) if self.scale else n

    def scaled_expr(self, expr: str, const) -> str:
        if not self.scale:
            return expr
        return f"{const(_mul)}({expr}, {const(self._q)})"

    def null_value(self, raw: bytes) -> tuple[bool, object]:
        """(True, value) when *raw* is entirely low-values, high-values or spaces."""
        if raw == self._spaces:
            what = "spaces"
            if self.field.blank_when_zero:
                return True, self._zero
        elif raw == self._lows:
            what = "low-values"
        elif raw == self._highs:
            what = "high-values"
        else:
            return False, None
        if self.null_policy == "null":
            return True, None
        if self.null_policy == "zero":
            return True, self._zero
        raise FieldCodecError(
            f"numeric field PIC {self.field.pic} contains only {what}; "
            "choose null_policy='null' or 'zero' to accept that",
            raw,
        )

    def to_int(self, value: object) -> int:
        n = scaled_int(value, self.scale)
        if n < 0 and not self.signed:
            raise FieldCodecError(f"negative value {value} for unsigned PIC {self.field.pic}")
        if abs(n) >= self.limit:
            raise FieldCodecError(f"{value} does not fit PIC {self.field.pic} ({self.digits} digits)")
        return n

    @property
    def fast_needs_fallback(self) -> bool:
        return True

    def zero_bytes(self) -> bytes:
        return self.encode(0)


class ZonedCodec(_NumericCodec):
    """Zoned decimal (USAGE DISPLAY numeric), with overpunched or separate sign."""

    kind = "zoned"

    def __init__(self, field: Field, codepage: CodePage, null_policy: str = "error") -> None:
        super().__init__(field, codepage, null_policy)
        self.leading = field.sign_leading
        self.separate = field.sign_separate and field.signed

    def decode(self, raw: bytes) -> object:
        if len(raw) != self.size:
            raise FieldCodecError(f"expected {self.size} bytes, got {len(raw)}", raw)
        is_null, value = self.null_value(raw)
        if is_null:
            return value
        cp = self.codepage
        sign = 1
        if self.separate:
            pos = 0 if self.leading else self.size - 1
            sign = cp.separate_signs.get(raw[pos], 0)
            if not sign:
                raise FieldCodecError(
                    f"byte {raw[pos]:02X} at position {pos} is not a '+' or '-' sign "
                    f"(SIGN {'LEADING' if self.leading else 'TRAILING'} SEPARATE)",
                    raw,
                )
            body = raw[1:] if self.leading else raw[:-1]
            body_start = 1 if self.leading else 0
            sign_pos = -1
        else:
            body, body_start = raw, 0
            sign_pos = 0 if self.leading else self.size - 1
        n = 0
        for i, b in enumerate(body):
            if i == sign_pos:
                digit_sign = cp.sign_byte.get(b)
                if digit_sign is None:
                    raise FieldCodecError(
                        f"invalid zoned decimal: sign byte {b:02X} at position {body_start + i} is neither "
                        "a digit nor a signed digit",
                        raw,
                    )
                digit, sign = digit_sign
                if sign < 0 and not self.signed:
                    raise FieldCodecError(
                        f"negative sign in byte {b:02X} at position {body_start + i} "
                        f"of unsigned PIC {self.field.pic}",
                        raw,
                    )
            else:
                digit = cp.digits.find(b)
                if digit < 0:
                    expected = "F0-F9" if cp.ebcdic else "30-39"
                    raise FieldCodecError(
                        f"invalid zoned decimal: byte {b:02X} at position {body_start + i} "
                        f"is not a digit ({expected})",
                        raw,
                    )
            n = n * 10 + digit
        return self.scaled(n * sign)

    def fast_expr(self, src: str, const) -> str:
        return self.scaled_expr(self.fast_check_expr(src, const), const)

    def fast_check_expr(self, src: str, const) -> str:
        cp = self.codepage
        table = const(cp.digit_table)
        if self.separate:
            signs = const(cp.separate_signs)
            if self.leading:
                expr = f"int({src}[1:].translate({table})) * {signs}[{src}[0]]"
            else:
                expr = f"int({src}[:-1].translate({table})) * {signs}[{src}[-1]]"
        elif not self.signed:
            expr = f"int({src}.translate({table}))"
        else:
            dig, sgn = const(cp.sign_digit), const(cp.sign_value)
            if self.leading:
                expr = f"int({dig}[{src}[0]] + {src}[1:].translate({table})) * {sgn}[{src}[0]]"
            else:
                expr = f"int({src}[:-1].translate({table}) + {dig}[{src}[-1]]) * {sgn}[{src}[-1]]"
        return expr

    def encode(self, value: object) -> bytes:
        n = self.to_int(value)
        if n == 0 and self.field.blank_when_zero:
            return self._spaces
        cp = self.codepage
        digits = str(abs(n)).zfill(self.digits)
        text = digits.encode("ascii").translate(cp.from_ascii_digits)
        if self.separate:
            sign = bytes([cp.minus if n < 0 else cp.plus])
            return sign + text if self.leading else text + sign
        if not self.signed:
            return text
        digit = int(digits[0 if self.leading else -1])
        sign_byte = (cp.negative_sign if n < 0 else cp.positive_sign)[digit]
        if self.leading:
            return bytes([sign_byte]) + text[1:]
        return text[:-1] + bytes([sign_byte])


class PackedCodec(_NumericCodec):
    """Packed decimal (COMP-3 / PACKED-DECIMAL): two digits per byte, sign in the last nibble."""

    kind = "packed"

    def decode(self, raw: bytes) -> object:
        if len(raw) != self.size:
            raise FieldCodecError(f"expected {self.size} bytes, got {len(raw)}", raw)
        is_null, value = self.null_value(raw)
        if is_null:
            return value
        h = raw.hex()
        for i, c in enumerate(h[:-1]):
            if c not in "0123456789":
                raise FieldCodecError(
                    f"invalid packed decimal: digit nibble {c.upper()} in byte {i // 2} "
                    f"({'high' if i % 2 == 0 else 'low'} nibble)",
                    raw,
                )
        sign = _PACKED_SIGNS.get(h[-1])
        if sign is None:
            raise FieldCodecError(
                f"invalid packed decimal: sign nibble {h[-1].upper()} (expected C, D or F)", raw
            )
        if sign < 0 and not self.signed:
            raise FieldCodecError(
                f"negative sign nibble {h[-1].upper()} in unsigned PIC {self.field.pic}", raw
            )
        return self.scaled(int(h[:-1]) * sign)

    def fast_expr(self, src: str, const) -> str:
        return self.scaled_expr(self.fast_check_expr(src, const), const)

    def fast_check_expr(self, src: str, const) -> str:
        # int() of the digit nibbles never sees "_" or blanks: hex() makes only 0-9a-f, and
        # any a-f digit nibble makes int() raise
        prefix = const(_PACKED_PREFIX if self.signed else _PACKED_PREFIX_UNSIGNED)
        return f"int({prefix}[(_h := {src}.hex())[-1]] + _h[:-1])"

    def encode(self, value: object) -> bytes:
        n = self.to_int(value)
        sign = ("d" if n < 0 else "c") if self.signed else "f"
        return bytes.fromhex(f"{abs(n):0{self.size * 2 - 1}d}{sign}")


class BinaryCodec(_NumericCodec):
    """Big-endian binary: COMP/COMP-4/BINARY (PIC-limited on encode) and COMP-5 (native)."""

    kind = "binary"

    def __init__(self, field: Field, codepage: CodePage, null_policy: str = "error") -> None:
        super().__init__(field, codepage, null_policy)
        self.native = field.usage is Usage.COMP5
        code = {2: "h", 4: "i", 8: "q"}[self.size]
        self.struct_code = code if self.signed else code.upper()
        bits = self.size * 8
        if self.native:
            self.low, self.high = (
                (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)
            )
        else:
            self.low, self.high = (-(self.limit - 1) if self.signed else 0), self.limit - 1

    def decode(self, raw: bytes) -> object:
        if len(raw) != self.size:
            raise FieldCodecError(f"expected {self.size} bytes, got {len(raw)}", raw)
        return self.scaled(int.from_bytes(raw, "big", signed=self.signed))

    def decode_int(self, n: int) -> object:
        return self.scaled(n)

    def fast_expr(self, src: str, const) -> str:
        # the struct item already is the integer
        return self.scaled_expr(src, const)

    @property
    def fast_needs_fallback(self) -> bool:
        return False

    def encode(self, value: object) -> bytes:
        n = scaled_int(value, self.scale)
        if not self.low <= n <= self.high:
            what = f"{self.size} bytes" if self.native else f"{self.digits} digits"
            raise FieldCodecError(f"{value} does not fit {self.field.pic} {self.field.usage.value} ({what})")
        return n.to_bytes(self.size, "big", signed=self.signed)


def field_codec(
    field: Field, codepage: CodePage | str, *, null_policy: str = "error", trim: str = "right"
) -> FieldCodec:
    """The codec for one elementary field."""
    cp = codepage if isinstance(codepage, CodePage) else get_codepage(codepage)
    if not field.numeric:
        return TextCodec(field, cp, trim)
    if field.usage is Usage.DISPLAY:
        return ZonedCodec(field, cp, null_policy)
    if field.usage is Usage.PACKED:
        return PackedCodec(field, cp, null_policy)
    return BinaryCodec(field, cp, null_policy)
