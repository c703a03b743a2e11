"""Copybook parsing: source formats, every supported clause, and the syntax/layout errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mappings.copybook import (
    CopybookLayoutError,
    CopybookSyntaxError,
    Field,
    Figurative,
    Group,
    UnsupportedFeatureError,
    Usage,
    load_copybook,
    parse_copybook,
)
from mappings.copybook.lexer import detect_format

DATA = Path(__file__).parent / "data"


def fixed(*lines: str) -> str:
    """Fixed-format source: sequence numbers in columns 1-6, text from column 8."""
    out = []
    for n, line in enumerate(lines, 1):
        indicator = " "
        if line[:1] in ("*", "-", "/"):
            indicator, line = line[0], line[1:]
        out.append(f"{n * 10:06d}{indicator}{line}")
    return "\n".join(out) + "\n"


def record(text: str, name: str | None = None) -> Group:
    rec = parse_copybook(text).record(name)
    assert isinstance(rec, Group)
    return rec


def field(rec: Group, name: str) -> Field:
    item = rec.find(name)
    assert isinstance(item, Field)
    return item


# -- source formats ------------------------------------------------------------------------------


def test_example_copybook_in_fixed_format():
    book = load_copybook(DATA / "TXNREC.cpy")
    assert list(book.records) == ["TXN-RECORD"]
    rec = book.record()
    assert rec.total_length == 655
    assert field(rec, "TXN-MEMO").value == "CONTINUED LITERAL VALUE"  # '-' continuation of a literal
    assert field(rec, "TXN-FEE").usage is Usage.PACKED  # USAGE IS on the next line
    assert rec.find("TXN-LINES").occurs.depending_on == "TXN-LINE-COUNT"
    assert field(rec, "TXN-LINE-COUNT").odo_counter
    assert [c.name for c in field(rec, "TXN-TYPE").conditions] == ["TXN-IS-PAYMENT", "TXN-IS-REVERSAL"]
    assert book.warnings == []


def test_detect_format():
    assert detect_format(fixed("       01 A PIC X.")) == "fixed"
    assert detect_format("01 A PIC X.\n   05 B PIC X.\n") == "free"
    assert detect_format("      01 A PIC X.\n") == "free"  # column 7 holds '0': not an indicator
    assert detect_format("\n\n       01 A.\n       05 B PIC X.\n") == "fixed"


def test_columns_73_to_80_and_sequence_area_are_ignored():
    text = "000100 01  REC.".ljust(72) + "IGNORED1\n" + "000200     05  A  PIC X(3).".ljust(72) + "XXXXXXXX\n"
    rec = record(text)
    assert [c.name for c in rec.children] == ["A"]
    assert rec.total_length == 3


def test_program_text_after_column_72():
    text = ("000100 01  REC.".ljust(72) + "05 B PIC X.\n") + "000200     05  A  PIC X(3).\n"
    # auto-detection: COBOL text after column 72 means the file is not a card image
    with pytest.raises(CopybookSyntaxError, match="expected a level number, found '000100'"):
        parse_copybook(text)
    # forced fixed format: the text is ignored, with a warning
    book = parse_copybook(text, source_format="fixed")
    assert [c.name for c in book.record().children] == ["A"]
    assert [(w.line, w.column) for w in book.warnings] == [(1, 73)]
    assert "ignored" in str(book.warnings[0])


def test_comments_debug_lines_and_page_ejects():
    text = fixed(
        "* a comment line",
        "/ page eject comment",
        "D    05 DEBUG-ONLY PIC X.",
        "    01 REC.",
        "        05 A PIC X.  *> floating comment",
        "    EJECT",
        "        05 B PIC X.",
    )
    text = text.replace("000030 D", "000030D")
    assert [c.name for c in record(text).children] == ["A", "B"]


def test_free_format_and_short_lines():
    text = "01 REC.\n  05 A PIC X(2).\n* comment\n  05 B\n     PIC 9(3).\n"
    rec = record(text)
    assert [(c.name, c.length) for c in rec.children] == [("A", 2), ("B", 3)]


def test_word_continuation():
    text = fixed("    01 REC.", "        05 A PIC X(1", "-            0).")
    assert record(text).find("A").length == 10


def test_lower_case_is_accepted():
    rec = record("01 rec.\n  05 amount pic s9(3)v99 comp-3.\n")
    amount = field(rec, "AMOUNT")
    assert (amount.digits, amount.scale, amount.signed, amount.usage) == (5, 2, True, Usage.PACKED)


# -- levels and structure ------------------------------------------------------------------------


def test_multiple_01_records_are_returned_by_name():
    book = parse_copybook(
        """
       01 HEADER-REC.
          05 REC-TYPE PIC X.
          05 FILE-DATE PIC 9(8).
       01 DETAIL-REC.
          05 REC-TYPE PIC X.
          05 AMOUNT PIC S9(7)V99 COMP-3.
       01 TRAILER-REC.
          05 REC-TYPE PIC X.
          05 REC-COUNT PIC 9(9) COMP.
