"""The closed registry of named transforms: the only "code" a mapping file can call.

A mapping file names transforms and gives them literal parameters; it can never supply Python.
Each transform has a forward direction (legacy value -> canonical value) and, where the mapping
is used to write, an inverse (canonical value -> legacy value). Both are built once per field
rule into small closures (see :mod:`mappings.engine.compiler`):

* forward: ``fn(value, record, context) -> value``; ``record``/``context`` are there for
  transforms that read a second field (``sign_from``, ``money``, ``datetime``);
* inverse: ``inv(value, out) -> value``; ``out`` is the legacy dict being written, for
  transforms that write a second field (the indicator of ``sign_from``, the currency of
  ``money``, the time of ``datetime``).

``None`` passes through every transform unchanged (except ``null_if``'s inverse and ``date``'s
inverse, which turn it into the legacy "no value"). Bad input raises :class:`TransformError`,
which the engine reports with the mapping, rule, field and value.

Fast path: a forward closure may carry ``fn.pure = True`` (it never reads ``record`` or
``context``) and ``fn.fast = (template, constants, fields)``, an inline Python expression the
compiler pastes into the mapping's generated read function: ``{v}`` is the value's variable,
``{F}`` the closure itself, ``{f0}``... the values of the legacy ``fields`` it reads (paths), and
other ``{name}`` the given constants.  The expression must evaluate to exactly what the closure
returns, or raise (the engine then runs the closures, which give the answer or the error).

Native rows: a forward closure may also carry ``fn.native = (op, params, fields)``, the same inline
form as an op of a C row program (:mod:`mappings.engine.native`): ``fields`` as above, ``params``
the op's constants.  Where the inline form would call the closure, the op gives the row up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from canonical import InvalidMoney, Money
from canonical.money import normalize_amount

__all__ = ["REGISTRY", "ParamError", "ParamSpec", "TransformDef", "TransformError", "resolve_tz"]

Fn = Callable[[Any, Any, Any], Any]
InvFn = Callable[[Any, dict], Any]


class TransformError(ValueError):
    """A value a transform cannot convert (the engine adds mapping, rule, field, value)."""


class ParamError(ValueError):
    """A transform parameter that is wrong in the mapping file."""

    def __init__(self, message: str, *, param: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.hint = hint


@dataclass(frozen=True)
class ParamSpec:
    name: str
    types: tuple[type, ...]
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] | None = None
    field: bool = False  # the value names a legacy field (checked against the contract)
    doc: str = ""


@dataclass(frozen=True)
class TransformDef:
    name: str
    doc: str
    params: tuple[ParamSpec, ...]
    forward: Callable[[dict, Any], Fn]
    inverse: Callable[[dict, Any], InvFn] | None
    accepts: frozenset[str]  # input kinds: str int decimal date datetime time money list any
    output: str  # output kind (same vocabulary), "same" or "any"
    primary: str | None = None  # the parameter a scalar shorthand sets: {date: CYYMMDD}
    example: str = ""

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)


REGISTRY: dict[str, TransformDef] = {}


def _register(td: TransformDef) -> TransformDef:
    REGISTRY[td.name] = td
    return td


def _kind(value: Any) -> str:
    return type(value).__name__


def _inline(fn: Fn, template: str | None = None, fields: tuple[str, ...] = (), **consts: Any) -> Fn:
    """Mark *fn* as pure (value only) or give its inline form (see the module docstring)."""
    if not fields:
        fn.pure = True  # type: ignore[attr-defined]
    if template is not None:
        fn.fast = (template, consts, fields)  # type: ignore[attr-defined]
    return fn


def _native(fn: Fn, op: str, *params: Any, fields: tuple[str, ...] = ()) -> Fn:
    """Give *fn* its row-program op (see the module docstring); returns *fn*."""
    fn.native = (op, params, fields)  # type: ignore[attr-defined]
    return fn


def _returns(fn: Fn, *, types: frozenset[type] | None = None, values: tuple | None = None,
             aware: bool = False) -> Fn:
    """Declare what *fn* returns whenever it returns: values of exactly these *types* (aware
    datetimes if *aware*), or one of these *values*.  The engine's generated code skips the
    model checks such values always pass."""
    fn.returns = {"types": types, "values": values, "aware": aware}  # type: ignore[attr-defined]
    return fn


# -- text --------------------------------------------------------------------------------------
_STR_OR_NONE = frozenset({str, type(None)})


def _trim_forward(p: dict, ctx: Any) -> Fn:
    fn = _returns(_trim_closure(p["side"]), types=_STR_OR_NONE)
    method = {"right": "rstrip", "left": "lstrip"}.get(p["side"], "strip")
    _native(fn, "strip", {"rstrip": "right", "lstrip": "left"}.get(method, "both"))
    return _inline(fn, f"({{v}}.{method}() if type({{v}}) is str else {{F}}({{v}}, None, None))")


def _trim_closure(side: str) -> Fn:
    if side == "right":
        def fn(v, r, c):
            if type(v) is str:
                return v.rstrip()
            if v is None:
                return None
            raise TransformError(f"trim needs text, got {_kind(v)}")
    elif side == "left":
        def fn(v, r, c):
            if type(v) is str:
                return v.lstrip()
            if v is None:
                return None
            raise TransformError(f"trim needs text, got {_kind(v)}")
    else:
        def fn(v, r, c):
            if type(v) is str:
                return v.strip()
            if v is None:
                return None
            raise TransformError(f"trim needs text, got {_kind(v)}")
    return fn


def _trim_inverse(p: dict, ctx: Any) -> InvFn:
    width = p["width"] if p["width"] is not None else ctx.width
    right = p["justify"] == "right"

    def inv(v, out):
        if v is None:
            return None
        if not isinstance(v, str):
            raise TransformError(f"trim (write) needs text, got {_kind(v)}")
        if width is None:
            return v
        if len(v) > width:
            raise TransformError(f"{v!r} is longer than the field's {width} characters (never cut silently)")
        return v.rjust(width) if right else v.ljust(width)

    return inv


_register(TransformDef(
    "trim", "Remove blanks (CHAR padding). Write: pad back to the field's width (from the contract, "
    "or `width`), refusing longer values.",
    (ParamSpec("side", (str,), default="both", choices=("both", "right", "left")),
     ParamSpec("width", (int,), doc="pad width on write; default: the contract's width"),
     ParamSpec("justify", (str,), default="left", choices=("left", "right"), doc="padding side on write")),
    _trim_forward, _trim_inverse, frozenset({"str"}), "str", primary="side", example="trim",
))

_CASES: dict[str, Callable[[str], str]] = {
    "upper": str.upper, "lower": str.lower, "title": str.title, "keep": lambda s: s,
}


def _case_forward(p: dict, ctx: Any) -> Fn:
    conv = _CASES[p["to"]]

    def fn(v, r, c):
        if type(v) is str:
            return conv(v)
        if v is None:
            return None
        raise TransformError(f"case needs text, got {_kind(v)}")

    return _inline(fn)


def _case_inverse(p: dict, ctx: Any) -> InvFn:
    conv = _CASES[p["legacy"]]
    return lambda v, out: conv(v) if isinstance(v, str) else v


_register(TransformDef(
    "case", "Change letter case. Write: convert to the legacy case (`legacy`, default upper).",
    (ParamSpec("to", (str,), required=True, choices=("upper", "lower", "title", "keep")),
     ParamSpec("legacy", (str,), default="upper", choices=("upper", "lower", "keep"))),
    _case_forward, _case_inverse, frozenset({"str"}), "str", primary="to", example="{case: title}",
))


def _null_if_forward(p: dict, ctx: Any) -> Fn:
    values = p["values"]
    try:
        nulls = frozenset(values)
    except TypeError:
        raise ParamError("null_if values must be plain values (text, numbers)", param="values") from None

    def fn(v, r, c):
        try:
            return None if v in nulls else v
        except TypeError:
            return v

    # unhashable values raise TypeError inline: the closure then answers
    fn.passes_through = True  # type: ignore[attr-defined] - returns its input or None
    _native(fn, "nullif", nulls)
    return _inline(fn, "(None if {v} in {nulls} else {v})", nulls=nulls)


def _null_if_inverse(p: dict, ctx: Any) -> InvFn:
    first = p["values"][0] if p["values"] else None
    return lambda v, out: first if v is None else v


_register(TransformDef(
    "null_if", "Turn the listed values (default: the empty string) into null. Write: null becomes "
    "the first listed value.",
    (ParamSpec("values", (list,), default=[""]),),
    _null_if_forward, _null_if_inverse, frozenset({"any"}), "same", primary="values",
    example="null_if  # '' -> null",
))


def _split_forward(p: dict, ctx: Any) -> Fn:
    sep, index, strip, maxsplit = p["sep"], p["index"], p["strip"], p["maxsplit"]

    def fn(v, r, c):
        if v is None:
            return None
        if not isinstance(v, str):
            raise TransformError(f"split needs text, got {_kind(v)}")
        parts = v.split(sep, maxsplit)
        if index >= len(parts):
            return None
        part = parts[index]
        return part.strip() if strip else part

    return _inline(fn)


def _split_inverse(p: dict, ctx: Any) -> InvFn:
    sep, index = p["sep"], p["index"]
    current = ctx.out_getter

    def inv(v, out):
        if v is None:
            return current(out)
        if not isinstance(v, str):
            raise TransformError(f"split (write) needs text, got {_kind(v)}")
        if sep in v:
            raise TransformError(f"{v!r} contains the separator {sep!r}")
        have = current(out)
        parts = have.split(sep) if isinstance(have, str) and have else []
        parts.extend([""] * (index + 1 - len(parts)))
        parts[index] = v
        return sep.join(parts)

    return inv


_register(TransformDef(
    "split", "Take one part of a text split at `sep`. Write: put the part back at `index` "
    "(several rules can write the parts of one field).",
    (ParamSpec("sep", (str,), default=" "), ParamSpec("index", (int,), required=True),
     ParamSpec("strip", (bool,), default=True), ParamSpec("maxsplit", (int,), default=-1)),
    _split_forward, _split_inverse, frozenset({"str"}), "str", example="{split: {sep: ',', index: 0}}",
))


def _concat_forward(p: dict, ctx: Any) -> Fn:
    sep = p["sep"]

    def fn(v, r, c):
        if type(v) is not list:
            if v is None:
                return None
            raise TransformError("concat needs the values of a rule's `parts`")
        if None in v:
            if v.count(None) == len(v):
                return None
            v = ["" if x is None else x for x in v]
        return sep.join(map(str, v))

    fn.join_parts = sep  # type: ignore[attr-defined] - see ReadGen: f"{a}{sep}{b}" of str / int parts
    return _inline(_returns(fn, types=_STR_OR_NONE),
                   "({sep}.join(map(str, {v})) if type({v}) is list and None not in {v} else {F}({v}, None, None))",
                   sep=sep)


def _concat_inverse(p: dict, ctx: Any) -> InvFn:
    sep, n = p["sep"], ctx.parts

    def inv(v, out):
        if v is None:
            return None
        if not isinstance(v, str):
            raise TransformError(f"concat (write) needs text, got {_kind(v)}")
        parts = v.split(sep, n - 1) if sep else [v]
        if len(parts) != n:
            raise TransformError(f"{v!r} does not split into {n} parts at {sep!r}")
        return parts

    return inv


_register(TransformDef(
    "concat", "Join the values of the rule's `parts` with `sep`. Write: split at `sep` into the parts.",
    (ParamSpec("sep", (str,), default=""),),
    _concat_forward, _concat_inverse, frozenset({"list"}), "str", primary="sep",
    example="{concat: '-'}",
))


# -- numbers -----------------------------------------------------------------------------------
def _exact_decimal(v: Any, what: str) -> Decimal:
    t = type(v)
    if t is Decimal:
        if not v.is_finite():
            raise TransformError(f"{what}: {v} is not a finite number")
        return v
    if t is str:
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            raise TransformError(f"{what}: {v!r} is not a decimal number") from None
        if not d.is_finite():
            raise TransformError(f"{what}: {v!r} is not a finite number")
        return d
    if t is int:
        return Decimal(v)
    if t is float:
        raise TransformError(
            f"{what}: got the float {v!r}; floats are never money (read DECIMAL columns as text or Decimal)"
        )
    raise TransformError(f"{what}: needs a decimal string, Decimal or int, got {_kind(v)}")


def _quantizer(scale: int | None, what: str) -> Callable[[Decimal], Decimal]:
    if scale is None:
        return lambda d: d
    q = Decimal(1).scaleb(-scale)

    def quantize(d: Decimal) -> Decimal:
        try:
            r = d.quantize(q)
        except InvalidOperation:
            raise TransformError(f"{what}: {d} is too large") from None
        if r != d:
            raise TransformError(f"{what}: {d} has more than {scale} decimal places (refusing to round)")
        return r

    return quantize


def _decimal_forward(p: dict, ctx: Any) -> Fn:
    quantize = _quantizer(p["scale"], "decimal")

    def fn(v, r, c):
        if v is None:
            return None
        return quantize(v if type(v) is Decimal else _exact_decimal(v, "decimal"))

    if p["scale"] is None:
        return _inline(fn)
    _native(fn, "decimal", Decimal, Decimal(1).scaleb(-p["scale"]))
    # text (the SQLite ODBC driver's DECIMAL): Decimal() strips blanks as _exact_decimal does; what it
    # refuses raises, quantize raises for infinities and sNaN, and NaN or an inexact value fails the
    # comparison: the closure then answers (or reports)
    return _inline(fn, "(_q if type({v}) is str and (_q := (_d := {D}({v})).quantize({Q})) == _d "
                       "else {F}({v}, None, None))", D=Decimal, Q=Decimal(1).scaleb(-p["scale"]))


def _decimal_inverse(p: dict, ctx: Any) -> InvFn:
    scale = p["scale"] if p["scale"] is not None else (ctx.info.scale if ctx.info is not None else None)
    quantize = _quantizer(scale, "decimal (write)")
    numeric = ctx.legacy_numeric

    def inv(v, out):
        if v is None:
            return None
        d = quantize(_exact_decimal(v, "decimal (write)"))
        return d if numeric else f"{d:f}"

    return inv


_register(TransformDef(
    "decimal", "A decimal number from text ('125.4'), Decimal or int, exactly (floats refused); "
    "`scale` quantizes and refuses inexact values. Write: text (SOAP/ODBC) or Decimal (copybook).",
    (ParamSpec("scale", (int,)),),
    _decimal_forward, _decimal_inverse, frozenset({"str", "int", "decimal"}), "decimal", primary="scale",
    example="{decimal: 2}",
))


def _implied_forward(p: dict, ctx: Any) -> Fn:
    scale = p["scale"]
    negate_scale = -scale

    def fn(v, r, c):
        if type(v) is str:
            s = v.strip()
            body = s[1:] if s[:1] in ("+", "-") else s
            if not body.isdigit() or not body.isascii():
                raise TransformError(f"implied_decimal: {v!r} is not a sign and digits like '+000000000012540'")
            return Decimal(s).scaleb(negate_scale)
        if v is None:
            return None
        if type(v) is int:
            return Decimal(v).scaleb(negate_scale)
        raise TransformError(f"implied_decimal needs a digit string, got {_kind(v)}")

    return _inline(fn)


def _implied_inverse(p: dict, ctx: Any) -> InvFn:
    scale, digits, signed = p["scale"], p["digits"], p["signed"]
    limit = 10 ** digits

    def inv(v, out):
        if v is None:
            return None
        d = _exact_decimal(v, "implied_decimal (write)")
        n = d.scaleb(scale)
        if n != n.to_integral_value():
            raise TransformError(f"implied_decimal (write): {d} has more than {scale} decimal places")
        i = int(n)
        if abs(i) >= limit:
            raise TransformError(f"implied_decimal (write): {d} does not fit in {digits} digits")
        if not signed:
            if i < 0:
                raise TransformError(f"implied_decimal (write): {d} is negative but the field is unsigned")
            return str(i).zfill(digits)
        return ("-" if i < 0 else "+") + str(abs(i)).zfill(digits)

    return inv


_register(TransformDef(
    "implied_decimal", "Digits with implied decimals: '+000000000012540' with scale 2 is 125.40; "
    "a leading sign is optional on read. Write: sign (unless `signed: false`) + `digits` digits.",
    (ParamSpec("scale", (int,), default=2), ParamSpec("digits", (int,), default=15),
     ParamSpec("signed", (bool,), default=True)),
    _implied_forward, _implied_inverse, frozenset({"str", "int"}), "decimal", primary="scale",
    example="{implied_decimal: {scale: 2, digits: 15}}",
))


def _as_int(v: Any, what: str) -> int:
    t = type(v)
    if t is int:
        return v
    if t is str:
        s = v.strip()
        if not s.isdigit() or not s.isascii():
            raise TransformError(f"{what}: {v!r} is not a whole number")
        return int(s)
    if t is Decimal:
        if v != v.to_integral_value():
            raise TransformError(f"{what}: {v} is not a whole number")
        return int(v)
    raise TransformError(f"{what}: needs digits, got {_kind(v)}")


def _integer_forward(p: dict, ctx: Any) -> Fn:
    as_text = p["as_text"]

    def fn(v, r, c):
        if v is None:
            return None
        i = v if type(v) is int else _as_int(v, "integer")
        return str(i) if as_text else i

    # ASCII digits with nothing around them are exactly what _as_int reads with int() (ODBC text)
    if as_text:
        return _inline(fn, "(str({v}) if type({v}) is int else {v} if type({v}) is str and {v}.isdigit() and "
                           "{v}.isascii() and ({v}[0] != '0' or len({v}) == 1) else {F}({v}, None, None))")
    _native(fn, "intdigits")
    return _inline(fn, "({v} if type({v}) is int else int({v}) if type({v}) is str and {v}.isdigit() and "
                       "{v}.isascii() else {F}({v}, None, None))")


def _integer_inverse(p: dict, ctx: Any) -> InvFn:
    digits = p["digits"] or ctx.width
    numeric = ctx.legacy_numeric

    def inv(v, out):
        if v is None:
            return None
        i = _as_int(v, "integer (write)")
        if numeric:
            return i
        s = str(i)
        if digits:
            if len(s) > digits:
                raise TransformError(f"integer (write): {i} has more than {digits} digits")
            s = s.zfill(digits)
        return s

    return inv


_register(TransformDef(
    "integer", "A whole number from digits ('000000381', 381, Decimal('381')); `as_text: true` gives "
    "its text ('381'). Write: zero-filled to `digits` (text fields) or int (numeric fields).",
    (ParamSpec("digits", (int,)), ParamSpec("as_text", (bool,), default=False)),
    _integer_forward, _integer_inverse, frozenset({"str", "int", "decimal"}), "int",
    example="{integer: {digits: 9}}",
))


# -- dates and times ---------------------------------------------------------------------------
_DATE_WIDTH = {"CYYMMDD": 7, "YYYYMMDD": 8, "YYMMDD": 6, "YYDDD": 5, "YYYYDDD": 7, "ISO": 10}
_TIME_WIDTH = {"HHMMSS": 6, "HHMM": 4, "HH:MM:SS": 8}


def _digit_text(v: Any, width: int, what: str) -> str | None:
    """A fixed-width digit string from text or a number; None for blank/zero ("no date")."""
    t = type(v)
    if t is str:
        s = v.strip()
        if not s:
            return None
        if not s.isdigit() or not s.isascii():
            raise TransformError(f"{what}: {v!r} is not digits")
        if len(s) < width:
            s = s.zfill(width)  # numeric columns drop leading zeros: 831028 is 0831028
    elif t is int or t is Decimal:
        i = _as_int(v, what)
        if i < 0:
            raise TransformError(f"{what}: {v} is negative")
        s = str(i).zfill(width)
    else:
        raise TransformError(f"{what}: needs digits, got {_kind(v)}")
    if len(s) != width:
        raise TransformError(f"{what}: {v!r} is not {width} digits")
    if s.count("0") == width:
        return None
    return s


def _year(yy: int, pivot: int) -> int:
    return 2000 + yy if yy < pivot else 1900 + yy


def _date_parser(fmt: str, pivot: int) -> Callable[[Any], dt.date | None]:
    width = _DATE_WIDTH[fmt]
    what = f"date {fmt}"
    cache: dict[Any, dt.date | None] = {}

    def build(s: str) -> dt.date:
        if fmt == "CYYMMDD":
            if s[0] not in "01":
                raise TransformError(f"{what}: century digit {s[0]!r} is not 0 (19xx) or 1 (20xx)")
            return dt.date(1900 + 100 * int(s[0]) + int(s[1:3]), int(s[3:5]), int(s[5:7]))
        if fmt == "YYYYMMDD":
            return dt.date(int(s[0:4]), int(s[4:6]), int(s[6:8]))
        if fmt == "YYMMDD":
            return dt.date(_year(int(s[0:2]), pivot), int(s[2:4]), int(s[4:6]))
        if fmt == "YYDDD":
            year, doy = _year(int(s[0:2]), pivot), s[2:5]
        else:  # YYYYDDD
            year, doy = int(s[0:4]), s[4:7]
        d = dt.date(year, 1, 1) + dt.timedelta(days=_doy(doy, what))
        if d.year != year:
            raise TransformError(f"{what}: day {doy} is out of range for {year}")
        return d

    def parse(v: Any) -> dt.date | None:
        try:
            return cache[v]
        except (KeyError, TypeError):
            pass
        if fmt == "ISO":
            if isinstance(v, str):
                s = v.strip()
                if not s:
                    return None
                try:
                    d = dt.date.fromisoformat(s)
                except ValueError:
                    raise TransformError(f"{what}: {v!r} is not YYYY-MM-DD") from None
            elif isinstance(v, dt.date):
                d = v
            else:
                raise TransformError(f"{what}: needs text, got {_kind(v)}")
        else:
            s = _digit_text(v, width, what)
            if s is None:
                d = None
            else:
                try:
                    d = build(s)
                except TransformError:
                    raise
                except (ValueError, OverflowError):
                    raise TransformError(f"{what}: {v!r} is not a valid date") from None
        if len(cache) > 4096:
            cache.clear()
        cache[v] = d
        return d

    parse.cache = cache  # type: ignore[attr-defined] - read by inline forms (a hit is the answer)
    return parse


def _doy(text: str, what: str) -> int:
    n = int(text)
    if not 1 <= n <= 366:
        raise TransformError(f"{what}: day of year {text} is out of range")
    return n - 1


def _date_formatter(fmt: str, pivot: int) -> Callable[[dt.date], str]:
    what = f"date {fmt} (write)"

    def fmt_date(d: dt.date) -> str:
        if fmt == "ISO":
            return d.isoformat()
        if fmt == "CYYMMDD":
            c = d.year // 100 - 19
            if c not in (0, 1):
                raise TransformError(f"{what}: {d} is outside 1900-2099")
            return f"{c}{d.year % 100:02d}{d.month:02d}{d.day:02d}"
        if fmt == "YYYYMMDD":
            return f"{d.year:04d}{d.month:02d}{d.day:02d}"
        if fmt in ("YYMMDD", "YYDDD"):
            if _year(d.year % 100, pivot) != d.year:
                raise TransformError(f"{what}: {d} is outside the pivot window of {pivot}")
            if fmt == "YYMMDD":
                return f"{d.year % 100:02d}{d.month:02d}{d.day:02d}"
            return f"{d.year % 100:02d}{d.timetuple().tm_yday:03d}"
        return f"{d.year:04d}{d.timetuple().tm_yday:03d}"  # YYYYDDD

    return fmt_date


_MISS = object()


def _date_forward(p: dict, ctx: Any) -> Fn:
    parse = _date_parser(p["format"], p["pivot"])

    def fn(v, r, c):
        if v is None:
            return None
        return parse(v)

    # the parser caches by input value (never None): a cache hit is the parsed date
    _native(fn, "lookup", parse.cache, parse)
    return _inline(fn, "(_t if (_t := {cache}.get({v}, {miss})) is not {miss} else {F}({v}, None, None))",
                   cache=parse.cache, miss=_MISS)


def _date_inverse(p: dict, ctx: Any) -> InvFn:
    fmt = p["format"]
    to_text = _date_formatter(fmt, p["pivot"])
    numeric = ctx.legacy_numeric and fmt != "ISO"
    zero = 0 if numeric else ("" if fmt == "ISO" else "0" * _DATE_WIDTH[fmt])

    def inv(v, out):
        if v is None:
            return zero if p["null_as_zero"] else None
        if isinstance(v, dt.datetime) or not isinstance(v, dt.date):
            raise TransformError(f"date (write) needs a date, got {_kind(v)}")
        s = to_text(v)
        return int(s) if numeric else s

    return inv


_DATE_PARAMS = (
    ParamSpec("format", (str,), default="CYYMMDD", choices=tuple(_DATE_WIDTH)),
    ParamSpec("pivot", (int,), default=50, doc="YY formats: YY < pivot is 20YY, else 19YY"),
    ParamSpec("null_as_zero", (bool,), default=True, doc="write: null becomes all zeros"),
)
_register(TransformDef(
    "date", "A date from digits or text: CYYMMDD (C=0 19xx, 1 20xx), YYYYMMDD, YYMMDD and YYDDD "
    "(Julian) with a pivot year, YYYYDDD, ISO. All zeros or blank is null. Numbers are zero-filled "
    "first (an ODBC 831028 is 0831028). Write: the same format (int for numeric fields).",
    _DATE_PARAMS, _date_forward, _date_inverse, frozenset({"str", "int", "decimal"}), "date",
    primary="format", example="{date: CYYMMDD}",
))


def _time_parser(fmt: str) -> Callable[[Any], dt.time | None]:
    width = _TIME_WIDTH[fmt]
    what = f"time {fmt}"

    def parse(v: Any) -> dt.time | None:
        if fmt == "HH:MM:SS":
            if not isinstance(v, str):
                raise TransformError(f"{what}: needs text, got {_kind(v)}")
            s = v.strip()
            if not s:
                return None
            try:
                return dt.time.fromisoformat(s)
            except ValueError:
                raise TransformError(f"{what}: {v!r} is not HH:MM:SS") from None
        if type(v) is int and 0 <= v < 240000:
            s = None
            hh, rest = divmod(v, 10000) if width == 6 else divmod(v * 100, 10000)
            mm, ss = divmod(rest, 100)
        else:
            if isinstance(v, str) and not v.strip():
                return None
            t = v if isinstance(v, (str, int, Decimal)) else None
            if t is None:
                raise TransformError(f"{what}: needs digits, got {_kind(v)}")
            s = _digit_text(v, width, what) or "0" * width  # 000000 is midnight, not null
            hh, mm = int(s[0:2]), int(s[2:4])
            ss = int(s[4:6]) if width == 6 else 0
        try:
            return dt.time(hh, mm, ss)
        except ValueError:
            raise TransformError(f"{what}: {v!r} is not a valid time") from None

    return parse


def _time_formatter(fmt: str) -> Callable[[dt.time], str]:
    if fmt == "HH:MM:SS":
        return lambda t: t.strftime("%H:%M:%S")
    if fmt == "HHMM":
        return lambda t: f"{t.hour:02d}{t.minute:02d}"
    return lambda t: f"{t.hour:02d}{t.minute:02d}{t.second:02d}"


def _time_forward(p: dict, ctx: Any) -> Fn:
    parse = _time_parser(p["format"])
    return _inline(lambda v, r, c: None if v is None else parse(v))


def _time_inverse(p: dict, ctx: Any) -> InvFn:
    fmt_time = _time_formatter(p["format"])
    numeric = ctx.legacy_numeric and p["format"] != "HH:MM:SS"

    def inv(v, out):
        if v is None:
            return None
        if not isinstance(v, dt.time):
            raise TransformError(f"time (write) needs a time, got {_kind(v)}")
        s = fmt_time(v)
        return int(s) if numeric else s

    return inv


_register(TransformDef(
    "time", "A time of day from HHMMSS / HHMM digits or HH:MM:SS text (000000 is midnight).",
    (ParamSpec("format", (str,), default="HHMMSS", choices=tuple(_TIME_WIDTH)),),
    _time_forward, _time_inverse, frozenset({"str", "int", "decimal"}), "time", primary="format",
    example="{time: HHMMSS}",
))


def resolve_tz(name: str) -> dt.tzinfo:
    if name.upper() in ("UTC", "Z"):
        return dt.UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParamError(f"unknown time zone {name!r}", param="tz",
                         hint="an IANA name like Europe/Berlin, or UTC") from None


def _hms(parse_time: Callable[[Any], dt.time | None], fmt: str) -> Callable[[Any], tuple[int, int, int] | None]:
    """Time of day as (h, m, s) ints; a fast path for HHMMSS numbers (copybook PIC 9(6))."""
    if fmt != "HHMMSS":
        def slow(v):
            t = parse_time(v)
            return None if t is None else (t.hour, t.minute, t.second)
        return slow

    def hms(v):
        if type(v) is int and 0 <= v < 240000:
            hh, rest = divmod(v, 10000)
            mm, ss = divmod(rest, 100)
            if mm < 60 and ss < 60:
                return hh, mm, ss
        t = parse_time(v)
        return None if t is None else (t.hour, t.minute, t.second)

    return hms


def _datetime_forward(p: dict, ctx: Any) -> Fn:
    parse_date = _date_parser(p["date"], p["pivot"])
    hms = _hms(_time_parser(p["time"]), p["time"])
    get_time = ctx.getter(p["time_field"])
    key = ctx.simple_key(p["time_field"])
    tz = resolve_tz(p["tz"])
    new = dt.datetime
    field = p["time_field"]

    def fn(v, r, c):
        if v is None:
            return None
        d = parse_date(v)
        if d is None:
            return None
        if key is not None:
            try:
                raw = r[key]
            except (KeyError, IndexError, TypeError):
                raw = None
        else:
            raw = get_time(r, c)
        t = hms(raw) if raw is not None else None
        if t is None:
            raise TransformError(f"datetime: the time field {field} is empty")
        return new(d.year, d.month, d.day, t[0], t[1], t[2], 0, tz)  # positional tzinfo: half the cost

    dates = parse_date.cache

    def of_values(v, raw):
        """fn given the time field's value (no record): the fast path's form."""
        d = dates.get(v, _MISS)
        if d is _MISS:
            if v is None:
                return None
            d = parse_date(v)
        if d is None:
            return None
        if fast_hms and type(raw) is str and raw.isdigit() and raw.isascii() and len(raw) <= 6:
            raw = int(raw)  # what _digit_text reads: the digits, zero-filled to HHMMSS (ODBC text)
        if type(raw) is int and 0 <= raw < 240000:
            hh, rest = divmod(raw, 10000)
            mm, ss = divmod(rest, 100)
            if mm < 60 and ss < 60 and fast_hms:
                return new(d.year, d.month, d.day, hh, mm, ss, 0, tz)
        t = hms(raw) if raw is not None else None
        if t is None:
            raise TransformError(f"datetime: the time field {field} is empty")
        return new(d.year, d.month, d.day, t[0], t[1], t[2], 0, tz)

    fast_hms = p["time"] == "HHMMSS"
    if fast_hms:
        _native(fn, "datetime", dates, tz, parse_date, fields=(p["time_field"],))
    # new(..., 0, tz): an aware datetime (UTC or a ZoneInfo, both always give an offset), or None
    return _returns(_inline(fn, "{of}({v}, {f0})", (p["time_field"],), of=of_values),
                    types=frozenset({dt.datetime, type(None)}), aware=True)


def _datetime_inverse(p: dict, ctx: Any) -> InvFn:
    to_date = _date_formatter(p["date"], p["pivot"])
    to_time = _time_formatter(p["time"])
    set_time = ctx.setter(p["time_field"])
    time_numeric = ctx.numeric(p["time_field"]) and p["time"] != "HH:MM:SS"
    date_numeric = ctx.legacy_numeric and p["date"] != "ISO"
    tz = resolve_tz(p["tz"])

    def inv(v, out):
        if v is None:
            return None
        if not isinstance(v, dt.datetime) or v.tzinfo is None:
            raise TransformError(f"datetime (write) needs a datetime with a time zone, got {v!r}")
        local = v.astimezone(tz)
        t = to_time(local.time())
        set_time(out, int(t) if time_numeric else t)
        s = to_date(local.date())
        return int(s) if date_numeric else s

    return inv


_register(TransformDef(
    "datetime", "A timestamp from a date field (the rule's `from`) and a time field (`time_field`), "
    "in the core's time zone `tz`. Write: converts to `tz`, writes the date and the time field.",
    (ParamSpec("time_field", (str,), required=True, field=True),
     ParamSpec("date", (str,), default="CYYMMDD", choices=tuple(_DATE_WIDTH)),
     ParamSpec("time", (str,), default="HHMMSS", choices=tuple(_TIME_WIDTH)),
     ParamSpec("tz", (str,), default="UTC"),
     ParamSpec("pivot", (int,), default=50)),
    _datetime_forward, _datetime_inverse, frozenset({"str", "int", "decimal"}), "datetime",
    example="{datetime: {time_field: POST-TM, tz: UTC}}",
))


# -- codes -------------------------------------------------------------------------------------
def _code_key(v: Any) -> Any:
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, Decimal)):
        return str(v)
    return v


def _code_table(p: dict, ctx: Any) -> dict[Any, Any]:
    mapping = p["map"]
    if not isinstance(mapping, dict) or not mapping:
        raise ParamError("code needs a non-empty `map` of legacy code -> canonical value", param="map")
    cond_field = p["conditions"]
    if not cond_field:
        return {_code_key(k): v for k, v in mapping.items()}
    path = ctx.source_text if cond_field is True else cond_field
    conditions = ctx.conditions(path)
    if conditions is None:
        raise ParamError(f"code: no 88-level condition names known for {path} (needs its copybook)",
                         param="conditions")
    table: dict[Any, Any] = {}
    for name, value in mapping.items():
        values = conditions.get(str(name).upper())
        if values is None:
            from .errors import did_you_mean

            raise ParamError(f"code: {path} has no 88-level condition {name!r}", param="map",
                             hint=did_you_mean(str(name), conditions) or f"known: {', '.join(conditions)}")
        for legacy in values:
            if not isinstance(legacy, (str, int, Decimal)):
                raise ParamError(f"code: condition {name} has a value ({legacy!r}) a code table cannot use",
                                 param="map")
            table[_code_key(legacy)] = value
    return table


def _code_forward(p: dict, ctx: Any) -> Fn:
    table = _code_table(p, ctx)
    has_other = "other" in p["_given"]
    other = p["other"]
    known = ", ".join(str(k) for k in table)

    def fn(v, r, c):
        if v is None:
            return None
        try:
            return table[v]
        except (KeyError, TypeError):
            pass
        key = _code_key(v)
        if key in table:
            return table[key]
        if has_other:
            return other
        raise TransformError(f"unknown code {v!r} (known: {known})")

    fn = _returns(fn, values=(*table.values(), *((other,) if has_other else ()), None))
    if None in table:  # fn(None) is None, a table hit would not be
        return _inline(fn)
    _native(fn, "lookup", table, None)
    return _inline(fn, "(_t if (_t := {table}.get({v}, {miss})) is not {miss} else {F}({v}, None, None))",
                   table=table, miss=_MISS)


def _code_inverse(p: dict, ctx: Any) -> InvFn:
    table = _code_table(p, ctx)
    reverse: dict[Any, Any] = {}
    if p["reverse"]:
        reverse = dict(p["reverse"])
    else:
        for legacy, canon in table.items():
            reverse.setdefault(canon, legacy)
    numeric = ctx.legacy_numeric

    def inv(v, out):
        if v is None:
            return None
        try:
            legacy = reverse[v]
        except (KeyError, TypeError):
            raise TransformError(f"code (write): no legacy code for {v!r}") from None
        if numeric and isinstance(legacy, str) and legacy.isdigit():
            return int(legacy)
        return legacy

    return inv


_register(TransformDef(
    "code", "Translate a code through a table: inline `map` (legacy -> canonical), or with "
    "`conditions` the map's keys are a copybook field's 88-level condition names. Unknown codes "
    "are an error unless `other` is given. Write: the reverse table (first legacy code wins, or "
    "`reverse`).",
    (ParamSpec("map", (dict,), required=True), ParamSpec("conditions", (str, bool), field=True),
     ParamSpec("other", (str, int, bool, type(None))), ParamSpec("reverse", (dict,))),
    _code_forward, _code_inverse, frozenset({"any"}), "any", primary="map",
    example="{code: {map: {A: open, C: closed}}}",
))


# -- signs and money ---------------------------------------------------------------------------
def _sign_forward(p: dict, ctx: Any) -> Fn:
    get = ctx.getter(p["field"])
    negative = frozenset(p["negative"])
    positive = frozenset(p["positive"])
    field = p["field"]

    def fn(v, r, c):
        if v is None:
            return None
        ind = get(r, c)
        if type(ind) is str:
            ind = ind.strip()
        if type(v) is not Decimal:
            v = _exact_decimal(v, "sign_from")
        if v < 0:
            raise TransformError(f"sign_from: {v} is already negative; the sign comes from {field}")
        if ind in negative:
            return -v
        if ind in positive:
            return v
        raise TransformError(f"sign_from: indicator {field}={ind!r} is neither "
                             f"{'/'.join(sorted(negative))} nor {'/'.join(sorted(positive))}")

    exact = all(type(x) is str and x == x.strip() for x in (*negative, *positive))

    def of_values(v, ind):
        """fn given the indicator's value (no record): the fast path's form; anything unusual raises."""
        if type(v) is Decimal and type(ind) is str and not v < 0:
            if exact:  # every listed indicator is stripped text: a hit is a hit after strip() too
                if ind in negative:
                    return -v
                if ind in positive:
                    return v
            ind = ind.strip()
            if ind in negative:
                return -v
            if ind in positive:
                return v
        if v is None:
            return None
        raise TransformError("sign_from: not the fast path's case")  # the closure gives the error

    if exact:  # a miss after the exact test is the closures' case (strip, or the error)
        _native(fn, "sign", negative, positive, fields=(p["field"],))
    return _inline(fn, "{of}({v}, {f0})", (p["field"],), of=of_values)


def _sign_inverse(p: dict, ctx: Any) -> InvFn:
    put = ctx.setter(p["field"])
    neg, pos = p["negative"][0], p["positive"][0]

    def inv(v, out):
        if v is None:
            return None
        d = _exact_decimal(v, "sign_from (write)")
        if d < 0:
            put(out, neg)
            return -d
        put(out, pos)
        return d

    return inv


_register(TransformDef(
    "sign_from", "Sign an unsigned amount from an indicator field: negative when `field` holds one of "
    "`negative` (default D), positive for `positive` (default C). Write: absolute value + indicator.",
    (ParamSpec("field", (str,), required=True, field=True),
     ParamSpec("negative", (list,), default=["D"]), ParamSpec("positive", (list,), default=["C"])),
    _sign_forward, _sign_inverse, frozenset({"decimal", "int"}), "decimal", primary="field",
    example="{sign_from: {field: DR-CR-IND, negative: [D], positive: [C]}}",
))


_MONEY_OR_NONE = frozenset({Money, type(None)})  # Money.of builds exactly a Money


def _money_forward(p: dict, ctx: Any) -> Fn:
    fixed = p["currency_code"]
    get = ctx.getter(p["currency"]) if p["currency"] else None
    if fixed is not None:
        try:
            normalize_amount(0, fixed)
        except InvalidMoney as exc:
            raise ParamError(str(exc), param="currency_code") from None
    of = Money.of
    key = ctx.simple_key(p["currency"]) if p["currency"] else None

    # inline: Money.of straight away (an InvalidMoney raised there makes the closure answer)
    if key is not None:
        def fn_key(v, r, c):
            if v is None:
                return None
            try:
                cur = r[key]
            except (KeyError, IndexError, TypeError):
                cur = None
            if type(cur) is str:
                cur = cur.strip()
            try:
                return of(v, cur)
            except InvalidMoney as exc:
                raise TransformError(f"money: {exc}") from None

        _native(fn_key, "money", of, None, fields=(p["currency"],))
        return _returns(_inline(fn_key, "(None if {v} is None else {of}({v}, {f0}.strip() if type({f0}) is str "
                                "else {f0}))", (p["currency"],), of=of), types=_MONEY_OR_NONE)

    def fn(v, r, c):
        if v is None:
            return None
        if get is None:
            cur = fixed
        else:
            cur = get(r, c)
            if type(cur) is str:
                cur = cur.strip()
        try:
            return of(v, cur)
        except InvalidMoney as exc:
            raise TransformError(f"money: {exc}") from None

    fn = _returns(fn, types=_MONEY_OR_NONE)
    if get is None:
        _native(fn, "money", of, fixed)
        return _inline(fn, "(None if {v} is None else {of}({v}, {cur}))", of=of, cur=fixed)
    return _inline(fn, "(None if {v} is None else {of}({v}, {f0}.strip() if type({f0}) is str else {f0}))",
                   (p["currency"],), of=of)


def _money_inverse(p: dict, ctx: Any) -> InvFn:
    fixed = p["currency_code"]
    put = ctx.setter(p["currency"]) if p["currency"] else None

    def inv(v, out):
        if v is None:
            return None
        if not isinstance(v, Money):
            raise TransformError(f"money (write) needs Money, got {_kind(v)}")
        if fixed is not None and v.currency != fixed:
            raise TransformError(f"money (write): {v.currency} amount for a {fixed}-only field")
        if put is not None:
            put(out, v.currency)
        return v.amount

    return inv


_register(TransformDef(
    "money", "Money from an amount and a currency (`currency`: the field holding the ISO code, or "
    "`currency_code`: a fixed code); the amount is quantized to the currency's minor units and "
    "refused when that is inexact (1500.50 JPY). Write: the amount, and the currency field.",
    (ParamSpec("currency", (str,), field=True), ParamSpec("currency_code", (str,))),
    _money_forward, _money_inverse, frozenset({"decimal", "int", "str"}), "money", primary="currency",
    example="{money: {currency: CURR-CD}}",
))


def validate_params(td: TransformDef, given: dict) -> dict:
    """Fill defaults and check types; raises ParamError naming the parameter."""
    out: dict[str, Any] = {"_given": frozenset(given)}
    for spec in td.params:
        if spec.name in given:
            value = given[spec.name]
            if value is None and type(None) in spec.types:
                out[spec.name] = None
                continue
            if not isinstance(value, spec.types) or (isinstance(value, bool) and bool not in spec.types):
                names = "/".join("null" if t is type(None) else {"str": "text", "dict": "mapping",
                                                                  "list": "list"}.get(t.__name__, t.__name__)
                                 for t in spec.types)
                raise ParamError(f"{td.name}.{spec.name} must be {names}, not {value!r}", param=spec.name)
            if spec.choices is not None and value not in spec.choices:
                from .errors import did_you_mean

                raise ParamError(f"{td.name}.{spec.name} must be one of {', '.join(map(str, spec.choices))},"
                                 f" not {value!r}", param=spec.name,
                                 hint=did_you_mean(str(value), [str(c) for c in spec.choices]))
            if isinstance(value, list) and spec.name in ("negative", "positive", "values") and not value:
                raise ParamError(f"{td.name}.{spec.name} must not be empty", param=spec.name)
            out[spec.name] = value
        elif spec.required:
            raise ParamError(f"{td.name} needs the parameter {spec.name!r}", param=spec.name)
        else:
            out[spec.name] = list(spec.default) if isinstance(spec.default, list) else spec.default
    unknown = set(given) - {s.name for s in td.params}
    if unknown:
        from .errors import did_you_mean

        name = sorted(unknown)[0]
        raise ParamError(f"{td.name} has no parameter {name!r}", param=name,
                         hint=did_you_mean(name, [s.name for s in td.params])
                         or f"parameters: {', '.join(s.name for s in td.params)}")
    if td.name == "money" and (out["currency"] is None) == (out["currency_code"] is None):
        raise ParamError("money needs exactly one of `currency` (a field) and `currency_code` (a fixed code)",
                         param="currency")
    return out
