"""Compile a mapping spec once into flat lists of closures; apply them per record.

Reading (legacy -> canonical) is a loop over ``(getter, transform chain, output key)`` steps
that fills a plain dict, then one pydantic validation of the target model (measured faster than
``model_construct`` with pre-converted values, see docs/mappings.md "Performance"). Money values
are built by the ``money`` transform through ``Money.of`` (the same checks as the model, without
a pydantic round), and the model accepts those instances as they are.

Fast path (:mod:`mappings.engine.fastpath`): the same rules are also generated into one Python
function, which ``read``, ``read_many`` and ``read_stream`` use for dict records: legacy fields
read once, common transforms inlined, and the target model built directly when
:func:`canonical.builder.model_plan` proves pydantic would keep the values as they are (checks
a transform's declared results always pass are left out).  Anything unusual -- a failing rule,
a value a check refuses, a record that is not a dict -- makes it give up and the closures and
pydantic answer, exactly as before.  ``row_reader(columns)`` does the same for rows given as
sequences (pyodbc rows), reading fields by column position instead of building a dict per row.
``record_codec()`` fuses a copybook mapping with its codec:
record bytes -> canonical object, decoding only the fields the rules read
(``RecordCodec.projection``), for ``read_records`` (mapping failures become rejects).

Writing (canonical -> legacy) walks the write rules in file order: read the canonical value,
run the transforms' inverses in reverse order, set the legacy field (creating nested groups).

Errors name the mapping, the rule and the value (:class:`~mappings.engine.errors.MappingApplyError`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from canonical import MODELS, InvalidMoney
from canonical.builder import model_plan

from .binding import FieldType, SourceBinding, bind_source, field_type
from .contracts import ContractError, FieldInfo, RecordContract
from .errors import Diagnostic, MappedRecordError, MappingApplyError, MappingError
from .fastpath import NoFastPath, ReadGen
from .fastpath import put_nested as _put_nested
from .native import compile_rows
from .paths import PathSyntaxError, SourcePath, parse_canonical_path, parse_source_path
from .schema import UNSET, MappingSpec, Pos, Rule, TransformCall, load_spec
from .transforms import REGISTRY, ParamError, TransformError, validate_params

__all__ = ["CompiledMapping", "MappedRecordCodec", "compile_spec"]

Getter = Callable[[Any, Any], Any]
#: inside `items`, `$parent.FIELD` reads the record that holds the list
PARENT = "parent"
_APPLY_ERRORS = (TransformError, InvalidMoney, ValueError, TypeError, ArithmeticError)


class _Missing(Exception):
    pass


class _RuleFailure(Exception):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


# -- getters and setters ---------------------------------------------------------------------------
def _record_getter(segments: tuple[str | int, ...]) -> Getter:
    if len(segments) == 1:
        key = segments[0]

        def get1(r, c):
            try:
                return r[key]
            except (KeyError, IndexError, TypeError):
                return None

        return get1
    if len(segments) == 2:
        k1, k2 = segments

        def get2(r, c):
            try:
                return r[k1][k2]
            except (KeyError, IndexError, TypeError):
                return None

        return get2

    def getn(r, c):
        v = r
        try:
            for s in segments:
                v = v[s]
        except (KeyError, IndexError, TypeError):
            return None
        return v

    return getn


def _context_getter(name: str, segments: tuple[str | int, ...]) -> Getter:
    inner = _record_getter(segments)

    def get(r, c):
        try:
            rec = c[name]
        except (KeyError, TypeError):
            raise TransformError(
                f"this mapping reads the context record {name!r}: pass context={{{name!r}: ...}}"
            ) from None
        return inner(rec, None)

    return get


def _legacy_setter(segments: tuple[str | int, ...]) -> Callable[[dict, Any], None]:
    if len(segments) == 1:
        key = segments[0]

        def set1(out, v):
            out[key] = v

        return set1

    def setn(out, v):
        node: Any = out
        for i, seg in enumerate(segments[:-1]):
            nxt = segments[i + 1]
            blank: Any = [] if isinstance(nxt, int) else {}
            if isinstance(seg, int):
                while len(node) <= seg:
                    node.append(None)
                if node[seg] is None:
                    node[seg] = blank
                node = node[seg]
            else:
                node = node.setdefault(seg, blank)
        last = segments[-1]
        if isinstance(last, int):
            while len(node) <= last:
                node.append(None)
        node[last] = v

    return setn


def _canonical_getter(parts: tuple[str, ...]) -> Callable[[Any], Any]:
    def get(obj):
        v = obj
        for p in parts:
            if v is None:
                return None
            v = v.get(p) if isinstance(v, Mapping) else getattr(v, p, None)
        if isinstance(v, enum.Enum):
            return v.value
        return v

    return get


def _chain(fns: list[Callable]) -> Callable | None:
    if not fns:
        return None
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        f, g = fns
        return lambda v, r, c: g(f(v, r, c), r, c)
    if len(fns) == 3:
        f, g, h = fns
        return lambda v, r, c: h(g(f(v, r, c), r, c), r, c)
    seq = tuple(fns)

    def run(v, r, c):
        for fn in seq:
            v = fn(v, r, c)
        return v

    return run


def _inverse_chain(fns: list[Callable]) -> Callable | None:
    if not fns:
        return None
    seq = tuple(reversed(fns))
    if len(seq) == 1:
        return seq[0]

    def run(v, out):
        for fn in seq:
            v = fn(v, out)
        return v

    return run


# -- compilation scope -------------------------------------------------------------------------------
class _Scope:
    """Where paths resolve: the record (or a list element) and the context records."""

    def __init__(self, unit: _Compiler, contract: RecordContract | None, contexts: dict[str, RecordContract]):
        self.unit = unit
        self.contract = contract
        self.contexts = contexts

    def parse(self, text: str) -> SourcePath:
        return parse_source_path(text)

    def info(self, path: SourcePath) -> FieldInfo | None:
        if path.context is not None:
            c = self.contexts.get(path.context)
            return c.lookup(path.names) if c is not None else None
        return self.contract.lookup(path.names) if self.contract is not None else None

    def getter(self, path: SourcePath) -> Getter:
        if path.context is not None:
            if path.context not in self.unit.spec.source.context and path.context not in self.contexts:
                raise PathSyntaxError(f"{path.text}: no context record {path.context!r} is declared under "
                                      "source.context")
            return _context_getter(path.context, path.segments)
        return _record_getter(path.segments)


class _TransformCtx:
    """What a transform factory may ask about the rule it is built for."""

    def __init__(self, scope: _Scope, rule: Rule, path: SourcePath | None, parts: int = 0) -> None:
        self.scope = scope
        self.source_text = rule.source
        self.info = scope.info(path) if path is not None else None
        self.width = self.info.width if self.info is not None and self.info.kind == "text" else None
        self.legacy_numeric = bool(self.info is not None and self.info.numeric)
        self.parts = parts
        self._path = path

    def getter(self, text: str) -> Getter:
        return self.scope.getter(self.scope.parse(text))

    def setter(self, text: str) -> Callable[[dict, Any], None]:
        p = self.scope.parse(text)
        if p.context is not None:
            return lambda out, v: None  # context records are never written
        return _legacy_setter(p.segments)

    def simple_key(self, text: str) -> str | None:
        """The key when ``text`` is a top-level field of the record (getters can then be inlined)."""
        p = self.scope.parse(text)
        if p.context is None and len(p.segments) == 1 and isinstance(p.segments[0], str):
            return p.segments[0]
        return None

    def numeric(self, text: str) -> bool:
        info = self.scope.info(self.scope.parse(text))
        return bool(info is not None and info.numeric)

    def conditions(self, text: str) -> dict[str, tuple[Any, ...]] | None:
        info = self.scope.info(self.scope.parse(text))
        return info.conditions if info is not None and info.conditions else None

    @property
    def out_getter(self) -> Callable[[dict], Any]:
        if self._path is None or self._path.context is not None:
            return lambda out: None
        get = _record_getter(self._path.segments)
        return lambda out: get(out, None)


# -- the compiled mapping --------------------------------------------------------------------------
class _RuleSpec:
    """One read rule, unfused, for the generated read function (see _ReadGen)."""

    __slots__ = ("constant", "default", "dst", "fns", "guard", "parts", "required", "source")

    def __init__(self, source: SourcePath | None, constant: Any, parts: list | None, fns: list[Callable],
                 dst: tuple[str, ...], required: bool, default: Any, guard: Callable | None) -> None:
        self.source = source
        self.constant = constant
        self.parts = parts  # [(SourcePath | None, constant or UNSET, [fns])]
        self.fns = fns
        self.dst = dst
        self.required = required
        self.default = default
        self.guard = guard


class _ReadPlan:
    __slots__ = ("rules", "specs", "steps")

    def __init__(self) -> None:
        self.steps: list[tuple] = []
        self.rules: list[tuple[Rule, Getter | None]] = []
        self.specs: list[_RuleSpec] = []


class _WritePlan:
    __slots__ = ("rules", "steps")

    def __init__(self) -> None:
        self.steps: list[tuple] = []
        self.rules: list[Rule] = []


def _make_step(get: Getter, src_key: Any, fn: Callable | None, dst: tuple[str, ...], required: bool,
               default: Any, guard: Callable | None) -> Callable[[Any, Any, dict], None]:
    """One rule as a single closure ``step(record, context, out)``: get, transform, check, store.

    ``src_key`` is set when the source is a top-level field (the getter is then inlined).
    """
    key = dst[0] if len(dst) == 1 else None
    has_default = default is not UNSET

    if guard is None and src_key is not None and key is not None:
        if fn is None:
            def step(r, c, out):
                try:
                    v = r[src_key]
                except (KeyError, IndexError, TypeError):
                    v = None
                if v is None:
                    if has_default:
                        v = default
                    elif required:
                        raise _Missing
                    else:
                        return
                out[key] = v
            return step

        def step(r, c, out):
            try:
                v = r[src_key]
            except (KeyError, IndexError, TypeError):
                v = None
            v = fn(v, r, c)
            if v is None:
                if has_default:
                    v = default
                elif required:
                    raise _Missing
                else:
                    return
            out[key] = v
        return step

    def general(r, c, out):
        if guard is not None and not guard(r, c):
            v = None
        else:
            v = get(r, c)
            if fn is not None:
                v = fn(v, r, c)
        if v is None:
            if has_default:
                v = default
            elif required:
                raise _Missing
            else:
                return
        if key is not None:
            out[key] = v
        else:
            _put_nested(out, dst, v)

    return general


def _run_read(steps: tuple, record: Any, context: Any) -> dict:
    out: dict[str, Any] = {}
    step = None
    try:
        for step in steps:
            step(record, context, out)
    except _Missing:
        raise _RuleFailure(steps.index(step), "required value is missing or empty") from None
    except MappingApplyError as exc:  # from an items sub-mapping
        raise _RuleFailure(steps.index(step), f"item: {exc.reason}") from exc
    except _APPLY_ERRORS as exc:
        raise _RuleFailure(steps.index(step), str(exc)) from exc
    return out


class CompiledMapping:
    """A mapping file compiled for use: ``read(record)`` -> canonical object, ``write(obj)`` -> dict.

    Thread-safe and immutable once built; share one instance between requests.
    """

    def __init__(self, spec: MappingSpec, binding: SourceBinding, model: type[BaseModel],
                 read_plan: _ReadPlan, write_plan: _WritePlan | None) -> None:
        self.spec = spec
        self.binding = binding
        self.name = spec.name
        self.version = spec.version
        self.file = spec.file
        self.target = spec.target
        self.model = model
        self.direction = spec.direction
        self.source_kind = spec.source.kind
        self._read_plan = read_plan
        self._steps = tuple(read_plan.steps)
        self._write_plan = write_plan
        self._validate = model.__pydantic_validator__.validate_python
        #: the rules generated into one function: record dict -> object (see mappings.engine.fastpath)
        self._fast_read: Callable[[dict, Any], Any] | None = None
        self.fast_source: str | None = None
        self._plan = model_plan(model)
        try:
            self._fast_read, self.fast_source, _ = ReadGen(read_plan.specs, "dict", _getter_for, self._validate,
                                                           self._plan).build()
        except NoFastPath:
            pass
        self._bytes_codec: MappedRecordCodec | None = None
        self._row_readers: dict[tuple[str, ...], Callable[[Iterable[Any]], list[Any]]] = {}

    def __repr__(self) -> str:
        return f"<CompiledMapping {self.name} v{self.version}: {self.source_kind} -> {self.target} ({self.direction})>"

    # -- reading -----------------------------------------------------------------------------------
    def read_dict(self, record: Any, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The canonical field values (before model validation): for tests and tooling."""
        try:
            return _run_read(self._steps, record, context)
        except _RuleFailure as f:
            raise self._rule_error(f, record, context) from f.__cause__

    def read(self, record: Any, context: Mapping[str, Any] | None = None) -> Any:
        """One legacy record (a Mapping: field name -> value, nested dicts, lists) -> canonical object.

        ``context``: the context records this mapping declares (``source.context``), by name.
        Raises :class:`MappingApplyError`.
        """
        fast = self._fast_read
        if fast is not None and type(record) is dict:
            try:
                return fast(record, context)
            except Exception:  # noqa: BLE001,S110 - the closures below give the answer or the error
                pass
        try:
            out = _run_read(self._steps, record, context)
        except _RuleFailure as f:
            raise self._rule_error(f, record, context) from f.__cause__
        try:
            return self._validate(out)
        except ValidationError as exc:
            raise self._validation_error(exc, record, context) from None

    def read_many(self, records: Iterable[Any], context: Mapping[str, Any] | None = None) -> list[Any]:
        """``[read(r, context) for r in records]`` (the first failure raises)."""
        return list(self.read_stream(records, context))

    def read_stream(self, records: Iterable[Any], context: Mapping[str, Any] | None = None, *,
                    errors: str = "raise") -> Iterator[Any]:
        """Read many records lazily: for each, exactly what :meth:`read` returns, with less overhead.

        A record is a legacy record (a Mapping), or -- for copybook mappings -- the raw bytes of
        one record, decoded with :meth:`record_codec` (exactly ``read(codec().decode(raw))``).
        A record that fails raises its error (MappingApplyError; RecordDecodeError for bytes the
        codec refuses) at that point, as read would; with ``errors="yield"`` the error instance
        is yielded in the record's place instead and the stream carries on (quarantine it).
        """
        if errors not in ("raise", "yield"):
            raise ValueError(f"errors must be 'raise' or 'yield', not {errors!r}")
        return self._stream(records, context, errors == "yield")

    def _stream(self, records: Iterable[Any], context: Any, keep_going: bool) -> Iterator[Any]:
        from mappings.copybook import RecordDecodeError

        one = self._reader(context)
        for record in records:
            try:
                obj = one(record)
            except (MappingApplyError, RecordDecodeError) as exc:
                if not keep_going:
                    raise
                obj = exc
            yield obj

    def _reader(self, context: Any) -> Callable[[Any], Any]:
        """``read(record, context)`` for one record of a stream (bytes included)."""
        fast, validate, steps = self._fast_read, self._validate, self._steps
        copybook = self.source_kind == "copybook"
        decode_bytes: Callable[[Any], Any] | None = None

        def one(record: Any) -> Any:
            nonlocal decode_bytes
            if type(record) is dict and fast is not None:
                try:
                    return fast(record, context)
                except Exception:  # noqa: BLE001,S110 - the closures below give the answer or the error
                    pass
            elif copybook and isinstance(record, bytes | bytearray | memoryview):
                if decode_bytes is None:
                    decode_bytes = self._bytes().decode
                try:
                    return decode_bytes(record)
                except MappedRecordError as exc:  # as read(codec.decode(raw)) reports it
                    raise exc.mapping_error from exc.mapping_error.__cause__  # type: ignore[union-attr]
            try:
                out = _run_read(steps, record, context)
            except _RuleFailure as f:
                raise self._rule_error(f, record, context) from f.__cause__
            try:
                return validate(out)
            except ValidationError as exc:
                raise self._validation_error(exc, record, context) from None

        return one

    def row_reader(self, columns: Iterable[str], *, native: bool = True) -> Callable[[Iterable[Any]], list[Any]]:
        """``rows -> [read(dict(zip(columns, row))) for row in rows]`` for rows given as sequences
        (DB-API / pyodbc rows), without building the dicts.

        The rules are generated once per column list (``fastpath`` mode "row"); a row that function
        gives up on is read as its dict, so the result or the MappingApplyError is exactly
        :meth:`read`'s.  Mappings with context records, nested or indexed paths read every row as
        a dict.  With *native* (and the C extension built) the rows go through a row program
        (:mod:`mappings.engine.native`) first, which builds the same objects or hands a row on to
        the generated function.
        """
        cols = tuple(columns)
        key = (cols, bool(native))
        reader = self._row_readers.get(key)
        if reader is None:
            reader = self._row_readers[key] = self._make_row_reader(cols, native)
        return reader

    def row_program(self, columns: Iterable[str]) -> Any | None:
        """The C row program :meth:`row_reader` runs for these columns, or None (see ``native``)."""
        return getattr(self.row_reader(columns), "program", None)

    def _make_row_reader(self, cols: tuple[str, ...], native: bool) -> Callable[[Iterable[Any]], list[Any]]:
        one = self._reader(None)
        fast = None
        if not self.spec.source.context:
            try:
                fast, _, _ = ReadGen(self._read_plan.specs, "row", _getter_for, self._validate, self._plan,
                                     columns=cols).build()
            except NoFastPath:
                pass
        if fast is None:
            return lambda rows: [one(dict(zip(cols, row))) for row in rows]  # noqa: B905

        def read_row(row: Any) -> Any:
            try:
                return fast(row)
            except Exception:  # noqa: BLE001 - the closures give the answer or the precise error
                return one(dict(zip(cols, row)))  # noqa: B905

        program = compile_rows(self._read_plan.specs, self._plan, cols) if native else None
        if program is not None:
            run = program.run

            def read_native(rows: Iterable[Any]) -> list[Any]:
                return run(rows if isinstance(rows, list | tuple) else list(rows), read_row)

            read_native.program = program  # type: ignore[attr-defined]
            read_native.fast = fast  # type: ignore[attr-defined]
            read_native.source = fast.source  # type: ignore[attr-defined]
            return read_native

        def read_rows(rows: Iterable[Any]) -> list[Any]:
            rows = rows if isinstance(rows, list | tuple) else list(rows)
            try:
                return list(map(fast, rows))  # every row on the fast path: the common case
            except Exception:  # noqa: BLE001,S110 - row by row below: the slow path answers
                pass
            return [read_row(row) for row in rows]

        read_rows.fast = fast  # type: ignore[attr-defined] - the generated function (tests, tooling)
        read_rows.source = fast.source  # type: ignore[attr-defined]
        return read_rows

    def _rule_error(self, f: _RuleFailure, record: Any, context: Any) -> MappingApplyError:
        rule, get = self._read_plan.rules[f.index]
        value, has = _value_for_message(get, record, context)
        return MappingApplyError(self.name, f.reason, rule=rule.describe(), source=rule.source, value=value,
                                 line=rule.pos.line, has_value=has)

    def _validation_error(self, exc: ValidationError, record: Any, context: Any) -> MappingApplyError:
        err = exc.errors(include_url=False)[0]
        loc = tuple(str(x) for x in err.get("loc", ()))
        msg = err.get("msg", str(exc))
        for rule, get in self._read_plan.rules:
            if rule.to and loc and rule.to.split(".")[0] == loc[0]:
                value, has = _value_for_message(get, record, context)
                return MappingApplyError(self.name, f"{self.target}.{'.'.join(loc)}: {msg}", rule=rule.describe(),
                                         source=rule.source, value=value, line=rule.pos.line, has_value=has)
        return MappingApplyError(self.name, f"{self.target}.{'.'.join(loc)}: {msg}", has_value=False)

    # -- writing ----------------------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        return self._write_plan is not None

    def write(self, obj: Any) -> dict[str, Any]:
        """A canonical object (or a dict shaped like one) -> the legacy record dict."""
        if self._write_plan is None:
            raise MappingApplyError(self.name, f"this mapping is {self.direction}-only: it cannot write",
                                    has_value=False)
        return _run_write(self, self._write_plan, obj)

    # -- copybook sources -----------------------------------------------------------------------
    def record_codec(self, **options: Any) -> MappedRecordCodec:
        """This copybook mapping as a record codec whose ``decode(bytes)`` gives the canonical object.

        ``record_codec(**options).decode(raw)`` is exactly ``read(codec(**options).decode(raw))``,
        fused: a generated function decodes only the fields the rules read (the others are still
        checked, see ``RecordCodec.projection``), applies the rules and validates the model.  It
        plugs into ``read_records`` (alone or in a ``MultiLayoutCodec``): a record the codec refuses
        becomes a ``Reject`` of kind ``decode``, one the mapping refuses a ``Reject`` of kind
        ``mapping`` (``decode`` raises :class:`MappedRecordError`, a ``RecordDecodeError`` carrying
        the MappingApplyError).
        """
        return MappedRecordCodec(self, self.codec(**options))

    def _bytes(self) -> MappedRecordCodec:
        codec = self._bytes_codec
        if codec is None:
            codec = self._bytes_codec = self.record_codec()
        return codec

    def _fused(self, codec: Any) -> tuple[Callable[[bytes], Any], str] | None:
        """bytes -> canonical object through codec.projection and the generated rules, or None."""
        if self.spec.source.context:
            return None
        try:
            fn, source, _ = ReadGen(self._read_plan.specs, "tuple", _getter_for, self._validate,
                                    self._plan).build(project=codec.projection)
        except NoFastPath:
            return None
        return fn, source

    def codec(self, **options: Any):
        """A ``RecordCodec`` for a copybook source's record (codepage from the mapping file unless given).

        REDEFINES: every view is decoded; a view that does not decode becomes None
        (``view_errors='null'``) unless the caller chooses otherwise.
        """
        if self.source_kind != "copybook" or self.binding.contract_file is None:
            raise MappingApplyError(self.name, "only copybook mappings have a record codec", has_value=False)
        from mappings.copybook import RecordCodec

        from .contracts import copybook_layout

        contract = self.spec.source.contract
        layout = copybook_layout(self.binding.contract_file, contract["record"])
        options.setdefault("codepage", contract.get("codepage", "cp037"))
        views = contract.get("views")
        if views and "redefines" not in options:
            options["redefines"] = view_choices(views, layout)
        options.setdefault("view_errors", "null")
        return RecordCodec(layout, **options)


