"""Bind a mapping spec to both of its ends: the legacy contract it names and the canonical model.

* :func:`bind_source` reads the contract file the spec's ``source.contract`` points at (relative
  to the mapping file) and returns the record's :class:`~mappings.engine.contracts.RecordContract`
  plus one for every declared ``source.context`` record.
* :func:`field_type` describes a canonical field path (``ledger.amount``) of a target model:
  which kinds of Python value fit, whether it is required, its enum values, the model of a
  list's items.
"""

from __future__ import annotations

import datetime as dt
import enum
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel

from canonical import Money

from .contracts import ContractError, RecordContract, load_copybook_record, load_ddl, load_wsdl
from .errors import Diagnostic, did_you_mean
from .schema import MappingSpec, Pos

__all__ = ["FieldType", "SourceBinding", "bind_source", "field_type", "required_paths"]

Resolver = Callable[[Path], Path]


@dataclass
class SourceBinding:
    root: RecordContract | None
    contexts: dict[str, RecordContract] = field(default_factory=dict)
    contract_file: Path | None = None
    #: every contract file read (WSDL and its XSDs, copybooks of context records)
    files: list[Path] = field(default_factory=list)


def _diag(spec: MappingSpec, pos: Pos, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(spec.file, pos.line, pos.col, message, hint)


def bind_source(spec: MappingSpec, resolve: Resolver | None = None) -> tuple[SourceBinding, list[Diagnostic]]:
    """Load the contract of a spec's source; problems become diagnostics (the binding is partial)."""
    src = spec.source
    c = src.contract
    diags: list[Diagnostic] = []
    binding = SourceBinding(None)
    if not src.kind:
        return binding, diags
    file_key = {"soap": "wsdl", "odbc": "ddl", "copybook": "copybook"}[src.kind]
    if not isinstance(c.get(file_key), str):
        return binding, diags
    path = (spec.base_dir / c[file_key]).resolve()
    if resolve is not None:
        path = resolve(path)
    binding.contract_file = path
    binding.files.append(path)
    pos = src.contract_pos.get(file_key, src.pos)

    def fail(exc: ContractError, at: Pos, word: str | None = None) -> None:
        hint = did_you_mean(word, exc.candidates) if word and exc.candidates else None
        diags.append(_diag(spec, at, str(exc), hint))

    try:
        if src.kind == "soap":
            wsdl = load_wsdl(path)
            binding.files = list(wsdl.files)
            op = c.get("operation")
            message = c.get("message", "response")
            if message not in ("request", "response"):
                diags.append(_diag(spec, src.contract_pos.get("message", pos),
                                   f"message must be request or response, not {message!r}"))
                return binding, diags
            try:
                binding.root = wsdl.record(op, message, c.get("element") or None)
            except ContractError as exc:
                key = "operation" if op not in wsdl.operations else "element"
                fail(exc, src.contract_pos.get(key, pos), op if key == "operation" else c.get("element"))
            for name, entry in src.context.items():
                try:
                    binding.contexts[name] = wsdl.record(op, entry.get("message", "response"),
                                                         entry.get("element") or None)
                except ContractError as exc:
                    fail(exc, src.context_pos.get(name, pos), entry.get("element"))
        elif src.kind == "odbc":
            ddl = load_ddl(path)
            try:
                binding.root = ddl.record(c.get("table", ""), c.get("columns"))
            except ContractError as exc:
                word = c.get("table") if c.get("table", "").upper() not in ddl.tables else None
                at = src.contract_pos.get("table" if word else "columns", pos)
                if word is None and exc.candidates:
                    word = str(exc).rpartition("column ")[2].strip("'")
                fail(exc, at, word)
            for name, entry in src.context.items():
                try:
                    binding.contexts[name] = ddl.record(entry.get("table", ""), entry.get("columns"))
                except ContractError as exc:
                    fail(exc, src.context_pos.get(name, pos), entry.get("table"))
        else:
            try:
                binding.root = load_copybook_record(path, c.get("record", ""))
            except ContractError as exc:
                fail(exc, src.contract_pos.get("record", pos), c.get("record"))
            for name, entry in src.context.items():
                cpath = path
                if entry.get("copybook"):
                    cpath = (spec.base_dir / entry["copybook"]).resolve()
                    if resolve is not None:
                        cpath = resolve(cpath)
                    binding.files.append(cpath)
                try:
                    binding.contexts[name] = load_copybook_record(cpath, entry.get("record", ""))
                except ContractError as exc:
                    fail(exc, src.context_pos.get(name, pos), entry.get("record"))
    except ContractError as exc:
        diags.append(_diag(spec, pos, str(exc)))
    return binding, diags


# -- canonical side ------------------------------------------------------------------------------
@dataclass
class FieldType:
    """What a canonical field accepts."""

    path: str
    kinds: frozenset[str]  # str int decimal bool date datetime money enum model list none any
    required: bool
    enum_values: tuple[Any, ...] = ()
    model: type[BaseModel] | None = None  # for kind "model", or the item model of a "list"
    annotation: Any = None

    def describe(self) -> str:
        names = sorted(k for k in self.kinds if k != "none" and not (k == "model" and "money" in self.kinds))
        if self.model is not None and "model" in names:
            names[names.index("model")] = self.model.__name__
        text = " or ".join(names)
        if "none" in self.kinds:
            text += " (optional)"
        return text


_PYDANTIC_DATETIMES = tuple(getattr(pydantic, n) for n in ("AwareDatetime", "NaiveDatetime", "PastDatetime",
                                                           "FutureDatetime") if hasattr(pydantic, n))
_PYDANTIC_DATES = tuple(getattr(pydantic, n) for n in ("PastDate", "FutureDate") if hasattr(pydantic, n))


def _kinds(annotation: Any) -> tuple[set[str], tuple[Any, ...], type[BaseModel] | None]:
    kinds: set[str] = set()
    enum_values: tuple[Any, ...] = ()
    model: type[BaseModel] | None = None
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            k, e, m = _kinds(arg)
            kinds |= k
            enum_values = enum_values or e
            model = model or m
        return kinds, enum_values, model
    if origin in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        item = args[0] if args else Any
        _, _, m = _kinds(item)
        return {"list"}, (), m
    if annotation is type(None):
        return {"none"}, (), None
    if annotation in _PYDANTIC_DATETIMES:
        return {"datetime"}, (), None
    if annotation in _PYDANTIC_DATES:
        return {"date"}, (), None
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return {"enum"}, tuple(m.value for m in annotation), None
        if issubclass(annotation, Money):
            return {"money", "model"}, (), annotation
        if issubclass(annotation, BaseModel):
            return {"model"}, (), annotation
        if issubclass(annotation, bool):
            return {"bool"}, (), None
        if issubclass(annotation, dt.datetime):
            return {"datetime"}, (), None
        if issubclass(annotation, dt.date):
            return {"date"}, (), None
        if issubclass(annotation, Decimal):
            return {"decimal"}, (), None
        if issubclass(annotation, int):
            return {"int"}, (), None
        if issubclass(annotation, str):
            return {"str"}, (), None
    return {"any"}, (), None


def field_type(model: type[BaseModel], parts: tuple[str, ...]) -> FieldType | str:
    """The :class:`FieldType` at a canonical path, or an error message (with the valid names)."""
    current: type[BaseModel] = model
    ft: FieldType | None = None
    for i, name in enumerate(parts):
        fields = current.model_fields
        info = fields.get(name)
        if info is None:
            where = ".".join(parts[:i]) or current.__name__
            return f"{current.__name__} has no field {name!r}" + (f" (in {where})" if i else "")
        kinds, enum_values, sub = _kinds(info.annotation)
        required = info.is_required()
        ft = FieldType(".".join(parts[: i + 1]), frozenset(kinds), required, enum_values, sub, info.annotation)
        if i < len(parts) - 1:
            if sub is None or "list" in kinds:
                return f"{'.'.join(parts[: i + 1])} is not a nested model (it is {ft.describe()})"
            current = sub
    assert ft is not None
    return ft


def model_field_names(model: type[BaseModel], parts: tuple[str, ...]) -> list[str]:
    """Field names valid at the level of ``parts[-1]`` (for did-you-mean hints)."""
    current: type[BaseModel] = model
    for name in parts[:-1]:
        info = current.model_fields.get(name)
        if info is None:
            return list(current.model_fields)
        _, _, sub = _kinds(info.annotation)
        if sub is None:
            return []
        current = sub
    return list(current.model_fields)


def required_paths(model: type[BaseModel]) -> list[str]:
    """Top-level required fields of a model (the ones a read mapping must set)."""
    return [name for name, info in model.model_fields.items() if info.is_required()]
