"""The legacy side's published contracts, read just enough to know their fields.

* SOAP: the WSDL (operation -> request/response element) and the XSD it imports (element
  trees, text widths from ``maxLength``, ``minOccurs``/``maxOccurs``), parsed with lxml
  hardened: no DTD, no entity expansion, no network; a DOCTYPE is refused outright.
* ODBC: the DDL file's ``CREATE TABLE`` statements (CHAR(n) width, DECIMAL(p,s), NOT NULL).
* Copybook: the COBOL copybook through ``mappings.copybook`` (groups, OCCURS, 88-levels).

Each becomes a tree of :class:`FieldInfo` shaped like the record dict the adapter hands the
engine, so that the checker can resolve a mapping's ``from`` paths and the compiler can learn
widths (to pad on write) and 88-level code tables. Parsed files are cached by path and mtime.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

__all__ = [
    "ContractError",
    "FieldInfo",
    "RecordContract",
    "load_copybook_record",
    "load_ddl",
    "load_wsdl",
    "parse_ddl",
]

XSD_NS = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_NS = {"xsd": XSD_NS, "wsdl": WSDL_NS}
_MODEL_GROUPS = {f"{{{XSD_NS}}}sequence", f"{{{XSD_NS}}}all", f"{{{XSD_NS}}}choice"}


class ContractError(Exception):
    """A contract file that cannot be read, or a name it does not define."""

    def __init__(self, message: str, *, candidates: list[str] | None = None) -> None:
        super().__init__(message)
        self.candidates = candidates or []


@dataclass
class FieldInfo:
    """One field of a legacy record as its contract declares it."""

    name: str
    kind: str  # "text", "numeric" or "group"
    type_name: str = ""
    width: int | None = None  # characters of a text field
    digits: int | None = None
    scale: int = 0
    required: bool = True
    repeated: bool = False  # a list in the record dict (maxOccurs > 1, OCCURS)
    children: dict[str, FieldInfo] = field(default_factory=dict)
    conditions: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # 88-levels
    line: int = 0

    @property
    def numeric(self) -> bool:
        return self.kind == "numeric"

    def describe(self) -> str:
        return f"{self.name} ({self.type_name or self.kind})"


@dataclass
class RecordContract:
    """The fields of one legacy record shape (an XSD element, a table's columns, an 01 record)."""

    description: str
    file: str
    fields: dict[str, FieldInfo]

    def lookup(self, names: tuple[str, ...]) -> FieldInfo | None:
        level = self.fields
        info = None
        for name in names:
            info = level.get(name)
            if info is None:
                return None
            level = info.children
        return info

    def all_paths(self) -> Iterator[str]:
        def walk(level: dict[str, FieldInfo], prefix: str) -> Iterator[str]:
            for name, info in level.items():
                path = f"{prefix}{name}"
                yield path
                yield from walk(info.children, path + ".")

        yield from walk(self.fields, "")

    def siblings(self, names: tuple[str, ...]) -> list[str]:
        """Names valid at the level where ``names[-1]`` was looked up (for hints)."""
        level = self.fields
        for name in names[:-1]:
            info = level.get(name)
            if info is None:
                return []
            level = info.children
        return list(level)


# -- caching ----------------------------------------------------------------------------------
_cache: dict[tuple[str, str], tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def file_stamp(path: Path) -> tuple[str, int, int] | tuple[str, None, None]:
    try:
        st = os.stat(path)
    except OSError:
        return str(path), None, None
    return str(path), st.st_mtime_ns, st.st_size


def _cached(kind: str, path: Path, build):
    """Parse a contract file once per version; an object with ``files`` is also invalidated by them."""
    key = (kind, str(path.resolve()))
    try:
        os.stat(path)
    except OSError as exc:
        raise ContractError(f"contract file {path} cannot be read: {exc.strerror}") from None
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == tuple(file_stamp(p) for p in getattr(hit[1], "files", [path])):
        return hit[1]
    value = build(path)
    stamps = tuple(file_stamp(p) for p in getattr(value, "files", [path]))
    with _cache_lock:
        _cache[key] = (stamps, value)
    return value


# -- XML (WSDL + XSD), hardened ------------------------------------------------------------------
def _parse_xml(path: Path) -> etree._ElementTree:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=True, remove_pis=True,
    )
    data = path.read_bytes()
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ContractError(f"{path}: DOCTYPE/ENTITY declarations are refused in contract files")
    try:
        tree = etree.ElementTree(etree.fromstring(data, parser))
    except etree.XMLSyntaxError as exc:
        raise ContractError(f"{path}: not well-formed XML: {exc}") from None
    if tree.docinfo.doctype:
        raise ContractError(f"{path}: DOCTYPE declarations are refused in contract files")
    return tree


def _local(qname: str | None) -> str:
    return (qname or "").rpartition(":")[2]


class XsdSchema:
    def __init__(self, path: Path) -> None:
        self.path = path
        root = _parse_xml(path).getroot()
        if root.tag != f"{{{XSD_NS}}}schema":
            raise ContractError(f"{path}: not an XML Schema")
        self.elements = {e.get("name"): e for e in root.findall("xsd:element", _NS)}
        self.complex = {e.get("name"): e for e in root.findall("xsd:complexType", _NS)}
        self.simple = {e.get("name"): e for e in root.findall("xsd:simpleType", _NS)}

    def element_fields(self, name: str) -> FieldInfo:
        el = self.elements.get(name)
        if el is None:
            raise ContractError(f"{self.path.name}: no element {name!r}", candidates=list(self.elements))
        return self._element(el, depth=0)

    def _element(self, el: etree._Element, depth: int) -> FieldInfo:
        if depth > 32:
            raise ContractError(f"{self.path}: element nesting too deep")
        name = el.get("name") or _local(el.get("ref"))
        required = el.get("minOccurs", "1") != "0"
        max_occurs = el.get("maxOccurs", "1")
        repeated = max_occurs == "unbounded" or (max_occurs.isdigit() and int(max_occurs) > 1)
        line = el.sourceline or 0
        type_name = el.get("type")
        inline_complex = el.find("xsd:complexType", _NS)
        inline_simple = el.find("xsd:simpleType", _NS)
        if inline_complex is not None or (type_name and _local(type_name) in self.complex
                                          and not type_name.startswith("xsd:")):
            ctype = inline_complex if inline_complex is not None else self.complex[_local(type_name)]
            children: dict[str, FieldInfo] = {}
            for group in ctype:
                if group.tag not in _MODEL_GROUPS:
                    continue
                for child in group.iterchildren(f"{{{XSD_NS}}}element"):
                    info = self._element(child, depth + 1)
                    if group.tag != f"{{{XSD_NS}}}sequence":
                        info.required = False  # xsd:choice / xsd:all members
                    children[info.name] = info
            return FieldInfo(name, "group", type_name or "(anonymous)", required=required, repeated=repeated,
                             children=children, line=line)
        simple = inline_simple
        if simple is None and type_name and not type_name.startswith("xsd:"):
            simple = self.simple.get(_local(type_name))
        kind, width = "text", None
        base = type_name or ""
        if simple is not None:
            restriction = simple.find("xsd:restriction", _NS)
            if restriction is not None:
                base = restriction.get("base", base)
                max_len = restriction.find("xsd:maxLength", _NS)
                length = restriction.find("xsd:length", _NS)
                if max_len is not None:
                    width = int(max_len.get("value"))
                elif length is not None:
                    width = int(length.get("value"))
        if _local(base) in ("int", "integer", "long", "short", "decimal", "nonNegativeInteger",
                            "positiveInteger"):
            kind = "numeric"
        return FieldInfo(name, kind, type_name or base, width=width, required=required, repeated=repeated,
                         line=line)


class WsdlContract:
    """A WSDL 1.1 document/literal service and the XSD(s) it imports."""

    def __init__(self, path: Path) -> None:
        self.path = path
        root = _parse_xml(path).getroot()
        if root.tag != f"{{{WSDL_NS}}}definitions":
            raise ContractError(f"{path}: not a WSDL 1.1 definitions document")
        self.schemas: list[XsdSchema] = []
        for imp in root.iterfind(".//xsd:import", _NS):
            loc = imp.get("schemaLocation")
            if not loc or "://" in loc or loc.startswith("/"):
                raise ContractError(f"{path}: schemaLocation {loc!r} must be a relative file name")
            self.schemas.append(_cached("xsd", path.parent / loc, XsdSchema))
        #: every file this contract was read from (the cache and the registry watch them)
        self.files = [path, *(x.path for x in self.schemas)]
        messages = {}
        for msg in root.findall("wsdl:message", _NS):
            part = msg.find("wsdl:part", _NS)
            if part is not None and part.get("element"):
                messages[msg.get("name")] = _local(part.get("element"))
        self.operations: dict[str, dict[str, str]] = {}
        for op in root.iterfind("wsdl:portType/wsdl:operation", _NS):
            io = {}
            for role, tag in (("request", "input"), ("response", "output")):
                node = op.find(f"wsdl:{tag}", _NS)
                if node is not None:
                    io[role] = messages.get(_local(node.get("message")), "")
            self.operations[op.get("name")] = io

    def message_element(self, operation: str, message: str) -> str:
        ops = self.operations.get(operation)
        if ops is None:
            raise ContractError(f"{self.path.name}: no operation {operation!r}", candidates=list(self.operations))
        name = ops.get(message)
        if not name:
            raise ContractError(f"{self.path.name}: operation {operation} has no {message} message")
        return name

    def element_fields(self, name: str) -> FieldInfo:
        for schema in self.schemas:
            if name in schema.elements:
                return schema.element_fields(name)
        raise ContractError(f"no element {name!r} in the schemas of {self.path.name}")

    def record(self, operation: str, message: str = "response", element: str | None = None) -> RecordContract:
        top = self.element_fields(self.message_element(operation, message))
        info = top
        where = top.name
        for name in (element.split(".") if element else []):
            child = info.children.get(name)
            if child is None:
                raise ContractError(f"{where} has no element {name!r}", candidates=list(info.children))
            info, where = child, f"{where}/{name}"
        if info.kind != "group":
            raise ContractError(f"{where} is a simple element, not a record")
        return RecordContract(f"{self.path.name} {operation} {message} {where}", str(self.path), info.children)


def load_wsdl(path: str | Path) -> WsdlContract:
    return _cached("wsdl", Path(path), WsdlContract)


# -- DDL ------------------------------------------------------------------------------------------
_CREATE = re.compile(r"CREATE\s+TABLE\s+([A-Za-z_][\w]*)\s*\((.*?)\)\s*;", re.IGNORECASE | re.DOTALL)
_COLUMN = re.compile(r"([A-Za-z_]\w*)\s+([A-Za-z]+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?(.*)\Z",
                     re.IGNORECASE | re.DOTALL)
_NUMERIC_TYPES = {"DECIMAL", "NUMERIC", "DEC", "INTEGER", "INT", "SMALLINT", "BIGINT"}
_TEXT_TYPES = {"CHAR", "CHARACTER", "VARCHAR", "GRAPHIC", "VARGRAPHIC", "TEXT"}


def _split_top(body: str) -> list[tuple[str, int]]:
    """Split a table body at top-level commas; returns (item, offset in body)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append((body[start:i], start))
            start = i + 1
    items.append((body[start:], start))
    return items


def parse_ddl(text: str, filename: str = "<ddl>") -> dict[str, dict[str, FieldInfo]]:
    """``{table: {column: FieldInfo}}`` from the CREATE TABLE statements of a DDL script."""
    clean = re.sub(r"--[^\n]*", lambda m: " " * len(m.group(0)), text)
    tables: dict[str, dict[str, FieldInfo]] = {}
    for m in _CREATE.finditer(clean):
        table = m.group(1).upper()
        cols: dict[str, FieldInfo] = {}
        for item, offset in _split_top(m.group(2)):
            spec = item.strip()
            if not spec or spec.split()[0].upper() in ("PRIMARY", "UNIQUE", "CONSTRAINT", "FOREIGN", "CHECK"):
                continue
            cm = _COLUMN.match(spec)
            if not cm:
                raise ContractError(f"{filename}: cannot read column definition {spec!r} of {table}")
            name, typ, p, s, rest = cm.groups()
            typ = typ.upper()
            line = clean.count("\n", 0, m.start(2) + offset + (len(item) - len(item.lstrip()))) + 1
            required = "NOT NULL" in " ".join(rest.upper().split()) or "PRIMARY KEY" in rest.upper()
            type_name = typ + (f"({p}{',' + s if s else ''})" if p else "")
            if typ in _NUMERIC_TYPES:
                cols[name.upper()] = FieldInfo(name.upper(), "numeric", type_name, digits=int(p) if p else None,
                                               scale=int(s or 0), required=required, line=line)
            elif typ in _TEXT_TYPES:
                cols[name.upper()] = FieldInfo(name.upper(), "text", type_name, width=int(p) if p else None,
                                               required=required, line=line)
            else:
                cols[name.upper()] = FieldInfo(name.upper(), "text", type_name, required=required, line=line)
        tables[table] = cols
    return tables


class DdlContract:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tables = parse_ddl(path.read_text(encoding="utf-8"), path.name)

    def table(self, name: str) -> dict[str, FieldInfo]:
        cols = self.tables.get(name.upper())
        if cols is None:
            raise ContractError(f"{self.path.name}: no table {name!r}", candidates=list(self.tables))
        return cols

    def record(self, table: str, columns: list[str] | None = None) -> RecordContract:
        own = self.table(table)
        if not columns:
            return RecordContract(f"{self.path.name} table {table}", str(self.path), dict(own))
        fields: dict[str, FieldInfo] = {}
        for spec in columns:
            col, alias = parse_column_spec(spec)
            tname, _, cname = col.rpartition(".")
            source = self.table(tname) if tname else own
            info = source.get(cname.upper())
            if info is None:
                raise ContractError(f"{self.path.name}: table {tname or table} has no column {cname!r}",
                                    candidates=list(source))
            name = (alias or cname).upper()
            fields[name] = FieldInfo(name, info.kind, info.type_name, width=info.width, digits=info.digits,
                                     scale=info.scale, required=info.required, line=info.line)
        return RecordContract(f"{self.path.name} table {table} (selected columns)", str(self.path), fields)


_COLSPEC = re.compile(r"([A-Za-z_][\w.]*)(?:\s+AS\s+([A-Za-z_]\w*))?\Z", re.IGNORECASE)


def parse_column_spec(spec: str) -> tuple[str, str | None]:
    """``"CTLREC.CTL_VALUE AS AS_OF_DT"`` -> ``("CTLREC.CTL_VALUE", "AS_OF_DT")``."""
    m = _COLSPEC.match(spec.strip())
    if not m:
        raise ContractError(f"column {spec!r} is not COLUMN, TABLE.COLUMN or TABLE.COLUMN AS ALIAS")
    return m.group(1), m.group(2)


def load_ddl(path: str | Path) -> DdlContract:
    return _cached("ddl", Path(path), DdlContract)


# -- copybooks ------------------------------------------------------------------------------------
def _copybook(path: Path):
    from mappings.copybook import CopybookError, load_copybook

    try:
        return load_copybook(path)
    except CopybookError as exc:
        raise ContractError(f"{path.name}: {exc}") from None


def _item_info(item) -> FieldInfo:
    repeated = item.occurs is not None
    if item.is_group:
        return FieldInfo(item.name, "group", "group", repeated=repeated, children=_children(item),
                         line=item.line)
    pic = item.picture
    usage = item.usage.value if item.usage.value != "DISPLAY" else ""
    type_name = f"PIC {pic.text}" + (f" {usage}" if usage else "")
    conditions = {c.name: tuple(v.low for v in c.values) for c in item.conditions}
    if pic.numeric:
        return FieldInfo(item.name, "numeric", type_name, digits=pic.digits, scale=pic.scale,
                         repeated=repeated, conditions=conditions, line=item.line)
    return FieldInfo(item.name, "text", type_name, width=pic.size, repeated=repeated,
                     conditions=conditions, line=item.line)


def _children(group) -> dict[str, FieldInfo]:
    out: dict[str, FieldInfo] = {}
    for child in group.children:
        if child.is_filler:
            if child.is_group and child.occurs is None:
                out.update(_children(child))  # a FILLER group's named fields appear in the parent
            continue
        out[child.name] = _item_info(child)
    return out


def load_copybook_record(path: str | Path, record: str) -> RecordContract:
    book = _cached("copybook", Path(path), _copybook)
    if record.upper() not in book.records:
        raise ContractError(f"{Path(path).name}: no record {record!r}", candidates=list(book.records))
    layout = book.record(record)
    return RecordContract(f"{Path(path).name} record {layout.name}", str(path), _children(layout))


def copybook_layout(path: str | Path, record: str):
    """The parsed 01 record (for building a RecordCodec), cached like the contracts."""
    book = _cached("copybook", Path(path), _copybook)
    return book.record(record)
