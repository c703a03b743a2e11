"""File framing (fixed, RDW, BDW), the record reader, rejects and multi-layout files."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from mappings.copybook import (
    CodecConfigError,
    FramingError,
    MultiLayoutCodec,
    RawRecord,
    Record,
    RecordCodec,
    RecordDecodeError,
    Reject,
    bdw_block,
    bdw_records,
    by_record_type,
    fixed_records,
    parse_copybook,
    rdw_frame,
    rdw_records,
    read_records,
)

H = bytes.fromhex

SIMPLE = "01 REC.\n  05 ID PIC 9(4).\n  05 AMT PIC S9(5)V99 COMP-3.\n  05 NAME PIC X(6).\n"


@pytest.fixture(scope="module")
def codec() -> RecordCodec:
    return RecordCodec(parse_copybook(SIMPLE).record(), codepage="cp037")


def rec(codec: RecordCodec, n: int) -> bytes:
    return codec.encode({"ID": n, "AMT": Decimal(n) / 100, "NAME": f"N{n}"})


class Trickle(io.RawIOBase):
    """A raw file that returns at most 3 bytes per read (like a pipe or a socket)."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self.data.read(min(3, len(b)))
        b[: len(chunk)] = chunk
        return len(chunk)


# -- fixed length -----------------------------------------------------------------------------------


def test_fixed_records_and_truncated_tail(codec):
    data = rec(codec, 1) + rec(codec, 2) + rec(codec, 3)[:5]
    items = list(fixed_records(io.BytesIO(data), codec.size))
    assert [type(i) for i in items] == [RawRecord, RawRecord, Reject]
    assert [i.offset for i in items] == [0, 14, 28]
    reject = items[2]
    assert (reject.record_no, reject.fatal, reject.kind) == (3, False, "framing")
    assert "truncated last record: 5 bytes, LRECL is 14" in reject.reason
    assert reject.data_hex == data[28:].hex(" ").upper()


def test_read_records_fixed_with_a_bad_record_in_the_middle(codec):
    bad = bytearray(rec(codec, 2))
    bad[4:8] = H("00001A2C")  # digit nibble A in AMT
    data = rec(codec, 1) + bytes(bad) + rec(codec, 3)
    items = list(read_records(io.BytesIO(data), codec))
    assert isinstance(items[0], Record) and isinstance(items[2], Record)
    assert items[0] == Record(1, 0, "REC", {"ID": 1, "AMT": Decimal("0.01"), "NAME": "N1"})
    assert items[2].values["ID"] == 3 and items[2].record_no == 3 and items[2].offset == 28
    reject = items[1]
    assert isinstance(reject, Reject)
    assert (reject.record_no, reject.kind, reject.layout) == (2, "decode", "REC")
    assert reject.field_path == "REC.AMT"
    assert reject.record_offset == 4 and reject.offset == 14 + 4
    assert reject.data_hex == "00 00 1A 2C"
    assert reject.record == bytes(bad)
    assert "record 2 at file offset 18, REC.AMT" in str(reject)


def test_many_fixed_records_across_read_chunks(codec):
    count = 80_000  # > 1 MiB: several read chunks
    data = b"".join(rec(codec, n % 10000) for n in range(count))
    items = read_records(Trickle(data[: 14 * 200]), codec)
    assert sum(isinstance(i, Record) for i in items) == 200
    n = 0
    for n, item in enumerate(read_records(io.BytesIO(data), codec), 1):
        assert isinstance(item, Record)
    assert n == count and item.offset == (count - 1) * 14


def test_fixed_lrecl_must_match_the_layout(codec):
    with pytest.raises(CodecConfigError, match="differs from the length"):
        list(read_records(io.BytesIO(b""), codec, lrecl=20))
    padded = RecordCodec(codec.layout, trailing="ignore")
    items = list(read_records(io.BytesIO(rec(codec, 1) + b"\x40" * 6), padded, lrecl=20))
    assert items[0].values["ID"] == 1


