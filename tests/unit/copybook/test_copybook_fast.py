"""The codec's fast paths give exactly what the reference gives: ChooseBy views, projections,
memos of repeated field bytes, and the reader's fixed-length multi-layout loop."""

from __future__ import annotations

import io
import random
from decimal import Decimal
from pathlib import Path

import pytest

from mappings.copybook import (
    ChooseBy,
    CodecConfigError,
    MultiLayoutCodec,
    Record,
    RecordCodec,
    RecordDecodeError,
    Reject,
    by_record_type,
    frame_records,
    load_copybook,
    parse_copybook,
    read_records,
)
from mappings.copybook import record as record_module
from mappings.copybook.reader import _decode_reject

TXNHIST = Path(__file__).resolve().parents[3] / "mappings" / "copybooks" / "TXNHIST.cpy"
H = bytes.fromhex

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


def make(text: str, name: str | None = None, **options) -> RecordCodec:
    return RecordCodec(parse_copybook(text).record(name), **options)


def detail_codec(**options) -> RecordCodec:
    return RecordCodec(load_copybook(TXNHIST).record("TXNHIST-DETAIL"), **options)


def detail_values(rnd: random.Random, i: int) -> dict:
    code = rnd.choice(["SAL", "POS", "TFO", "FEE", "ATM"])
    amount = Decimal(rnd.randrange(-10**6, 10**6)).scaleb(-2)
    values = {
        "TXD-REC-TYPE": "D", "TXD-ACCT-NO": f"{110000000000 + i // 3:012d}", "TXD-TXN-SEQ": i,
        "TXD-POST-DATE": 1261127, "TXD-POST-TIME": rnd.randrange(240000) // 100 * 100,
        "TXD-VALUE-DATE": 1261127 + i % 2, "TXD-TXN-CODE": code, "TXD-DR-CR-IND": "D" if amount < 0 else "C",
        "TXD-TXN-AMT": amount, "TXD-RUN-BAL": Decimal(rnd.randrange(10**9)).scaleb(-2),
        "TXD-CURR-CODE": rnd.choice(["EUR", "USD"]), "TXD-DESC": f"DESC {i}", "TXD-REF": rnd.choice(["", "R1"]),
        "TXD-CHANNEL": "MOB", "TXD-STATUS": "P", "TXD-FEE-AMT": amount if code == "FEE" else Decimal("0.00"),
    }
    if code == "POS":
        values["TXD-CARD-INFO"] = {"TXD-CARD-MASKED": f"4110******{i % 10000:04d}", "TXD-CARD-MCC": 5411}
    else:
        values["TXD-CNTR-INFO"] = {"TXD-CNTR-ACCT": rnd.choice(["", "159000000016"]), "TXD-CNTR-BANK": ""}
    return values


def detail_records(n: int, seed: int = 3) -> list[bytes]:
    rnd = random.Random(seed)
    card = detail_codec(redefines={"TXD-CNTR-INFO": "TXD-CARD-INFO"})
    cntr = detail_codec(redefines={"TXD-CNTR-INFO": "TXD-CNTR-INFO"})
    out = []
    for i in range(n):
        v = detail_values(rnd, i)
        out.append((card if "TXD-CARD-INFO" in v else cntr).encode(v))
    return out


CHOOSE = {"TXD-CNTR-INFO": ChooseBy("TXD-TXN-CODE", {"POS": "TXD-CARD-INFO"}, default="TXD-CNTR-INFO")}


# -- ChooseBy ---------------------------------------------------------------------------------------

def test_choose_by_decides_what_the_equivalent_callback_decides():
    chooser = ChooseBy("MSG-TYPE", {"A": "PAY-AMOUNT", "C": "PAY-COUNT", "B": ["PAYLOAD", "PAY-COUNT"], "N": None},
                       default="PAYLOAD")
    inline = make(VIEWS, redefines={"PAYLOAD": chooser}, view_errors="null")
    callback = make(VIEWS, redefines=lambda name, values: chooser.choose(values), view_errors="null")
    assert inline.has_fast_path and "F = {}" not in inline.fast_source  # evaluated inline, no values dict
    amount = inline.encode({"MSG-TYPE": "A", "PAY-AMOUNT": {"AMOUNT": Decimal("-5.00"), "CURRENCY": "USD"},
                            "MSG-END": "."})
    for data in (amount, b"\xc3" + amount[1:], b"\xc2" + amount[1:], b"\xd5" + amount[1:], b"\xe7" + amount[1:],
                 b"\x40" + amount[1:]):
        assert inline.decode(data) == callback.decode(data) == inline.decode_checked(data)
        assert inline._fast(data) == inline.decode(data) or data[:1] == b"\xd5"  # N: every view, one fails
    assert set(inline.decode(amount)) == {"MSG-TYPE", "PAY-AMOUNT", "MSG-END"}
    assert set(inline.decode(b"\xc2" + amount[1:])) == {"MSG-TYPE", "PAYLOAD", "PAY-COUNT", "MSG-END"}


