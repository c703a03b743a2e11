"""``corebridge copybook``: look at a copybook's record layouts and decode mainframe data files.

``show`` prints each 01 record as JRecord's layout listing does (level, name, 1-based position,
length, type, usage, PIC, scale, sign, OCCURS, REDEFINES). ``decode`` streams a binary data file
as JSON lines (or CSV) through :mod:`mappings.copybook`: one record in memory at a time, bad
records reported on stderr with record number, byte offset, field path, reason and bytes.

Exit codes: 0 good, 1 some records were rejected, 2 the command could not run (bad copybook,
bad options, unreadable file). A malformed copybook is reported as ``file:line:col: message``.

The helpers at the bottom (loading a copybook, record-type inference, JSON values) are shared
with ``corebridge mappings`` (:mod:`api.cli_mappings`).
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import json
import os
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, BinaryIO, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mappings.copybook import (
    CodecConfigError,
    Copybook,
    CopybookSyntaxError,
    Field,
    Group,
    Item,
    MultiLayoutCodec,
    Record,
    RecordCodec,
    Reject,
    by_record_type,
    format_layout,
    get_codepage,
    layout_rows,
    load_copybook,
    read_records,
)
from mappings.copybook.layout import Figurative

__all__ = [
    "Framing",
    "TypeField",
    "app",
    "csv_columns",
    "fail",
    "flatten",
    "json_default",
    "load_copybook_or_exit",
    "record_or_exit",
    "record_type_field",
    "type_codes",
]

app = typer.Typer(
    help="COBOL copybooks: show a record layout, decode a mainframe data file.",
    no_args_is_help=True,
    add_completion=False,
)


class Framing(enum.StrEnum):
    fixed = "fixed"
    rdw = "rdw"
    bdw = "bdw"


class OutputFormat(enum.StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class NullPolicy(enum.StrEnum):
    error = "error"
    null = "null"
    zero = "zero"


class ViewErrors(enum.StrEnum):
    null = "null"
    error = "error"


class ShowFormat(enum.StrEnum):
    table = "table"
    text = "text"
    json = "json"


# -- shared helpers -----------------------------------------------------------------------------
def fail(message: str, code: int = 2) -> NoReturn:
    """Print *message* on stderr and leave with *code* (2: the command could not run)."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def load_copybook_or_exit(path: Path) -> Copybook:
    """Parse a copybook; a syntax error is printed as ``file:line:col: message`` (exit 2)."""
    try:
        return load_copybook(path)
    except CopybookSyntaxError as exc:
        fail(str(exc))
    except UnicodeDecodeError as exc:
        fail(f"{path}: not a text file ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        fail(f"{path}: cannot read the copybook: {exc.strerror or exc}")


def record_or_exit(book: Copybook, name: str) -> Item:
    try:
        return book.record(name)
    except KeyError:
        fail(f"{book.filename}: no record {name!r}; records: {', '.join(book.records)}")


def json_default(value: Any) -> Any:
    """JSON for decoded values: decimals as exact strings (never floats), bytes as hex."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, bytes | bytearray):
        return value.hex().upper()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclasses.dataclass(frozen=True)
class TypeField:
    """Where a record-type code sits in every record (0-based offset) and which code means which 01 record."""

    offset: int
    length: int
    layouts: dict[str, str]  # code (text, padded to length) -> record name

    def describe(self) -> str:
        codes = ", ".join(f"{code!r} = {name}" for code, name in self.layouts.items())
        pos = f"byte {self.offset + 1}" if self.length == 1 else f"bytes {self.offset + 1}-{self.offset + self.length}"
        return f"record type in {pos}: {codes}"


def type_codes(record: Item) -> tuple[Field, list[str]] | None:
    """The record's first elementary field, if it starts the record and its 88-levels give text codes."""
    first = next((i for i in record.iter_tree() if isinstance(i, Field)), None)
    if first is None or first.offset != 0 or first.occurs is not None or first.numeric or not first.conditions:
        return None
    codes: list[str] = []
    for cond in first.conditions:
        for v in cond.values:
            if v.high is not None or isinstance(v.low, Figurative | tuple | bytes) or not isinstance(v.low, str):
                return None
            if len(v.low) > first.length:
                return None
            codes.append(v.low.ljust(first.length))
    return first, codes


def record_type_field(book: Copybook, names: list[str] | None = None) -> tuple[TypeField | None, str]:
    """Infer the record-type field of a multi-record copybook from its 88-levels.

    Every 01 record (or every one of *names*) must start with an elementary text field of the
    same length whose 88-level VALUEs are codes no other record uses (TXNHIST.cpy:
    ``TXH-REC-TYPE`` 'H', ``TXD-REC-TYPE`` 'D', ``TXT-REC-TYPE`` 'T'). Returns the field, or
    None and the reason it could not be inferred.
    """
    names = names or list(book.records)
    layouts: dict[str, str] = {}
    length = None
    for name in names:
        found = type_codes(book.records[name])
        if found is None:
            return None, f"{name} does not start with a field whose 88-levels give its record type"
        field, codes = found
        if length is not None and field.length != length:
            return None, f"the first fields of the records have different lengths ({length} and {field.length})"
        length = field.length
        for code in codes:
            if code in layouts and layouts[code] != name:
                return None, f"the code {code!r} is used by both {layouts[code]} and {name}"
            layouts[code] = name
    if length is None:
        return None, "the copybook has no records"
    return TypeField(0, length, layouts), ""


def csv_columns(record: Item) -> list[str]:
    """Flattened column names of a record as decoded: ``GROUP.FIELD``, ``TABLE[0].FIELD``.

    Tables contribute their maximum number of occurrences (OCCURS DEPENDING ON: the maximum;
    columns beyond the actual count stay empty); FILLER is left out, as in the decoded dict.
    """
    if not isinstance(record, Group):
        return [record.name]
    out: list[str] = []

    def walk(group: Group, prefix: str) -> None:
        for child in group.children:
            if child.is_filler:
                if (isinstance(child, Group) and child.occurs is None
                        and any(not c.is_filler for c in child.iter_tree() if c is not child)):
                    walk(child, prefix)  # a FILLER group's named fields appear in the parent
                continue
            name = prefix + child.name
            names = [f"{name}[{i}]" for i in range(child.occurs.max)] if child.occurs else [name]
            for n in names:
                if isinstance(child, Group):
                    walk(child, n + ".")
                else:
                    out.append(n)

    walk(record, "")
    return out


def flatten(values: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """A decoded record as ``{"GROUP.FIELD": value, "TABLE[0].FIELD": value}``."""
    out = {} if out is None else out
    if isinstance(values, dict):
        for key, value in values.items():
            flatten(value, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(values, list):
        for i, value in enumerate(values):
            flatten(value, f"{prefix}[{i}]", out)
    elif values is not None:
        out[prefix] = values
    return out


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


# -- show -------------------------------------------------------------------------------------------
def _wide_console(stderr: bool = False) -> Console:
    """A console that does not squeeze tables into 80 columns when the output is not a terminal."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=max(console.width, 200))
    return console


def _layout_table(record: Item, conditions: bool) -> Table:
    size = record.total_length
    title = f"{record.name}  ({'up to ' if record.variable else ''}{size} bytes)"
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for name, justify in (("LVL", "right"), ("NAME", "left"), ("POS", "right"), ("END", "right"),
                          ("LEN", "right"), ("TYPE", "left"), ("USAGE", "left"), ("PIC", "left"),
                          ("SCALE", "right"), ("SIGNED", "left"), ("OCCURS", "left"), ("REDEFINES", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in layout_rows(record, include_conditions=conditions):
        style = "dim" if r.level == 88 else ("bold" if r.type == "group" else None)
        numeric = r.type not in ("group", "alphanumeric", "alphabetic", "condition")
        table.add_row(
            f"{r.level:02d}",
            Text("  " * r.depth + r.name),
            str(r.offset),
            str(r.end),
            str(r.length),
            r.type,
            r.usage,
            r.pic,
            str(r.scale) if numeric else "",
            ("yes" if r.signed else "no") if numeric else "",
            r.occurs,
            r.redefines,
            style=style,
        )
    return table


@app.command()
def show(
    copybook: Annotated[Path, typer.Argument(help="the copybook (.cpy)", show_default=False)],
    record: Annotated[str | None, typer.Option("--record", "-r", help="one 01 record (default: all)")] = None,
    conditions: Annotated[bool, typer.Option("--conditions", help="list the 88-level conditions too")] = False,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="table, text (plain columns) or json")] = (
        ShowFormat.table),
) -> None:
    """Show the record layouts of a copybook: positions are 1-based, lengths in bytes.

    Example: corebridge copybook show mappings/copybooks/TXNHIST.cpy --record TXNHIST-DETAIL
    """
    book = load_copybook_or_exit(copybook)
    records = [record_or_exit(book, record)] if record else list(book.records.values())
    warnings = book.warnings if not record else getattr(records[0], "warnings", [])
    err = _wide_console(stderr=True)
    for w in warnings:
        err.print(Text(str(w), style="yellow"))
    if fmt is ShowFormat.json:
        doc = [
            {"record": r.name, "length": r.total_length, "variable": r.variable,
             "items": [dataclasses.asdict(row) for row in layout_rows(r, include_conditions=conditions)]}
            for r in records
        ]
        typer.echo(json.dumps(doc, indent=2))
        return
    if fmt is ShowFormat.text:
        typer.echo("\n\n".join(f"{r.name} ({r.total_length} bytes)\n{format_layout(r)}" for r in records))
        return
    out = _wide_console()
    for i, r in enumerate(records):
        if i:
            out.print()
        out.print(_layout_table(r, conditions))


# -- decode -------------------------------------------------------------------------------------------
def _parse_type_field(text: str) -> tuple[int, int]:
    try:
        start_s, _, length_s = text.partition(":")
        start, length = int(start_s), int(length_s or "1")
    except ValueError:
        fail(f"--record-type-field {text!r}: expected START:LEN (1-based start, length in bytes), e.g. 1:1")
    if start < 1 or length < 1:
        fail(f"--record-type-field {text!r}: START and LEN must be positive (START is 1-based)")
    return start - 1, length


def _parse_layouts(book: Copybook, specs: list[str], length: int) -> dict[str, str]:
    table: dict[str, str] = {}
    for spec in specs:
        code, sep, name = spec.partition("=")
        if not sep or not name:
            fail(f"--layout {spec!r}: expected CODE=RECORD, e.g. --layout H=TXNHIST-HEADER")
        record_or_exit(book, name)
        if code != "*" and len(code) > length:
            fail(f"--layout {spec!r}: the code {code!r} is longer than the record-type field ({length} bytes)")
        table[code if code == "*" else code.ljust(length)] = name.upper()
    return table


def _build_codec(
    book: Copybook,
    record: str | None,
    type_field: str | None,
    layouts: list[str],
    options: dict[str, Any],
) -> tuple[RecordCodec | MultiLayoutCodec, str | None]:
    """The codec for the command line's choice, and a note for stderr (inferred layouts)."""
    if record and (layouts or type_field):
        fail("give either --record NAME or --record-type-field with --layout CODE=NAME, not both")
    if type_field and not layouts:
        fail("--record-type-field needs --layout CODE=RECORD for every record type, e.g. --layout H=TXNHIST-HEADER")
    if layouts and not type_field:
        fail("--layout needs --record-type-field START:LEN (where the code is: 1:1 is the first byte)")
    codepage = options["codepage"]
    try:
        if record:
            return RecordCodec(record_or_exit(book, record), **options), None
        if layouts:
            start, length = _parse_type_field(type_field or "")
            table = _parse_layouts(book, layouts, length)
            default = table.pop("*", None)
            tf = TypeField(start, length, table)
            note = None
        elif len(book.records) == 1:
            return RecordCodec(next(iter(book.records.values())), **options), None
        else:
            inferred, reason = record_type_field(book)
            if inferred is None:
                fail(f"{book.filename} has {len(book.records)} records ({', '.join(book.records)}) and the record "
                     f"type cannot be inferred: {reason}. Choose one with --record NAME, or give "
                     "--record-type-field START:LEN and --layout CODE=NAME for each type.")
            tf, default = inferred, None
            note = f"{book.filename}: {tf.describe()} (from the 88-levels; override with --record-type-field/--layout)"
        names = sorted(set(tf.layouts.values()) | ({default} if default else set()))
        codecs = {name: RecordCodec(book.records[name], **options) for name in names}
        selector = by_record_type(tf.offset, tf.length, tf.layouts, codepage=codepage, default=default)
        return MultiLayoutCodec(codecs, selector), note
    except CodecConfigError as exc:
        fail(f"error: {exc}")


def _describe_reject(r: Reject) -> str:
    parts = [f"record {r.record_no}", f"offset {r.offset}"]
    if r.field_path:
        parts.append(f"field {r.field_path}")
    text = "reject: " + ", ".join(parts) + f": {r.reason}"
    if r.data_hex:
        text += f" (bytes: {r.data_hex})"
    if r.fatal:
        text += " (fatal: reading stopped here)"
    return text


def _open_data(datafile: str) -> BinaryIO:
    if datafile == "-":
        return sys.stdin.buffer
    try:
        return open(datafile, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        fail(f"{datafile}: cannot read the data file: {exc.strerror or exc}")


@app.command()
def decode(
    copybook: Annotated[Path, typer.Argument(help="the copybook (.cpy)", show_default=False)],
    datafile: Annotated[str, typer.Argument(help="the binary data file ('-': stdin)", show_default=False)],
    record: Annotated[str | None, typer.Option(
        "--record", "-r", help="decode every record with this 01 record")] = None,
    record_type_field: Annotated[str | None, typer.Option(
        "--record-type-field", metavar="START:LEN",
        help="multi-layout files: where the record-type code is (1-based start, length), e.g. 1:1")] = None,
    layout: Annotated[list[str] | None, typer.Option(
        "--layout", "-l", metavar="CODE=RECORD",
        help="multi-layout files: the 01 record for a record-type code (repeat; CODE * = any other)")] = None,
    encoding: Annotated[str, typer.Option("--encoding", "-e", help="code page: cp037, cp500, cp1140, cp273, "
                                                                    "latin-1, ascii")] = "cp037",
    framing: Annotated[Framing, typer.Option(help="fixed-length records, RDW (variable) or BDW (blocked)")] = (
        Framing.fixed),
    lrecl: Annotated[int | None, typer.Option(help="fixed framing: record length (default: the layout's)")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="jsonl (one object a line) or csv")] = (
        OutputFormat.jsonl),
    null_policy: Annotated[NullPolicy, typer.Option(
        help="numeric fields of only spaces/low-values/high-values: reject (error), null or zero")] = NullPolicy.error,
    view_errors: Annotated[ViewErrors, typer.Option(
        help="a REDEFINES view whose bytes do not fit it: null (default; the other view applies) or reject")] = (
        ViewErrors.null),
    only: Annotated[str | None, typer.Option(help="multi-layout files: print only the records of this 01 record")] = (
        None),
    limit: Annotated[int | None, typer.Option(help="stop after this many decoded records")] = None,
) -> None:
    """Decode a mainframe data file: one JSON object per record on stdout, rejects on stderr.

    Groups are nested objects, OCCURS arrays, decimals exact strings, PIC X right-trimmed; every
    object carries its record number (_record) and, for multi-layout files, its 01 record
    (_layout). Exit 1 when any record was rejected.

    Multi-layout files (header/detail/trailer): without --record the record type is inferred from
    the 88-levels on the first field of each 01 record, or given with --record-type-field 1:1
    --layout H=TXNHIST-HEADER --layout D=TXNHIST-DETAIL --layout T=TXNHIST-TRAILER.
    """
    book = load_copybook_or_exit(copybook)
    if lrecl is not None and lrecl < 1:
        fail("--lrecl must be positive")
    try:
        get_codepage(encoding)
    except CodecConfigError as exc:
        fail(f"--encoding: {exc}")
    options: dict[str, Any] = {
        "codepage": encoding,
        "null_policy": null_policy.value,
        "view_errors": view_errors.value,
    }
    if framing is Framing.fixed and lrecl is not None:
        options["trailing"] = "ignore"
    elif framing is Framing.fixed and record and record_or_exit(book, record).variable:
        options["trailing"] = "ignore"  # OCCURS DEPENDING ON in fixed-length records: padding follows
    codec, note = _build_codec(book, record, record_type_field, layout or [], options)
    multi = isinstance(codec, MultiLayoutCodec)
    if only is not None:
        only = only.upper()
        if not multi:
            fail("--only applies to multi-layout files (without --record)")
        if only not in codec.codecs:  # type: ignore[union-attr]
            fail(f"--only {only}: not one of the file's layouts ({', '.join(codec.codecs)})")  # type: ignore[union-attr]
    columns: list[str] | None = None
    if fmt is OutputFormat.csv:
        if multi and only is None:
            fail("--format csv needs one layout: pass --record NAME, or --only NAME for a multi-layout file")
        layout_item = book.records[only] if only else codec.layout  # type: ignore[union-attr]
        columns = ["_record", *csv_columns(layout_item)]
    if note:
        typer.echo(note, err=True)

    decoded = rejected = skipped = 0
    f = _open_data(datafile)
    out = sys.stdout
    try:
        if columns is not None:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(columns)
            index = {c: i for i, c in enumerate(columns)}
        encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=json_default).encode
        items: Iterator[Record | Reject] = read_records(f, codec, framing=framing.value, lrecl=lrecl)
        for item in items:
            if isinstance(item, Reject):
                rejected += 1
                typer.echo(_describe_reject(item), err=True)
                continue
            if only is not None and item.layout != only:
                skipped += 1
                continue
            decoded += 1
            if columns is not None:
                row = [""] * len(columns)
                row[0] = str(item.record_no)
                for key, value in flatten(item.values).items():
                    i = index.get(key)
                    if i is not None:
                        row[i] = _cell(value)
                writer.writerow(row)
            elif multi:
                out.write(encode({"_record": item.record_no, "_layout": item.layout, **item.values}) + "\n")
            else:
                out.write(encode({"_record": item.record_no, **item.values}) + "\n")
            if limit is not None and decoded >= limit:
                break
        out.flush()
    except CodecConfigError as exc:
        fail(f"error: {exc}")
    except BrokenPipeError:
        # the reader went away (| head): stop quietly, like other Unix tools
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    total = decoded + rejected + skipped
    summary = f"summary: {total} record{'s' if total != 1 else ''}, {decoded} decoded, {rejected} rejected"
    if skipped:
        summary += f", {skipped} skipped (not {only})"
    if limit is not None and decoded >= limit:
        summary += f" (stopped after --limit {limit})"
    typer.echo(summary, err=True)
    if rejected:
        raise typer.Exit(1)