def test_fixed_file_with_odo_records_padded_to_lrecl():
    layout = parse_copybook("01 R.\n  05 N PIC 9.\n  05 T OCCURS 0 TO 3 DEPENDING ON N PIC X(2).\n").record()
    codec = RecordCodec(layout, trailing="ignore")
    assert codec.size == 7
    one = codec.encode({"T": ["ab"]}).ljust(7, b"\x40")
    three = codec.encode({"T": ["ab", "cd", "ef"]})
    items = list(read_records(io.BytesIO(one + three), codec))
    assert [i.values["T"] for i in items] == [["ab"], ["ab", "cd", "ef"]]


# -- RDW / BDW --------------------------------------------------------------------------------------------


def test_rdw_records(codec):
    data = rdw_frame(rec(codec, 1)) + rdw_frame(b"") + rdw_frame(rec(codec, 2))
    assert data[:4] == H("00120000")
    items = list(rdw_records(Trickle(data)))
    assert [(i.record_no, i.offset, i.data_offset, len(i.data)) for i in items] == [
        (1, 0, 4, 14),
        (2, 18, 22, 0),
        (3, 22, 26, 14),
    ]
    decoded = list(read_records(io.BytesIO(data), codec, framing="rdw"))
    assert isinstance(decoded[1], Reject) and "record too short" in decoded[1].reason
    assert decoded[2].values["ID"] == 2


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (H("00400000") + b"\x40" * 10, "RDW length 64 is longer than the rest of the file (32 bytes left)"),
        (H("00120100") + b"\x40" * 14, "RDW reserved bytes are not zero"),
        (H("00020000"), "RDW length 2 is smaller than the RDW itself"),
    ],
)
def test_bad_rdw_stops_the_reader(codec, tail, message):
    data = rdw_frame(rec(codec, 1)) + tail + rdw_frame(rec(codec, 2))
    items = list(read_records(io.BytesIO(data), codec, framing="rdw"))
    assert isinstance(items[0], Record)
    assert len(items) == 2
    reject = items[1]
    assert isinstance(reject, Reject) and reject.fatal
    assert (reject.record_no, reject.offset) == (2, 18)
    assert message in reject.reason
    assert reject.data_hex.startswith(tail[:2].hex(" ").upper())


def test_truncated_rdw_at_the_end(codec):
    items = list(rdw_records(io.BytesIO(rdw_frame(rec(codec, 1)) + H("0012"))))
    assert isinstance(items[1], Reject) and items[1].fatal
    assert "truncated RDW at the end of the file: 2 bytes" in items[1].reason


def test_bdw_blocks(codec):
    block1 = bdw_block([rdw_frame(rec(codec, 1)), rdw_frame(rec(codec, 2))])
    block2 = bdw_block([rdw_frame(rec(codec, 3))], extended=True)
    assert block1[:4] == H("00280000") and block2[:4] == H("80000016")
    items = list(read_records(io.BytesIO(block1 + block2), codec, framing="bdw"))
    assert [(i.record_no, i.offset, i.values["ID"]) for i in items] == [(1, 4, 1), (2, 22, 2), (3, 44, 3)]
    assert [r.record_no for r in bdw_records(Trickle(block1 + block2))] == [1, 2, 3]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bdw_block([rdw_frame(b"abc")])[:-1], "longer than the rest of the block"),
        (H("00100000") + rdw_frame(b"abcdefghij"), "runs 2 bytes past the end of its block"),
        (H("000A0000") + rdw_frame(b"a") + b"z", "1 stray bytes at the end of the block"),
        (H("00200000") + rdw_frame(b"abc"), "the file ends inside a block"),
        (H("00080001") + rdw_frame(b""), "BDW reserved bytes are not zero"),
        (H("00020000"), "BDW length 2 is smaller than the BDW"),
        (H("0008"), "truncated BDW"),
    ],
)
def test_bad_bdw(data, message):
    items = list(bdw_records(io.BytesIO(data)))
    reject = items[-1]
    assert isinstance(reject, Reject) and reject.fatal
    assert message in reject.reason


