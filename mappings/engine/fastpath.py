"""The fast path of reading: a mapping's rules generated into one Python function.

:class:`~mappings.engine.compiler.CompiledMapping` keeps the rules as closures (the reference,
with precise errors) and also generates, once, a read function from the same closures:

* one function body for all rules (no per-rule call, no per-rule try/except); every legacy field
  the rules read is read once, at the top;
* transforms that carry an inline form (``fn.fast``, see :mod:`mappings.engine.transforms`:
  trim, null_if, integer, concat, code, date, datetime, money) are pasted in as expressions;
  the others are called as they are;
* ``mode="tuple"``: instead of a record dict, the function takes record bytes, calls a
  :meth:`RecordCodec.projection <mappings.copybook.RecordCodec.projection>` that decodes only the
  fields the rules read (as a tuple), and validates the target model: bytes to canonical object
  in one call (``CompiledMapping.record_codec``);
* ``mode="row"``: the function takes a row as a sequence (a DB-API / pyodbc row) whose columns
  are ``columns``, and reads field ``NAME`` as ``row[i]`` -- what ``dict(zip(columns, row))``
  would give, without building the dict (``CompiledMapping.row_reader``).

Contract: a generated function returns exactly what the closures return (the same dict, in the
same key order), or raises -- anything -- and the caller then runs the closures, which give the
answer or the precise error.  So a failure costs a second run, never a different result.
The generated source holds only identifiers it made up and integers; names, literals and
functions are constants of its namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .paths import SourcePath, parse_source_path
from .schema import UNSET

__all__ = ["NoFastPath", "ReadGen", "fields_set_table", "plannable", "put_nested"]


class NoFastPath(Exception):
    """The rules cannot be generated in the requested mode (the closures are used)."""


class _Fail(Exception):
    """Raised by generated code where a closure would report an error: the closures take over."""


class ReadGen:
    """Generates ``_read(r, c) -> object`` (modes "dict" and "row") or ``_read(b, o=0) -> object`` (mode "tuple")."""

    def __init__(self, specs: list, mode: str, getter: Callable[[SourcePath], Callable],
                 finish: Callable[[dict], Any], plan: Any = None, columns: tuple[str, ...] = ()) -> None:
        self.specs = specs
        self.mode = mode
        #: mode "row": column name -> index (the last one wins, as in dict(zip(columns, row)))
        self.columns = {name: k for k, name in enumerate(columns)}
        self.getter = getter  # SourcePath -> getter closure (r, c) -> value
        self.finish = finish  # the model's validator (dict -> object)
        # a canonical.builder.ModelPlan: build the object here instead of a dict for `finish`
        self.plan = plan if plan is not None and plannable(specs, plan) else None
        #: with a plan: model field -> (variable, always set?)
        self.slots: dict[str, tuple[str, bool]] = {}
        self.promises: dict[str, dict | None] = {}
        self.ns: dict[str, Any] = {
            "__builtins__": {"type": type, "str": str, "int": int, "map": map, "list": list,
                             "isinstance": isinstance, "len": len, "set": set},
            "_Fail": _Fail,
        }
        self._ids: dict[int, str] = {}
        self._keep: list[Any] = []
        self.n = 0
        self.lines: list[str] = []
        #: legacy paths read, in order of first use: segments -> local variable
        self.reads: dict[tuple, str] = {}
        self._paths: dict[tuple, SourcePath] = {}

    # -- names ------------------------------------------------------------------------------------
    def const(self, value: Any) -> str:
        name = self._ids.get(id(value))
        if name is None:
            self.n += 1
            name = f"_k{self.n}"
            self._ids[id(value)] = name
            self._keep.append(value)
            self.ns[name] = value
        return name

    def var(self, prefix: str = "v") -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def emit(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + line)

    # -- values -----------------------------------------------------------------------------------
    def source(self, path: SourcePath) -> str:
        """An expression for the value of a legacy field (None when absent), as the getters read it."""
        if path.context is not None:
            if self.mode != "dict":
                raise NoFastPath("context records")
            return f"{self.const(self.getter(path))}(r, c)"  # may raise: the closures then report it
        key = tuple(path.segments)
        if self.mode != "dict" and not all(isinstance(s, str) for s in key):
            raise NoFastPath("an indexed path")
        if self.mode == "row" and len(key) != 1:
            raise NoFastPath("a nested path in a flat row")
        local = self.reads.get(key)
        if local is None:
            local = self.reads[key] = self.var("x")
            self._paths[key] = path
        return local

    def apply(self, fn: Callable, v: str, depth: int) -> None:
        fast = getattr(fn, "fast", None)
        if fast is not None:
            template, consts, fields = fast
            names = {name: self.const(value) for name, value in consts.items()}
            names["F"] = self.const(fn)
            names["v"] = v
            for k, text in enumerate(fields):
                names[f"f{k}"] = self.source(parse_source_path(text))
            self.emit(f"{v} = {template.format(**names)}", depth)
        elif self.mode == "dict":
            self.emit(f"{v} = {self.const(fn)}({v}, r, c)", depth)
        elif getattr(fn, "pure", False):
            self.emit(f"{v} = {self.const(fn)}({v}, None, None)", depth)
        else:
            raise NoFastPath("a transform that reads the record")

    # -- rules ------------------------------------------------------------------------------------
    def rule(self, spec: Any) -> None:
        v = self.var()
        depth = 1
        guard = spec.guard
        if guard is not None:
            gspec = getattr(guard, "spec", None)
            if gspec is None:
                raise NoFastPath("guard")
            path, is_in, values = gspec
            g = self.source(path)
            op = "in" if is_in else "not in"
            self.emit(f"if ({g}.strip() if isinstance({g}, str) else {g}) {op} {self.const(values)}:")
            depth = 2
        if spec.constant is not UNSET:
            self.emit(f"{v} = {self.const(spec.constant)}", depth)
        elif spec.parts is not None:
            items = []
            for path, constant, fns in spec.parts:
                p = self.var("p")
                if constant is not UNSET:
                    self.emit(f"{p} = {self.const(constant)}", depth)
                else:
                    self.emit(f"{p} = {self.source(path)}", depth)
                for fn in fns:
                    self.apply(fn, p, depth)
                items.append(p)
            sep = getattr(spec.fns[0], "join_parts", None) if spec.fns else None
            if sep is not None and items:
                # concat of exact str / int parts: format() of those is str(), so an f-string
                # is sep.join(map(str, parts)) without the list (other parts: the closure)
                exact = " and ".join(f"(type({p}) is str or type({p}) is int)" for p in items)
                joined = "f'" + f"{{{self.const(sep)}}}".join(f"{{{p}}}" for p in items) + "'"
                self.emit(f"{v} = {joined} if {exact} else {self.const(spec.fns[0])}([{', '.join(items)}], None, None)",
                          depth)
                for fn in spec.fns[1:]:
                    self.apply(fn, v, depth)
                self.close(spec, v, guard)
                return
            self.emit(f"{v} = [{', '.join(items)}]", depth)
        elif spec.source is not None:
            self.emit(f"{v} = {self.source(spec.source)}", depth)
        else:
            self.emit(f"{v} = None", depth)
        for fn in spec.fns:
            self.apply(fn, v, depth)
        self.close(spec, v, guard)

    def close(self, spec: Any, v: str, guard: Any) -> None:
        """The end of a rule: the guard's else, then the default / required / store."""
        if guard is not None:
            self.emit("else:")
            self.emit(f"{v} = None", 2)
        if self.plan is not None:
            if spec.default is not UNSET:
                self.emit(f"if {v} is None:")
                self.emit(f"{v} = {self.const(spec.default)}", 2)
            elif spec.required:
                self.emit(f"if {v} is None:")
                self.emit("raise _Fail", 2)
            self.slots[spec.dst[0]] = (v, spec.default is not UNSET or spec.required)
            # what the transforms promise about the result (a default could be anything)
            self.promises[spec.dst[0]] = _promise(spec.fns) if spec.default is UNSET else None
            return
        if len(spec.dst) == 1:
            store = f"out[{self.const(spec.dst[0])}] = {v}"
        else:
            store = f"{self.const(put_nested)}(out, {self.const(spec.dst)}, {v})"
        if spec.default is not UNSET:
            self.emit(f"if {v} is None:")
            self.emit(f"{v} = {self.const(spec.default)}", 2)
            self.emit(store)
        elif spec.required:
            self.emit(f"if {v} is None:")
            self.emit("raise _Fail", 2)
            self.emit(store)
        else:
            self.emit(f"if {v} is not None:")
            self.emit(store, 2)

    def construct(self) -> None:
        """The model instance, as pydantic-core builds it, when every value passes its check."""
        plan = self.plan
        values = []
        optional, table = fields_set_table(self.slots)
        if not optional:
            table = None  # one fields set: a constant below
        if table is not None:
            self.emit("m = 0")
        elif optional:
            self.emit(f"fs = set({self.const(frozenset(n for n, (_, a) in self.slots.items() if a))})")
        for name, (_, required, default) in plan.fields.items():
            slot = self.slots.get(name)
            if slot is None:
                values.append(f"{self.const(name)}: {self.const(default)}")
                continue
            v, always = slot
            cond, conv = plan.check(name, v)
            promise = self.promises.get(name)
            if promise is not None:  # None never reaches the check: it is refused or left out above
                promise = dict(promise)
                if promise["types"] is not None:
                    promise["types"] = promise["types"] - {type(None)}
                if promise["values"] is not None:
                    promise["values"] = tuple(x for x in promise["values"] if x is not None)
            if promise is not None and _always_passes(plan, name, promise):
                cond = None  # every value the transform can give passes: no check
            depth = 1
            if not always:
                if required:  # pydantic: field required
                    self.emit(f"if {v} is None:")
                    self.emit("raise _Fail", 2)
                self.emit(f"if {v} is not None:")
                depth = 2
            if cond is not None:
                self.emit(f"if not ({cond}):", depth)
                self.emit("raise _Fail", depth + 1)
            if conv is not None:
                self.emit(f"{v} = {conv}", depth)
            if not always:
                if table is not None:
                    self.emit(f"m |= {1 << optional.index(name)}", 2)
                else:
                    self.emit(f"fs.add({self.const(name)})", 2)
                self.emit("else:")
                self.emit(f"{v} = {self.const(default)}", 2)
            values.append(f"{self.const(name)}: {v}")
        self.emit("o = _b_new(_b_model)")
        self.emit("_b_set_dict(o, {" + ", ".join(values) + "})")
        if table is not None:
            self.emit(f"_b_set_fields_set(o, set({self.const(table)}[m]))")
        elif optional:
            self.emit("_b_set_fields_set(o, fs)")
        else:
            fixed = frozenset(self.slots)
            self.emit(f"_b_set_fields_set(o, set({self.const(fixed)}))")
        self.emit("_b_set_extra(o, None)")
        self.emit("_b_set_private(o, None)")
        for k in range(len(plan.after)):
            self.emit(f"o = _b_after[{k}](o)")
        self.emit("return o")

    def build(self, project: Callable[[list[tuple]], Callable | None] | None = None
              ) -> tuple[Callable, str, list[tuple]]:
        """The function, its source and the legacy paths it reads.  Mode "tuple": *project* gets
        those paths and returns the codec's projection function (or None)."""
        for spec in self.specs:
            self.rule(spec)
        if self.plan is not None:
            self.construct()
        body, self.lines = self.lines, []
        paths = list(self.reads)
        if self.mode == "dict":
            self.lines.append("def _read(r, c):")
            for key, local in self.reads.items():
                if len(key) == 1:
                    self.emit(f"{local} = r.get({self.const(key[0])})")
                else:
                    self.emit(f"{local} = {self.const(self.getter(self._paths[key]))}(r, c)")
        elif self.mode == "row":
            self.lines.append("def _read(r, c=None):")
            for key, local in self.reads.items():
                index = self.columns.get(key[0])
                self.emit(f"{local} = None" if index is None else f"{local} = r[{int(index)}]")
        else:
            assert project is not None
            projection = project(paths)
            if projection is None:
                raise NoFastPath("no projection of the record")
            self.lines.append("def _read(b, o=0):")  # the record at offset o of b, as projections take it
            if self.reads:
                self.emit(f"{', '.join(self.reads.values())}, = {self.const(projection)}(b, o)")
        if self.plan is None:
            self.emit("out = {}")
            self.lines.extend(body)
            self.emit(f"return {self.const(self.finish)}(out)")
        else:
            self.lines.extend(body)
            self.ns.update(self.plan.namespace)
        source = "\n".join(self.lines) + "\n"
        exec(compile(source, "<mapping read>", "exec"), self.ns)  # noqa: S102 - generated identifiers only
        fn = self.ns["_read"]
        fn.source = source
        return fn, source, paths