"""
    )
    assert list(book.records) == ["HEADER-REC", "DETAIL-REC", "TRAILER-REC"]
    assert book["DETAIL-REC"].total_length == 6
    assert book.record("trailer-rec").total_length == 5
    with pytest.raises(KeyError, match="HEADER-REC"):
        book.record("NOPE")


def test_items_without_01_are_wrapped_in_a_record():
    book = parse_copybook("   05 A PIC X.\n   05 B PIC 9.\n", default_record_name="MY-REC")
    assert list(book.records) == ["MY-REC"]
    assert [c.path for c in book.record().children] == ["MY-REC.A", "MY-REC.B"]


def test_level_77_is_a_record_of_its_own():
    book = parse_copybook("       77 COUNTER PIC S9(4) COMP.\n       01 REC.\n          05 A PIC X.\n")
    assert isinstance(book["COUNTER"], Field)
    assert book["COUNTER"].length == 2


def test_filler_and_unnamed_items():
    rec = record(
        "       01 REC.\n          05 FILLER PIC X(2).\n          05 PIC X(3).\n          05 A PIC X.\n"
    )
    assert [(c.name, c.offset, c.length) for c in rec.children] == [
        ("FILLER", 0, 2),
        ("FILLER", 2, 3),
        ("A", 5, 1),
    ]


def test_paths_offsets_and_odd_levels():
    rec = record(
        """
       01 REC.
          05 G1.
             10 A PIC X(2).
             10 G2.
                15 B PIC X(3).
             10 C PIC X.
          05 D PIC X(4).