def _getter_for(path: SourcePath) -> Getter:
    if path.context is not None:
        return _context_getter(path.context, path.segments)
    return _record_getter(path.segments)


class MappedRecordCodec:
    """A copybook mapping as a record codec (see :meth:`CompiledMapping.record_codec`).

    Has what ``read_records`` and ``MultiLayoutCodec`` use of a RecordCodec: ``name``, ``size``,
    ``variable``, ``trailing``, ``layout`` and ``decode(bytes)`` -- which returns the canonical
    object.  ``has_fast_path``: whether the fused function exists (else decode, then read).
    """

    def __init__(self, mapping: CompiledMapping, codec: Any) -> None:
        self.mapping = mapping
        self.codec = codec
        self.name = codec.name
        self.size = codec.size
        self.variable = codec.variable
        self.trailing = codec.trailing
        self.layout = codec.layout
        fused = mapping._fused(codec) if not codec.variable else None
        self.has_fast_path = fused is not None
        self.fast_source = fused[1] if fused is not None else None
        #: for readers: bytes of exactly `size` -> the object, or an exception (then `decode` answers)
        self._fast = fused[0] if fused is not None else None
        self.decode = self._make_decode(fused[0] if fused is not None else None)  # type: ignore[method-assign]

    def _make_decode(self, fused: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
        size, lenient = self.size, self.trailing == "ignore"
        decode_values, read, codec = self.codec.decode, self.mapping.read, self.codec

        def slow(buf: bytes) -> Any:
            values = decode_values(buf)  # RecordDecodeError: the record's bytes are refused
            try:
                return read(values)
            except MappingApplyError as exc:
                raise MappedRecordError.of(exc, codec, buf) from exc

        if fused is None:
            return slow

        def decode(buf: bytes) -> Any:
            n = len(buf)
            if n == size or (lenient and n > size):
                try:
                    return fused(buf)
                except Exception:  # noqa: BLE001,S110 - slow() gives the answer or the error
                    pass
            return slow(buf)

        return decode

    def decode(self, buf: bytes) -> Any:  # pragma: no cover - replaced per instance in __init__
        """One record's bytes -> the canonical object (RecordDecodeError / MappedRecordError)."""
        raise NotImplementedError


def view_choices(views: Mapping[str, Mapping[str, Any]], layout: Any) -> dict[str, Any]:
    """``views:`` as a RecordCodec ``redefines=`` dict of :class:`~mappings.copybook.ChooseBy`.

    Decides exactly what :func:`view_selector` decides (an area is matched by the name of the
    redefined item; other keys are ignored), but the codec's generated decoder evaluates it inline
    instead of calling back per record with a dict of the values decoded so far.
    """
    from mappings.copybook import ChooseBy

    areas = {str(area).upper(): spec for area, spec in views.items()}
    chosen: dict[str, Any] = {}
    for item in layout.iter_tree():
        spec = areas.get(item.name) if item.redefined_by else None
        if spec is not None:
            chosen[item.path] = ChooseBy(spec["field"], spec.get("map") or {}, spec.get("default"))
    return chosen


def view_selector(views: Mapping[str, Mapping[str, Any]]) -> Callable[[str, Mapping[str, Any]], Any]:
    """A RecordCodec REDEFINES selector from a copybook source's ``views:`` (see docs/mappings.md).

    ``{TXD-CNTR-INFO: {field: TXD-TXN-CODE, map: {POS: TXD-CARD-INFO}, default: TXD-CNTR-INFO}}``:
    decode the card view when the transaction code is POS, the counterparty view otherwise.
    """
    table = {
        str(area).upper(): (spec["field"], {str(k).strip(): v for k, v in (spec.get("map") or {}).items()},
                            spec.get("default"))
        for area, spec in views.items()
    }

    def select(area: str, values: Mapping[str, Any]) -> Any:
        entry = table.get(area)
        if entry is None:
            return None
        field, choices, default = entry
        v = values.get(field)
        if isinstance(v, str):
            v = v.strip()
        elif v is not None and not isinstance(v, bool):
            v = str(v)
        return choices.get(v, default)

    return select


def _value_for_message(get: Callable | None, *args: Any) -> tuple[Any, bool]:
    """The offending value for an error message (and whether it could be read at all)."""
    if get is None:
        return None, False
    try:
        return get(*args), True
    except Exception:  # noqa: BLE001 - only for the message; the real error is being reported
        return None, False


def _run_write(mapping: CompiledMapping, plan: _WritePlan, obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    index = -1
    try:
        for step in plan.steps:
            index += 1
            get, inv, put, required = step
            v = get(obj)
            if inv is not None:
                v = inv(v, out)
            if v is None:
                if required:
                    raise _Missing()
                continue
            put(out, v)
    except _Missing:
        rule = plan.rules[index]
        raise MappingApplyError(mapping.name, f"(write) canonical {rule.to} is empty but the legacy field "
                                f"{rule.source} is required", rule=rule.describe(), source=rule.source,
                                line=rule.pos.line, has_value=False) from None
    except MappingApplyError:
        raise
    except _APPLY_ERRORS as exc:
        rule = plan.rules[index]
        value, _ = _value_for_message(_canonical_getter(parse_canonical_path(rule.to).parts) if rule.to else None,
                                      obj)
        raise MappingApplyError(mapping.name, f"(write) {exc}", rule=rule.describe(), source=rule.source,
                                value=value, line=rule.pos.line) from exc
    return out


# -- the compiler ----------------------------------------------------------------------------------
class _Compiler:
    def __init__(self, spec: MappingSpec, binding: SourceBinding) -> None:
        self.spec = spec
        self.binding = binding
        self.diags: list[Diagnostic] = []

    def error(self, pos: Pos, message: str, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(self.spec.file, pos.line, pos.col, message, hint))

    def transforms(self, scope: _Scope, rule: Rule, path: SourcePath | None, *, inverse: bool,
                   parts: int = 0) -> list[Callable] | None:
        fns = []
        ctx = _TransformCtx(scope, rule, path, parts)
        ok = True
        for call in rule.transforms:
            fn = self.transform(call, ctx, inverse=inverse)
            if fn is None:
                ok = False
            else:
                fns.append(fn)
        return fns if ok else None

    def transform(self, call: TransformCall, ctx: _TransformCtx, *, inverse: bool) -> Callable | None:
        td = REGISTRY[call.name]
        try:
            params = validate_params(td, call.params)
            factory = td.inverse if inverse else td.forward
            if factory is None:
                raise ParamError(f"transform {call.name} cannot be used to write")
            return factory(params, ctx)
        except ParamError as exc:
            pos = call.param_pos.get(exc.param or "", call.pos) if exc.param else call.pos
            self.error(pos, str(exc), exc.hint)
        except (PathSyntaxError, ContractError) as exc:
            self.error(call.pos, f"{call.name}: {exc}")
        return None

    def source_path(self, rule: Rule) -> SourcePath | None:
        if rule.source is None:
            return None
        try:
            return parse_source_path(rule.source)
        except PathSyntaxError as exc:
            self.error(rule.at("from"), str(exc))
            return None

    def guard(self, scope: _Scope, rule: Rule) -> Callable | None:
        g = rule.when
        if g is None:
            return None
        try:
            get = scope.getter(scope.parse(g.field))
        except PathSyntaxError as exc:
            self.error(g.pos, str(exc))
            return None
        values = frozenset(v.strip() if isinstance(v, str) else v for v in g.values)
        if g.op == "in":
            def pred(r, c):
                v = get(r, c)
                return (v.strip() if isinstance(v, str) else v) in values
        else:
            def pred(r, c):
                v = get(r, c)
                return (v.strip() if isinstance(v, str) else v) not in values
        pred.spec = (scope.parse(g.field), g.op == "in", values)  # type: ignore[attr-defined] - for codegen
        return pred

    # -- read ---------------------------------------------------------------------------------------
    def read_plan(self, scope: _Scope, rules: list[Rule], model: type[BaseModel] | None) -> _ReadPlan:
        plan = _ReadPlan()
        for rule in rules:
            if rule.direction == "write" or rule.to is None:
                continue
            try:
                dst = parse_canonical_path(rule.to).parts
            except PathSyntaxError as exc:
                self.error(rule.at("to"), str(exc))
                continue
            get: Getter | None
            fns: list[Callable] | None = []
            path = self.source_path(rule)
            if rule.constant is not UNSET:
                const = rule.constant
                get = lambda r, c, _v=const: _v  # noqa: E731
            elif rule.parts is not None:
                get = self.parts_getter(scope, rule)
                fns = self.transforms(scope, rule, None, inverse=False, parts=len(rule.parts))
            elif path is not None:
                try:
                    get = scope.getter(path)
                except PathSyntaxError as exc:
                    self.error(rule.at("from"), str(exc))
                    continue
                fns = self.transforms(scope, rule, path, inverse=False)
            else:
                get = lambda r, c: None  # noqa: E731 - a default-only rule
            if get is None or fns is None:
                continue
            if rule.items is not None:
                sub = self.items_reader(scope, rule, path, model, dst)
                if sub is None:
                    continue
                fns = [*fns, sub]
            fn = _chain(fns)
            src_key = None
            if (path is not None and rule.parts is None and rule.constant is UNSET and path.context is None
                    and len(path.segments) == 1):
                src_key = path.segments[0]
            guard = self.guard(scope, rule)
            plan.steps.append(_make_step(get, src_key, fn, dst, rule.required, rule.default, guard))
            plan.rules.append((rule, get))
            plan.specs.append(_RuleSpec(
                path if rule.parts is None and rule.constant is UNSET else None, rule.constant,
                getattr(get, "parts", None) if rule.parts is not None else None, fns, dst, rule.required,
                rule.default, guard))
        return plan

    def parts_getter(self, scope: _Scope, rule: Rule) -> Getter | None:
        getters = []
        spec: list[tuple[SourcePath | None, Any, list[Callable]]] = []
        for part in rule.parts or []:
            path = self.source_path(part)
            if part.constant is not UNSET:
                getters.append((None, lambda r, c, _v=part.constant: _v, None))
                spec.append((None, part.constant, []))
                continue
            if path is None:
                self.error(part.pos, "a part needs `from` (or `constant`)")
                return None
            try:
                get = scope.getter(path)
            except PathSyntaxError as exc:
                self.error(part.at("from"), str(exc))
                return None
            fns = self.transforms(scope, part, path, inverse=False)
            if fns is None:
                return None
            key = path.segments[0] if path.context is None and len(path.segments) == 1 else None
            getters.append((key, get, _chain(fns)))
            spec.append((path, UNSET, fns))
        parts = tuple(getters)

        def get_parts(r, c):
            values = []
            for key, get, fn in parts:
                if key is not None:
                    try:
                        v = r[key]
                    except (KeyError, IndexError, TypeError):
                        v = None
                else:
                    v = get(r, c)
                if fn is not None:
                    v = fn(v, r, c)
                values.append(v)
            return values

        get_parts.parts = spec  # type: ignore[attr-defined] - for codegen
        return get_parts

    def items_reader(self, scope: _Scope, rule: Rule, path: SourcePath | None,
                     model: type[BaseModel] | None, dst: tuple[str, ...]) -> Callable | None:
        info = scope.info(path) if path is not None else None
        element = RecordContract(f"{rule.source}[]", self.spec.file, info.children) if info is not None else None
        item_model = None
        if model is not None:
            ft = field_type(model, dst)
            if isinstance(ft, FieldType):
                item_model = ft.model
        sub_scope = _Scope(self, element, {**scope.contexts, PARENT: scope.contract})
        plan = self.read_plan(sub_scope, rule.items or [], item_model)
        steps = tuple(plan.steps)
        name = self.spec.name

        def read_items(v, r, c):
            if v is None:
                return None
            if not isinstance(v, (list, tuple)):
                raise TransformError(f"items: {rule.source} is not a list")
            out = []
            inner = {**c, PARENT: r} if c else {PARENT: r}
            for i, element_record in enumerate(v):
                try:
                    out.append(_run_read(steps, element_record, inner))
                except _RuleFailure as f:
                    sub_rule = plan.rules[f.index][0]
                    raise MappingApplyError(name, f"[{i}] {sub_rule.describe()}: {f.reason}", rule=rule.describe(),
                                            has_value=False) from None
            return out

        return read_items

    # -- write --------------------------------------------------------------------------------------
    def write_plan(self, scope: _Scope, rules: list[Rule], model: type[BaseModel] | None) -> _WritePlan:
        plan = _WritePlan()
        for rule in rules:
            if rule.direction == "read" or rule.when is not None:
                continue
            path = self.source_path(rule)
            if rule.constant is not UNSET:
                if path is None or rule.to is not None:
                    continue  # a read-side constant
                const = rule.constant
                plan.steps.append((lambda obj, _v=const: _v, None, _legacy_setter(path.segments), True))
                plan.rules.append(rule)
                continue
            if rule.to is None:
                continue
            if path is not None and path.context is not None:
                continue  # context records are only read
            try:
                cget = _canonical_getter(parse_canonical_path(rule.to).parts)
            except PathSyntaxError:
                continue
            if rule.parts is not None:
                step = self.parts_writer(scope, rule, cget)
                if step is not None:
                    plan.steps.append(step)
                    plan.rules.append(rule)
                continue
            if path is None:
                continue
            fns = self.transforms(scope, rule, path, inverse=True)
            if fns is None:
                continue
            if rule.items is not None:
                sub = self.items_writer(scope, rule, path, model)
                if sub is None:
                    continue
                fns = [sub, *fns]
            plan.steps.append((cget, _inverse_chain(fns), _legacy_setter(path.segments), rule.required))
            plan.rules.append(rule)
        return plan

    def parts_writer(self, scope: _Scope, rule: Rule, cget: Callable) -> tuple | None:
        fns = self.transforms(scope, rule, None, inverse=True, parts=len(rule.parts or []))
        if fns is None:
            return None
        split = _inverse_chain(fns)
        writers = []
        for part in rule.parts or []:
            path = self.source_path(part)
            if path is None or path.context is not None or part.constant is not UNSET:
                writers.append(None)
                continue
            pfns = self.transforms(scope, part, path, inverse=True)
            if pfns is None:
                return None
            writers.append((_inverse_chain(pfns), _legacy_setter(path.segments)))
        parts = tuple(writers)

        def put(out, values):
            for w, v in zip(parts, values, strict=True):
                if w is None:
                    continue
                inv, setter = w
                if inv is not None:
                    v = inv(v, out)
                if v is not None:
                    setter(out, v)

        return (cget, split, put, rule.required)

    def items_writer(self, scope: _Scope, rule: Rule, path: SourcePath, model: type[BaseModel] | None):
        info = scope.info(path)
        element = RecordContract(f"{rule.source}[]", self.spec.file, info.children) if info is not None else None
        sub_scope = _Scope(self, element, {**scope.contexts, PARENT: scope.contract})
        plan = self.write_plan(sub_scope, rule.items or [], None)
        holder = CompiledMapping.__new__(CompiledMapping)
        holder.name = self.spec.name

        def write_items(v, out):
            if v is None:
                return None
            return [_run_write(holder, plan, item) for item in v]

        return write_items


def compile_spec(spec: MappingSpec, binding: SourceBinding | None = None, *, resolve=None) -> CompiledMapping:
    """Compile a parsed spec (its contract is loaded unless a binding is given); MappingError on problems."""
    if binding is None:
        binding, diags = bind_source(spec, resolve)
    else:
        diags = []
    model = MODELS.get(spec.target)
    compiler = _Compiler(spec, binding)
    compiler.diags.extend(diags)
    if model is None:
        from .errors import did_you_mean

        pos = spec.at("target")
        compiler.error(pos, f"unknown target model {spec.target!r}",
                       did_you_mean(spec.target, MODELS) or f"models: {', '.join(MODELS)}")
        raise MappingError(compiler.diags)
    scope = _Scope(compiler, binding.root, binding.contexts)
    read_plan = compiler.read_plan(scope, spec.rules, model)
    write_plan = compiler.write_plan(scope, spec.rules, model) if spec.direction != "read" else None
    if compiler.diags:
        raise MappingError(compiler.diags)
    return CompiledMapping(spec, binding, model, read_plan, write_plan)


def compile_file(path: str | Path, *, resolve=None) -> CompiledMapping:
    """Load and compile one mapping file (no full check: see :func:`mappings.engine.check`)."""
    spec, diags = load_spec(path)
    if spec is None or diags:
        raise MappingError(diags)
    return compile_spec(spec, resolve=resolve)
