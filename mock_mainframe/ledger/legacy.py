"""Legacy value formats of the core: CYYMMDD dates, HHMMSS times, padded CHAR, DECIMAL(15,2).

SQLite gives DECIMAL columns NUMERIC affinity, so '125.40' is stored as a REAL; every value
the core writes is < 10**13 and therefore round-trips exactly through ``repr``. All arithmetic
happens in ``Decimal`` in Python, never in SQL.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

CENT = Decimal("0.01")


def to_cyymmdd(d: dt.date | None) -> int:
    """2026-11-27 -> 1261127 (C=1 for the 2000s); None -> 0."""
    if d is None:
        return 0
    century = (d.year // 100) - 19
    if century not in (0, 1):
        raise ValueError(f"date {d} outside CYYMMDD range")
    return century * 1_000_000 + (d.year % 100) * 10_000 + d.month * 100 + d.day


def from_cyymmdd(v: int | str | float) -> dt.date | None:
    n = int(float(v)) if not isinstance(v, int) else v
    if n == 0:
        return None
    c, rest = divmod(n, 1_000_000)
    yy, mmdd = divmod(rest, 10_000)
    mm, dd = divmod(mmdd, 100)
    return dt.date(1900 + c * 100 + yy, mm, dd)


def to_hhmmss(t: dt.time) -> int:
    return t.hour * 10_000 + t.minute * 100 + t.second


def pad(value: str, width: int) -> str:
    """Fixed CHAR(n): right-padded with blanks; too long is an error, never silently cut."""
    if len(value) > width:
        raise ValueError(f"{value!r} longer than CHAR({width})")
    return value.ljust(width)


def money(value: object) -> Decimal:
    """A DECIMAL(15,2) read back from SQLite (float/int/str) or PostgreSQL (Decimal)."""
    if isinstance(value, Decimal):
        return value.quantize(CENT)
    if isinstance(value, float):
        return Decimal(repr(value)).quantize(CENT)
    return Decimal(str(value)).quantize(CENT)


def db_money(value: Decimal) -> str:
    """What we hand the DB driver for a DECIMAL(15,2): a string, never a float."""
    return str(value.quantize(CENT))
