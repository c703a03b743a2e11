"""Validated-once construction of canonical models, for generated code: :func:`model_plan`.

The mapping engine's generated read functions (``mappings.engine.fastpath``) build the target
model themselves instead of handing a dict to pydantic: ``model_plan(Transaction)`` tells them,
per field, an inline condition under which pydantic's validator would keep a value exactly as it
is, and how pydantic-core builds the instance.  When every condition holds, the instance they
build is the one ``Transaction.__pydantic_validator__.validate_python(data)`` returns (the same
``__dict__``, in field order with the defaults; ``__pydantic_fields_set__`` the keys given; no
extra, no private); when one does not, they hand the dict to pydantic, which validates (or
raises its ValidationError) as always.

The conditions come from the model's pydantic-core schema (the validator's own description of
what it does), restricted to a whitelist of shapes whose acceptance is a plain type and bound
check:

* ``str`` with ``min_length`` / ``max_length`` / a ``pattern`` made only of anchors, literals,
  ASCII character classes and simple quantifiers (``re.fullmatch``: a full match implies a match
  by pydantic's regex engine; strings that passed are remembered), ``nullable``, ``default``
  (hashable defaults, which pydantic does not copy);
* ``date`` / ``datetime`` (``tz_constraint`` aware) given as exactly ``date`` / ``datetime``
  objects (an aware one with a ``utcoffset()``), which pydantic returns as they are;
  ``function-before`` validators only when registered in :data:`PASSTHROUGH` (they return such
  values unchanged, e.g. the ISO guards of :mod:`canonical.models`);
* a nested model given as an instance of exactly its class (pydantic keeps instances: the
  default ``revalidate_instances='never'``); an ``enum`` given as a member or a member's value;
* ``extra='forbid'`` models without aliases, custom ``__init__``, ``model_post_init`` or private
  attributes; ``mode='after'`` model validators (called on the new instance, as pydantic does;
  when one raises, pydantic runs it again and reports).

A model whose schema leaves the whitelist has no plan (None): callers validate with pydantic.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

__all__ = ["NOOP_WHEN", "PASSTHROUGH", "ModelPlan", "SameValues", "model_plan"]

#: before-validators known to return a value of the given type unchanged: {function: type}
PASSTHROUGH: dict[Callable[..., Any], type] = {}


@dataclass(frozen=True)
class SameValues:
    """A plain condition under which a model validator is known to return the instance unchanged
    and raise nothing: field ``b`` is None (where ``none_ok``), or fields ``a`` and ``b`` (their
    ``attr``, where given) are the same object or equal ``str``. A C row program evaluates it on the
    instance it built (``guard_holds`` in ``mappings/engine/_rowprog.c``, which this mirrors) and
    calls the validator only where it does not hold; the claim of every entry of :data:`NOOP_WHEN`
    is tested on instances of every combination (tests/unit/canonical/test_noop_when.py)."""

    a: str
    b: str
    attr: str | None = None
    none_ok: bool = False

    def holds(self, instance: BaseModel) -> bool:
        fields = vars(instance)
        a, b = fields.get(self.a, _MISSING), fields.get(self.b, _MISSING)
        if b is None:
            return self.none_ok
        if a is _MISSING or b is _MISSING or a is None:
            return False
        if self.attr is not None:
            a = getattr(a, "__dict__", {}).get(self.attr, _MISSING)
            b = getattr(b, "__dict__", {}).get(self.attr, _MISSING)
            if a is _MISSING or b is _MISSING:
                return False
        return a is b or (type(a) is str and type(b) is str and a == b)

    def native(self) -> tuple[str, str, str | None, bool]:
        """The guard as a row program's BUILD takes it."""
        return (self.a, self.b, self.attr, self.none_ok)


#: model validators (mode="after") known to be no-ops where a condition holds: {function: condition}
NOOP_WHEN: dict[Callable[..., Any], SameValues] = {}
_MISSING = object()

_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
# anchors, literals, [ASCII classes] and simple quantifiers: nothing where Python's `re` and the
# regex crate pydantic-core uses could disagree
_SIMPLE_PATTERN = re.compile(r"\^?(?:(?:\[[A-Za-z0-9_\-]+\]|[A-Za-z0-9_\-])(?:[*+?]|\{\d+(?:,\d*)?\})?)*\$?")