def test_choose_by_keys_are_stripped_text_and_numbers_as_text():
    text = """
       01 R.
          05 KIND PIC 9(2).
          05 AREA PIC X(4).
          05 NUM REDEFINES AREA PIC 9(4).
    """
    codec = make(text, redefines={"AREA": ChooseBy("KIND", {" 7 ": "NUM"}, default="AREA")})
    assert codec.decode(b"\xf0\xf7\xf1\xf2\xf3\xf4") == {"KIND": 7, "NUM": 1234}
    assert codec.decode(b"\xf0\xf8\xc1\xc2\xc3\xc4") == {"KIND": 8, "AREA": "ABCD"}
    assert ChooseBy.key(" A ") == "A" and ChooseBy.key(7) == "7" and ChooseBy.key(None) is None


def test_choose_by_that_cannot_be_inlined_still_decides_the_same():
    # the deciding field comes after the area: the generic (values so far) way, as a callback would
    text = """
       01 R.
          05 AREA PIC X(4).
          05 NUM REDEFINES AREA PIC 9(4).
          05 KIND PIC X.
    """
    codec = make(text, redefines={"AREA": ChooseBy("KIND", {"N": "NUM"}, default="AREA")})
    assert "F = {}" in codec.fast_source
    assert codec.decode(b"\xf1\xf2\xf3\xf4\xd5") == {"AREA": "1234", "KIND": "N"}  # KIND not decoded yet
    # a view name that does not exist fails per record, as with a callback
    bad = make(VIEWS, redefines={"PAYLOAD": ChooseBy("MSG-TYPE", {"A": "NOPE"}, default="PAYLOAD")})
    assert bad.decode(b"\xc2" + b"\x40" * 9)["MSG-TYPE"] == "B"
    with pytest.raises(CodecConfigError, match="not a view of"):
        bad.decode(b"\xc1" + b"\x40" * 9)


# -- projections ------------------------------------------------------------------------------------

PATHS = ["TXD-ACCT-NO", "TXD-TXN-SEQ", "TXD-POST-TIME", "TXD-TXN-AMT", "TXD-CURR-CODE", "TXD-DESC",
         ("TXD-CNTR-INFO", "TXD-CNTR-ACCT"), "TXD-CARD-INFO.TXD-CARD-MCC", "TXD-TXN-CODE", "NO-SUCH-FIELD"]


def at(values: dict, path) -> object:
    for key in path.split(".") if isinstance(path, str) else path:
        if not isinstance(values, dict) or key not in values:
            return None
        values = values[key]
    return values


def test_projection_gives_decode_values_at_the_paths():
    codec = detail_codec(redefines=CHOOSE)
    project = codec.projection(PATHS)
    assert project is not None
    seen_card = seen_cntr = False
    for data in detail_records(400):
        full = codec.decode(data)
        got = project(data)
        want = tuple(at(full, p) for p in PATHS)
        assert got == want and [type(g) for g in got] == [type(w) for w in want]
        seen_card |= "TXD-CARD-INFO" in full
        seen_cntr |= "TXD-CNTR-INFO" in full
    assert seen_card and seen_cntr


def test_projection_still_refuses_what_decode_refuses():
    codec = detail_codec(redefines=CHOOSE)
    project = codec.projection(["TXD-ACCT-NO"])
    data = detail_records(1)[0]
    bad_fee = data[:138] + H("F0F0F0F0F0F0F0F0FA") + data[147:]  # TXD-FEE-AMT, not projected
    with pytest.raises(RecordDecodeError, match="TXD-FEE-AMT"):
        codec.decode(bad_fee)
    with pytest.raises(Exception):  # noqa: B017 - any: the caller then asks decode
        project(bad_fee)
    assert project(data) == (codec.decode(data)["TXD-ACCT-NO"],)
    # text in a code page with undefined bytes is checked too
    ascii_codec = make("01 R.\n  05 A PIC X(2).\n  05 B PIC X(2).\n", codepage="ascii")
    with pytest.raises(RecordDecodeError):
        ascii_codec.decode(b"ab\xffc")
    with pytest.raises(Exception):  # noqa: B017
        ascii_codec.projection(["A"])(b"ab\xffc")


def test_projection_is_refused_where_it_cannot_be_exact():
    codec = detail_codec(redefines=CHOOSE)
    assert codec.projection(["TXD-CNTR-INFO"]) is None  # a group
    assert detail_codec(redefines=lambda name, values: None).projection(["TXD-ACCT-NO"]) is None
    table = make("01 R.\n  05 N PIC 9.\n  05 T OCCURS 2.\n    10 X PIC X.\n")
    assert table.projection(["T.X"]) is None
    odo = make("01 R.\n  05 N PIC 9.\n  05 T OCCURS 0 TO 3 DEPENDING ON N.\n    10 X PIC X.\n")
    assert odo.projection(["N"]) is None
    assert make(VIEWS, redefines={"PAYLOAD": "PAY-COUNT"}).projection(["MSG-END", "CNT", "PAY-COUNT.CNT"])(
        H("C1000740404040404040")[:9] + ".".encode("cp037")) == (".", None, 7)


# -- memos of repeated field bytes --------------------------------------------------------------------