"""
    )
    assert [(i.path, i.offset, i.length) for i in rec.iter_tree()] == [
        ("REC", 0, 10),
        ("REC.G1", 0, 6),
        ("REC.G1.A", 0, 2),
        ("REC.G1.G2", 2, 3),
        ("REC.G1.G2.B", 2, 3),
        ("REC.G1.C", 5, 1),
        ("REC.D", 6, 4),
    ]


def test_inconsistent_level_numbers_warn():
    book = parse_copybook("01 REC.\n  05 G.\n    10 A PIC X.\n  03 B PIC X.\n")
    rec = book.record()
    assert [c.name for c in rec.children] == ["G", "B"]
    assert len(book.warnings) == 1 and "03" in book.warnings[0].message


def test_level_66_renames_is_recorded():
    rec = record("01 REC.\n  05 A PIC X(2).\n  05 B PIC X(3).\n  05 C PIC X.\n  66 AB RENAMES A THRU B.\n")
    (ren,) = rec.renames
    assert (ren.name, ren.from_name, ren.thru_name, ren.offset, ren.length) == ("AB", "A", "B", 0, 5)


# -- PICTURE and USAGE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pic", "usage", "length", "digits", "scale", "signed"),
    [
        ("X(10)", "", 10, 0, 0, False),
        ("XXX", "", 3, 0, 0, False),
        ("A(4)", "", 4, 0, 0, False),
        ("S9(7)V99", "", 9, 9, 2, True),
        ("9(3)V9(2)", "", 5, 5, 2, False),
        ("S9(5)V99", "COMP-3", 4, 7, 2, True),
        ("S9(5)", "PACKED-DECIMAL", 3, 5, 0, True),
        ("9(4)", "COMP-3", 3, 4, 0, False),
        ("S9(1)", "COMP", 2, 1, 0, True),
        ("S9(4)", "COMP", 2, 4, 0, True),
        ("S9(5)", "COMP-4", 4, 5, 0, True),
        ("9(9)", "BINARY", 4, 9, 0, False),
        ("S9(10)", "COMPUTATIONAL", 8, 10, 0, True),
        ("S9(18)", "COMP-5", 8, 18, 0, True),
        ("S9(4)", "USAGE COMP", 2, 4, 0, True),
        ("S9(4)", "USAGE IS COMPUTATIONAL-3", 3, 4, 0, True),
        ("S9(3)", "DISPLAY", 3, 3, 0, True),
        ("S9(3)", "SIGN IS TRAILING SEPARATE CHARACTER", 4, 3, 0, True),
        ("S9(3)", "LEADING SEPARATE", 4, 3, 0, True),
    ],
)
def test_picture_usage_and_sizes(pic, usage, length, digits, scale, signed):
    f = field(record(f"01 REC.\n  05 F PIC {pic} {usage}.\n"), "F")
    assert (f.length, f.digits, f.scale, f.signed) == (length, digits, scale, signed)


def test_usage_kinds():
    rec = record(
        "01 REC.\n  05 A PIC S9(4) COMP.\n  05 B PIC S9(4) COMP-5.\n  05 C PIC S9(4) COMP-3.\n  05 D PIC 9.\n"
    )
    assert [field(rec, n).kind for n in "ABCD"] == ["binary", "binary-native", "packed", "zoned"]


def test_group_usage_and_sign_are_inherited():
    rec = record(
        "01 REC.\n  05 G COMP-3.\n    10 A PIC S9(3).\n    10 B PIC 9(5).\n"
        "  05 H SIGN LEADING SEPARATE.\n    10 C PIC S9(2).\n    10 D PIC 9(2).\n"
    )
    assert field(rec, "A").usage is Usage.PACKED and field(rec, "B").length == 3
    assert field(rec, "C").sign_separate and field(rec, "C").length == 3
    assert not field(rec, "D").sign_separate and field(rec, "D").length == 2


def test_sign_clauses():
    rec = record(
        "01 REC.\n  05 A PIC S9(3) SIGN LEADING.\n  05 B PIC S9(3) SIGN IS TRAILING.\n"
        "  05 C PIC S9(3) SIGN TRAILING SEPARATE.\n"
    )
    assert (field(rec, "A").sign_leading, field(rec, "A").sign_separate) == (True, False)
    assert (field(rec, "B").sign_leading, field(rec, "B").sign_separate) == (False, False)
    assert (field(rec, "C").sign_leading, field(rec, "C").sign_separate) == (False, True)


def test_other_clauses_accepted():
    book = parse_copybook(
        """
       01 REC.
          05 A PIC X(5) JUSTIFIED RIGHT VALUE SPACES.
          05 B PIC 9(5) BLANK WHEN ZERO VALUE ZERO.
          05 C PIC S9(4) COMP SYNC.
          05 D PIC S9(3)V99 VALUE -1.5.
          05 E PIC X(3) VALUE X'C1C2C3'.
          05 T OCCURS 3 TIMES ASCENDING KEY IS K INDEXED BY T-IX T-IX2.
             10 K PIC X.
          05 G GLOBAL.
             10 H PIC X VALUE ALL '*'.
