"""PICTURE strings: ``X(10)``, ``A(3)``, ``S9(7)V99``, ``9(3)V9(2)`` ... -> :class:`Picture`."""

from __future__ import annotations

from .layout import Picture

__all__ = ["MAX_DIGITS", "PictureError", "parse_picture"]

#: Largest number of digits of a DISPLAY or COMP-3 item (IBM Enterprise COBOL, ARITH(EXTEND)).
MAX_DIGITS = 31

_EDITING = set("ZB0/,.+-*$E") | {"CR", "DB"}
_UNSUPPORTED = {
    "N": "national (UTF-16) PICTURE",
    "G": "DBCS PICTURE",
    "U": "UTF-8 PICTURE",
    "1": "boolean PICTURE",
}


class PictureError(Exception):
    """A bad PICTURE string; ``index`` is the 0-based position of the problem in the string."""

    def __init__(self, message: str, index: int = 0, *, unsupported: bool = False, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.index = index
        self.unsupported = unsupported
        self.hint = hint


def _symbols(text: str) -> list[tuple[str, int, int]]:
    """``S9(3)V99`` -> ``[("S", 1, 0), ("9", 3, 1), ("V", 1, 5), ("9", 1, 6), ("9", 1, 7)]``."""
    out: list[tuple[str, int, int]] = []
    i, n = 0, len(text)
    while i < n:
        start = i
        if text.startswith(("CR", "DB"), i):
            sym = text[i : i + 2]
            i += 2
        else:
            sym = text[i]
            i += 1
        if sym == "(":
            raise PictureError("a repeat count must follow a symbol", start)
        if sym == ")":
            raise PictureError("unbalanced ')'", start)
        count = 1
        if i < n and text[i] == "(":
            close = text.find(")", i)
            if close < 0:
                raise PictureError("missing ')' after the repeat count", i)
            digits = text[i + 1 : close].strip()
            if not digits.isdigit() or int(digits) == 0:
                raise PictureError(f"invalid repeat count ({text[i + 1 : close]})", i + 1)
            count = int(digits)
            i = close + 1
        out.append((sym, count, start))
    return out


def parse_picture(text: str) -> Picture:
    """Parse a PICTURE character string (without the PIC keyword).

    Raises :class:`PictureError` (``unsupported=True`` for P scaling, editing, national ...).
    """
    pic = text.upper()
    if not pic:
        raise PictureError("empty PICTURE string")
    symbols = _symbols(pic)
    for sym, _, idx in symbols:
        if sym in _UNSUPPORTED:
            raise PictureError(f"{_UNSUPPORTED[sym]} ({pic}) is not supported", idx, unsupported=True)
        if sym == "P":
            raise PictureError(
                f"decimal scaling position P in {pic} is not supported",
                idx,
                unsupported=True,
                hint="redefine the field without P and scale the value yourself",
            )
        if sym in _EDITING:
            raise PictureError(
                f"numeric-edited PICTURE {pic} is not supported",
                idx,
                unsupported=True,
                hint="describe the field as PIC X(n) and parse the edited text yourself",
            )
        if sym not in ("X", "A", "9", "S", "V"):
            raise PictureError(f"invalid character {sym!r} in PICTURE {pic}", idx)
    kinds = {sym for sym, _, _ in symbols}
    if kinds & {"X", "A"}:
        for sym, _, idx in symbols:
            if sym in ("S", "V"):
                raise PictureError(f"{sym} is only allowed in numeric PICTUREs, not in {pic}", idx)
        size = sum(count for _, count, _ in symbols)
        return Picture(pic, "A" if kinds == {"A"} else "X", size)
    signed = False
    digits = scale = 0
    seen_v = False
    for pos, (sym, count, idx) in enumerate(symbols):
        if sym == "S":
            if pos != 0 or count != 1:
                raise PictureError(f"S must appear once, as the first symbol of {pic}", idx)
            signed = True
        elif sym == "V":
            if seen_v or count != 1:
                raise PictureError(f"V may appear only once in {pic}", idx)
            seen_v = True
        else:
            digits += count
            if seen_v:
                scale += count
    if digits == 0:
        raise PictureError(f"numeric PICTURE {pic} has no digit positions (9)", 0)
    if digits > MAX_DIGITS:
        raise PictureError(f"{digits} digits in {pic}; at most {MAX_DIGITS} are allowed", 0)
    return Picture(pic, "9", digits, digits=digits, scale=scale, signed=signed)
