"""``check``: everything that can be known about a mapping file without live traffic.

1. the file against the mapping schema (keys, shapes, transform names and parameters);
2. the canonical side: every ``to`` exists in the target model, the value a rule produces fits
   the field's type (a date for a date, Money for Money, a known enum value for an enum), and
   every required field of the model is set;
3. the legacy side: every ``from`` path (and every field a transform or a ``when`` names) exists
   in the contract the file names (WSDL/XSD, DDL, copybook), and the transforms accept the
   field's type (``trim`` on a packed decimal is an error); write mappings set every field the
   contract requires;
4. the examples run (forward, and by round trip for write mappings).

Returns diagnostics ``file:line:col: message (hint)``; an empty list means the file is good.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from canonical import MODELS

from .binding import FieldType, SourceBinding, bind_source, field_type, model_field_names
from .compiler import PARENT, CompiledMapping, compile_spec
from .contracts import FieldInfo, RecordContract
from .errors import Diagnostic, MappingError, did_you_mean
from .examples import run_examples
from .paths import PathSyntaxError, SourcePath, parse_canonical_path, parse_source_path
from .schema import UNSET, MappingSpec, Pos, Rule, load_spec, parse_spec
from .transforms import REGISTRY

__all__ = ["check_file", "check_spec", "check_text"]

_HINT_FOR = {
    "date": "convert with the date transform, e.g. {date: CYYMMDD}",
    "datetime": "combine date and time with {datetime: {time_field: ..., tz: UTC}}",
    "money": "use the money transform ({money: {currency: CURR-CD}}) or set .amount and .currency",
    "decimal": "convert with decimal or implied_decimal",
    "str": "text comes from trim/case/code, or integer with as_text: true",
    "enum": "translate the legacy code with {code: {map: {...}}}",
    "list": "map a repeated group with `items:`",
}


def _source_kinds(kind: str, info: FieldInfo | None) -> frozenset[str]:
    """What Python types the adapter hands over for a contract field."""
    if info is None:
        return frozenset({"any"})
    if info.repeated:
        return frozenset({"list"})
    if info.kind == "group":
        return frozenset({"dict"})
    if info.kind == "text":
        return frozenset({"str"})
    if kind == "odbc":
        return frozenset({"str", "decimal"})  # SQLite ODBC: text; psqlODBC: Decimal
    if kind == "copybook":
        return frozenset({"decimal"}) if info.scale else frozenset({"int"})
    return frozenset({"str", "int"})


def _value_kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "any"


def _fits(produced: frozenset[str], ft: FieldType) -> str | None:
    """None when values of the produced kinds fit the field; else the first kind that does not."""
    if "any" in produced or "any" in ft.kinds:
        return None
    for p in sorted(produced):
        if p == "none":
            continue
        if p in ft.kinds:
            continue
        if p == "str" and ("enum" in ft.kinds or "decimal" in ft.kinds):
            continue
        if p == "int" and "decimal" in ft.kinds:
            continue
        if p == "dict" and "model" in ft.kinds:
            continue
        if p == "list" and "list" in ft.kinds:
            continue
        return p
    return None


class _Checker:
    def __init__(self, spec: MappingSpec, binding: SourceBinding) -> None:
        self.spec = spec
        self.binding = binding
        self.diags: list[Diagnostic] = []
        self.kind = spec.source.kind
        self.parents: list[RecordContract | None] = []  # enclosing records inside `items`

    def error(self, pos: Pos, message: str, hint: str | None = None, severity: str = "error") -> None:
        self.diags.append(Diagnostic(self.spec.file, pos.line, pos.col, message, hint, severity))

    # -- legacy side --------------------------------------------------------------------------
    def legacy(self, text: str, pos: Pos, scope: RecordContract | None, what: str) -> tuple[SourcePath | None,
                                                                                            FieldInfo | None]:
        try:
            path = parse_source_path(text)
        except PathSyntaxError as exc:
            self.error(pos, str(exc))
            return None, None
        if path.context is not None and path.context == PARENT and self.parents:
            contract = self.parents[-1]
        elif path.context is not None:
            if path.context not in self.spec.source.context:
                self.error(pos, f"{what} {text!r} names the context record {path.context!r}, which "
                           "source.context does not declare",
                           did_you_mean(path.context, self.spec.source.context))
                return path, None
            contract = self.binding.contexts.get(path.context)
        else:
            contract = scope
        if contract is None:
            return path, None  # no contract loaded: reported elsewhere
        info = contract.lookup(path.names)
        if info is None:
            leaf_level = contract.siblings(path.names)
            missing = next((n for i, n in enumerate(path.names) if contract.lookup(path.names[: i + 1]) is None),
                           path.leaf)
            hint = did_you_mean(missing, leaf_level) or did_you_mean(text, list(contract.all_paths()))
            self.error(pos, f"{what} {text!r}: {contract.description} has no field {missing!r}", hint)
            return path, None
        return path, info

    # -- rules --------------------------------------------------------------------------------------
    def rules(self, rules: list[Rule], scope: RecordContract | None, model: type[BaseModel]) -> None:
        for rule in rules:
            self.rule(rule, scope, model)
        if self.spec.direction != "write":
            self.required_fields(rules, model)
        if self.spec.direction in ("write", "both") and scope is not None and scope is self.binding.root:
            self.required_legacy(rules, scope)

    def rule(self, rule: Rule, scope: RecordContract | None, model: type[BaseModel]) -> None:
        ft: FieldType | None = None
        if rule.to is not None:
            try:
                parts = parse_canonical_path(rule.to).parts
            except PathSyntaxError as exc:
                self.error(rule.at("to"), str(exc))
                parts = None
            if parts is not None:
                res = field_type(model, parts)
                if isinstance(res, str):
                    self.error(rule.at("to"), f"to {rule.to!r}: {res}",
                               did_you_mean(parts[-1], model_field_names(model, parts)))
                else:
                    ft = res
        kinds: frozenset[str] = frozenset({"any"})
        info: FieldInfo | None = None
        path: SourcePath | None = None
        if rule.source is not None:
            path, info = self.legacy(rule.source, rule.at("from"), scope, "from")
            kinds = _source_kinds(self.kind, info)
        if rule.parts is not None:
            for part in rule.parts:
                if part.source is not None:
                    _, p_info = self.legacy(part.source, part.at("from"), scope, "from")
                    self.flow(part, _source_kinds(self.kind, p_info), scope)
            kinds = frozenset({"list"})
        if rule.when is not None:
            self.legacy(rule.when.field, rule.when.pos, scope, "when.field")
        produced, values = self.flow(rule, kinds, scope)
        if rule.constant is not UNSET:
            produced, values = frozenset({_value_kind(rule.constant)}), [rule.constant]
        if rule.default is not UNSET:
            produced = produced | {_value_kind(rule.default)}
            if values is not None:
                values = [*values, rule.default]
        if rule.items is not None:
            if info is not None and not info.repeated:
                self.error(rule.at("items"), f"items: {rule.source} is not a repeated group")
            element = RecordContract(f"{rule.source}[]", self.spec.file, info.children) if info else None
            item_model = ft.model if ft is not None and "list" in ft.kinds else None
            if ft is not None and item_model is None:
                self.error(rule.at("items"), f"items: {self.spec.target}.{rule.to} is not a list of models")
            elif item_model is not None:
                self.parents.append(scope)
                try:
                    for sub in rule.items:
                        self.rule(sub, element, item_model)
                finally:
                    self.parents.pop()
                self.required_fields(rule.items, item_model)
            produced = frozenset({"list"})
        if ft is not None:
            bad = _fits(produced, ft)
            if bad is not None:
                kind_needed = sorted(k for k in ft.kinds if k != "none")
                hint = next((_HINT_FOR[k] for k in kind_needed if k in _HINT_FOR), None)
                self.error(rule.at("to"), f"the rule produces {bad} but {self.spec.target}.{rule.to} is "
                           f"{ft.describe()}", hint)
            elif "enum" in ft.kinds and values is not None:
                for v in values:
                    if v is not None and v not in ft.enum_values:
                        self.error(rule.at("to"), f"{v!r} is not a value of {self.spec.target}.{rule.to} "
                                   f"({', '.join(map(str, ft.enum_values))})",
                                   did_you_mean(str(v), [str(e) for e in ft.enum_values]))
        if rule.source is None and rule.parts is None and rule.constant is UNSET and rule.default is UNSET:
            self.error(rule.pos, f"the rule for {rule.to!r} has no source")
        if rule.direction != "read" and self.spec.direction in ("write", "both") and rule.when is not None:
            self.error(rule.at("when"), "a rule with `when` is read-only: add direction: read", severity="warning")
        if path is not None and path.context is not None and self.spec.direction in ("write", "both") \
                and rule.direction != "read":
            self.error(rule.at("from"), "context records are never written: add direction: read to this rule",
                       severity="warning")

    def flow(self, rule: Rule, kinds: frozenset[str], scope: RecordContract | None) -> tuple[frozenset[str],
                                                                                               list[Any] | None]:
        """Follow the value kinds through the transforms; check side fields; returns (kinds, values)."""
        values: list[Any] | None = None
        for call in rule.transforms:
            td = REGISTRY[call.name]
            for spec in td.params:
                if spec.field and isinstance(call.params.get(spec.name), str):
                    self.legacy(call.params[spec.name], call.param_pos.get(spec.name, call.pos), scope,
                                f"{call.name}.{spec.name}")
            if "any" not in td.accepts and "any" not in kinds:
                wrong = sorted(k for k in kinds if k not in td.accepts and k != "none")
                if wrong:
                    src = f" ({rule.source})" if rule.source else ""
                    self.error(call.pos, f"transform {call.name} takes {'/'.join(sorted(td.accepts))} but gets "
                               f"{'/'.join(wrong)}{src}",
                               "a numeric field needs decimal/integer/date, text needs trim first"
                               if call.name in ("trim", "case", "split") else None)
            if td.output == "same":
                pass
            elif td.output == "any":
                mapping = call.params.get("map")
                if isinstance(mapping, dict):
                    values = list(mapping.values())
                    if "other" in call.params:
                        values.append(call.params["other"])
                    kinds = frozenset(_value_kind(v) for v in values)
                else:
                    kinds = frozenset({"any"})
            elif call.name == "integer" and call.params.get("as_text") is True:
                kinds, values = frozenset({"str"}), None
            else:
                kinds = frozenset({td.output})
                values = None
            if call.name == "null_if":
                kinds = kinds | {"none"}
        return kinds, values

    def views(self) -> None:
        """A copybook source's `views`: the areas, the deciding field and the view names exist."""
        views = self.spec.source.contract.get("views")
        root = self.binding.root
        if self.kind != "copybook" or not isinstance(views, dict) or root is None:
            return
        pos = self.spec.source.contract_pos.get("views", self.spec.source.pos)
        for area, spec in views.items():
            if not isinstance(spec, dict):
                continue
            names = [area, *(spec.get("map") or {}).values(), *([spec["default"]] if spec.get("default") else [])]
            for name in names:
                if root.lookup((str(name),)) is None:
                    self.error(pos, f"views: {root.description} has no item {name!r}",
                               did_you_mean(str(name), root.fields))
            if isinstance(spec.get("field"), str):
                self.legacy(spec["field"], pos, root, "views.field")

    def required_fields(self, rules: list[Rule], model: type[BaseModel]) -> None:
        covered = {r.to.split(".")[0] for r in rules if r.to and r.direction != "write"}
        for name, info in model.model_fields.items():
            if info.is_required() and name not in covered:
                self.error(self.spec.at("fields"), f"{model.__name__}.{name} is required but no rule sets it")

    def required_legacy(self, rules: list[Rule], scope: RecordContract) -> None:
        written: set[str] = set()
        for r in rules:
            if r.direction == "read":
                continue
            for src in [r.source, *[p.source for p in r.parts or []]]:
                if src:
                    try:
                        written.add(parse_source_path(src).names[0])
                    except PathSyntaxError:
                        pass
            for call in r.transforms:
                for spec in REGISTRY[call.name].params:
                    if spec.field and isinstance(call.params.get(spec.name), str):
                        try:
                            written.add(parse_source_path(call.params[spec.name]).names[0])
                        except PathSyntaxError:
                            pass
        for name, info in scope.fields.items():
            if info.required and name not in written and self.kind == "soap":
                self.error(self.spec.at("fields"), f"writing: the contract requires {name} but no rule writes it")


