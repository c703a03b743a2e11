"""``corebridge mappings``: check mapping files, try one on a sample, start one from a copybook.

* ``check [PATH...]``: every problem of every mapping file as ``file:line:col: message (hint)``
  (:func:`mappings.engine.check_file`); exit 1 on any error.
* ``try FILE --input SAMPLE``: the canonical JSON a mapping makes of a sample (a record of a
  binary data file, a SOAP response, a row or record as JSON); ``--reverse`` writes canonical
  JSON back to the legacy record (and, for copybooks, to its bytes).
* ``new --copybook X.cpy --record NAME``: a mapping skeleton listing every field of the record,
  with a generated sample record as its example.

Exit codes: 0 good, 1 the mapping (or the sample) has problems, 2 the command could not run.
"""

from __future__ import annotations

import enum
import io
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from lxml import etree
from pydantic import ValidationError

from api.cli_copybook import Framing, fail, json_default, load_copybook_or_exit, record_or_exit, type_codes
from canonical import MODELS
from mappings.copybook import (
    CopybookError,
    Field,
    Group,
    Item,
    RecordCodec,
    RecordDecodeError,
    RecordEncodeError,
    Reject,
    frame_records,
    load_copybook,
    rdw_frame,
)
from mappings.copybook.layout import Figurative
from mappings.engine import (
    MAPPINGS_DIR,
    CompiledMapping,
    MappingApplyError,
    MappingError,
    MappingRegistry,
    check_file,
    compile_file,
)
from mappings.engine.errors import did_you_mean
from mappings.engine.examples import coerce_record, json_legacy

__all__ = ["app", "parse_soap", "sample_record", "skeleton"]

app = typer.Typer(
    help="Mapping files: check them, try one on a sample, start one from a copybook.",
    no_args_is_help=True,
    add_completion=False,
)


class InputFormat(enum.StrEnum):
    auto = "auto"
    binary = "binary"
    json = "json"
    xml = "xml"


