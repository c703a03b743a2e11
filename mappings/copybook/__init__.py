"""COBOL copybooks: parser, record layouts, record codec and file readers (corebridge's own).

Why our own: no maintained Python library decodes real copybooks correctly.  REDEFINES,
OCCURS DEPENDING ON (in nested groups, with fields after the table) and COMP-3 are exactly where
the existing ones break.  We follow the semantics of Cobrix and JRecord (the reference
implementations on the JVM) and IBM Enterprise COBOL's storage rules, and we fail loudly: every
bad byte becomes an error (or a reject) naming the record, the offset, the field path and the
bytes.

Modules::

    lexer      copybook text -> tokens (fixed columns 7-72 or free format, continuations)
    picture    PICTURE strings -> Picture
    parser     tokens -> Copybook of record layouts (parse_copybook, load_copybook)
    layout     the layout tree: Copybook, Group, Field, Occurs, Condition (88), Renames (66)
    codecs     field-level codecs: code pages, text, zoned, packed, binary
    record     RecordCodec: a layout compiled into a fast decode/encode of whole records;
               ChooseBy views, projections (only the fields a consumer reads)
    framing    fixed / RDW / BDW record framing of files, RawRecord and Reject
    reader     read_records: framing + decoding, yielding Record or Reject; multi-layout files
    listing    layout_rows / format_layout for ``copybook show``
    errors     the exception tree

Quick use::

    book = load_copybook("TXNREC.cpy")
    codec = RecordCodec(book.record("TXN-RECORD"), codepage="cp037")
    with open("txn.dat", "rb") as f:
        for item in read_records(f, codec, framing="rdw"):
            ...  # Record(record_no, offset, layout, values) or Reject(...)

``mappings`` imports only the standard library and ``canonical``; this package only the former.
"""

from __future__ import annotations

from .codecs import CODEPAGES, CodePage, field_codec, get_codepage
from .errors import (
    CodecConfigError,
    CopybookError,
    CopybookLayoutError,
    CopybookSyntaxError,
    FieldCodecError,
    FramingError,
    RecordDecodeError,
    RecordEncodeError,
    RecordError,
    UnsupportedFeatureError,
)
from .framing import (
    RawRecord,
    Reject,
    bdw_block,
    bdw_records,
    fixed_records,
    frame_records,
    rdw_frame,
    rdw_records,
)
from .layout import (
    Condition,
    ConditionValue,
    Copybook,
    CopybookWarning,
    Field,
    Figurative,
    Group,
    Item,
    Occurs,
    Picture,
    Renames,
    Usage,
)
from .listing import LayoutRow, format_layout, layout_rows
from .parser import load_copybook, parse_copybook
from .reader import MultiLayoutCodec, Record, by_record_type, read_records
from .record import ChooseBy, RecordCodec, compile_copybook, compile_record

__all__ = [
    "CODEPAGES",
    "ChooseBy",
    "CodePage",
    "CodecConfigError",
    "Condition",
    "ConditionValue",
    "Copybook",
    "CopybookError",
    "CopybookLayoutError",
    "CopybookSyntaxError",
    "CopybookWarning",
    "Field",
    "FieldCodecError",
    "Figurative",
    "FramingError",
    "Group",
    "Item",
    "LayoutRow",
    "MultiLayoutCodec",
    "Occurs",
    "Picture",
    "RawRecord",
    "Record",
    "RecordCodec",
    "RecordDecodeError",
    "RecordEncodeError",
    "RecordError",
    "Reject",
    "Renames",
    "UnsupportedFeatureError",
    "Usage",
    "bdw_block",
    "bdw_records",
    "by_record_type",
    "compile_copybook",
    "compile_record",
    "field_codec",
    "fixed_records",
    "format_layout",
    "frame_records",
    "get_codepage",
    "layout_rows",
    "load_copybook",
    "parse_copybook",
    "rdw_frame",
    "rdw_records",
    "read_records",
]
