"""Read a mainframe data file record by record: framing + decoding, rejects instead of exceptions.

:func:`read_records` yields a :class:`Record` for every good record and a
:class:`~mappings.copybook.framing.Reject` for every bad one (bad framing or bad data), so batch
ingestion and the CLI can quarantine rejects and carry on.  Memory use is constant.

Files with several record layouts (header / detail / trailer) use a :class:`MultiLayoutCodec`,
which picks the 01 record per record, e.g. with :func:`by_record_type` on a type byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from .codecs import get_codepage
from .errors import CodecConfigError, RecordDecodeError, hex_bytes
from .framing import _CHUNK, RawRecord, Reject, _read_exact, frame_records
from .layout import Copybook
from .record import RecordCodec

__all__ = ["MultiLayoutCodec", "Record", "by_record_type", "read_records"]


class Record:
    """A decoded record: ``values`` is the dict, ``layout`` the 01 record name."""

    __slots__ = ("layout", "offset", "record_no", "values")

    def __init__(self, record_no: int, offset: int, layout: str, values: dict[str, Any]) -> None:
        self.record_no = record_no
        self.offset = offset
        self.layout = layout
        self.values = values

    def __repr__(self) -> str:
        head = f"Record(record_no={self.record_no}, offset={self.offset}, layout={self.layout!r}"
        return f"{head}, values={self.values!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.record_no, self.offset, self.layout, self.values) == (
            other.record_no,
            other.offset,
            other.layout,
            other.values,
        )

    __hash__ = None  # type: ignore[assignment]


def by_record_type(
    start: int,
    length: int,
    mapping: Mapping[str | bytes, str],
    *,
    codepage: str = "cp037",
    default: str | None = None,
) -> Callable[[bytes], str]:
    """A layout selector reading a record-type field at ``record[start:start + length]``.

    *mapping* maps the field's text (``"H"``; encoded with *codepage*) or raw bytes (``b"\\xc8"``)
    to a record name; unknown types select *default*, or are rejected when it is None.
    """
    cp = get_codepage(codepage)
    table: dict[bytes, str] = {}
    for key, name in mapping.items():
        raw = key if isinstance(key, bytes) else cp.encode_text(key)
        if len(raw) != length:
            raise CodecConfigError(f"record type {key!r} is not {length} bytes long")
        table[raw] = name.upper()
    end = start + length
    fallback = default.upper() if default is not None else None

    def select(record: bytes) -> str:
        key = record[start:end]
        name = table.get(key, fallback)
        if name is None:
            text = cp.decode_text(key) if len(key) == length else ""
            raise RecordDecodeError(
                f"unknown record type {text!r}; expected one of "
                + ", ".join(repr(k.decode(cp.name)) for k in table),
                record_offset=start,
                field_path="(record type)",
                data=key,
            )
        return name

    return select


class MultiLayoutCodec:
    """Several record codecs plus a selector choosing one per record (by record name)."""

    def __init__(self, codecs: Mapping[str, RecordCodec], selector: Callable[[bytes], str]) -> None:
        if not codecs:
            raise CodecConfigError("MultiLayoutCodec needs at least one record codec")
        self.codecs = {name.upper(): codec for name, codec in codecs.items()}
        self.selector = selector
        #: the longest layout (the LRECL of a fixed-length file holding all of them)
        self.size = max(c.size for c in self.codecs.values())

    @classmethod
    def from_copybook(
        cls, copybook: Copybook, selector: Callable[[bytes], str], **options: Any
    ) -> MultiLayoutCodec:
        return cls(
            {name: RecordCodec(layout, **options) for name, layout in copybook.records.items()}, selector
        )

    def decode(self, buf: bytes) -> tuple[str, dict[str, Any]]:
        name = self.selector(buf)
        codec = self.codecs.get(name.upper())
        if codec is None:
            raise CodecConfigError(
                f"the selector chose {name!r}, which is not one of {', '.join(self.codecs)}"
            )
        return codec.name, codec.decode(buf)


def _decode_reject(raw: RawRecord, exc: RecordDecodeError, layout: str | None) -> Reject:
    rel = exc.record_offset or 0
    return Reject(
        raw.record_no,
        raw.data_offset + rel,
        exc.reason,
        field_path=exc.field_path,
        data_hex=exc.data_hex,
        record_offset=exc.record_offset,
        record=raw.data,
        layout=layout,
        kind="decode",
    )


def read_records(
    f: BinaryIO,
    codec: RecordCodec | MultiLayoutCodec,
    *,
    framing: str = "fixed",
    lrecl: int | None = None,
    start_offset: int = 0,
    strict: bool = False,
) -> Iterator[Record | Reject]:
    """Yield a :class:`Record` or a :class:`Reject` for every record of a binary file object.

    *framing* is ``"fixed"`` (LRECL defaults to the codec's record length), ``"rdw"`` or ``"bdw"``.
    Never raises for bad data, unless *strict*: then the first reject is raised as a
    :class:`FramingError` or :class:`RecordDecodeError`.  Configuration errors (and exceptions
    raised by a user selector other than RecordDecodeError) always propagate.
    """
    items = _read_records(f, codec, framing, lrecl, start_offset)
    if not strict:
        return items
    return _strict(items)


def _strict(items: Iterator[Record | Reject]) -> Iterator[Record | Reject]:
    for item in items:
        if isinstance(item, Reject):
            raise item.to_error()
        yield item


def _read_records(
    f: BinaryIO,
    codec: RecordCodec | MultiLayoutCodec,
    framing: str,
    lrecl: int | None,
    start_offset: int,
) -> Iterator[Record | Reject]:
    multi = isinstance(codec, MultiLayoutCodec)
    if framing == "fixed":
        size = lrecl if lrecl is not None else codec.size
        if not multi and not codec.variable and size != codec.size and codec.trailing == "error":
            raise CodecConfigError(
                f"LRECL {size} differs from the length of {codec.name} ({codec.size}); "
                "pass trailing='ignore' to the codec if the records are padded"
            )
        if not multi:
            yield from _read_fixed_single(f, codec, size, start_offset)  # type: ignore[arg-type]
            return
        frames = frame_records(f, "fixed", lrecl=size, start_offset=start_offset)
    else:
        frames = frame_records(f, framing, start_offset=start_offset)
    for raw in frames:
        if isinstance(raw, Reject):
            yield raw
            continue
        name = None
        try:
            if multi:
                name, values = codec.decode(raw.data)  # type: ignore[misc]
            else:
                name = codec.name  # type: ignore[union-attr]
                values = codec.decode(raw.data)  # type: ignore[assignment]
        except RecordDecodeError as exc:
            yield _decode_reject(raw, exc, name)
            continue
        yield Record(raw.record_no, raw.offset, name, values)


def _read_fixed_single(f: BinaryIO, codec: RecordCodec, lrecl: int, offset: int) -> Iterator[Record | Reject]:
    """Fixed-length framing and one layout: the hot loop of big batch files."""
    if lrecl <= 0:
        raise CodecConfigError(f"LRECL must be positive, not {lrecl}")
    decode = codec.decode
    name = codec.name
    # records of exactly the layout's length go straight to the generated decoder
    fast = codec._fast if codec._fast is not None and not codec.variable and lrecl == codec.size else None
    chunk_size = max(1, _CHUNK // lrecl) * lrecl
    record_no = 0
    while True:
        chunk = _read_exact(f, chunk_size)
        if not chunk:
            return
        n = len(chunk)
        full = n - n % lrecl
        for start in range(0, full, lrecl):
            record_no += 1
            data = chunk[start : start + lrecl]
            values = None
            if fast is not None:
                try:
                    values = fast(data)
                except Exception:  # noqa: BLE001 - decode() below explains the failure
                    values = None
            if values is None:
                try:
                    values = decode(data)
                except RecordDecodeError as exc:
                    raw = RawRecord(record_no, offset + start, data, offset + start)
                    yield _decode_reject(raw, exc, name)
                    continue
            yield Record(record_no, offset + start, name, values)
        if full < n:
            rest = chunk[full:]
            yield Reject(
                record_no + 1,
                offset + full,
                f"truncated last record: {len(rest)} bytes, LRECL is {lrecl}",
                data_hex=hex_bytes(rest),
                record_offset=0,
                record=rest,
                layout=name,
            )
            return
        offset += n
