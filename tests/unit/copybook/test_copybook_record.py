"""Record codec: decode/encode of whole records, ODO, REDEFINES, FILLER, errors, listing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mappings.copybook import (
    CodecConfigError,
    RecordCodec,
    RecordDecodeError,
    RecordEncodeError,
    compile_copybook,
    format_layout,
    layout_rows,
    load_copybook,
    parse_copybook,
)

DATA = Path(__file__).parent / "data"
H = bytes.fromhex


def make(text: str, name: str | None = None, **options) -> RecordCodec:
    return RecordCodec(parse_copybook(text).record(name), **options)


def both(codec: RecordCodec, data: bytes):
    """Decode with the generated fast path and with the checked interpreter; they must agree."""
    fast = codec.decode(data)
    assert codec.decode_checked(data) == fast
    if codec.has_fast_path:  # the generated code handles it by itself
        raw = codec._fast(data)
        assert (raw[0] if codec.variable else raw) == fast
    return fast


# -- the example copybook -----------------------------------------------------------------------------

TXN = {
    "TXN-HEADER": {
        "TXN-TYPE": "P",
        "TXN-ID": "A1B2C3",
        "TXN-BRANCH": 42,
        "TXN-POSTED": 20240131,
    },
    "TXN-AMOUNT": Decimal("-1234567.89"),
    "TXN-FEE": Decimal("0.50"),
    "TXN-RATE": Decimal("-1.2345"),
    "TXN-SEQ": 987654321,
    "TXN-STATUS": "OK",
    "TXN-MEMO": "rent march",
    "TXN-DETAIL": {
        "TXN-CURRENCY": "EUR",
        "TXN-LINES": [
            {"LINE-NO": 1, "LINE-AMT": Decimal("100.00"), "LINE-TEXT": "first"},
            {"LINE-NO": 2, "LINE-AMT": Decimal("-0.01"), "LINE-TEXT": "second"},
            {"LINE-NO": 3, "LINE-AMT": Decimal("9999999.99"), "LINE-TEXT": "third"},
        ],
    },
    "TXN-TRAILER-MARK": "END",
}


@pytest.fixture(scope="module")
def txn_codec() -> RecordCodec:
    return RecordCodec(load_copybook(DATA / "TXNREC.cpy").record(), codepage="cp037")


def test_example_record_round_trip(txn_codec):
    data = txn_codec.encode(TXN)  # TXN-LINE-COUNT is derived from the list
    assert len(data) == 25 + 7 + 4 + 8 + 4 + 2 + 30 + 2 + 3 + 3 * 28 + 4 + 6
    assert txn_codec.has_fast_path
    decoded = both(txn_codec, data)
    assert decoded["TXN-LINE-COUNT"] == 3
    # every REDEFINES view is decoded by default
    assert decoded["TXN-HEADER"]["TXN-POSTED-R"] == {
        "TXN-POSTED-YYYY": 2024,
        "TXN-POSTED-MM": 1,
        "TXN-POSTED-DD": 31,
    }
    assert "FILLER" not in decoded
    expected = {**TXN, "TXN-LINE-COUNT": 3}
    expected["TXN-HEADER"] = {**TXN["TXN-HEADER"], "TXN-POSTED-R": decoded["TXN-HEADER"]["TXN-POSTED-R"]}
    assert decoded == expected
    # the consistent views re-encode to the same bytes
    assert txn_codec.encode(decoded) == data


def test_example_record_bytes(txn_codec):
    data = txn_codec.encode(TXN)
    assert data[0:1] == H("D7")  # 'P'
    assert data[25:32] == H("0000123456789D")  # S9(11)V99 COMP-3
    assert data[32:36] == H("0000050C")
    assert data[36:44] == H("60F0F0F1F2F3F4F5")  # SIGN LEADING SEPARATE
    assert data[44:48] == (987654321).to_bytes(4, "big")
    assert data[80:82] == H("0003")  # derived ODO counter, COMP
    assert data[85:88] == H("F0F0F1")  # first LINE-NO
    assert data[-10:] == H("C5D5C440") + H("40") * 6  # 'END ' + FILLER spaces


def test_decode_error_carries_path_offset_and_bytes(txn_codec):
    data = bytearray(txn_codec.encode(TXN))
    second_amt = 85 + 28 + 3
    data[second_amt + 2] = 0xAB  # bad digit nibble in TXN-LINES[1].LINE-AMT
    with pytest.raises(RecordDecodeError) as info:
        txn_codec.decode(bytes(data))
    err = info.value
    assert err.field_path == "TXN-RECORD.TXN-DETAIL.TXN-LINES[1].LINE-AMT"
    assert err.record_offset == second_amt
    assert err.data_hex == "00 00 AB 00 1D"
    assert "invalid packed decimal" in err.reason
    assert "TXN-LINES[1].LINE-AMT" in str(err) and "00 00 AB 00 1D" in str(err)
    located = err.located(record_no=7, record_start=1000)
    assert (located.record_no, located.file_offset, located.field_path) == (
        7,
        1000 + second_amt,
        err.field_path,
    )
    assert str(located).startswith("record 7, file offset 1116, TXN-RECORD.TXN-DETAIL.TXN-LINES[1].LINE-AMT")


def test_odo_count_out_of_range(txn_codec):
    data = bytearray(txn_codec.encode(TXN))
    data[80:82] = (21).to_bytes(2, "big")
    with pytest.raises(RecordDecodeError, match=r"TXN-LINE-COUNT = 21 is outside 0 TO 20") as info:
        txn_codec.decode(bytes(data))
    assert info.value.field_path == "TXN-RECORD.TXN-DETAIL.TXN-LINES"
    assert info.value.record_offset == 80 and info.value.data == H("0015")


def test_truncated_and_overlong_records(txn_codec):
    data = txn_codec.encode(TXN)
    with pytest.raises(RecordDecodeError, match="record too short: the layout TXN-RECORD needs") as info:
        txn_codec.decode(data[:-3])  # the missing bytes are FILLER
    assert info.value.record_offset == len(data) - 3
    with pytest.raises(RecordDecodeError, match="record too short: the field needs bytes") as info:
        txn_codec.decode(data[:-8])
    assert info.value.field_path == "TXN-RECORD.TXN-TRAILER-MARK"
    with pytest.raises(RecordDecodeError, match="ends at byte") as info:
        txn_codec.decode(data + b"\x40\x40")
    assert info.value.record_offset == len(data)
    lenient = RecordCodec(txn_codec.layout, trailing="ignore")
    assert lenient.decode(data + b"\x40" * 10) == txn_codec.decode(data)


def test_memoryview_and_bytearray_input(txn_codec):
    data = txn_codec.encode(TXN)
    assert txn_codec.decode(memoryview(data)) == txn_codec.decode(bytearray(data)) == txn_codec.decode(data)


# -- OCCURS DEPENDING ON -----------------------------------------------------------------------------------

NESTED_ODO = """
       01 ORDER-REC.
          05 ORDER-ID PIC X(4).
          05 N-ITEMS PIC 9(2).
          05 ORDER-BODY.
             10 ITEMS OCCURS 0 TO 4 TIMES DEPENDING ON N-ITEMS.
                15 SKU PIC X(3).
                15 N-PARTS PIC S9(4) COMP.
                15 PARTS OCCURS 0 TO 3 DEPENDING ON N-PARTS PIC S9(3)V99 COMP-3.
                15 ITEM-FLAG PIC X.
             10 BODY-END PIC X(2).
          05 TOTAL PIC S9(7)V99 COMP-3.