def check_spec(spec: MappingSpec, *, resolve: Callable[[Path], Path] | None = None,
               examples: bool = True) -> tuple[list[Diagnostic], CompiledMapping | None]:
    """Check a parsed spec; returns (diagnostics, the compiled mapping when it compiled)."""
    binding, diags = bind_source(spec, resolve)
    model = MODELS.get(spec.target)
    if model is None:
        diags.append(Diagnostic(spec.file, spec.at("target").line, spec.at("target").col,
                                f"unknown target model {spec.target!r}",
                                did_you_mean(spec.target, MODELS) or f"models: {', '.join(MODELS)}"))
        return diags, None
    if not spec.examples:
        pos = spec.at("fields")
        diags.append(Diagnostic(spec.file, pos.line, pos.col, "the mapping has no examples:",
                                "add at least one legacy input with its expected output"))
    checker = _Checker(spec, binding)
    checker.views()
    checker.rules(spec.rules, binding.root, model)
    diags.extend(checker.diags)
    compiled = None
    try:
        compiled = compile_spec(spec, binding)
    except MappingError as exc:
        seen = {(d.line, d.col, d.message) for d in diags}
        diags.extend(d for d in exc.diagnostics if (d.line, d.col, d.message) not in seen)
    if compiled is not None and examples and not any(d.severity == "error" for d in diags):
        for result in run_examples(compiled):
            if not result.ok:
                ex = result.example
                diags.append(Diagnostic(spec.file, ex.pos.line, ex.pos.col,
                                        f"example {ex.name!r} failed: {result.message}"))
    diags.sort(key=lambda d: (d.line, d.col))
    return diags, compiled


def check_text(text: str, file: str = "<mapping>", **kwargs: Any) -> list[Diagnostic]:
    spec, diags = parse_spec(text, file)
    if spec is None:
        return diags
    more, _ = check_spec(spec, **kwargs)
    return sorted(diags + more, key=lambda d: (d.line, d.col))


def check_file(path: str | Path, **kwargs: Any) -> list[Diagnostic]:
    """All problems of one mapping file, as ``file:line:col: message (hint)`` diagnostics."""
    spec, diags = load_spec(path)
    if spec is None:
        return diags
    more, _ = check_spec(spec, **kwargs)
    return sorted(diags + more, key=lambda d: (d.line, d.col))