# check kinds of a C row program (mappings/engine/_rowprog.c, enum CK_*)
NATIVE_STR, NATIVE_NULLABLE, NATIVE_TYPE, NATIVE_AWARE, NATIVE_ENUM, NATIVE_ALL, NATIVE_ISINSTANCE = range(1, 8)


class _Unsupported(Exception):
    pass


def _remembering(test: Callable[[str], bool], passed: set[str]) -> Callable[[str], bool]:
    """*test*, adding the strings that pass to *passed* (up to 4096): generated code asks
    ``v in passed or check(v)``, a set lookup for the strings it has seen."""

    def check(s: str) -> bool:
        if test(s):
            if len(passed) < 4096:
                passed.add(s)
            return True
        return False

    return check


def _keys(schema: dict, allowed: set[str]) -> None:
    extra = set(schema) - allowed - {"type", "metadata", "ref"}
    if extra:
        raise _Unsupported(f"{schema['type']} schema with {sorted(extra)}")


class _Gen:
    def __init__(self, defs: dict[str, dict]) -> None:
        self.defs = defs
        self.ns: dict[str, Any] = {}
        self.n = 0

    def const(self, value: Any) -> str:
        self.n += 1
        name = f"_b{self.n}"
        self.ns[name] = value
        return name

    def check(self, schema: dict, v: str) -> tuple[str, str | None]:
        """(condition under which pydantic keeps *v* as it is, conversion expression or None)."""
        kind = schema["type"]
        if kind == "definition-ref":
            return self.check(self.defs[schema["schema_ref"]], v)
        if kind == "str":
            _keys(schema, {"min_length", "max_length", "pattern"})
            cond = [f"type({v}) is str"]
            lo, hi = schema.get("min_length"), schema.get("max_length")
            if lo is not None and hi is not None:
                cond.append(f"{int(lo)} <= len({v}) <= {int(hi)}")
            elif lo is not None:
                cond.append(f"len({v}) >= {int(lo)}")
            elif hi is not None:
                cond.append(f"len({v}) <= {int(hi)}")
            pattern = schema.get("pattern")
            if pattern is not None:
                if not isinstance(pattern, str) or not _SIMPLE_PATTERN.fullmatch(pattern):
                    raise _Unsupported(f"pattern {pattern!r}")
                # the check of an exact str is a pure function of it: remember the strings that pass
                lo, hi = lo if lo is not None else 0, hi if hi is not None else float("inf")
                match = re.compile(pattern).fullmatch
                passed: set[str] = set()
                test = _remembering(lambda s: lo <= len(s) <= hi and match(s) is not None, passed)
                return f"type({v}) is str and ({v} in {self.const(passed)} or {self.const(test)}({v}))", None
            return " and ".join(cond), None
        if kind == "nullable":
            _keys(schema, {"schema"})
            inner, conv = self.check(schema["schema"], v)
            if conv is not None:
                raise _Unsupported("nullable conversion")
            return f"({v} is None or ({inner}))", None
        if kind == "date":
            _keys(schema, set())
            return f"type({v}) is {self.const(dt.date)}", None
        if kind == "datetime":
            _keys(schema, {"tz_constraint", "microseconds_precision"})
            tz = schema.get("tz_constraint")
            cond = f"type({v}) is {self.const(dt.datetime)}"
            if tz == "aware":
                utc = self.const(dt.UTC)
                return (f"{cond} and ({v}.tzinfo is {utc} or ({v}.tzinfo is not None and {v}.utcoffset() is not None))",
                        None)
            if tz is None:
                return cond, None
            raise _Unsupported(f"tz_constraint {tz!r}")
        if kind == "function-before":
            _keys(schema, {"function", "schema"})
            fn = schema["function"]
            target = PASSTHROUGH.get(fn.get("function")) if fn.get("type") == "no-info" else None
            if target is None:
                raise _Unsupported("before-validator")
            inner, conv = self.check(schema["schema"], v)
            if conv is not None:
                raise _Unsupported("before-validator conversion")
            # the inner check demands an exact type; it must be one the validator passes through
            exact = {"date": dt.date, "datetime": dt.datetime}.get(schema["schema"]["type"])
            if exact is not None and issubclass(exact, target):
                return inner, None
            return f"{inner} and isinstance({v}, {self.const(target)})", None
        if kind == "model":
            _keys(schema, {"cls", "schema", "config", "custom_init", "root_model", "post_init"})
            if schema.get("config", {}).get("revalidate_instances", "never") != "never":
                raise _Unsupported("revalidated instances")
            return f"type({v}) is {self.const(schema['cls'])}", None
        if kind == "enum":
            _keys(schema, {"cls", "members", "sub_type"})
            cls = schema["cls"]
            if schema.get("sub_type") != "str" or not issubclass(cls, enum.Enum):
                raise _Unsupported("enum")
            values = {m.value: m for m in schema["members"] if type(m.value) is str}
            return (f"(type({v}) is {self.const(cls)} or (type({v}) is str and {v} in {self.const(values)}))",
                    f"({v} if type({v}) is {self.const(cls)} else {self.const(values)}[{v}])")
        raise _Unsupported(kind)

    def native(self, schema: dict) -> tuple:
        """:meth:`check` as a check of a C row program (``mappings/engine/_rowprog.c``): nested tuples
        ``(kind, args...)``, the same conditions, the enum conversion included."""
        kind = schema["type"]
        if kind == "definition-ref":
            return self.native(self.defs[schema["schema_ref"]])
        if kind == "str":
            lo, hi = schema.get("min_length"), schema.get("max_length")
            pattern = schema.get("pattern")
            if pattern is None:
                return (NATIVE_STR, lo, hi, None, None)
            match = re.compile(pattern).fullmatch
            low, high = lo if lo is not None else 0, hi if hi is not None else float("inf")
            passed: set[str] = set()
            return (NATIVE_STR, None, None, passed,
                    _remembering(lambda s: low <= len(s) <= high and match(s) is not None, passed))
        if kind == "nullable":
            return (NATIVE_NULLABLE, self.native(schema["schema"]))
        if kind == "date":
            return (NATIVE_TYPE, dt.date)
        if kind == "datetime":
            if schema.get("tz_constraint") == "aware":
                return (NATIVE_AWARE, dt.UTC)
            return (NATIVE_TYPE, dt.datetime)
        if kind == "function-before":
            target = PASSTHROUGH[schema["function"]["function"]]
            inner = self.native(schema["schema"])
            exact = {"date": dt.date, "datetime": dt.datetime}.get(schema["schema"]["type"])
            if exact is not None and issubclass(exact, target):
                return inner
            return (NATIVE_ALL, inner, (NATIVE_ISINSTANCE, target))
        if kind == "model":
            return (NATIVE_TYPE, schema["cls"])
        if kind == "enum":
            return (NATIVE_ENUM, schema["cls"], {m.value: m for m in schema["members"] if type(m.value) is str})
        raise _Unsupported(kind)

    def plan(self, model: type[BaseModel]) -> ModelPlan:
        core = model.__pydantic_core_schema__
        if core["type"] == "definitions":
            self.defs = {d["ref"]: d for d in core["definitions"]}
            core = core["schema"]
        after = []
        while core["type"] == "function-after":
            fn = core["function"]
            if fn.get("type") != "no-info":
                raise _Unsupported("after-validator with info")
            after.append(fn["function"])
            core = core["schema"]
        if core["type"] == "definition-ref":
            core = self.defs[core["schema_ref"]]
        if core["type"] != "model" or core.get("cls") is not model:
            raise _Unsupported("not a model schema")
        _keys(core, {"cls", "schema", "config", "custom_init", "root_model"})
        if core.get("custom_init") or core.get("root_model") or model.__pydantic_post_init__ is not None:
            raise _Unsupported("custom init / root model / post init")
        if model.__private_attributes__:
            raise _Unsupported("private attributes")
        config = core.get("config", {})
        if set(config) - {"title", "extra_fields_behavior"} or config.get("extra_fields_behavior") != "forbid":
            raise _Unsupported(f"config {config}")
        fields_schema = core["schema"]
        if fields_schema["type"] != "model-fields":
            raise _Unsupported("model-fields")
        _keys(fields_schema, {"fields", "model_name", "computed_fields"})
        fields: dict[str, tuple[dict, bool, Any]] = {}
        for name, field in fields_schema["fields"].items():
            _keys(field, {"schema", "frozen", "serialization_exclude"})
            schema = field["schema"]
            if schema["type"] == "default":
                _keys(schema, {"schema", "default"})
                if "default" not in schema or not isinstance(schema["default"], Hashable):
                    raise _Unsupported("default factory or unhashable default")
                fields[name] = (schema["schema"], False, schema["default"])
            else:
                fields[name] = (schema, True, None)
            self.check(fields[name][0], "v")  # every field must be supported
        # innermost first, as pydantic-core applies them
        return ModelPlan(model, fields, list(reversed(after)), self)