"""


def test_nested_odo_with_fields_after_the_tables():
    codec = make(NESTED_ODO)
    assert codec.has_fast_path and codec.variable
    value = {
        "ORDER-ID": "O1",
        "ORDER-BODY": {
            "ITEMS": [
                {"SKU": "AAA", "PARTS": [Decimal("1.00"), Decimal("-2.50")], "ITEM-FLAG": "Y"},
                {"SKU": "BBB", "PARTS": [], "ITEM-FLAG": "N"},
                {"SKU": "CCC", "PARTS": [Decimal("3.33")] * 3, "ITEM-FLAG": "Y"},
            ],
            "BODY-END": "ZZ",
        },
        "TOTAL": Decimal("12.34"),
    }
    data = codec.encode(value)
    assert len(data) == 4 + 2 + (3 + 2 + 2 * 3 + 1) + (3 + 2 + 1) + (3 + 2 + 3 * 3 + 1) + 2 + 5
    decoded = both(codec, data)
    assert decoded["N-ITEMS"] == 3
    assert [item["N-PARTS"] for item in decoded["ORDER-BODY"]["ITEMS"]] == [2, 0, 3]
    assert decoded["TOTAL"] == Decimal("12.34")
    assert codec.encode(decoded) == data


def test_odo_counter_given_must_match_the_list():
    codec = make(NESTED_ODO)
    value = {"ORDER-ID": "O1", "N-ITEMS": 2, "ORDER-BODY": {"ITEMS": [], "BODY-END": ""}, "TOTAL": 0}
    with pytest.raises(RecordEncodeError, match="N-ITEMS = 2 but the table has 0 elements") as info:
        codec.encode(value)
    assert info.value.field_path == "ORDER-REC.ORDER-BODY.ITEMS"


def test_odo_table_too_long_on_encode():
    codec = make(NESTED_ODO)
    items = [{"SKU": "A", "PARTS": [], "ITEM-FLAG": "Y"}] * 5
    with pytest.raises(RecordEncodeError, match="5 elements given; OCCURS 0 TO 4"):
        codec.encode({"ORDER-ID": "O1", "ORDER-BODY": {"ITEMS": items, "BODY-END": ""}, "TOTAL": 0})


def test_missing_counter_without_table_is_an_error():
    codec = make("01 R.\n  05 N PIC 9.\n  05 T OCCURS 0 TO 3 DEPENDING ON N PIC X.\n")
    assert codec.encode({"T": ["a", "b"]}) == H("F2 8182".replace(" ", ""))
    with pytest.raises(RecordEncodeError, match="field T is missing"):
        codec.encode({"N": 1})
    assert codec.encode({}, fill_missing=True) == H("F0")


def test_odo_counter_null_is_reported():
    codec = make(
        "01 R.\n  05 N PIC 9(2).\n  05 T OCCURS 0 TO 3 DEPENDING ON N PIC X.\n",
        null_policy="null",
        trailing="ignore",
    )
    with pytest.raises(RecordDecodeError, match="N = None is outside"):
        codec.decode(H("4040C1"))


def test_odo_inside_fixed_table_elements():
    codec = make(
        """
       01 R.
          05 GROUPS OCCURS 2.
             10 N PIC 9.
             10 VALS OCCURS 1 TO 3 DEPENDING ON N PIC X(2).
          05 TAIL PIC X.
