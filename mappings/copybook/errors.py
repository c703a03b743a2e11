"""Exceptions raised by the copybook parser and the record codec.

::

    CopybookError                      base of everything below
    ├── CopybookSyntaxError            the copybook text is wrong (file, line, column, hint)
    │   ├── CopybookLayoutError        parsed, but the layout is invalid (ODO counter missing or
    │   │                              defined after the table, REDEFINES target, duplicate names)
    │   └── UnsupportedFeatureError    valid COBOL we refuse on purpose (COMP-1/COMP-2, P scaling,
    │                                  edited or national PICTUREs, COPY statements)
    ├── CodecConfigError (ValueError)  bad codec options (unknown code page, unknown policy, selector)
    ├── FieldCodecError (ValueError)   one field's bytes/value cannot be converted (no position yet;
    │                                  the record codec wraps it into one of the two errors below)
    └── RecordError                    something wrong with one record of data
        ├── RecordDecodeError          record number, offsets, field path, reason, offending bytes
        ├── RecordEncodeError          field path and reason
        └── FramingError               RDW/BDW/LRECL framing is broken (``fatal``: cannot resync)

Field paths name the record first and use 0-based list subscripts, exactly like the decoded
value: ``TXN-RECORD.TXN-LINES[3].AMT`` is ``record["TXN-LINES"][3]["AMT"]``.
"""

from __future__ import annotations

__all__ = [
    "CodecConfigError",
    "CopybookError",
    "CopybookLayoutError",
    "CopybookSyntaxError",
    "FieldCodecError",
    "FramingError",
    "RecordDecodeError",
    "RecordEncodeError",
    "RecordError",
    "UnsupportedFeatureError",
    "hex_bytes",
]

#: Offending bytes shown in messages are capped at this many bytes.
HEX_LIMIT = 64


def hex_bytes(data: bytes | bytearray | memoryview | None, limit: int = HEX_LIMIT) -> str:
    """``b'\\x00\\x12\\x3d'`` -> ``'00 12 3D'`` (capped at *limit* bytes, then ``...``)."""
    if not data:
        return ""
    chunk = bytes(data[:limit])
    text = chunk.hex(" ").upper()
    return text + (" ..." if len(data) > limit else "")


class CopybookError(Exception):
    """Base class of every error of :mod:`mappings.copybook`."""


class CopybookSyntaxError(CopybookError):
    """The copybook cannot be parsed; points at the file, line and column."""

    def __init__(
        self,
        message: str,
        *,
        filename: str = "<copybook>",
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
        source_line: str | None = None,
    ) -> None:
        self.message = message
        self.filename = filename
        self.line = line
        self.column = column
        self.hint = hint
        self.source_line = source_line
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.filename
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.source_line is not None and self.source_line.strip():
            text += f"\n    {self.source_line.rstrip()}"
            if self.column is not None and self.column >= 1:
                text += "\n    " + " " * (self.column - 1) + "^"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class CopybookLayoutError(CopybookSyntaxError):
    """The copybook parses but describes an impossible layout."""


class UnsupportedFeatureError(CopybookSyntaxError):
    """Valid COBOL that this codec deliberately does not handle."""


class CodecConfigError(CopybookError, ValueError):
    """Invalid options given to the record codec or the reader."""


class FieldCodecError(CopybookError, ValueError):
    """One field's bytes (decode) or value (encode) cannot be converted.

    Carries only the *reason* and the offending bytes; the record codec adds the position.
    """

    def __init__(self, reason: str, data: bytes | None = None) -> None:
        self.reason = reason
        self.data = data
        super().__init__(reason + (f" (bytes: {hex_bytes(data)})" if data else ""))


class RecordError(CopybookError):
    """Base class of errors about one record of data."""

    def __init__(
        self,
        reason: str,
        *,
        record_no: int | None = None,
        file_offset: int | None = None,
        record_offset: int | None = None,
        field_path: str | None = None,
        data: bytes | None = None,
    ) -> None:
        self.reason = reason
        self.record_no = record_no
        self.file_offset = file_offset
        self.record_offset = record_offset
        self.field_path = field_path
        self.data = bytes(data) if data is not None else None
        super().__init__(self._render())

    @property
    def data_hex(self) -> str:
        """The offending bytes as spaced upper-case hex (capped)."""
        return hex_bytes(self.data)

    def _render(self) -> str:
        parts = []
        if self.record_no is not None:
            parts.append(f"record {self.record_no}")
        if self.file_offset is not None:
            parts.append(f"file offset {self.file_offset}")
        if self.field_path:
            parts.append(self.field_path)
        if self.record_offset is not None:
            parts.append(f"byte {self.record_offset} of the record")
        head = ", ".join(parts)
        text = f"{head}: {self.reason}" if head else self.reason
        if self.data:
            text += f" (bytes: {self.data_hex})"
        return text

    def located(self, *, record_no: int | None, record_start: int | None) -> RecordError:
        """A copy with the record number and the file offset (*record_start*: the file offset
        of the record's first data byte, plus ``record_offset``) filled in."""
        return type(self)(
            self.reason,
            record_no=record_no,
            file_offset=None if record_start is None else record_start + (self.record_offset or 0),
            record_offset=self.record_offset,
            field_path=self.field_path,
            data=self.data,
        )


class RecordDecodeError(RecordError):
    """A record's bytes do not match its layout.

    ``record_offset`` is the byte offset of the bad field within the record, ``file_offset`` the
    same position in the file (filled in by the reader), ``data`` the field's bytes.
    """


class RecordEncodeError(RecordError):
    """A value given to ``encode`` does not fit its field."""


class FramingError(RecordError):
    """The file framing (LRECL, RDW, BDW) is broken.

    ``fatal`` is true when the reader cannot find the next record and has to stop.
    """

    def __init__(self, reason: str, *, fatal: bool = False, **kwargs) -> None:
        self.fatal = fatal
        super().__init__(reason, **kwargs)

    def located(self, *, record_no: int | None, record_start: int | None) -> FramingError:
        return FramingError(
            self.reason,
            fatal=self.fatal,
            record_no=record_no,
            file_offset=None if record_start is None else record_start + (self.record_offset or 0),
            record_offset=self.record_offset,
            field_path=self.field_path,
            data=self.data,
        )