def test_memos_give_the_same_values_and_stay_bounded(monkeypatch):
    monkeypatch.setattr(record_module, "MEMO_SIZE", 8)
    codec = detail_codec(redefines=CHOOSE)
    reference = detail_codec(redefines=CHOOSE, fast=False)
    records = detail_records(600)
    for _ in range(2):
        for data in records:
            assert codec.decode(data) == reference.decode(data)
    ns = codec._fast.__globals__
    memos = {k: v for k, v in ns.items() if k.startswith("_M") and k[2:].isdigit()}
    assert memos and all(len(m) <= 8 for m in memos.values())
    flags = {k[3:]: v for k, v in ns.items() if k.startswith("_on")}
    assert any(flags.values()) and not all(flags.values())  # repeated fields keep theirs, the others stop


def test_memo_values_from_the_null_policy_are_not_confused_with_misses():
    codec = make("01 R.\n  05 A PIC S9(3)V99 COMP-3.\n  05 B PIC X.\n", null_policy="null")
    low = b"\x00\x00\x00" + "B".encode("cp037")
    assert codec.decode(low) == {"A": None, "B": "B"} == codec.decode(low) == codec.decode_checked(low)
    assert codec.decode(H("12345C") + b"\xc1") == {"A": Decimal("123.45"), "B": "A"}


# -- the reader's fixed-length, several-layout loop -----------------------------------------------------

def reference_read(f, codec: MultiLayoutCodec, lrecl: int, start_offset: int = 0):
    """What read_records did before its fast loop: frame, then MultiLayoutCodec.decode."""
    for raw in frame_records(f, "fixed", lrecl=lrecl, start_offset=start_offset):
        if isinstance(raw, Reject):
            yield raw
            continue
        try:
            name, values = codec.decode(raw.data)
        except RecordDecodeError as exc:
            yield _decode_reject(raw, exc, None)
            continue
        yield Record(raw.record_no, raw.offset, name, values)


@pytest.mark.parametrize("selector_kind", ["by_record_type", "callable", "default"])
def test_multi_layout_loop_yields_what_framing_plus_decode_yields(selector_kind):
    book = load_copybook(TXNHIST)
    detail = detail_codec(redefines=CHOOSE)
    codecs = {"TXNHIST-HEADER": RecordCodec(book.record("TXNHIST-HEADER")), "TXNHIST-DETAIL": detail,
              "TXNHIST-TRAILER": RecordCodec(book.record("TXNHIST-TRAILER"))}
    types = {"H": "TXNHIST-HEADER", "D": "TXNHIST-DETAIL", "T": "TXNHIST-TRAILER"}
    if selector_kind == "by_record_type":
        selector = by_record_type(0, 1, types)
    elif selector_kind == "default":
        selector = by_record_type(0, 1, {"H": "TXNHIST-HEADER", "T": "TXNHIST-TRAILER"}, default="TXNHIST-DETAIL")
    else:
        typed = by_record_type(0, 1, types)
        selector = lambda record: typed(record)  # noqa: E731 - not a by_record_type selector
    multi = MultiLayoutCodec(codecs, selector)
    header = codecs["TXNHIST-HEADER"].encode({}, fill_missing=True)
    header = "H".encode("cp037") + header[1:]
    details = detail_records(30)
    bad = details[5][:13] + H("0000000A5F") + details[5][18:]  # TXD-TXN-SEQ: a bad digit nibble
    unknown = "X".encode("cp037") + details[6][1:]
    data = header + b"".join(details[:5]) + bad + unknown + b"".join(details[7:]) + b"\x40" * 17
    for start_offset in (0, 1000):
        got = list(read_records(io.BytesIO(data), multi, lrecl=200, start_offset=start_offset))
        want = list(reference_read(io.BytesIO(data), multi, 200, start_offset))
        assert got == want
    kinds = [type(x).__name__ if isinstance(x, Reject) else x.layout for x in got]
    details_read = 29 if selector_kind == "default" else 28  # by default, the X record is a detail
    assert kinds[0] == "TXNHIST-HEADER" and kinds[-1] == "Reject" and kinds.count("TXNHIST-DETAIL") == details_read
    rejects = [x for x in got if isinstance(x, Reject)]
    assert rejects[0].kind == "decode" and rejects[0].field_path.endswith("TXD-TXN-SEQ")
    if selector_kind != "default":
        assert "unknown record type 'X'" in rejects[1].reason
    assert rejects[-1].reason.startswith("truncated last record")


def test_a_codec_error_subclass_can_name_its_reject_kind():
    class Refused(RecordDecodeError):
        reject_kind = "mapping"

    class Picky:
        name, size, variable, trailing = "R", 2, False, "error"

        def decode(self, buf):
            if buf == b"no":
                raise Refused("not this one", record_offset=0, field_path="R.F", data=buf)
            return {"F": buf}

    got = list(read_records(io.BytesIO(b"okno"), Picky(), lrecl=2))
    assert isinstance(got[0], Record) and got[0].values == {"F": b"ok"}
    assert isinstance(got[1], Reject) and got[1].kind == "mapping" and got[1].reason == "not this one"
    assert got[1].record == b"no" and got[1].offset == 2