def _shown(path: Path) -> str:
    """A path as the user wants to read it: relative to the current directory when below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=json_default)


# -- check --------------------------------------------------------------------------------------------
def _mapping_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            # the registry's rule: *.yaml below the directory, not in hidden or package directories
            files.extend(MappingRegistry(p).files())
        elif p.exists():
            files.append(p)
        else:
            fail(f"{p}: no such file or directory")
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


@app.command()
def check(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="mapping files or directories (default: the mappings shipped with corebridge)",
        show_default=False)] = None,
    examples: Annotated[bool, typer.Option("--examples/--no-examples", help="run every file's examples")] = True,
) -> None:
    """Check mapping files: schema, canonical types, contract fields, examples.

    Prints every problem as file:line:col: message (hint) and a summary; exit 1 on any error.
    """
    files = _mapping_files(list(paths) if paths else [MAPPINGS_DIR])
    if not files:
        fail(f"no mapping files (*.yaml) in {', '.join(str(p) for p in (paths or [MAPPINGS_DIR]))}")
    errors = warnings = bad_files = 0
    for f in files:
        diags = check_file(Path(_shown(f.resolve())), examples=examples)
        file_errors = sum(d.severity == "error" for d in diags)
        errors += file_errors
        warnings += len(diags) - file_errors
        bad_files += file_errors > 0
        for d in diags:
            typer.secho(str(d), fg="red" if d.severity == "error" else "yellow")
    n = len(files)
    head = f"checked {n} mapping file{'s' if n != 1 else ''}"
    if errors:
        typer.secho(f"{head}: {errors} error{'s' if errors != 1 else ''} in {bad_files} file"
                    f"{'s' if bad_files != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}",
                    fg="red", bold=True)
        raise typer.Exit(1)
    typer.secho(f"{head}: all good" + (f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""),
                fg="green")


# -- samples: SOAP XML, JSON, binary records -------------------------------------------------------
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def _element_dict(el: etree._Element) -> dict[str, Any]:
    """Child elements -> {UPPER-CASE local name: text or nested dict}; a repeated name -> a list."""
    out: dict[str, Any] = {}
    lists: set[str] = set()
    for child in el:
        if not isinstance(child.tag, str):
            continue
        key = _local(child.tag).upper()
        if child.get(_XSI_NIL) in ("true", "1"):
            value: Any = None
        elif len(child):
            value = _element_dict(child)
        else:
            value = child.text or ""
        if key in lists:
            out[key].append(value)
        elif key in out:
            out[key] = [out[key], value]
            lists.add(key)
        else:
            out[key] = value
    return out


def parse_soap(data: bytes, what: str = "the sample") -> tuple[str, dict[str, Any]]:
    """A SOAP envelope (or a bare message element) -> (message element name, its content as a dict).

    Parsed with lxml hardened: no DTD, no entities, no network; a DOCTYPE is refused.
    A SOAP Fault is returned as the message ``Fault``.
    """
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError(f"{what}: DOCTYPE/ENTITY declarations are refused")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"{what}: not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise ValueError(f"{what}: DOCTYPE declarations are refused")
    message = root
    if _local(root.tag) == "Envelope":
        body = next((c for c in root if isinstance(c.tag, str) and _local(c.tag) == "Body"), None)
        if body is None:
            raise ValueError(f"{what}: the SOAP envelope has no Body")
        message = next((c for c in body if isinstance(c.tag, str)), None)
        if message is None:
            raise ValueError(f"{what}: the SOAP Body is empty")
    return _local(message.tag), _element_dict(message)


def _path_get(record: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(record, dict) or part.upper() not in record:
            raise KeyError(part)
        record = record[part.upper()]
    return record


def _is_json(data: bytes) -> bool:
    head = data.lstrip()[:1]
    return head in (b"{", b"[")


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as exc:
        fail(f"{what}: not valid JSON: {exc}", 1)


def _binary_record(data: bytes, codec: RecordCodec, framing: str, record_no: int | None,
                   what: str) -> tuple[int, int, dict[str, Any]]:
    """Record *record_no* of a binary file, decoded; by default the first record whose record-type
    code (the 88-level VALUE on the layout's first field) is the layout's, else the first record."""
    types = type_codes(codec.layout)
    codes = {codec.codepage.encode_text(c) for c in types[1]} if types else set()
    size = types[0].length if types else 0
    chosen = fallback = None
    frames = frame_records(io.BytesIO(data), framing, lrecl=codec.size if framing == "fixed" else None)
    for raw in frames:
        if record_no is not None:
            if raw.record_no == record_no:
                if isinstance(raw, Reject):
                    fail(f"{what}: record {raw.record_no} at offset {raw.offset}: {raw.reason}", 1)
                chosen = raw
                break
            if isinstance(raw, Reject) and raw.fatal:
                fail(f"{what}: record {raw.record_no} at offset {raw.offset}: {raw.reason}; "
                     f"record {record_no} cannot be reached", 1)
            continue
        if isinstance(raw, Reject):
            if raw.fatal:
                break
            continue
        if not codes or raw.data[:size] in codes:
            chosen = raw
            break
        fallback = fallback or raw
    chosen = chosen or fallback
    if chosen is None:
        fail(f"{what}: " + (f"there is no record {record_no}" if record_no is not None else "no record found"), 1)
    try:
        return chosen.record_no, chosen.offset, codec.decode(chosen.data)
    except RecordDecodeError as exc:
        if codes and chosen.data[:size] not in codes:
            typer.echo(f"note: record {chosen.record_no} has the record type "
                       f"{codec.codepage.decode_text(chosen.data[:size])!r}; {codec.name} records have "
                       + " or ".join(repr(c) for c in types[1]), err=True)  # type: ignore[index]
        fail(f"{what}: record {chosen.record_no}, offset {chosen.data_offset + (exc.record_offset or 0)}, "
             f"field {exc.field_path}: {exc.reason}" + (f" (bytes: {exc.data_hex})" if exc.data_hex else ""), 1)


def _through_codec(codec: RecordCodec, record: Any, fields: dict, what: str) -> dict[str, Any]:
    """A JSON record as the codec would decode it (Decimal, int, trimmed text), proven encodable."""
    if not isinstance(record, dict):
        fail(f"{what}: a copybook record is a JSON object (field name: value)", 1)
    try:
        return codec.decode(codec.encode(coerce_record(record, fields), fill_missing=True))
    except (RecordEncodeError, RecordDecodeError) as exc:
        fail(f"{what}: not a valid {codec.name} record: {exc}", 1)


def _read_sample(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read the sample: {exc.strerror or exc}")


def _legacy_records(mapping: CompiledMapping, path: Path, fmt: InputFormat, framing: Framing | None,
                    record_no: int | None) -> tuple[list[Any], dict[str, Any]]:
    """The legacy record(s) in a sample, plus the context records it implies (a SOAP response)."""
    data = _read_sample(path)
    kind = mapping.source_kind
    what = str(path)
    if fmt is InputFormat.auto:
        if _is_json(data):
            fmt = InputFormat.json
        elif kind == "copybook":
            fmt = InputFormat.binary
        elif data.lstrip()[:1] == b"<":
            fmt = InputFormat.xml
        else:
            fail(f"{what}: neither JSON nor XML; give --input-format", 2)
    implied: dict[str, Any] = {}
    if fmt is InputFormat.binary:
        if kind != "copybook":
            fail(f"{what}: binary samples are for copybook mappings; {mapping.name} is a {kind} mapping")
        codec = mapping.codec()
        fr = framing.value if framing else ("rdw" if codec.variable else "fixed")
        n, offset, record = _binary_record(data, codec, fr, record_no, what)
        typer.echo(f"{what}: record {n} at offset {offset} ({codec.name}, {fr} framing)", err=True)
        return [record], implied
    if fmt is InputFormat.xml:
        if kind != "soap":
            fail(f"{what}: XML samples are for SOAP mappings; {mapping.name} is a {kind} mapping")
        try:
            name, message = parse_soap(data, what)
        except ValueError as exc:
            fail(str(exc), 1)
        if name == "Fault":
            fail(f"{what}: the sample is a SOAP Fault: {_dump(message)}", 1)
        contract = mapping.spec.source.contract
        own_message = contract.get("message", "response")
        for cname, cspec in mapping.spec.source.context.items():
            if cspec.get("message", "response") == own_message:
                try:
                    implied[cname] = _path_get(message, cspec["element"]) if cspec.get("element") else message
                except KeyError:
                    pass
        element = contract.get("element")
        if element:
            try:
                value = _path_get(message, element)
            except KeyError:
                fail(f"{what}: the {name} message has no element {element} (it has: {', '.join(message)})"
                     + (f"; RETURN-BLOCK: {_dump(message['RETURN-BLOCK'])}" if "RETURN-BLOCK" in message else ""),
                     1)
        else:
            value = message
        records = value if isinstance(value, list) else [value]
    else:
        value = _load_json(data, what)
        records = value if isinstance(value, list) else [value]
        if kind == "copybook":
            codec = mapping.codec()
            fields = mapping.binding.root.fields if mapping.binding.root else {}
            records = [_through_codec(codec, r, fields, what) for r in records]
    if record_no is not None:
        if not 1 <= record_no <= len(records):
            fail(f"{what}: there is no record {record_no} (the sample has {len(records)})", 1)
        records = [records[record_no - 1]]
    return records, implied


def _context(mapping: CompiledMapping, specs: list[str], implied: dict[str, Any]) -> dict[str, Any]:
    declared = mapping.spec.source.context
    out = dict(implied)
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not file:
            fail(f"--context {spec!r}: expected NAME=FILE")
        if name not in declared:
            fail(f"--context {name}: {mapping.name} declares no context record {name!r}"
                 + (f" ({hint})" if (hint := did_you_mean(name, declared)) else
                    f"; it declares: {', '.join(declared) or 'none'}"))
        data = _read_sample(Path(file))
        cspec = declared[name]
        if mapping.source_kind == "soap" and data.lstrip()[:1] == b"<":
            try:
                _, message = parse_soap(data, file)
            except ValueError as exc:
                fail(str(exc), 1)
            out[name] = _path_get(message, cspec["element"]) if cspec.get("element") else message
        elif _is_json(data):
            value = _load_json(data, file)
            if mapping.source_kind == "copybook" and name in mapping.binding.contexts:
                value = coerce_record(value, mapping.binding.contexts[name].fields)
            out[name] = value
        elif mapping.source_kind == "copybook":
            try:
                layout = load_copybook(mapping.spec.base_dir / cspec["copybook"]).record(cspec["record"])
                codec = RecordCodec(layout, codepage=cspec.get("codepage", "cp037"), view_errors="null")
            except (CopybookError, KeyError, OSError) as exc:
                fail(f"--context {name}: cannot load its copybook: {exc}")
            fr = "rdw" if codec.variable else "fixed"
            out[name] = _binary_record(data, codec, fr, None, file)[2]
        else:
            fail(f"--context {name}: {file} is not JSON" + (" or XML" if mapping.source_kind == "soap" else ""))
    for name in declared:
        if name not in out:
            typer.echo(f"note: context record {name!r} not given (--context {name}=FILE); rules reading "
                       f"${name}.* see nothing", err=True)
    return out


def _compile(file: Path) -> CompiledMapping:
    try:
        return compile_file(file)
    except MappingError as exc:
        for d in exc.diagnostics:
            typer.echo(str(d), err=True)
        fail(f"{file}: the mapping does not compile (run `corebridge mappings check {file}`)", 1)


@app.command("try")
def try_(
    file: Annotated[Path, typer.Argument(help="the mapping file (.yaml)", show_default=False)],
    input: Annotated[Path, typer.Option("--input", "-i", help="the sample: a binary data file (copybook), a "
                                        "SOAP response (XML), or a record/row as JSON", show_default=False)],
    reverse: Annotated[bool, typer.Option("--reverse", help="write: the input is canonical JSON; print the "
                                          "legacy record (and its bytes for a copybook)")] = False,
    record_no: Annotated[int | None, typer.Option("--record-no", "-n", help="the record to take (1-based; "
                                                  "default: the first of the mapping's record type, or all)")] = None,
    context: Annotated[list[str] | None, typer.Option("--context", "-c", metavar="NAME=FILE",
                                                      help="a context record the mapping declares")] = None,
    input_format: Annotated[InputFormat, typer.Option(help="the sample's format")] = InputFormat.auto,
    framing: Annotated[Framing | None, typer.Option(help="binary samples: fixed, rdw or bdw (default: rdw "
                                                    "for OCCURS DEPENDING ON layouts, else fixed)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="--reverse on a copybook mapping: also write "
                                             "the record bytes to this file")] = None,
) -> None:
    """Try a mapping on a sample: print the canonical JSON it makes (or, --reverse, the legacy record).

    Examples:
      corebridge mappings try mappings/batch/txnhist_detail.yaml --input TXNHIST.D261125
      corebridge mappings try mappings/soap/balance_inquiry.yaml --input reply.xml
      corebridge mappings try mappings/batch/payin_detail.yaml --reverse --input transfer.json
    """
    mapping = _compile(file)
    if reverse:
        _try_reverse(mapping, input, out, framing)
        return
    records, implied = _legacy_records(mapping, input, input_format, framing, record_no)
    ctx = _context(mapping, context or [], implied)
    results = []
    for i, record in enumerate(records, 1):
        try:
            obj = mapping.read(record, ctx or None)
        except MappingApplyError as exc:
            where = f" (record {i} of {len(records)})" if len(records) > 1 else ""
            typer.echo(f"legacy record{where}: {_dump(json_legacy(record))}", err=True)
            fail(f"error: {exc}", 1)
        results.append(obj.model_dump(mode="json"))
    typer.echo(_dump(results[0] if len(results) == 1 else results))


def _try_reverse(mapping: CompiledMapping, path: Path, out: Path | None, framing: Framing | None) -> None:
    if not mapping.writable:
        fail(f"{mapping.name} is {mapping.direction}-only: it cannot write (direction: write or both can)")
    value = _load_json(_read_sample(path), str(path))
    objects = value if isinstance(value, list) else [value]
    copybook = mapping.source_kind == "copybook"
    codec = mapping.codec() if copybook else None
    results: list[Any] = []
    blobs: list[bytes] = []
    for obj in objects:
        try:
            canonical = mapping.model.model_validate(obj)
            legacy = mapping.write(canonical)
        except ValidationError as exc:
            fail(f"{path}: not a valid {mapping.target}: {exc}", 1)
        except MappingApplyError as exc:
            fail(f"error: {exc}", 1)
        if codec is None:
            results.append(json_legacy(legacy))
            continue
        try:
            data = codec.encode(legacy, fill_missing=True)
        except RecordEncodeError as exc:
            fail(f"error: the written record does not encode as {codec.name}: {exc}", 1)
        blobs.append(data)
        results.append({
            "legacy": json_legacy(legacy),
            "length": len(data),
            "hex": data.hex(" ").upper(),
            "decoded": json_legacy(codec.decode(data)),
        })
    if out is not None:
        if codec is None:
            fail("--out writes record bytes: only for copybook mappings")
        fr = framing.value if framing else ("rdw" if codec.variable else "fixed")
        if fr == "bdw":
            fail("--out writes fixed or RDW records, not BDW blocks")
        out.write_bytes(b"".join(rdw_frame(b) if fr == "rdw" else b for b in blobs))
        typer.echo(f"wrote {len(blobs)} record(s), {out.stat().st_size} bytes, to {out}", err=True)
    typer.echo(_dump(results[0] if len(results) == 1 else results))


# -- new ------------------------------------------------------------------------------------------------
_DIGITS = "1234567890" * 4
_TARGET_WORDS = (("STMT", "Statement"), ("TXN", "Transaction"), ("TRAN", "Transaction"), ("PAY", "Transfer"),
                 ("XFER", "Transfer"), ("BAL", "Balance"), ("CUST", "Customer"), ("ACCT", "Account"))


def _tokens(name: str) -> list[str]:
    parts = name.split("-")
    return parts[1:] if len(parts) > 1 else parts


def _is_date(field: Field) -> bool:
    return any(t in ("DATE", "DT") or t.endswith("DATE") for t in field.name.split("-"))


def _is_time(field: Field) -> bool:
    return any(t in ("TIME", "TM") for t in field.name.split("-"))


def _condition_codes(field: Field) -> list[Any]:
    return [v.low for c in field.conditions for v in c.values
            if v.high is None and not isinstance(v.low, Figurative | tuple | bytes)]


def _sample_text(field: Field) -> str:
    n = field.picture.size
    codes = [c for c in _condition_codes(field) if isinstance(c, str)]
    if codes:
        return codes[0]
    tokens = field.name.split("-")
    if n >= 3 and any(t in ("CURR", "CCY", "CURRENCY") for t in tokens):
        return "EUR"
    if field.picture.category != "A" and n >= 2 and any(t in ("NO", "NUM", "NBR", "ID", "ACCT", "KEY")
                                                        for t in tokens):
        return ("1" + "0" * (n - 2) + "1")[:12] if n <= 12 else "100000000001"
    text = " ".join(_tokens(field.name))
    if field.picture.category == "A":
        text = "".join(ch for ch in text if ch.isalpha() or ch == " ").strip() or "A"
    return text[:n]


def _sample_number(field: Field) -> int | Decimal:
    digits, scale = field.digits, field.scale
    codes = [c for c in _condition_codes(field) if isinstance(c, int | Decimal)]
    if codes:
        return codes[0]
    if scale:
        whole = digits - scale
        int_part = _DIGITS[: min(whole, 4)] or "0"
        return Decimal(f"{int_part}.{'56789012345678901234567890'[:scale]}")
    if _is_date(field) and digits in (5, 6, 7, 8):
        return {5: 26331, 6: 261127, 7: 1261127, 8: 20261127}[digits]
    if _is_time(field) and digits in (4, 6):
        return {4: 1200, 6: 120000}[digits]
    return int(_DIGITS[: min(digits, 3)])


def _element_count(item: Item) -> int:
    occ = item.occurs
    assert occ is not None
    if occ.variable:
        return max(occ.min, min(1, occ.max))
    return occ.max


def sample_record(layout: Item) -> dict[str, Any]:
    """A plausible record for a layout, shaped like the codec's decode (the input of an example).

    Text gets words or codes (an 88-level's VALUE when there is one), numbers digits with the
    PIC's scale, dates CYYMMDD/YYYYMMDD by the field's name. OCCURS get their count (DEPENDING
    ON: one element; the counter is left out, the encoder derives it), REDEFINES the first view.
    """

    def value(item: Item) -> Any:
        if isinstance(item, Group):
            return group(item)
        assert isinstance(item, Field)
        return _sample_number(item) if item.numeric else _sample_text(item)

    def group(g: Group) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in g.children:
            if child.redefines:
                continue
            if child.is_filler:
                if isinstance(child, Group) and child.occurs is None:
                    out.update(group(child))
                continue
            if isinstance(child, Field) and child.odo_counter:
                continue
            if child.occurs is not None:
                out[child.name] = [value(child) for _ in range(_element_count(child))]
            else:
                out[child.name] = value(child)
        return out

    if isinstance(layout, Group):
        return group(layout)
    return {layout.name: value(layout)}


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return f'"{v:f}"'
    return json.dumps(str(v), ensure_ascii=False)


def _yaml_lines(d: dict[str, Any], indent: int) -> list[str]:
    sp = " " * indent
    lines: list[str] = []
    for key, v in d.items():
        if isinstance(v, dict):
            sub = _yaml_lines(v, indent + 2)
            lines += [f"{sp}{key}:", *sub] if sub else [f"{sp}{key}: {{}}"]
        elif isinstance(v, list):
            if not v:
                lines.append(f"{sp}{key}: []")
                continue
            lines.append(f"{sp}{key}:")
            for element in v:
                if isinstance(element, dict) and element:
                    sub = _yaml_lines(element, indent + 4)
                    lines.append(f"{sp}  - {sub[0].lstrip()}")
                    lines += sub[1:]
                elif isinstance(element, dict):
                    lines.append(f"{sp}  - {{}}")
                else:
                    lines.append(f"{sp}  - {_scalar(element)}")
        else:
            lines.append(f"{sp}{key}: {_scalar(v)}")
    return lines


def _suggest(field: Field) -> str:
    """A first guess at the transforms for a field (in the commented rule)."""
    if field.conditions and not field.numeric:
        table = ", ".join(f"{c.name}: TODO" for c in field.conditions)
        return f"[{{code: {{conditions: {field.name}, map: {{{table}}}}}}}]"
    if not field.numeric:
        return "[trim]"
    tokens = field.name.split("-")
    if field.scale:
        if any(t.startswith(("AMT", "AMOUNT", "BAL", "TOTAL", "FEE")) for t in tokens):
            return "[{money: {currency: TODO}}]"
        return f"[{{decimal: {field.scale}}}]"
    if _is_date(field) and field.digits in (5, 6, 7, 8):
        fmt = {5: "YYDDD", 6: "YYMMDD", 7: "CYYMMDD", 8: "YYYYMMDD"}[field.digits]
        return f"[{{date: {fmt}}}]"
    if _is_time(field) and field.digits in (4, 6):
        return f"[{{time: {'HHMM' if field.digits == 4 else 'HHMMSS'}}}]"
    return "[integer]"


def _describe(field: Field) -> str:
    usage = field.usage.value
    pic = f"PIC {field.pic}" + (f" {usage}" if usage != "DISPLAY" else "")
    text = f"{pic}, pos {field.offset + 1}, len {field.length}"
    if field.redefines:
        text += f", REDEFINES {field.redefines}"
    codes = [f"{c.name} {', '.join(repr(v.low) for v in c.values)}" for c in field.conditions]
    if codes:
        text += "; 88 " + "; ".join(codes)
    return text


def _rule_lines(layout: Item) -> list[str]:
    """Commented rules for every elementary field (``items`` templates for repeated groups).

    Uncommenting a rule (deleting ``# ``) leaves valid YAML at the indentation of ``fields``.
    """
    lines: list[str] = []

    def emit_field(f: Field, path: str, yi: str) -> None:
        lines.append(f"  # {yi}- to: TODO")
        lines.append(f"  # {yi}  from: {path}".ljust(48) + f"  # {_describe(f)}")
        lines.append(f"  # {yi}  transforms: {_suggest(f)}")

    def walk(g: Group, prefix: str, yi: str) -> None:
        for child in g.children:
            if child.is_filler:
                if isinstance(child, Group) and child.occurs is None:
                    walk(child, prefix, yi)
                continue
            path = prefix + child.name
            view = f"REDEFINES {child.redefines}: choose it with source.contract.views, map it with when" \
                if child.redefines else ""
            if isinstance(child, Group):
                if child.occurs is not None:
                    lines.append(f"  # {yi}- to: TODO".ljust(48)
                                 + f"  # a list: OCCURS {child.occurs.describe()}, pos {child.offset + 1}, "
                                 f"{child.length} bytes each" + (f"; {view}" if view else ""))
                    lines.append(f"  # {yi}  from: {path}")
                    lines.append(f"  # {yi}  items:")
                    walk(child, "", yi + "    ")
                else:
                    if view:
                        lines.append(f"  # {yi}# {child.name}: {view}")
                    walk(child, path + ".", yi)
            elif isinstance(child, Field):
                if child.odo_counter:
                    lines.append(f"  # {yi}# {path}: the OCCURS DEPENDING ON counter ({_describe(child)})")
                    continue
                emit_field(child, f"{path}[0]" if child.occurs is not None else path, yi)

    if isinstance(layout, Group):
        walk(layout, "", "")
    elif isinstance(layout, Field):
        emit_field(layout, layout.name, "")
    return lines


def _views_lines(layout: Item) -> list[str]:
    """A commented ``views:`` block for the record's top-level REDEFINES areas."""
    if not isinstance(layout, Group):
        return []
    areas = [c for c in layout.children if c.redefined_by and not c.is_filler]
    if not areas:
        return []
    lines = ["    # views:                       # REDEFINES: which view to decode, by a field decoded before it"]
    for area in areas:
        views = [v.name for v in area.redefined_by if not v.is_filler]
        lines += [f"    #   {area.name}:", "    #     field: TODO",
                  "    #     map: {" + ", ".join(f"TODO: {v}" for v in views) + "}",
                  f"    #     default: {area.name}"]
    return lines


def default_name(copybook: Path, record: str) -> str:
    """``batch.<copybook>.<record without the copybook prefix>``: TXNHIST.cpy TXNHIST-DETAIL -> batch.txnhist.detail."""
    stem = copybook.stem.lower()
    rec = record.lower()
    rest = rec[len(stem) + 1:] if rec.startswith(stem + "-") else rec
    return f"batch.{stem}.{rest.replace('-', '_')}"


def skeleton(copybook: Path, layout: Item, *, contract_path: str, name: str, target: str, direction: str,
             codepage: str) -> str:
    """The text of a mapping file for one 01 record: source filled in, every field as a commented rule,
    a generated sample record as the example (its output left for the author)."""
    sample = sample_record(layout)
    lines = [
        f"# {layout.name} of {copybook.name} -> canonical {target}.",
        "# A skeleton written by `corebridge mappings new`. Next:",
        "#  1. under `fields:` delete the `[]` and uncomment the rules the target needs; give each its",
        "#     `to:` (a field of the target) and fix the suggested transforms;",
        "#  2. replace the example's input by a real record (`corebridge copybook decode` prints them),",
        "#     and its output by what the mapping must make of it (`corebridge mappings try` prints it);",
        "#  3. `corebridge mappings check THIS-FILE` until it is silent.",
        f"name: {name}",
        "version: 1",
        f"description: {layout.name} records of {copybook.name}.",
        "source:",
        "  kind: copybook",
        "  contract:",
        f"    copybook: {contract_path}",
        f"    record: {layout.name}",
        f"    codepage: {codepage}",
        *_views_lines(layout),
        f"target: {target}",
        f"direction: {direction}",
        "",
        "fields: []",
        f"  # every elementary field of {layout.name} (pos: 1-based byte position, len: bytes)",
        *_rule_lines(layout),
        "",
        "examples:",
        "  - name: a generated sample record (replace it with a real one)",
        "    input:",
        *(_yaml_lines(sample, 6) or ["      {}"]),
        "    output: {}   # the canonical object the input must become",
        "",
    ]
    return "\n".join(lines)


def _guess_target(record: str) -> str:
    words = record.upper().split("-")
    for key, model in _TARGET_WORDS:
        if any(w.startswith(key) for w in words):
            return model
    return "Transaction"


@app.command()
def new(
    copybook: Annotated[Path, typer.Option("--copybook", help="the copybook (.cpy)", show_default=False)],
    record: Annotated[str, typer.Option("--record", "-r", help="the 01 record", show_default=False)],
    target: Annotated[str | None, typer.Option(help=f"the canonical model: {', '.join(MODELS)} (default: "
                                               "guessed from the record name)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write the skeleton here (default: stdout)")] = None,
    name: Annotated[str | None, typer.Option(help="the mapping's name (default: batch.<copybook>.<record>)")] = None,
    direction: Annotated[str, typer.Option(help="read, write or both")] = "read",
    codepage: Annotated[str, typer.Option(help="the data's code page")] = "cp037",
    force: Annotated[bool, typer.Option("--force", help="overwrite --out if it exists")] = False,
) -> None:
    """Start a mapping file for a copybook record: every field listed as a commented rule.

    Example: corebridge mappings new --copybook mappings/copybooks/TXNHIST.cpy --record TXNHIST-DETAIL
    --target Transaction --out mappings/batch/txnhist_new.yaml
    """
    book = load_copybook_or_exit(copybook)
    layout = record_or_exit(book, record)
    if direction not in ("read", "write", "both"):
        fail(f"--direction must be read, write or both, not {direction!r}")
    if target is None:
        target = _guess_target(layout.name)
        typer.echo(f"note: target {target} guessed from the record name (pass --target; models: "
                   f"{', '.join(MODELS)})", err=True)
    elif target not in MODELS:
        fail(f"--target {target!r}: not a canonical model"
             + (f" ({hint})" if (hint := did_you_mean(target, MODELS)) else f"; models: {', '.join(MODELS)}"))
    base = (out.parent if out is not None else Path.cwd()).resolve()
    contract_path = Path(os.path.relpath(copybook.resolve(), base)).as_posix()
    text = skeleton(copybook, layout, contract_path=contract_path, name=name or default_name(copybook, layout.name),
                    target=target, direction=direction, codepage=codepage)
    # the sample must be a valid record: prove it with the codec before handing it out
    try:
        codec = RecordCodec(layout, codepage=codepage, view_errors="null")
        from mappings.engine.contracts import load_copybook_record

        fields = load_copybook_record(copybook, layout.name).fields
        codec.decode(codec.encode(coerce_record(sample_record(layout), fields), fill_missing=True))
    except (CopybookError, ValueError) as exc:
        typer.echo(f"warning: the generated sample does not encode ({exc}); fix the example's input", err=True)
    if out is None:
        typer.echo(text, nl=False)
        typer.echo(f"note: the copybook path ({contract_path}) is relative to the current directory; a "
                   "mapping file's paths are relative to the file (--out makes them so)", err=True)
        return
    if out.exists() and not force:
        fail(f"{out} exists (pass --force to overwrite)")
    out.write_text(text, encoding="utf-8")
    listed = sum(1 for line in text.splitlines() if line.lstrip(" #").startswith("from: "))
    typer.echo(f"wrote {out}: {listed} fields listed; next: corebridge mappings check {out}", err=True)