"""
    )
    value = {"GROUPS": [{"N": 1, "VALS": ["ab"]}, {"N": 3, "VALS": ["cd", "ef", "gh"]}], "TAIL": "Z"}
    data = codec.encode(value)
    assert len(data) == (1 + 2) + (1 + 6) + 1
    assert both(codec, data) == value


def test_counter_outside_a_table_whose_elements_hold_the_odo():
    codec = make(
        """
       01 R.
          05 N PIC 9.
          05 GROUPS OCCURS 2.
             10 TAG PIC X.
             10 VALS OCCURS 0 TO 3 DEPENDING ON N PIC S9(3) COMP-3.
          05 TAIL PIC X.
"""
    )
    assert codec.has_fast_path and "e" in codec.fast_source.split("(b, o")[1].split(")")[0]
    value = {"N": 2, "GROUPS": [{"TAG": "a", "VALS": [1, 2]}, {"TAG": "b", "VALS": [-3, 4]}], "TAIL": "z"}
    data = codec.encode(value)
    assert len(data) == 1 + 2 * (1 + 2 * 2) + 1
    assert both(codec, data) == value
    with pytest.raises(RecordEncodeError, match="different lengths"):
        codec.encode({"GROUPS": [{"TAG": "a", "VALS": [1]}, {"TAG": "b", "VALS": []}], "TAIL": "z"})


def test_variable_filler_table_falls_back_to_the_interpreter():
    codec = make("01 R.\n  05 N PIC 9.\n  05 FILLER OCCURS 0 TO 3 DEPENDING ON N PIC X(2).\n  05 A PIC X.\n")
    assert not codec.has_fast_path
    assert codec.decode(H("F2 40404040 C1".replace(" ", ""))) == {"N": 2, "A": "A"}


# -- REDEFINES -------------------------------------------------------------------------------------------

VIEWS = """
       01 MSG.
          05 MSG-TYPE PIC X.
          05 PAYLOAD PIC X(8).
          05 PAY-AMOUNT REDEFINES PAYLOAD.
             10 AMOUNT PIC S9(7)V99 COMP-3.
             10 CURRENCY PIC X(3).
          05 PAY-COUNT REDEFINES PAYLOAD.
             10 CNT PIC S9(4) COMP.
             10 FILLER PIC X(6).
          05 MSG-END PIC X.