"""
    )
    rec = book.record()
    assert field(rec, "A").justified and field(rec, "A").value is Figurative.SPACE
    assert field(rec, "B").blank_when_zero and field(rec, "B").value is Figurative.ZERO
    assert field(rec, "C").synchronized
    assert field(rec, "D").value == Decimal("-1.5")
    assert field(rec, "E").value == b"\xc1\xc2\xc3"
    assert field(rec, "H").value == ("ALL", "*")
    assert rec.find("T").occurs.max == 3
    assert [w.message.split()[0] for w in book.warnings] == ["SYNCHRONIZED"]
    assert rec.warnings == book.warnings


# -- 88-levels ---------------------------------------------------------------------------------------


def test_88_levels_values_thru_and_code_table():
    rec = record(
        """
       01 REC.
          05 STATUS-CODE PIC X.
             88 ACTIVE VALUE 'A'.
             88 CLOSED VALUES ARE 'C', 'X'.
             88 DORMANT VALUE IS 'D' 'E' 'F'.
          05 AMOUNT-BAND PIC 9(3).
             88 SMALL VALUE 0 THRU 99.
             88 LARGE VALUES 100 THROUGH 500 900 THRU 999.
             88 NOTHING VALUE ZERO.
          05 NAME PIC X(10).
             88 NO-NAME VALUE SPACES.
             88 ODD-NAME VALUE 'X' WHEN SET TO FALSE 'Y'.
"""
    )
    status = field(rec, "STATUS-CODE")
    assert status.code_table()["CLOSED"][1].low == "X"
    assert status.conditions_met("D") == ["DORMANT"]
    band = field(rec, "AMOUNT-BAND")
    assert band.conditions_met(50) == ["SMALL"]
    assert band.conditions_met(950) == ["LARGE"]
    assert band.conditions_met(0) == ["SMALL", "NOTHING"]
    assert band.conditions_met(600) == []
    assert field(rec, "NAME").conditions_met("") == ["NO-NAME"]


# -- REDEFINES and OCCURS ------------------------------------------------------------------------------


def test_redefines():
    rec = record(
        """
       01 REC.
          05 KIND PIC X.
          05 PAYLOAD PIC X(10).
          05 PAY-A REDEFINES PAYLOAD.
             10 A-AMT PIC S9(5)V99 COMP-3.
             10 A-TEXT PIC X(6).
          05 PAY-B REDEFINES PAYLOAD PIC 9(10).
          05 PAY-C REDEFINES PAY-B PIC X(12).
          05 AFTER PIC X.
"""
    )
    payload = rec.find("PAYLOAD")
    assert [m.name for m in payload.redefined_by] == ["PAY-A", "PAY-B", "PAY-C"]
    assert rec.find("PAY-C").redefined_item is payload  # a REDEFINES of a REDEFINES names the area
    assert all(rec.find(n).offset == 1 for n in ("PAY-A", "PAY-B", "PAY-C"))
    assert rec.find("AFTER").offset == 13  # the area takes the larger size
    assert rec.total_length == 14


def test_fixed_occurs_and_nested_odo():
    rec = record(
        """
       01 REC.
          05 N-ITEMS PIC 9(2).
          05 TOTALS OCCURS 3 TIMES PIC S9(5) COMP-3.
          05 ORDER-DATA.
             10 ITEMS OCCURS 1 TO 5 TIMES DEPENDING ON N-ITEMS.
                15 SKU PIC X(4).
                15 N-PARTS PIC 9.
                15 PARTS OCCURS 0 TO 3 DEPENDING ON N-PARTS OF ITEMS PIC X(2).
          05 TAIL PIC X.