def test_strict_mode_raises(codec):
    data = rdw_frame(rec(codec, 1)) + H("00400000")
    it = read_records(io.BytesIO(data), codec, framing="rdw", strict=True)
    assert isinstance(next(it), Record)
    with pytest.raises(FramingError) as info:
        next(it)
    assert info.value.fatal and info.value.record_no == 2 and info.value.file_offset == 18
    bad = rec(codec, 1)[:4] + H("00000001") + rec(codec, 1)[8:]
    with pytest.raises(RecordDecodeError) as info2:
        list(read_records(io.BytesIO(bad), codec, strict=True))
    assert info2.value.field_path == "REC.AMT" and info2.value.file_offset == 4


def test_framing_options():
    with pytest.raises(CodecConfigError):
        list(fixed_records(io.BytesIO(b""), 0))
    with pytest.raises(CodecConfigError):
        list(read_records(io.BytesIO(b""), RecordCodec(parse_copybook(SIMPLE).record()), framing="vbs"))
    with pytest.raises(CodecConfigError):
        rdw_frame(b"x" * 70000)


# -- multi-layout files -----------------------------------------------------------------------------------

MULTI = """
       01 HEADER-REC.
          05 REC-TYPE PIC X.
          05 FILE-DATE PIC 9(8).
       01 DETAIL-REC.
          05 REC-TYPE PIC X.
          05 ACCOUNT PIC X(6).
          05 AMOUNT PIC S9(7)V99 COMP-3.
       01 TRAILER-REC.
          05 REC-TYPE PIC X.
          05 REC-COUNT PIC 9(9) COMP.
"""


def test_multi_layout_file_by_record_type():
    book = parse_copybook(MULTI)
    select = by_record_type(0, 1, {"H": "HEADER-REC", "D": "DETAIL-REC", b"\xe3": "trailer-rec"})
    multi = MultiLayoutCodec.from_copybook(book, select, codepage="cp037")
    header = multi.codecs["HEADER-REC"].encode({"REC-TYPE": "H", "FILE-DATE": 20240131})
    d1 = multi.codecs["DETAIL-REC"].encode({"REC-TYPE": "D", "ACCOUNT": "ACC1", "AMOUNT": Decimal("1.50")})
    unknown = b"\xe7" + d1[1:]  # 'X'
    trailer = multi.codecs["TRAILER-REC"].encode({"REC-TYPE": "T", "REC-COUNT": 1})
    data = b"".join(rdw_frame(r) for r in (header, d1, unknown, trailer))
    items = list(read_records(io.BytesIO(data), multi, framing="rdw"))
    assert [getattr(i, "layout", None) for i in items] == ["HEADER-REC", "DETAIL-REC", None, "TRAILER-REC"]
    assert items[1].values == {"REC-TYPE": "D", "ACCOUNT": "ACC1", "AMOUNT": Decimal("1.50")}
    reject = items[2]
    assert isinstance(reject, Reject) and not reject.fatal
    assert "unknown record type 'X'" in reject.reason and reject.field_path == "(record type)"
    assert reject.record_no == 3
    # fixed-length multi-layout file: LRECL is the longest layout, shorter ones padded
    codecs = {n: RecordCodec(book.record(n), trailing="ignore") for n in book.records}
    multi_fixed = MultiLayoutCodec(
        codecs, by_record_type(0, 1, {"H": "HEADER-REC", "D": "DETAIL-REC", "T": "TRAILER-REC"})
    )
    assert multi_fixed.size == 12
    fixed_data = b"".join(r.ljust(12, b"\x40") for r in (header, d1, trailer))
    assert [i.layout for i in read_records(io.BytesIO(fixed_data), multi_fixed)] == [
        "HEADER-REC",
        "DETAIL-REC",
        "TRAILER-REC",
    ]


def test_selector_default_and_validation():
    select = by_record_type(1, 2, {"AB": "X"}, default="Y", codepage="latin-1")
    assert select(b"_AB") == "X" and select(b"_ZZ") == "Y"
    with pytest.raises(CodecConfigError):
        by_record_type(0, 1, {"AB": "X"})
    multi = MultiLayoutCodec({"A": RecordCodec(parse_copybook(SIMPLE).record())}, lambda b: "NOPE")
    with pytest.raises(CodecConfigError, match="not one of"):
        multi.decode(b"x" * 14)