"""


def test_all_views_decoded_by_default_and_errors_name_the_view():
    codec = make(VIEWS)
    text = codec.encode({"MSG-TYPE": "T", "PAYLOAD": "HELLO", "MSG-END": "."})
    with pytest.raises(RecordDecodeError) as info:
        codec.decode(text)
    assert info.value.field_path == "MSG.PAY-AMOUNT.AMOUNT"
    lenient = make(VIEWS, view_errors="null")
    decoded = lenient.decode(text)  # the fast path gives way to the interpreter for the failing view
    assert decoded == lenient.decode_checked(text)
    assert decoded == {
        "MSG-TYPE": "T",
        "PAYLOAD": "HELLO",
        "PAY-AMOUNT": None,
        "PAY-COUNT": {"CNT": int.from_bytes(H("C8C5"), "big", signed=True)},
        "MSG-END": ".",
    }


def test_static_view_choice():
    codec = make(VIEWS, redefines={"PAYLOAD": "PAY-AMOUNT"})
    data = codec.encode(
        {"MSG-TYPE": "A", "PAY-AMOUNT": {"AMOUNT": Decimal("-5.00"), "CURRENCY": "USD"}, "MSG-END": "."}
    )
    assert data[1:6] == H("000000500D")
    assert data[9:10] == H("4B")
    assert both(codec, data) == {
        "MSG-TYPE": "A",
        "PAY-AMOUNT": {"AMOUNT": Decimal("-5.00"), "CURRENCY": "USD"},
        "MSG-END": ".",
    }
    several = make(VIEWS, redefines={"MSG.PAYLOAD": ["PAYLOAD", "PAY-COUNT"]})
    assert set(several.decode(data)) == {"MSG-TYPE", "PAYLOAD", "PAY-COUNT", "MSG-END"}


def test_callback_view_choice():
    seen = []

    def choose(name, values):
        seen.append((name, dict(values)))
        return {"A": "PAY-AMOUNT", "C": "PAY-COUNT"}.get(values["MSG-TYPE"], "PAYLOAD")

    codec = make(VIEWS, redefines=choose)
    assert codec.has_fast_path
    amount = codec.encode({"MSG-TYPE": "A", "PAY-AMOUNT": {"AMOUNT": 7, "CURRENCY": "EUR"}, "MSG-END": "."})
    count = codec.encode({"MSG-TYPE": "C", "PAY-COUNT": {"CNT": -3}, "MSG-END": "."})
    other = codec.encode({"MSG-TYPE": "X", "PAYLOAD": "free tx", "MSG-END": "."})
    assert both(codec, amount)["PAY-AMOUNT"] == {"AMOUNT": Decimal("7.00"), "CURRENCY": "EUR"}
    assert both(codec, count) == {"MSG-TYPE": "C", "PAY-COUNT": {"CNT": -3}, "MSG-END": "."}
    assert both(codec, other) == {"MSG-TYPE": "X", "PAYLOAD": "free tx", "MSG-END": "."}
    assert seen[0] == ("PAYLOAD", {"MSG-TYPE": "A"})
    assert codec.encode(codec.decode(count)) == count


def test_callback_may_return_none_for_all_views():
    codec = make(VIEWS, redefines=lambda name, values: None, view_errors="null")
    data = codec.encode({"MSG-TYPE": "C", "PAY-COUNT": {"CNT": 1}, "MSG-END": "."})
    assert set(codec.decode(data)) == {"MSG-TYPE", "PAYLOAD", "PAY-AMOUNT", "PAY-COUNT", "MSG-END"}


def test_bad_view_choices():
    with pytest.raises(CodecConfigError, match="not part of a REDEFINES"):
        make(VIEWS, redefines={"MSG-END": "X"})
    with pytest.raises(CodecConfigError, match="not a view of"):
        make(VIEWS, redefines={"PAYLOAD": "NOPE"})
    codec = make(VIEWS, redefines=lambda name, values: "NOPE")
    with pytest.raises(CodecConfigError, match="not a view of"):
        codec.decode(b"\x40" * 10)


def test_encode_redefines_rules():
    codec = make(VIEWS)
    with pytest.raises(RecordEncodeError, match="none of the REDEFINES views"):
        codec.encode({"MSG-TYPE": "A", "MSG-END": "."})
    with pytest.raises(RecordEncodeError, match="disagree; give only one"):
        codec.encode({"MSG-TYPE": "A", "PAYLOAD": "ABC", "PAY-COUNT": {"CNT": 1}, "MSG-END": "."})
    # consistent views are accepted
    data = codec.encode(
        {"MSG-TYPE": "A", "PAY-COUNT": {"CNT": 4000}, "PAYLOAD": H("0FA0").decode("cp037"), "MSG-END": "."}
    )
    assert data[1:9] == H("0FA0") + H("40") * 6


def test_shorter_view_is_padded_with_spaces():
    codec = make("01 R.\n  05 A PIC X(4).\n  05 B REDEFINES A PIC S9(3) COMP-3.\n", redefines={"A": "B"})
    assert codec.encode({"B": -1}) == H("001D4040")
    assert codec.decode(H("001D4040")) == {"B": -1}


# -- FILLER and shapes ------------------------------------------------------------------------------------


def test_filler_groups_are_transparent():
    codec = make(
        """
       01 R.
          05 FILLER.
             10 A PIC X(2).
             10 FILLER PIC X(3).
             10 B PIC 9.
          05 FILLER PIC S9(3) COMP-3.
          05 C PIC X.