def _always_passes(plan: Any, name: str, promise: dict) -> bool:
    try:
        return bool(plan.always_passes(name, **promise))
    except Exception:  # noqa: BLE001 - e.g. an unhashable code value: keep the check
        return False


def _promise(fns: list[Callable]) -> dict | None:
    """What the chain's result always is (``fn.returns`` of the last transform that declares
    one, through transforms that only pass their input on or give None), or None if unknown."""
    passed_none = False
    for fn in reversed(fns):
        promise = getattr(fn, "returns", None)
        if promise is not None:
            if passed_none and promise["types"] is not None:
                promise = {**promise, "types": promise["types"] | {type(None)}}
            elif passed_none and promise["values"] is not None:
                promise = {**promise, "values": (*promise["values"], None)}
            return promise
        if not getattr(fn, "passes_through", False):
            return None
        passed_none = True
    return None


def plannable(specs: list, plan: Any) -> bool:
    """Whether generated code can build *plan*'s model from these rules: every rule sets a distinct
    top-level field of the model, every required field is set."""
    names = [spec.dst[0] for spec in specs if len(spec.dst) == 1]
    if len(names) != len(specs) or len(set(names)) != len(names):
        return False
    if any(name not in plan.fields for name in names):
        return False
    return all(name in names for name, (_, required, _) in plan.fields.items() if required)


def fields_set_table(slots: dict[str, tuple[Any, bool]]) -> tuple[list[str], tuple[frozenset, ...] | None]:
    """The optional fields (slot -> (value, always set?)) and the fields set for each mask of them
    (bit k: optional field k was given), or None past 10 optional fields (generated code then adds
    to a set)."""
    optional = [name for name, (_, always) in slots.items() if not always]
    if len(optional) > 10:
        return optional, None
    base = frozenset(name for name, (_, always) in slots.items() if always)
    return optional, tuple(base | {name for k, name in enumerate(optional) if mask >> k & 1}
                           for mask in range(1 << len(optional)))


def put_nested(out: dict, parts: tuple[str, ...], v: Any) -> None:
    """``out[parts[0]][parts[1]]... = v``, creating the dicts on the way."""
    node = out
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        node = nxt
    node[parts[-1]] = v
