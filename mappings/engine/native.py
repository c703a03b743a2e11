"""A mapping's read rules for database rows as a C row program (``_rowprog.c``), where it can be.

``CompiledMapping.row_reader`` reads pages of rows (pyodbc rows, read by column position).  The
generated Python function (:mod:`mappings.engine.fastpath`, mode "row") is the reference fast
path; this module compiles the same rules into a program of the optional C extension, which runs
a page in one call.  The contract is the generated function's: for every row the program either
builds exactly the object the generated function builds, or gives the row up, and the row is read
by the generated function (which answers or reports the precise error).  So the extension changes
what a page costs, never what it gives: ``tests/mappings/test_native_rows.py`` holds it to
that on the mock's ledger and on generated rows.

Which mappings compile: every rule a plain column, a constant or ``parts`` joined by ``concat``,
every transform one that carries a native op (``fn.native``: trim, null_if, integer, date,
datetime HHMMSS, code, decimal with a scale, sign_from with stripped indicators, money), no
guards, and a target model ``canonical.builder`` has a plan for.  Anything else: ``None``, and the
generated Python reads every row.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from canonical.builder import NOOP_WHEN
from canonical.currency import MINOR_UNITS
from canonical.money import _QUANTUM_OF, MAX_INTEGER_DIGITS, Money

from .fastpath import fields_set_table, plannable
from .paths import parse_source_path
from .schema import UNSET

__all__ = ["AVAILABLE", "compile_rows"]

log = logging.getLogger(__name__)

try:
    from . import _rowprog
except ImportError:  # not compiled here: the generated Python reads the rows
    _rowprog = None
else:
    _rowprog.set_slots(BaseModel, *(BaseModel.__dict__[name] for name in (
        "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")))

#: whether the C extension is importable
AVAILABLE = _rowprog is not None

# opcodes (_rowprog.c, enum OP_*)
(LOAD, CONST, STRIP, NULLIF, INTDIGITS, CONCAT, LOOKUP, DATETIME, DECIMAL, SIGN, MONEY, REQUIRE, DEFAULT, CHECK,
 BUILD) = range(15)
_MONEY_KEYS = ("amount", "currency")
_SIDES = {"both": 0, "right": 1, "left": 2}


class _NoProgram(Exception):
    pass


class _Compiler:
    def __init__(self, specs: list, plan: Any, columns: tuple[str, ...]) -> None:
        self.specs = specs
        self.plan = plan
        self.columns = {name: k for k, name in enumerate(columns)}  # the last one wins, as dict(zip())
        self.ops: list[tuple] = []
        self.nregs = 0
        self.loaded: dict[str, int] = {}
        #: model field -> (register, always set?)
        self.slots: dict[str, tuple[int, bool]] = {}

    def reg(self) -> int:
        self.nregs += 1
        return self.nregs - 1

    def op(self, code: int, *args: Any) -> int:
        dst = self.reg()
        self.ops.append((code, dst, *args))
        return dst

    def source(self, text_or_path: Any) -> int:
        path = parse_source_path(text_or_path) if isinstance(text_or_path, str) else text_or_path
        if path.context is not None or len(path.segments) != 1 or not isinstance(path.segments[0], str):
            raise _NoProgram("a context record or a nested / indexed path")
        name = path.segments[0]
        reg = self.loaded.get(name)
        if reg is None:
            index = self.columns.get(name)
            reg = self.op(LOAD, index) if index is not None else self.op(CONST, None)
            self.loaded[name] = reg
        return reg

    def apply(self, fn: Any, v: int) -> int:
        native = getattr(fn, "native", None)
        if native is None or getattr(fn, "fast", None) is None:
            raise _NoProgram(f"a transform without a native op ({getattr(fn, '__qualname__', fn)})")
        kind, params, fields = native
        f = [self.source(text) for text in fields]
        if kind == "strip":
            return self.op(STRIP, v, _SIDES[params[0]])
        if kind == "nullif":
            return self.op(NULLIF, v, params[0])
        if kind == "intdigits":
            return self.op(INTDIGITS, v)
        if kind == "lookup":
            table, parse = params
            return self.op(LOOKUP, v, table, parse)
        if kind == "datetime":
            dates, tz, parse = params
            return self.op(DATETIME, v, f[0], dates, tz, parse)
        if kind == "decimal":
            decimal, quantum = params
            return self.op(DECIMAL, v, decimal, quantum, -quantum.as_tuple().exponent)
        if kind == "sign":
            return self.op(SIGN, v, f[0], params[0], params[1])
        if kind == "money":
            of, fixed = params
            if of != Money.of:
                raise _NoProgram("money through another constructor")
            return self.op(MONEY, v, f[0] if f else -1, fixed, of, _QUANTUM_OF, MAX_INTEGER_DIGITS, Money, _MONEY_KEYS,
                           MINOR_UNITS)
        raise _NoProgram(f"unknown native op {kind!r}")

    def rule(self, spec: Any) -> None:
        if spec.guard is not None:
            raise _NoProgram("guard")
        fns = list(spec.fns)
        if spec.constant is not UNSET:
            v = self.op(CONST, spec.constant)
        elif spec.parts is not None:
            sep = getattr(fns[0], "join_parts", None) if fns else None
            if sep is None or not spec.parts:
                raise _NoProgram("parts without concat")
            items = []
            for path, constant, part_fns in spec.parts:
                p = self.op(CONST, constant) if constant is not UNSET else self.source(path)
                for fn in part_fns:
                    p = self.apply(fn, p)
                items.append(p)
            v = self.op(CONCAT, sep, tuple(items))
            fns = fns[1:]
        elif spec.source is not None:
            v = self.source(spec.source)
        else:
            v = self.op(CONST, None)
        for fn in fns:
            v = self.apply(fn, v)
        # the end of the rule, as ReadGen.close with a plan
        if spec.default is not UNSET:
            self.ops.append((DEFAULT, 0, v, spec.default))
        elif spec.required:
            self.ops.append((REQUIRE, 0, v))
        self.slots[spec.dst[0]] = (v, spec.default is not UNSET or spec.required)

    def construct(self) -> int:
        """As ReadGen.construct: the checks, the fields set by mask, the instance, the validators."""
        plan = self.plan
        optional, table = fields_set_table(self.slots)
        if table is None:
            raise _NoProgram("more than 10 optional fields")
        keys, srcs = [], []
        for name, (_, required, default) in plan.fields.items():
            keys.append(name)
            slot = self.slots.get(name)
            if slot is None:
                srcs.append(self.op(CONST, default))
                continue
            v, always = slot
            check = plan.native_check(name)
            if always:
                self.ops.append((CHECK, 0, v, check, 0, None))
            else:
                if required:
                    self.ops.append((REQUIRE, 0, v))
                self.ops.append((CHECK, 0, v, check, 1 << optional.index(name), default))
            srcs.append(v)
        after = tuple((fn, NOOP_WHEN[fn].native()) if fn in NOOP_WHEN else fn for fn in plan.after)
        return self.op(BUILD, plan.model, tuple(keys), tuple(srcs), table, after)

    def compile(self) -> Any:
        if not self.plan.fields or not self.specs:
            raise _NoProgram("nothing to build")
        if not plannable(self.specs, self.plan):
            raise _NoProgram("rules that do not each set a distinct field, or leave a required one unset")
        for spec in self.specs:
            self.rule(spec)
        result = self.construct()
        return _rowprog.Program(tuple(self.ops), self.nregs, result)


def compile_rows(specs: list, plan: Any, columns: tuple[str, ...]) -> Any | None:
    """The ``_rowprog.Program`` of these rules for rows of *columns*, or None (no extension, no
    model plan, or a rule it cannot take: the generated Python reads the rows)."""
    if _rowprog is None or plan is None:
        return None
    try:
        return _Compiler(specs, plan, columns).compile()
    except _NoProgram as exc:
        log.debug("no row program: %s", exc)
        return None
