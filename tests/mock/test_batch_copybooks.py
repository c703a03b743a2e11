"""The published copybooks: real mainframe source format, and field for field the same as the
layout tables the mock's writer and reader use (a tiny copybook parser lives here)."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from mock_mainframe.batch import layouts

NAMES = ("TXNHIST.cpy", "STMT.cpy", "PAYIN.cpy", "PAYACK.cpy")


def copybook(name: str) -> str:
    return resources.files("mock_mainframe").joinpath(f"copybooks/{name}").read_text()


def pic_length(pic: str, usage: str) -> int:
    expanded = re.sub(r"(.)\((\d+)\)", lambda m: m.group(1) * int(m.group(2)), pic.upper())
    chars = sum(1 for c in expanded if c in "X9")
    if usage == "COMP-3":
        return chars // 2 + 1
    if usage == "COMP":
        return 2 if chars <= 4 else 4 if chars <= 9 else 8
    return chars


def parse(text: str) -> dict[str, dict]:
    """{01-record: {"fields": [(name, offset, length)], "end": n, "occurs": {...} or None}}.

    Handles what these copybooks use: levels, PIC, COMP/COMP-3, REDEFINES, OCCURS DEPENDING
    (the items of an OCCURS group are listed with offsets relative to the group).
    """
    code = " ".join(line[7:72] for line in text.splitlines() if len(line) > 6 and line[6] != "*")
    records: dict[str, dict] = {}
    rec: dict = {}
    groups: list[tuple[int, int, dict | None]] = []  # open groups: (level, start, occurs)
    offset = 0

    def close_groups(level: int) -> None:
        while groups and groups[-1][0] >= level:
            _, start, occurs = groups.pop()
            if occurs is not None:
                occurs["length"] = offset - start

    for stmt in (s.strip() for s in code.split(".") if s.strip()):
        tokens = stmt.split()
        level, name = int(tokens[0]), tokens[1]
        if level == 88:
            continue
        close_groups(level)
        if level == 1:
            rec = records[name] = {"fields": [], "starts": {}, "occurs": None, "end": 0}
            offset = 0
            continue
        if "REDEFINES" in tokens:
            offset = rec["starts"][tokens[tokens.index("REDEFINES") + 1]]
        rec["starts"][name] = offset
        if "PIC" not in tokens:  # a group item
            occurs = None
            if "OCCURS" in tokens:
                occurs = rec["occurs"] = {"name": name, "start": offset, "fields": [],
                                          "max": int(tokens[tokens.index("TO") + 1]),
                                          "depending": tokens[tokens.index("ON") + 1]}
            groups.append((level, offset, occurs))
            continue
        pic = tokens[tokens.index("PIC") + 1]
        length = pic_length(pic, next((t for t in tokens if t.startswith("COMP")), "DISPLAY"))
        occurs = next((g[2] for g in groups if g[2] is not None), None)
        if occurs is not None:
            occurs["fields"].append((name, offset - occurs["start"], length))
        else:
            rec["fields"].append((name, offset, length))
        offset += length
        rec["end"] = max(rec["end"], offset)
    close_groups(0)
    return records


def python_fields(layout) -> list[tuple[str, int, int]]:
    return [(f.name, f.offset, f.length) for f in layout.fields]


@pytest.mark.parametrize("name", NAMES)
def test_copybook_is_in_mainframe_source_format(name):
    text = copybook(name)
    seqs = []
    for n, line in enumerate(text.splitlines(), 1):
        assert len(line) <= 72, f"{name}:{n} runs past column 72"
        assert re.fullmatch(r"\d{6}", line[:6]), f"{name}:{n} has no sequence number in columns 1-6"
        assert line[6:7] in (" ", "*", ""), f"{name}:{n} column 7 must be blank or '*'"
        if line[6:7] == " " and re.match(r"\s*01\s", line[7:]):
            assert line[7:9] == "01", f"{name}:{n} an 01 level starts in area A (column 8)"
        seqs.append(int(line[:6]))
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "sequence numbers must ascend"
    upper = text.upper()
    assert "CP037" in upper and "RECFM=" in upper and "LRECL=" in upper


@pytest.mark.parametrize("name", NAMES)
def test_copybook_fields_match_the_python_layouts(name):
    parsed = parse(copybook(name))
    declared = layouts.COPYBOOKS[name]
    if name == "STMT.cpy":
        rec = parsed["STMT-RECORD"]
        assert rec["fields"] == python_fields(layouts.STMT_FIXED)
        occ = rec["occurs"]
        assert occ["name"] == "STMT-LINE" and occ["max"] == layouts.STMT_MAX_LINES == 200
        assert occ["depending"] == "STMT-LINE-COUNT"
        assert occ["fields"] == python_fields(layouts.STMT_LINE)
        assert occ["length"] == layouts.STMT_LINE.length == 44
        return
    assert list(parsed) == [layout.name for layout in declared]
    for layout in declared:
        assert parsed[layout.name]["fields"] == python_fields(layout), layout.name
        assert parsed[layout.name]["end"] == layout.length


def test_record_lengths():
    for layout in (layouts.TXNHIST_HEADER, layouts.TXNHIST_DETAIL, layouts.TXNHIST_TRAILER):
        assert layout.length == 200
        # the non-overlapping fields tile the record exactly
        assert sum(f.length for f in layout.fields if f.variant in ("", "CNTR")) == 200
    detail = layouts.TXNHIST_DETAIL
    cntr = [f for f in detail.fields if f.variant == "CNTR"]
    card = [f for f in detail.fields if f.variant == "CARD"]
    assert (cntr[0].offset, sum(f.length for f in cntr)) == (card[0].offset, sum(f.length for f in card))
    assert (detail.field("TXD-TXN-AMT").offset, detail.field("TXD-TXN-AMT").length) == (39, 8)
    assert (detail.field("TXD-FEE-AMT").offset, detail.field("TXD-FEE-AMT").length) == (138, 9)
    for layout in (layouts.PAYIN_HEADER, layouts.PAYIN_DETAIL, layouts.PAYIN_TRAILER):
        assert layout.length == sum(f.length for f in layout.fields) == 120
    for layout in (layouts.PAYACK_HEADER, layouts.PAYACK_DETAIL, layouts.PAYACK_TRAILER):
        assert layout.length == sum(f.length for f in layout.fields) == 100
    assert layouts.STMT_FIXED.length == 40 and layouts.STMT_LINE.length == 44
    assert layouts.STMT_LRECL == 4 + 40 + 200 * 44 == 8844
    assert f"LRECL={layouts.STMT_LRECL}" in copybook("STMT.cpy")


def test_pictures_render_as_in_the_copybook():
    d = layouts.TXNHIST_DETAIL
    assert d.field("TXD-TXN-AMT").picture == "S9(13)V9(2) COMP-3"
    assert d.field("TXD-FEE-AMT").picture == "S9(7)V9(2)"
    assert layouts.STMT_FIXED.field("STMT-LINE-COUNT").picture == "S9(4) COMP"