"""
    )
    assert rec.find("TOTALS").total_length == 9
    items = rec.find("ITEMS")
    assert (items.occurs.min, items.occurs.max, items.length) == (1, 5, 11)
    assert items.variable and rec.variable and not rec.find("TOTALS").variable
    assert rec.find("TAIL").offset == 2 + 9 + 55
    assert field(rec, "N-PARTS").odo_counter


# -- errors ------------------------------------------------------------------------------------------


def error_of(text: str, cls=CopybookSyntaxError, filename: str = "T.cpy") -> CopybookSyntaxError:
    with pytest.raises(cls) as info:
        parse_copybook(text, filename=filename)
    return info.value


def test_syntax_error_has_file_line_column_and_hint():
    text = fixed("    01 REC.", "        05 A PIC X(3) FROB.")
    err = error_of(text)
    assert (err.filename, err.line, err.column) == ("T.cpy", 2, 30)
    assert "unknown clause 'FROB'" in str(err)
    assert err.hint and "PIC" in err.hint
    assert str(err).startswith("T.cpy:2:30: ")
    assert "^" in str(err)  # the source line with a caret


def test_missing_period_is_explained():
    err = error_of("01 REC.\n  05 A PIC X(3)\n  05 B PIC X.\n")
    assert err.line == 3 and "missing its closing period" in (err.hint or "")


@pytest.mark.parametrize(
    ("pic", "cls", "message"),
    [
        ("9(5)P", UnsupportedFeatureError, "scaling"),
        ("PPP99", UnsupportedFeatureError, "scaling"),
        ("ZZ9.99", UnsupportedFeatureError, "numeric-edited"),
        ("N(5)", UnsupportedFeatureError, "national"),
        ("X(0)", CopybookSyntaxError, "repeat count"),
        ("X(3", CopybookSyntaxError, "missing ')'"),
        ("S9V9V9", CopybookSyntaxError, "V may appear only once"),
        ("9S9", CopybookSyntaxError, "S must appear once"),
        ("SX(3)", CopybookSyntaxError, "only allowed in numeric"),
        ("Q9", CopybookSyntaxError, "invalid character"),
        ("9(32)", CopybookSyntaxError, "at most 31"),
    ],
)
def test_bad_pictures(pic, cls, message):
    err = error_of(f"01 REC.\n  05 A PIC {pic}.\n", cls)
    assert message in err.message
    assert err.line == 2 and err.column >= 12


@pytest.mark.parametrize(
    ("entry", "cls", "message"),
    [
        ("05 A COMP-1.", UnsupportedFeatureError, "COMP-1"),
        ("05 A PIC S9(4) COMP-2.", UnsupportedFeatureError, "COMP-2"),
        ("05 A PIC S9(4) USAGE IS INDEX.", UnsupportedFeatureError, "INDEX"),
        ("05 A PIC X(4) COMP-3.", CopybookSyntaxError, "needs a numeric PICTURE"),
        ("05 A PIC S9(19) COMP.", CopybookSyntaxError, "at most 18"),
        ("05 A PIC 9(3) SIGN LEADING.", CopybookSyntaxError, "has no S"),
        ("05 A PIC S9(3) COMP-3 SIGN LEADING SEPARATE.", CopybookSyntaxError, "USAGE DISPLAY"),
        ("05 A PIC 9(3) JUSTIFIED.", CopybookSyntaxError, "JUSTIFIED"),
        ("05 A.", CopybookSyntaxError, "no PICTURE"),
        ("05 A PIC X PIC X.", CopybookSyntaxError, "duplicate PICTURE"),
        ("05 A PIC X OCCURS 3 TO 5.", CopybookSyntaxError, "DEPENDING ON"),
        ("05 A PIC X OCCURS 0.", CopybookSyntaxError, "at least one"),
        ("05 A PIC X OCCURS 6 TO 5 DEPENDING ON X.", CopybookSyntaxError, "exceeds"),
        ("55 A PIC X.", CopybookSyntaxError, "invalid level number"),
        ("05 A PIC X VALUE 'OPEN.", CopybookSyntaxError, "literal not closed"),
        ("05 A PIC X. 88 C.", CopybookSyntaxError, "VALUE"),
        ("05 -A PIC X.", CopybookSyntaxError, "invalid data name"),
    ],
)
def test_bad_entries(entry, cls, message):
    err = error_of(f"01 REC.\n  {entry}\n", cls)
    assert message in err.message
    assert err.line == 2


def test_copy_statement_is_unsupported():
    err = error_of("01 REC.\n  COPY OTHER.\n", UnsupportedFeatureError)
    assert err.line == 2 and err.column == 3


def test_picture_on_a_group():
    err = error_of("01 REC.\n  05 G PIC X(4).\n    10 A PIC X(2).\n")
    assert err.line == 3 and "cannot have subordinate items" in err.message


def test_invalid_indicator_in_fixed_format():
    with pytest.raises(CopybookSyntaxError) as info:
        parse_copybook("000100 01 REC.\n000200X   05 A PIC X.\n", source_format="fixed")
    assert (info.value.line, info.value.column) == (2, 7)
    assert "indicator" in info.value.message


def test_continued_literal_must_resume_with_a_quote():
    text = fixed("    01 REC.", "        05 A PIC X(80) VALUE 'ABC".ljust(65), "-       DEF'.")
    with pytest.raises(CopybookSyntaxError, match="resume with a quote") as info:
        parse_copybook(text)
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  05 ITEMS OCCURS 0 TO 5 DEPENDING ON N PIC X.\n", "not defined"),
        ("  05 ITEMS OCCURS 0 TO 5 DEPENDING ON N PIC X.\n  05 N PIC 9.\n", "defined after"),
        ("  05 N PIC X.\n  05 ITEMS OCCURS 0 TO 5 DEPENDING ON N PIC X.\n", "integer numeric"),
        ("  05 N PIC 9V9.\n  05 ITEMS OCCURS 0 TO 5 DEPENDING ON N PIC X.\n", "integer numeric"),
        (
            "  05 G1.\n    10 N PIC 9.\n  05 G2.\n    10 N PIC 9.\n"
            "  05 ITEMS OCCURS 0 TO 5 DEPENDING ON N PIC X.\n",
            "ambiguous",
        ),
        (
            "  05 T OCCURS 2.\n    10 N PIC 9.\n  05 ITEMS OCCURS 0 TO 5 DEPENDING ON N PIC X.\n",
            "inside table",
        ),
        (
            "  05 N PIC 9.\n  05 A PIC X(5).\n  05 B REDEFINES A.\n"
            "    10 ITEMS OCCURS 0 TO 5 DEPENDING ON N PIC X.\n",
            "inside a REDEFINES",
        ),
    ],
)
def test_odo_errors(body, message):
    err = error_of("01 REC.\n" + body, CopybookLayoutError)
    assert message in err.message
    assert err.line >= 2 and err.column >= 1


def test_odo_counter_can_be_qualified():
    rec = record(
        "01 REC.\n  05 G1.\n    10 N PIC 9.\n  05 G2.\n    10 N PIC 9.\n"
        "  05 ITEMS OCCURS 0 TO 5 DEPENDING ON N OF G2 PIC X.\n"
    )
    assert field(rec, "REC.G2.N").odo_counter and not field(rec, "REC.G1.N").odo_counter


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  05 A PIC X.\n  05 B PIC X.\n  05 C REDEFINES A PIC X.\n", "not the item just before"),
        ("  05 C REDEFINES NOPE PIC X.\n", "not the item just before"),
        ("  05 A PIC X.\n  05 A PIC X.\n", "appears twice"),
        ("  05 FILLER.\n    10 A PIC X.\n  05 A PIC X.\n", "appears twice"),
        ("  05 FILLER OCCURS 2.\n    10 A PIC X.\n", "FILLER table"),
        ("  05 A PIC X.\n  66 R RENAMES NOPE.\n", "RENAMES"),
    ],
)
def test_layout_errors(body, message):
    err = error_of("01 REC.\n" + body, CopybookLayoutError)
    assert message in err.message


def test_duplicate_record_names():
    err = error_of("01 REC.\n  05 A PIC X.\n01 REC.\n  05 B PIC X.\n", CopybookLayoutError)
    assert err.line == 3


def test_empty_copybook():
    with pytest.raises(CopybookSyntaxError, match="no data items"):
        parse_copybook("      * only a comment\n")


def test_load_copybook_reports_the_path(tmp_path):
    path = tmp_path / "BAD.cpy"
    path.write_text("01 REC.\n  05 A PIC X(3) BOGUS.\n")
    with pytest.raises(CopybookSyntaxError) as info:
        load_copybook(path)
    assert info.value.filename == str(path) and info.value.line == 2
