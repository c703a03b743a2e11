"""Layout listing for ``copybook show``: one row per item, positions 1-based like JRecord."""

from __future__ import annotations

from dataclasses import dataclass

from .layout import Field, Group, Item

__all__ = ["LayoutRow", "format_layout", "layout_rows"]

_TYPES = {
    "text": "alphanumeric",
    "zoned": "zoned decimal",
    "packed": "packed decimal",
    "binary": "binary",
    "binary-native": "native binary",
}


@dataclass(frozen=True, slots=True)
class LayoutRow:
    """One item of a record layout.

    ``offset`` and ``end`` are 1-based inclusive byte positions of the first occurrence, as
    JRecord shows them (``Item.offset`` is 0-based); with OCCURS DEPENDING ON, later items are
    placed as if every table were full.  ``length`` is the size of one occurrence.
    """

    level: int
    name: str
    path: str
    offset: int
    end: int
    length: int
    type: str
    usage: str
    pic: str
    scale: int
    signed: bool
    occurs: str
    redefines: str
    depth: int


def _row(item: Item, depth: int) -> LayoutRow:
    occurs = item.occurs.describe() if item.occurs else ""
    if isinstance(item, Field):
        kind = "alphabetic" if item.picture.category == "A" else _TYPES[item.kind]
        usage, pic, scale, signed = item.usage.value, item.pic, item.scale, item.signed
        if item.sign_separate:
            kind += f" (sign {'leading' if item.sign_leading else 'trailing'} separate)"
        elif item.sign_leading:
            kind += " (sign leading)"
    else:
        kind = "group"
        usage = item.usage.value if isinstance(item, Group) and item.usage else ""
        pic, scale, signed = "", 0, False
    return LayoutRow(
        level=item.level,
        name=item.name,
        path=item.path,
        offset=item.offset + 1,
        end=item.offset + item.length,
        length=item.length,
        type=kind,
        usage=usage,
        pic=pic,
        scale=scale,
        signed=signed,
        occurs=occurs,
        redefines=item.redefines or "",
        depth=depth,
    )


def layout_rows(record: Item, *, include_conditions: bool = False) -> list[LayoutRow]:
    """Rows for every item of *record* in copybook order (88-levels as extra rows if asked)."""
    rows: list[LayoutRow] = []

    def walk(item: Item, depth: int) -> None:
        rows.append(_row(item, depth))
        if include_conditions:
            for cond in item.conditions:
                values = " ".join(
                    repr(v.low) if v.high is None else f"{v.low!r} THRU {v.high!r}" for v in cond.values
                )
                rows.append(
                    LayoutRow(
                        88,
                        cond.name,
                        f"{item.path}.{cond.name}",
                        item.offset + 1,
                        item.offset + item.length,
                        item.length,
                        "condition",
                        "",
                        values,
                        0,
                        False,
                        "",
                        "",
                        depth + 1,
                    )
                )
        if isinstance(item, Group):
            for child in item.children:
                walk(child, depth + 1)

    walk(record, 0)
    return rows


def format_layout(record: Item) -> str:
    """A plain-text table of :func:`layout_rows` (for logs and quick looks)."""
    header = ("LVL", "NAME", "POS", "END", "LEN", "TYPE", "USAGE", "PIC", "OCCURS", "REDEFINES")
    body = [
        (
            f"{r.level:02d}",
            "  " * r.depth + r.name,
            str(r.offset),
            str(r.end),
            str(r.length),
            r.type,
            r.usage,
            r.pic,
            r.occurs,
            r.redefines,
        )
        for r in layout_rows(record)
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *body]
    ]
    return "\n".join(lines)