"""
    )
    data = codec.encode({"A": "xy", "B": 7, "C": "z"})
    assert data == H("A7A8 404040 F7 000C A9".replace(" ", ""))
    # FILLER bytes are not validated on decode
    junk = data[:2] + b"\x00\xff\x12" + data[5:6] + b"\xff\xff" + data[-1:]
    assert both(codec, junk) == {"A": "xy", "B": 7, "C": "z"}


def test_elementary_01_record():
    codec = make("01 WHOLE PIC X(5).\n")
    assert codec.decode(H("C1C2404040")) == {"WHOLE": "AB"}
    assert codec.encode({"WHOLE": "AB"}) == H("C1C2404040")


def test_multiple_records_compile():
    codecs = compile_copybook(
        parse_copybook("01 A.\n  05 X PIC X.\n01 B.\n  05 Y PIC 9(3) COMP-3.\n"), codepage="cp500"
    )
    assert {n: c.size for n, c in codecs.items()} == {"A": 1, "B": 2}
    assert codecs["B"].decode(H("123C")) == {"Y": 123}


def test_fixed_occurs_of_elementary_and_groups():
    codec = make(
        "01 R.\n  05 AMTS PIC S9(3) COMP-3 OCCURS 3.\n"
        "  05 PAIRS OCCURS 2.\n    10 K PIC X.\n    10 V PIC S9(4) COMP.\n"
    )
    value = {"AMTS": [1, -2, 3], "PAIRS": [{"K": "a", "V": 1}, {"K": "b", "V": -1}]}
    data = codec.encode(value)
    assert data == H("001C002D003C 810001 82FFFF".replace(" ", ""))
    assert both(codec, data) == value
    with pytest.raises(RecordEncodeError, match="OCCURS 3 needs exactly 3"):
        codec.encode({**value, "AMTS": [1]})
    with pytest.raises(RecordEncodeError, match="expected a list"):
        codec.encode({**value, "AMTS": 1})


def test_encode_errors_name_the_field():
    codec = make("01 R.\n  05 G.\n    10 A PIC 9(2).\n    10 B PIC X(2).\n")
    with pytest.raises(RecordEncodeError) as info:
        codec.encode({"G": {"A": 100, "B": "x"}})
    assert info.value.field_path == "R.G.A" and "does not fit" in info.value.reason
    with pytest.raises(RecordEncodeError, match="field B is missing"):
        codec.encode({"G": {"A": 1}})
    with pytest.raises(RecordEncodeError, match="unknown field"):
        codec.encode({"G": {"A": 1, "B": "", "C": 3}})
    with pytest.raises(RecordEncodeError, match="expected a dict"):
        codec.encode({"G": 5})
    assert codec.encode({"G": {}}, fill_missing=True) == H("F0F04040")


def test_null_fill_on_encode():
    codec = make(
        "01 R.\n  05 A PIC S9(3) COMP-3.\n  05 B PIC 9(2).\n", null_policy="null", null_fill="low-values"
    )
    data = codec.encode({"A": None, "B": None})
    assert data == H("00000000")
    assert codec.decode(data) == {"A": None, "B": None}
    with pytest.raises(RecordEncodeError, match="expected a number"):
        make("01 R.\n  05 A PIC S9(3) COMP-3.\n").encode({"A": None})


def test_option_validation():
    layout = parse_copybook("01 R.\n  05 A PIC X.\n").record()
    for option in ({"view_errors": "x"}, {"trailing": "x"}, {"null_fill": "x"}, {"codepage": "utf-8"}):
        with pytest.raises(CodecConfigError):
            RecordCodec(layout, **option)


def test_fast_and_interpreted_agree_without_the_generator(txn_codec):
    slow = RecordCodec(txn_codec.layout, fast=False)
    data = txn_codec.encode(TXN)
    assert not slow.has_fast_path
    assert slow.decode(data) == txn_codec.decode(data)


def test_generated_code_never_contains_field_names(txn_codec):
    source = txn_codec.fast_source
    assert source
    for item in txn_codec.layout.iter_tree():
        assert item.name not in source
    assert "'" not in source.replace("' '", "")  # no literals except the trim blank


# -- listing -----------------------------------------------------------------------------------------------


def test_layout_rows(txn_codec):
    rows = {r.name: r for r in layout_rows(txn_codec.layout)}
    amount = rows["TXN-AMOUNT"]
    assert (amount.offset, amount.end, amount.length) == (26, 32, 7)  # 1-based, like JRecord
    assert (amount.type, amount.usage, amount.pic, amount.scale, amount.signed) == (
        "packed decimal",
        "COMP-3",
        "S9(11)V99",
        2,
        True,
    )
    assert rows["TXN-LINES"].occurs == "0 TO 20 DEPENDING ON TXN-LINE-COUNT"
    assert rows["TXN-POSTED-R"].redefines == "TXN-POSTED"
    assert rows["TXN-RATE"].type == "zoned decimal (sign leading separate)"
    assert rows["TXN-RECORD"].depth == 0 and rows["LINE-AMT"].depth == 3
    with_88 = layout_rows(txn_codec.layout, include_conditions=True)
    assert [r.name for r in with_88 if r.level == 88][:2] == ["TXN-IS-PAYMENT", "TXN-IS-REVERSAL"]
    text = format_layout(txn_codec.layout)
    assert "TXN-AMOUNT" in text and "COMP-3" in text