class ModelPlan:
    """How to build one model in generated code (see the module docstring).

    ``fields``: name -> (schema, required, default) in the model's order.  ``check(name, var)``
    gives ``(condition, conversion or None)`` for a value in the local variable *var*; constants
    they use are entries of ``namespace`` (names starting ``_b``), as are ``new``, ``set_dict``,
    ``set_fields_set``, ``set_extra``, ``set_private`` and ``after`` (the model validators).
    """

    def __init__(self, model: type[BaseModel], fields: dict, after: list[Callable], gen: _Gen) -> None:
        self.model = model
        self.fields = fields
        self.after = after
        self._gen = gen
        self.namespace = gen.ns
        gen.ns.update(_b_new=_new, _b_set_dict=_set_dict, _b_set_fields_set=_set_fields_set,
                      _b_set_extra=_set_extra, _b_set_private=_set_private, _b_after=tuple(after),
                      _b_model=model)

    def check(self, name: str, var: str) -> tuple[str, str | None]:
        return self._gen.check(self.fields[name][0], var)

    def native_check(self, name: str) -> tuple:
        """The check of field *name* for a C row program (see ``_Gen.native``)."""
        return self._gen.native(self.fields[name][0])

    def always_passes(self, name: str, *, types: frozenset[type] | None = None, aware: bool = False,
                      values: tuple | None = None) -> bool:
        """Whether the check of field *name* holds for every value a producer can give: values of
        exactly these *types* (datetimes *aware* ones), or these *values* (evaluated now)."""
        schema = self.fields[name][0]
        if values is not None:
            cond, _ = self.check(name, "v")
            test = eval(f"lambda v: {cond}", {**self.namespace, "__builtins__": _BUILTINS})  # noqa: S307
            return all(test(value) for value in values)
        if types is None:
            return False
        return all(self._type_passes(schema, t, aware) for t in types)

    def _type_passes(self, schema: dict, t: type, aware: bool) -> bool:
        kind = schema["type"]
        if kind == "definition-ref":
            return self._type_passes(self._gen.defs[schema["schema_ref"]], t, aware)
        if kind == "nullable":
            return t is type(None) or self._type_passes(schema["schema"], t, aware)
        if kind == "model":
            return t is schema["cls"]
        if kind == "enum":
            return t is schema["cls"]
        if kind == "str":
            return t is str and not {"min_length", "max_length", "pattern"} & set(schema)
        if kind == "date":
            return t is dt.date
        if kind == "datetime":
            return t is dt.datetime and (aware or schema.get("tz_constraint") is None)
        if kind == "function-before":
            target = PASSTHROUGH.get(schema["function"].get("function"))
            return target is not None and issubclass(t, target) and self._type_passes(schema["schema"], t, aware)
        return False

    def const(self, value: Any) -> str:
        return self._gen.const(value)


_BUILTINS = {"type": type, "len": len, "str": str, "isinstance": isinstance}


def model_plan(model: type[BaseModel]) -> ModelPlan | None:
    """The :class:`ModelPlan` of a model, or None when its schema is not one this module handles."""
    try:
        return _Gen({}).plan(model)
    except (_Unsupported, KeyError, TypeError, AttributeError, ValueError):
        return None
