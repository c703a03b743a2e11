"""Record framing of mainframe files: fixed length (LRECL), RDW (variable), RDW inside BDW blocks.

The framers read a binary file object sequentially in constant memory and yield
:class:`RawRecord` objects, or a :class:`Reject` when the framing is broken:

* fixed length: a truncated last record is rejected (the reader then ends).
* RDW: 4 bytes, a big-endian 2-byte length *including* the RDW, then 2 zero bytes.  A length
  below 4, a length running past the end of the file (or of its block), or non-zero reserved
  bytes are rejected with ``fatal=True``: the position of the next record is unknown, so the
  framer stops.
* BDW: 4 bytes, a big-endian 2-byte block length including the BDW, then 2 zero bytes; or the
  extended form (first bit set) whose remaining 31 bits are the block length.  The block holds
  RDW records.

Record numbers are 1-based; offsets are 0-based file offsets of the first byte of the record
(its RDW for variable records).  :func:`rdw_frame` and :func:`bdw_block` build framed bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import CodecConfigError, FramingError, RecordDecodeError, RecordError, hex_bytes

__all__ = [
    "FRAMINGS",
    "RawRecord",
    "Reject",
    "bdw_block",
    "bdw_records",
    "fixed_records",
    "frame_records",
    "rdw_frame",
    "rdw_records",
]

FRAMINGS = ("fixed", "rdw", "bdw")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One framed record: its data (without RDW), number and position in the file."""

    record_no: int
    offset: int  # file offset of the record (of its RDW, for variable records)
    data: bytes
    data_offset: int  # file offset of data[0]


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that could not be framed or decoded; readers yield it instead of raising.

    ``offset`` is the file offset of the problem (the bad field, or the record start for
    framing problems), ``record_offset`` the same position within the record, ``field_path``
    the field (None for framing problems), ``data_hex`` the offending bytes in hex, ``record``
    the whole record's bytes when known (for quarantine), ``fatal`` whether the reader stopped.
    """

    record_no: int
    offset: int
    reason: str
    field_path: str | None = None
    data_hex: str = ""
    record_offset: int | None = None
    record: bytes | None = None
    layout: str | None = None
    fatal: bool = False
    kind: str = "framing"  # "framing" or "decode"

    def to_error(self) -> RecordError:
        """This reject as an exception (FramingError or RecordDecodeError), for strict callers."""
        kwargs = dict(
            record_no=self.record_no,
            file_offset=self.offset,
            record_offset=self.record_offset,
            field_path=self.field_path,
            data=bytes.fromhex(self.data_hex.replace(" ...", "")) if self.data_hex else None,
        )
        if self.kind == "framing":
            return FramingError(self.reason, fatal=self.fatal, **kwargs)
        return RecordDecodeError(self.reason, **kwargs)

    def __str__(self) -> str:
        where = f"record {self.record_no} at file offset {self.offset}"
        if self.field_path:
            where += f", {self.field_path}"
        text = f"{where}: {self.reason}"
        if self.data_hex:
            text += f" (bytes: {self.data_hex})"
        return text


def _read_exact(f: BinaryIO, n: int) -> bytes:
    """Up to *n* bytes (fewer only at the end of the file), even from raw unbuffered files."""
    data = f.read(n)
    if data is None:
        data = b""
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = f.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def fixed_records(f: BinaryIO, lrecl: int, *, start_offset: int = 0) -> Iterator[RawRecord | Reject]:
    """Fixed-length records of *lrecl* bytes."""
    if lrecl <= 0:
        raise CodecConfigError(f"LRECL must be positive, not {lrecl}")
    per_chunk = max(1, _CHUNK // lrecl)
    chunk_size = per_chunk * lrecl
    record_no = 0
    offset = start_offset
    while True:
        chunk = _read_exact(f, chunk_size)
        if not chunk:
            return
        n = len(chunk)
        full = n - n % lrecl
        for start in range(0, full, lrecl):
            record_no += 1
            yield RawRecord(record_no, offset + start, chunk[start : start + lrecl], offset + start)
        if full < n:
            record_no += 1
            rest = chunk[full:]
            yield Reject(
                record_no,
                offset + full,
                f"truncated last record: {len(rest)} bytes, LRECL is {lrecl}",
                data_hex=hex_bytes(rest),
                record=rest,
                record_offset=0,
            )
            return
        offset += n


def _rdw_stream(
    f: BinaryIO, offset: int, record_no: int, end: int | None
) -> Iterator[RawRecord | Reject | tuple[int, int]]:
    """RDW records from *offset* up to *end* (None: the end of the file, else the end of the
    block); finally yields ``(offset, record_no)`` unless it stopped on a fatal reject."""
    container = "file" if end is None else "block"

    def fatal(reason: str, data: bytes) -> Reject:
        return Reject(record_no, offset, reason, data_hex=hex_bytes(data), record_offset=0, fatal=True)

    while end is None or offset < end:
        want = 4 if end is None else min(4, end - offset)
        rdw = _read_exact(f, want)
        if not rdw:
            if end is None:
                break
            record_no += 1
            yield fatal("the file ends inside a block: the BDW length runs past the end of the file", rdw)
            return
        record_no += 1
        if len(rdw) < 4:
            if len(rdw) < want:
                yield fatal(f"truncated RDW at the end of the file: {len(rdw)} bytes", rdw)
            else:
                yield fatal(f"{len(rdw)} stray bytes at the end of the block, too short for an RDW", rdw)
            return
        length = int.from_bytes(rdw[:2], "big")
        if rdw[2:4] != b"\x00\x00":
            yield fatal(
                "RDW reserved bytes are not zero (a spanned VBS segment, or not an RDW at all); "
                "cannot find the next record",
                rdw,
            )
            return
        if length < 4:
            yield fatal(
                f"RDW length {length} is smaller than the RDW itself; cannot find the next record", rdw
            )
            return
        if end is not None and offset + length > end:
            yield fatal(
                f"RDW length {length} runs {offset + length - end} bytes past the end of its block; "
                "cannot find the next record",
                rdw,
            )
            return
        data = _read_exact(f, length - 4)
        if len(data) < length - 4:
            yield Reject(
                record_no,
                offset,
                f"RDW length {length} is longer than the rest of the {container} "
                f"({len(data) + 4} bytes left); cannot find the next record",
                data_hex=hex_bytes(rdw + data),
                record=data,
                record_offset=0,
                fatal=True,
            )
            return
        yield RawRecord(record_no, offset, data, offset + 4)
        offset += length
    yield (offset, record_no)


def rdw_records(f: BinaryIO, *, start_offset: int = 0) -> Iterator[RawRecord | Reject]:
    """Variable-length records, each preceded by an RDW."""
    for item in _rdw_stream(f, start_offset, 0, None):
        if isinstance(item, tuple):
            return
        yield item


def bdw_records(f: BinaryIO, *, start_offset: int = 0) -> Iterator[RawRecord | Reject]:
    """Blocks (BDW) of variable-length records (RDW)."""
    offset = start_offset
    record_no = 0
    while True:
        bdw = _read_exact(f, 4)
        if not bdw:
            return
        if len(bdw) < 4:
            yield Reject(
                record_no + 1,
                offset,
                f"truncated BDW at the end of the file: {len(bdw)} bytes",
                data_hex=hex_bytes(bdw),
                record=bdw,
                record_offset=0,
                fatal=True,
            )
            return
        if bdw[0] & 0x80:
            length = int.from_bytes(bdw, "big") & 0x7FFFFFFF  # extended BDW
        else:
            if bdw[2:4] != b"\x00\x00":
                yield Reject(
                    record_no + 1,
                    offset,
                    "BDW reserved bytes are not zero; cannot find the next block",
                    data_hex=hex_bytes(bdw),
                    record_offset=0,
                    fatal=True,
                )
                return
            length = int.from_bytes(bdw[:2], "big")
        if length < 4:
            yield Reject(
                record_no + 1,
                offset,
                f"BDW length {length} is smaller than the BDW itself; cannot find the next block",
                data_hex=hex_bytes(bdw),
                record_offset=0,
                fatal=True,
            )
            return
        block_end = offset + length
        for item in _rdw_stream(f, offset + 4, record_no, block_end):
            if isinstance(item, tuple):
                record_no = item[1]
                break
            yield item
            if isinstance(item, Reject):
                return
        offset = block_end


def frame_records(
    f: BinaryIO, framing: str = "fixed", *, lrecl: int | None = None, start_offset: int = 0
) -> Iterator[RawRecord | Reject]:
    """Dispatch to :func:`fixed_records` (needs *lrecl*), :func:`rdw_records` or :func:`bdw_records`."""
    if framing == "fixed":
        if lrecl is None:
            raise CodecConfigError("fixed-length framing needs lrecl")
        return fixed_records(f, lrecl, start_offset=start_offset)
    if framing == "rdw":
        return rdw_records(f, start_offset=start_offset)
    if framing == "bdw":
        return bdw_records(f, start_offset=start_offset)
    raise CodecConfigError(f"framing must be one of {FRAMINGS}, not {framing!r}")


def rdw_frame(data: bytes) -> bytes:
    """*data* with its RDW in front."""
    if len(data) + 4 > 0xFFFF:
        raise CodecConfigError(f"a record of {len(data)} bytes does not fit an RDW")
    return (len(data) + 4).to_bytes(2, "big") + b"\x00\x00" + data


def bdw_block(framed_records: list[bytes], *, extended: bool = False) -> bytes:
    """A block: BDW plus already RDW-framed records."""
    body = b"".join(framed_records)
    length = len(body) + 4
    if extended:
        return (length | 0x80000000).to_bytes(4, "big") + body
    if length > 0xFFFF:
        raise CodecConfigError(f"a block of {length} bytes needs an extended BDW")
    return length.to_bytes(2, "big") + b"\x00\x00" + body
