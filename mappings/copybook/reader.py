"""Read a mainframe data file record by record: framing + decoding, rejects instead of exceptions.

:func:`read_records` yields a :class:`Record` for every good record and a
:class:`~mappings.copybook.framing.Reject` for every bad one (bad framing or bad data), so batch
ingestion and the CLI can quarantine rejects and carry on.  Memory use is constant.

Files with several record layouts (header / detail / trailer) use a :class:`MultiLayoutCodec`,
which picks the 01 record per record, e.g. with :func:`by_record_type` on a type byte.

Fast path: fixed-length files are read in 1 MiB chunks and each record is decoded in place by the
codec's generated decoder (``codec._fast(chunk, offset)``: a RecordCodec's, or the fused one of a
mapping's ``record_codec()``), without a RawRecord or a slice per record; with a
:func:`by_record_type` selector the type byte is looked up inline.  Any failure there sends the
record through ``codec.decode``, which gives the value or the RecordDecodeError for the reject,
so the items yielded are exactly those of framing + decoding.  A codec may raise a
RecordDecodeError subclass with ``reject_kind`` (``"mapping"`` for a mapping's refusal): the
reject then has that kind.
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
    return _RecordTypeSelector(start, length, table, default.upper() if default is not None else None, cp)


class _RecordTypeSelector:
    """The selector :func:`by_record_type` returns; its table lets the reader pick inline."""

    __slots__ = ("cp", "end", "fallback", "length", "start", "table")

    def __init__(self, start: int, length: int, table: dict[bytes, str], fallback: str | None, cp) -> None:
        self.start = start
        self.length = length
        self.end = start + length
        self.table = table
        self.fallback = fallback
        self.cp = cp

    def __call__(self, record: bytes) -> str:
        key = record[self.start : self.end]
        name = self.table.get(key, self.fallback)
        if name is None:
            cp = self.cp
            text = cp.decode_text(key) if len(key) == self.length else ""
            raise RecordDecodeError(
                f"unknown record type {text!r}; expected one of "
                + ", ".join(repr(k.decode(cp.name)) for k in self.table),
                record_offset=self.start,
                field_path="(record type)",
                data=key,
            )
        return name


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
        # a codec that maps records on (CompiledMapping.record_codec) raises a subclass saying "mapping"
        kind=getattr(exc, "reject_kind", "decode"),
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
        yield from _read_fixed_multi(f, codec, size, start_offset)  # type: ignore[arg-type]
        return
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


def _direct(codec: Any, lrecl: int) -> Callable[[bytes, int], Any] | None:
    """The generated decoder of a codec (``_fast``: RecordCodec, or the fused one of a mapping's
    record_codec) for records of exactly its length, else None.  ``fast(chunk, offset)`` decodes
    the record at that offset of the chunk (no slice); a None result or an exception from it
    means: ask ``codec.decode``, which gives the value or the error."""
    fast = getattr(codec, "_fast", None)
    return fast if fast is not None and not codec.variable and lrecl == codec.size else None


def _read_fixed_single(f: BinaryIO, codec: RecordCodec, lrecl: int, offset: int) -> Iterator[Record | Reject]:
    """Fixed-length framing and one layout: the hot loop of big batch files."""
    if lrecl <= 0:
        raise CodecConfigError(f"LRECL must be positive, not {lrecl}")
    decode = codec.decode
    name = codec.name
    # records of exactly the layout's length go straight to the generated decoder
    fast = _direct(codec, lrecl)
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
            values = None
            if fast is not None:
                try:
                    values = fast(chunk, start)
                except Exception:  # noqa: BLE001 - decode() below explains the failure
                    values = None
            if values is None:
                data = chunk[start : start + lrecl]
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


def _read_fixed_multi(
    f: BinaryIO, codec: MultiLayoutCodec, lrecl: int, offset: int
) -> Iterator[Record | Reject]:
    """Fixed-length framing and several layouts: what ``fixed_records`` + ``codec.decode`` yield,
    without a RawRecord per record, and with the record type looked up inline when the selector
    is a :func:`by_record_type` one (any other selector is called per record, as before)."""
    if lrecl <= 0:
        raise CodecConfigError(f"LRECL must be positive, not {lrecl}")
    selector = codec.selector
    table: dict[bytes, str] = {}
    key_start = key_end = 0
    if type(selector) is _RecordTypeSelector and type(codec).decode is MultiLayoutCodec.decode:
        key_start, key_end = selector.start, selector.end
        for key, chosen in selector.table.items():
            table[key] = chosen
    # record name chosen by the selector -> (layout name, generated decoder or None, decode);
    # names no codec has take codec.decode (which raises as before)
    decoders = {name: (c.name, _direct(c, lrecl), c.decode) for name, c in codec.codecs.items()}
    by_type: dict[Any, tuple] = {}
    for key, chosen in table.items():
        entry = decoders.get(chosen.upper())
        if entry is not None:
            by_type[key] = entry
    one_byte = bool(by_type) and key_end == key_start + 1 and all(len(key) == 1 for key in by_type)
    by_byte: list[tuple | None] = [None] * 256
    if one_byte:  # index a list by the type byte instead of slicing it and hashing the slice
        for key, entry in by_type.items():
            by_byte[key[0]] = entry
    generic = codec.decode
    new_record = Record.__new__
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
            if one_byte:
                entry = by_byte[chunk[start + key_start]]
            elif by_type:
                entry = by_type.get(chunk[start + key_start : start + key_end])
            else:
                entry = None
            values = None
            if entry is not None:
                name, fast, decode = entry
                if fast is not None:
                    try:
                        values = fast(chunk, start)  # the record in place: no slice
                    except Exception:  # noqa: BLE001 - decode() below explains the failure
                        values = None
            if values is None:
                data = chunk[start : start + lrecl]
                try:
                    if entry is None:
                        name, values = generic(data)
                    else:
                        values = decode(data)
                except RecordDecodeError as exc:
                    yield _decode_reject(RawRecord(record_no, offset + start, data, offset + start), exc, None)
                    continue
            record = new_record(Record)
            record.record_no = record_no
            record.offset = offset + start
            record.layout = name
            record.values = values
            yield record
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
