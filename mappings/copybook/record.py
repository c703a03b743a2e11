"""Record codec: a record layout compiled into ``decode(bytes) -> dict`` / ``encode(dict) -> bytes``.

Decoded records are plain dicts: groups are nested dicts, OCCURS are lists, FILLER items are
left out (named items inside an unnamed/FILLER group appear in the enclosing dict), a table with
OCCURS ... DEPENDING ON has as many elements as its counter, decoded earlier in the same record,
says.  The record name itself is not a key: ``decode`` returns the contents of the 01 level.

REDEFINES: by default every view (the redefined item and each redefining one) is decoded from
the same bytes.  ``redefines=`` chooses views instead, either statically with a dict
``{redefined item name: chosen view name (or several)}``, per record from one field with a
:class:`ChooseBy` as the dict's value, or per record with a callback
``selector(redefined_name, values_so_far) -> view name(s) | None`` (``None``: all views), where
``values_so_far`` maps the names of the elementary fields decoded so far in the record to their
values.  On encode exactly one view of each REDEFINES area is normally given; when several are
given they must produce identical bytes.

Speed: the layout is compiled into generated Python code (one function per record, one per table
element type) that unpacks runs of fields with one precompiled :class:`struct.Struct`, decodes
runs of adjacent text fields with one charmap decode, and converts numbers with translation
tables, ``bytes.hex`` and ``int``.  The generated source contains only identifiers it made up,
integers and the blank ``' '``; names, literals and tables from the copybook are passed in as
constants (by index), and it runs with a namespace whose only builtins are int, list and range.
Any exception in the fast path makes ``decode`` re-run the record through the checked
interpreter, which raises :class:`RecordDecodeError` with the exact field path, byte offset,
reason and bytes (or returns the value, e.g. for a null under ``null_policy='null'``).

More of the fast path:

* a :class:`ChooseBy` is evaluated inline from its field's variable (a callback costs a call and
  a dict of the values so far per record);
* memos of field bytes: in the record function, each text run and each zoned/packed field keeps
  a small dict from its bytes to its values, so repeated bytes (codes, dates, blank or zero
  fields, the account of consecutive records) skip the work; a memo holds at most MEMO_SIZE
  entries and switches itself off for good when fewer than 3 in 4 lookups hit (see
  ``_Generator.memo_open``).  Values are immutable and computed by the same code from the same
  bytes, so a hit is exactly what decoding gives;
* fixed-length layouts decode ``_decode(buf, offset=0)``: readers hand over their chunk and the
  record's offset instead of slicing the record out;
* :meth:`RecordCodec.projection` generates a decoder of only the fields a consumer reads (the
  mapping engine's ``record_codec``), still checking the others, returning a tuple.
"""

from __future__ import annotations

import codecs as _pycodecs
import functools
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .codecs import (
    CodePage,
    FieldCodec,
    TextCodec,
    field_codec,
    get_codepage,
)
from .errors import CodecConfigError, FieldCodecError, RecordDecodeError, RecordEncodeError
from .layout import Copybook, Field, Group, Item

__all__ = ["ChooseBy", "RecordCodec", "compile_copybook", "compile_record"]

Selector = (
    Mapping[str, "str | Iterable[str]"] | Callable[[str, Mapping[str, Any]], "str | Iterable[str] | None"]
)

_SKIP = object()
_MISSING = object()


class ChooseBy:
    """A REDEFINES choice made per record from the value of one field decoded before the area.

    ``ChooseBy("TXN-CODE", {"POS": "CARD-INFO"}, default="CNTR-INFO")`` decodes the view
    ``CARD-INFO`` when the field ``TXN-CODE`` holds ``POS`` and ``CNTR-INFO`` otherwise.  Give it as
    a value of the ``redefines=`` dict.  Keys are compared as text: a text value without leading and
    trailing blanks, a number as ``str(number)``; a view may be a name, several names, or None
    (every view).  It decides exactly what the callback ``lambda name, values:
    choose(values)`` would decide, but the generated decoder evaluates it inline (no per-record
    callback, no dict of the values decoded so far), so it costs next to nothing.
    """

    __slots__ = ("default", "field", "views")

    def __init__(self, field: str, views: Mapping[Any, Any], default: str | Iterable[str] | None = None) -> None:
        self.field = field
        self.views = {str(k).strip(): v for k, v in views.items()}
        self.default = default

    @staticmethod
    def key(value: Any) -> Any:
        """The table key of a field value."""
        if isinstance(value, str):
            return value.strip()
        if value is None or isinstance(value, bool):
            return value
        return str(value)

    def choose(self, values: Mapping[str, Any]) -> str | Iterable[str] | None:
        """The view name(s) for the values decoded so far (None: every view)."""
        return self.views.get(self.key(values.get(self.field)), self.default)

    def __repr__(self) -> str:
        return f"ChooseBy({self.field!r}, {self.views!r}, default={self.default!r})"
_NULL_FILLS = ("error", "low-values", "high-values", "spaces")


class _NoFastPath(Exception):
    """The generator does not handle this layout; decoding uses the interpreter only."""


class _OdoRange(Exception):
    pass


class _StructCache(dict):
    """``cache[n]``: a Struct of *n* repetitions of one format code (for OCCURS DEPENDING ON)."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def __missing__(self, n: int) -> struct.Struct:
        s = self[n] = struct.Struct(">" + self.code * n)
        return s


def _transparent(item: Item) -> bool:
    """A FILLER group (no OCCURS) whose named children appear in the enclosing dict."""
    return (
        isinstance(item, Group)
        and item.is_filler
        and item.occurs is None
        and any(not c.is_filler for c in item.iter_tree() if c is not item)
    )


def _visible_keys(group: Group) -> list[str]:
    keys: list[str] = []
    for child in group.children:
        if child.is_filler:
            if _transparent(child):
                keys.extend(_visible_keys(child))  # type: ignore[arg-type]
        else:
            keys.append(child.name)
    return keys


def _child_by_key(group: Group, key: str) -> Item | None:
    """The child of *group* whose value ``decode`` puts under *key* (through transparent FILLERs)."""
    for child in group.children:
        if child.is_filler:
            if _transparent(child):
                found = _child_by_key(child, key)  # type: ignore[arg-type]
                if found is not None:
                    return found
        elif child.name == key:
            return child
    return None


def _element_variable(item: Item) -> bool:
    return isinstance(item, Group) and any(c.variable for c in item.children)


class _DecodeCtx:
    __slots__ = ("buf", "counter_pos", "counters", "flat")

    def __init__(self, buf: bytes, flat: dict | None) -> None:
        self.buf = buf
        self.counters: dict[int, Any] = {}
        self.counter_pos: dict[int, int] = {}
        self.flat = flat


class _EncodeCtx:
    __slots__ = ("counters", "derived", "fill_missing")

    def __init__(self, fill_missing: bool) -> None:
        self.fill_missing = fill_missing
        self.counters: dict[int, tuple[str, Any, int]] = {}  # id -> (state, value, offset)
        self.derived: dict[int, int] = {}


class RecordCodec:
    """Decoder/encoder for one record layout (an 01 level of a parsed copybook).

    Parameters
    ----------
    layout:
        the record (``copybook.record("NAME")``).
    codepage:
        ``cp037`` (default), ``cp500``, ``cp1140``, ``cp273``, ``latin-1`` or ``ascii``.
    null_policy:
        numeric (zoned/packed) fields made only of low-values, high-values or spaces:
        ``"error"`` (default), ``"null"`` (None) or ``"zero"``.
    trim:
        text fields: ``"right"`` (default; JUSTIFIED RIGHT fields lose leading spaces
        instead), ``"both"`` or ``"none"``.
    redefines:
        which REDEFINES views to decode (see the module docstring); default all.
    view_errors:
        ``"error"`` (default): a view that cannot be decoded rejects the record; ``"null"``:
        that view decodes to None.
    trailing:
        bytes after the end of the layout: ``"error"`` (default) or ``"ignore"`` (use for
        fixed-length files whose records have OCCURS DEPENDING ON).
    null_fill:
        how ``encode`` writes None given for a numeric field: ``"error"`` (default),
        ``"low-values"``, ``"high-values"`` or ``"spaces"``.
    """

    def __init__(
        self,
        layout: Item,
        *,
        codepage: str | CodePage = "cp037",
        null_policy: str = "error",
        trim: str = "right",
        redefines: Selector | None = None,
        view_errors: str = "error",
        trailing: str = "error",
        null_fill: str = "error",
        fast: bool = True,
    ) -> None:
        if view_errors not in ("error", "null"):
            raise CodecConfigError(f"view_errors must be 'error' or 'null', not {view_errors!r}")
        if trailing not in ("error", "ignore"):
            raise CodecConfigError(f"trailing must be 'error' or 'ignore', not {trailing!r}")
        if null_fill not in _NULL_FILLS:
            raise CodecConfigError(f"null_fill must be one of {_NULL_FILLS}, not {null_fill!r}")
        self.layout = layout
        self.name = layout.name
        self.codepage = codepage if isinstance(codepage, CodePage) else get_codepage(codepage)
        self.null_policy = null_policy
        self.trim = trim
        self.view_errors = view_errors
        self.trailing = trailing
        self.null_fill = null_fill
        self.variable = layout.variable
        #: the record length (the maximum when the layout has OCCURS DEPENDING ON)
        self.size = layout.total_length
        self._codecs: dict[int, FieldCodec] = {}
        self._counter_of: dict[int, Field] = {}
        self._keys: dict[int, frozenset[str]] = {}
        for item in layout.iter_tree():
            if isinstance(item, Field):
                self._codecs[id(item)] = field_codec(item, self.codepage, null_policy=null_policy, trim=trim)
            elif isinstance(item, Group):
                self._keys[id(item)] = frozenset(_visible_keys(item))
        self._resolve_counters()
        self._sets: dict[int, list[Item]] = {
            id(it): [it, *it.redefined_by] for it in layout.iter_tree() if it.redefined_by
        }
        self._callback: Callable | None = None
        self._static: dict[int, frozenset[int]] = {}
        self._dynamic: dict[int, ChooseBy] = {}
        self._setup_redefines(redefines)
        self._fast: Callable | None = None
        self.fast_source: str | None = None
        if fast:
            try:
                self._fast, self.fast_source = _Generator(self).build()
            except _NoFastPath:
                self._fast = None
        if self._fast is not None and not self.variable:
            self.decode = self._make_fixed_decode()  # type: ignore[method-assign]

    def _make_fixed_decode(self) -> Callable[[bytes], dict[str, Any]]:
        """``decode`` specialised for fixed-length layouts (the hot path of file ingestion)."""
        fast, size, checked = self._fast, self.size, self.decode_checked
        assert fast is not None
        lenient = self.trailing == "ignore"

        def decode(buf: bytes | bytearray | memoryview) -> dict[str, Any]:
            n = len(buf)
            if n == size or (lenient and n > size):
                try:
                    return fast(buf)
                except Exception:  # noqa: BLE001,S110 - the checked interpreter explains it
                    pass
            return checked(buf)

        decode.__doc__ = RecordCodec.decode.__doc__
        return decode

    # -- setup ------------------------------------------------------------------------------
    def _resolve_counters(self) -> None:
        by_name: dict[str, list[Field]] = {}
        for item in self.layout.iter_tree():
            if isinstance(item, Field) and item.odo_counter:
                by_name.setdefault(item.name, []).append(item)
        order = {id(it): n for n, it in enumerate(self.layout.iter_tree())}
        for item in self.layout.iter_tree():
            if item.occurs is not None and item.occurs.variable:
                candidates = [
                    c
                    for c in by_name.get(item.occurs.depending_on or "", [])
                    if order[id(c)] < order[id(item)] and _qualifies(c, item.occurs.qualifiers)
                ]
                if len(candidates) != 1:  # the parser guarantees exactly one
                    raise CodecConfigError(f"cannot resolve the counter of {item.path}")
                self._counter_of[id(item)] = candidates[0]

    def _set_for(self, key: str) -> list[Item]:
        key = key.upper()
        matches = [
            members
            for members in self._sets.values()
            if any(m.path == key for m in members) or any(m.name == key for m in members)
        ]
        exact = [members for members in matches if any(m.path == key for m in members)]
        if exact:
            return exact[0]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            known = ", ".join(m[0].name for m in self._sets.values()) or "none"
            raise CodecConfigError(
                f"{key} is not part of a REDEFINES in {self.name} (REDEFINES areas: {known})"
            )
        raise CodecConfigError(f"{key} is ambiguous; use the path: " + ", ".join(m[0].path for m in matches))

    def _member_indices(self, members: list[Item], chosen: str | Iterable[str]) -> frozenset[int]:
        names = [chosen] if isinstance(chosen, str) else list(chosen)
        out = set()
        for name in names:
            key = str(name).upper()
            hits = [i for i, m in enumerate(members) if m.name == key or m.path == key]
            if not hits:
                raise CodecConfigError(
                    f"{name!r} is not a view of {members[0].path}; views: "
                    + ", ".join(m.name for m in members)
                )
            out.update(hits)
        return frozenset(out)

    def _setup_redefines(self, redefines: Selector | None) -> None:
        if redefines is None:
            return
        if callable(redefines) and not isinstance(redefines, Mapping):
            self._callback = redefines
            return
        if not isinstance(redefines, Mapping):
            raise CodecConfigError("redefines must be a dict {redefined name: view name} or a callable")
        for key, chosen in redefines.items():
            members = self._set_for(key)
            if isinstance(chosen, ChooseBy):
                self._dynamic[id(members[0])] = chosen
            else:
                self._static[id(members[0])] = self._member_indices(members, chosen)

    @property
    def _needs_flat(self) -> bool:
        """Whether view choices read the values decoded so far (a callback or ChooseBy)."""
        return self._callback is not None or bool(self._dynamic)

    def _choose(self, base: Item, flat: Mapping[str, Any] | None) -> frozenset[int] | None:
        """Indices of the views of *base*'s REDEFINES area to decode (None: all)."""
        if self._callback is not None:
            members = self._sets[id(base)]
            chosen = self._callback(base.name, flat if flat is not None else {})
            if chosen is None:
                return None
            return self._member_indices(members, chosen)
        dynamic = self._dynamic.get(id(base))
        if dynamic is not None:
            chosen = dynamic.choose(flat if flat is not None else {})
            if chosen is None:
                return None
            return self._member_indices(self._sets[id(base)], chosen)
        return self._static.get(id(base))

    # -- public API -------------------------------------------------------------------------
    @property
    def has_fast_path(self) -> bool:
        return self._fast is not None

    def projection(self, paths: Iterable[str | tuple[str | int, ...]]) -> Callable[[bytes], tuple] | None:
        """A generated decoder of only the fields at *paths*, for consumers that read a few of them.

        A path is a tuple of keys of :meth:`decode`'s result (``("TXD-CNTR-INFO", "TXD-CNTR-ACCT")``)
        or the same joined with dots.  The function takes a record of :attr:`size` bytes (or a
        buffer and the offset of such a record in it: ``f(chunk, offset)``) and returns a tuple,
        one value per path: what ``decode(record)`` holds at that path, or None where it holds
        nothing (a field of a REDEFINES view not chosen for this record, a path that names
        nothing) -- or it raises, and then ``decode`` of the same record gives the answer (the
        values, or the RecordDecodeError).  The other fields are still checked as far as the fast
        path checks them (zoned and packed digits and signs; text in a code page that leaves bytes
        undefined) but not converted, so a record the full decode refuses never gets through.
        Returns None when there is no such decoder: no fast path, OCCURS DEPENDING ON, a REDEFINES
        callback, or a path to a group or into a table.
        """
        if self._fast is None or self.variable or self._callback is not None:
            return None
        wanted: list[Field | None] = []
        for path in paths:
            segments = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
            item = self._item_at(segments)
            if item is not None:
                if not isinstance(item, Field):
                    return None
                node: Item | None = item
                while node is not None:
                    if node.occurs is not None:
                        return None
                    node = node.parent
            wanted.append(item)
        try:
            gen = _Generator(self, want=wanted)
            if gen.callback:
                return None
            fn, source = gen.build()
        except _NoFastPath:
            return None
        fn.source = source  # type: ignore[attr-defined]
        return fn

    def _item_at(self, segments: tuple[str | int, ...]) -> Item | None:
        """The item a path of decode keys leads to (a table when the path goes into one)."""
        node: Item = self.layout
        if not isinstance(node, Group):
            return node if segments[:1] == (node.name,) else None
        for seg in segments:
            if node is not self.layout and node.occurs is not None:
                return node
            if not isinstance(node, Group) or not isinstance(seg, str):
                return None
            child = _child_by_key(node, seg)
            if child is None:
                return None
            node = child
        return node

    def decode(self, buf: bytes | bytearray | memoryview) -> dict[str, Any]:
        """Decode one record; raises :class:`RecordDecodeError` (``record_offset``,
        ``field_path``, ``reason``, ``data``)."""
        if type(buf) is not bytes:
            buf = bytes(buf)
        fast = self._fast
        if fast is not None:
            try:
                if not self.variable:
                    n = len(buf)
                    if n == self.size or (n > self.size and self.trailing == "ignore"):
                        return fast(buf)
                else:
                    value, end = fast(buf)
                    if end == len(buf) or (end < len(buf) and self.trailing == "ignore"):
                        return value
            except Exception:  # noqa: BLE001,S110 - any failure: the checked interpreter explains it
                pass
        return self.decode_checked(buf)

    def decode_checked(self, buf: bytes) -> dict[str, Any]:
        """Decode through the checked interpreter only (the reference for the fast path)."""
        buf = bytes(buf)
        ctx = _DecodeCtx(buf, {} if self._needs_flat else None)
        layout = self.layout
        if isinstance(layout, Group):
            value, end = self._dec_group(layout, 0, layout.name, ctx)
        else:
            v, end = self._dec_item(layout, 0, layout.name, ctx)
            value = {layout.name: v}
        if end > len(buf):
            raise RecordDecodeError(
                f"record too short: the layout {self.name} needs {end} bytes, the record has {len(buf)}",
                record_offset=len(buf),
                field_path=self.name,
                data=buf[-16:],
            )
        if end < len(buf) and self.trailing == "error":
            raise RecordDecodeError(
                f"the record has {len(buf)} bytes but the layout {self.name} ends at byte {end}",
                record_offset=end,
                field_path=self.name,
                data=buf[end:],
            )
        return value

    def encode(self, values: Mapping[str, Any], *, fill_missing: bool = False) -> bytes:
        """Encode a dict shaped like :meth:`decode`'s result back into record bytes.

        A missing OCCURS DEPENDING ON counter is derived from the length of its table.
        ``fill_missing`` writes spaces/zeros for absent fields instead of raising.
        Raises :class:`RecordEncodeError` with the field path.
        """
        out = bytearray()
        ctx = _EncodeCtx(fill_missing)
        layout = self.layout
        if not isinstance(values, Mapping):
            raise RecordEncodeError(f"expected a dict for record {self.name}, got {type(values).__name__}")
        if isinstance(layout, Group):
            self._enc_group(layout, values, out, layout.name, ctx)
        else:
            unknown = set(values) - {layout.name}
            if unknown:
                raise RecordEncodeError(
                    f"unknown field(s) {', '.join(sorted(map(str, unknown)))}", field_path=self.name
                )
            self._enc_item(layout, values, out, layout.name, ctx)
        for cid, (state, _, _) in ctx.counters.items():
            if state == "pending" and cid not in ctx.derived:
                counter = next(c for c in self._counter_of.values() if id(c) == cid)
                raise RecordEncodeError(f"counter {counter.name} is missing", field_path=counter.path)
        return bytes(out)

    # -- checked decoding ---------------------------------------------------------------------
    def _dec_group(self, group: Group, pos: int, path: str, ctx: _DecodeCtx) -> tuple[dict, int]:
        out: dict[str, Any] = {}
        children = group.children
        i = 0
        while i < len(children):
            child = children[i]
            if child.redefined_by:
                members = self._sets[id(child)]
                area = max(m.total_length for m in members)
                chosen = self._choose(child, ctx.flat)
                for k, member in enumerate(members):
                    if chosen is not None and k not in chosen:
                        continue
                    mpath = f"{path}.{member.name}"
                    try:
                        value, _ = self._dec_item(member, pos, mpath, ctx)
                    except RecordDecodeError:
                        if self.view_errors == "error":
                            raise
                        value = None
                    self._put(out, member, value)
                pos += area
                i += len(members)
                continue
            value, pos = self._dec_item(child, pos, f"{path}.{child.name}", ctx)
            self._put(out, child, value)
            i += 1
        return out, pos

    @staticmethod
    def _put(out: dict, item: Item, value: Any) -> None:
        if value is _SKIP:
            return
        if item.is_filler:
            if isinstance(value, dict):
                out.update(value)
            return
        out[item.name] = value

    def _count(self, item: Item, pos: int, path: str, ctx: _DecodeCtx) -> int:
        occ = item.occurs
        assert occ is not None
        if not occ.variable:
            return occ.max
        counter = self._counter_of[id(item)]
        if id(counter) not in ctx.counters:
            raise RecordDecodeError(
                f"the counter {counter.name} was not decoded (is it in an unselected REDEFINES view?)",
                record_offset=pos,
                field_path=path,
            )
        n = ctx.counters[id(counter)]
        if n is None or not occ.min <= n <= occ.max:
            raise RecordDecodeError(
                f"OCCURS DEPENDING ON {counter.name} = {n} is outside {occ.min} TO {occ.max}",
                record_offset=ctx.counter_pos[id(counter)],
                field_path=path,
                data=ctx.buf[ctx.counter_pos[id(counter)] :][: counter.length],
            )
        return n

    def _dec_item(self, item: Item, pos: int, path: str, ctx: _DecodeCtx) -> tuple[Any, int]:
        if item.is_filler and not _transparent(item):
            return _SKIP, self._skip(item, pos, path, ctx)
        if item.occurs is None:
            return self._dec_one(item, pos, path, ctx)
        n = self._count(item, pos, path, ctx)
        values = []
        for k in range(n):
            value, pos = self._dec_one(item, pos, f"{path}[{k}]", ctx)
            values.append(value)
        if ctx.flat is not None and isinstance(item, Field):
            ctx.flat[item.name] = values
        return values, pos

    def _skip(self, item: Item, pos: int, path: str, ctx: _DecodeCtx) -> int:
        """End of a FILLER item (not decoded); follows OCCURS DEPENDING ON counts."""
        if not item.variable:
            return pos + item.total_length
        n = self._count(item, pos, path, ctx) if item.occurs is not None else 1
        for _ in range(n):
            if isinstance(item, Group):
                for child in item.children:
                    pos = self._skip(child, pos, path, ctx)
            else:
                pos += item.length
        return pos

    def _dec_one(self, item: Item, pos: int, path: str, ctx: _DecodeCtx) -> tuple[Any, int]:
        if isinstance(item, Group):
            return self._dec_group(item, pos, path, ctx)
        assert isinstance(item, Field)
        end = pos + item.length
        raw = ctx.buf[pos:end]
        if len(raw) < item.length:
            raise RecordDecodeError(
                f"record too short: the field needs bytes {pos}-{end - 1} "
                f"but the record has {len(ctx.buf)} bytes",
                record_offset=pos,
                field_path=path,
                data=raw,
            )
        try:
            value = self._codecs[id(item)].decode(raw)
        except FieldCodecError as exc:
            raise RecordDecodeError(exc.reason, record_offset=pos, field_path=path, data=raw) from None
        if item.odo_counter:
            ctx.counters[id(item)] = value
            ctx.counter_pos[id(item)] = pos
        if ctx.flat is not None:
            ctx.flat[item.name] = value
        return value, end

    # -- encoding -------------------------------------------------------------------------------
    def _enc_group(
        self, group: Group, values: Any, out: bytearray, path: str, ctx: _EncodeCtx, transparent: bool = False
    ) -> None:
        if not isinstance(values, Mapping):
            raise RecordEncodeError(
                f"expected a dict for group {group.name}, got {type(values).__name__}",
                field_path=path,
                record_offset=len(out),
            )
        unknown = [] if transparent else [k for k in values if k not in self._keys[id(group)]]
        if unknown:
            raise RecordEncodeError(
                f"unknown field(s) {', '.join(map(str, unknown))} in {group.name}",
                field_path=path,
                record_offset=len(out),
            )
        children = group.children
        i = 0
        while i < len(children):
            child = children[i]
            if child.redefined_by:
                members = self._sets[id(child)]
                self._enc_redefines(members, values, out, path, ctx)
                i += len(members)
                continue
            self._enc_item(child, values, out, f"{path}.{child.name}", ctx)
            i += 1

    def _given(self, item: Item, values: Mapping) -> bool:
        if item.is_filler:
            return _transparent(item) and any(k in values for k in self._keys[id(item)])
        return item.name in values

    def _enc_redefines(self, members: list[Item], values: Mapping, out: bytearray, path: str, ctx) -> None:
        area = max(m.total_length for m in members)
        start = len(out)
        given = [m for m in members if self._given(m, values)]
        if not given:
            if not ctx.fill_missing and any(not m.is_filler for m in members):
                raise RecordEncodeError(
                    "none of the REDEFINES views " + ", ".join(m.name for m in members) + " is given",
                    field_path=f"{path}.{members[0].name}",
                    record_offset=start,
                )
            given = [members[0]]
        images = []
        for member in given:
            buf = bytearray()
            try:
                self._enc_item(member, values, buf, f"{path}.{member.name}", ctx)
            except RecordEncodeError as exc:
                raise RecordEncodeError(
                    exc.reason,
                    field_path=exc.field_path,
                    record_offset=start + (exc.record_offset or 0),
                ) from None
            buf.extend(bytes([self.codepage.space]) * (area - len(buf)))
            images.append((member, bytes(buf)))
        first_member, first = images[0]
        for member, image in images[1:]:
            if image != first:
                raise RecordEncodeError(
                    f"REDEFINES views {first_member.name} and {member.name} disagree; give only one of them",
                    field_path=f"{path}.{member.name}",
                    record_offset=start,
                )
        out.extend(first)

    def _enc_item(self, item: Item, values: Mapping, out: bytearray, path: str, ctx: _EncodeCtx) -> None:
        if item.is_filler:
            if _transparent(item):
                self._enc_group(item, values, out, path, ctx, transparent=True)  # type: ignore[arg-type]
            else:
                out.extend(self._blank(item, ctx, path, len(out)))
            return
        occ = item.occurs
        if item.name not in values:
            if isinstance(item, Field) and item.odo_counter:
                codec = self._codecs[id(item)]
                ctx.counters[id(item)] = ("pending", None, len(out))
                ctx.derived.pop(id(item), None)
                out.extend(codec.zero_bytes())
                return
            if not ctx.fill_missing:
                raise RecordEncodeError(
                    f"field {item.name} is missing", field_path=path, record_offset=len(out)
                )
            if occ is not None and occ.variable:
                value: Any = [] if occ.min == 0 else None
                if value is None:
                    raise RecordEncodeError(
                        f"table {item.name} is missing and needs at least {occ.min} elements",
                        field_path=path,
                        record_offset=len(out),
                    )
            else:
                out.extend(self._blank(item, ctx, path, len(out)))
                return
        else:
            value = values[item.name]
        if occ is None:
            self._enc_one(item, value, out, path, ctx)
            return
        if not isinstance(value, list | tuple):
            raise RecordEncodeError(
                f"expected a list for OCCURS {occ.describe()}, got {type(value).__name__}",
                field_path=path,
                record_offset=len(out),
            )
        n = len(value)
        if occ.variable:
            if not occ.min <= n <= occ.max:
                raise RecordEncodeError(
                    f"{n} elements given; OCCURS {occ.min} TO {occ.max}",
                    field_path=path,
                    record_offset=len(out),
                )
            self._settle_counter(item, n, out, path, ctx)
        elif n != occ.max:
            raise RecordEncodeError(
                f"{n} elements given; OCCURS {occ.max} needs exactly {occ.max}",
                field_path=path,
                record_offset=len(out),
            )
        for k, element in enumerate(value):
            self._enc_one(item, element, out, f"{path}[{k}]", ctx)

    def _settle_counter(self, item: Item, n: int, out: bytearray, path: str, ctx: _EncodeCtx) -> None:
        counter = self._counter_of[id(item)]
        state = ctx.counters.get(id(counter))
        if state is None:
            raise RecordEncodeError(
                f"the counter {counter.name} was not encoded before the table",
                field_path=path,
                record_offset=len(out),
            )
        kind, given, offset = state
        if kind == "given":
            if given != n:
                raise RecordEncodeError(
                    f"{counter.name} = {given} but the table has {n} elements",
                    field_path=path,
                    record_offset=len(out),
                )
            return
        if ctx.derived.get(id(counter), n) != n:
            raise RecordEncodeError(
                f"tables depending on {counter.name} have different lengths",
                field_path=path,
                record_offset=len(out),
            )
        ctx.derived[id(counter)] = n
        image = self._codecs[id(counter)].encode(n)
        out[offset : offset + len(image)] = image

    def _enc_one(self, item: Item, value: Any, out: bytearray, path: str, ctx: _EncodeCtx) -> None:
        if isinstance(item, Group):
            self._enc_group(item, value, out, path, ctx)
            return
        assert isinstance(item, Field)
        codec = self._codecs[id(item)]
        if value is None and item.numeric and self.null_fill != "error":
            fill = {"low-values": 0x00, "high-values": 0xFF, "spaces": self.codepage.space}[self.null_fill]
            out.extend(bytes([fill]) * codec.size)
            return
        try:
            image = codec.encode(value)
        except FieldCodecError as exc:
            raise RecordEncodeError(exc.reason, field_path=path, record_offset=len(out)) from None
        if item.odo_counter:
            ctx.counters[id(item)] = ("given", value, len(out))
            ctx.derived.pop(id(item), None)
        out.extend(image)

    def _blank(self, item: Item, ctx: _EncodeCtx, path: str, offset: int) -> bytes:
        """Canonical bytes of an item nobody gave a value for (spaces, zeros)."""
        n = 1
        if item.occurs is not None:
            n = item.occurs.max
            if item.occurs.variable:
                counter = self._counter_of[id(item)]
                state = ctx.counters.get(id(counter))
                value = (
                    ctx.derived.get(id(counter))
                    if state and state[0] == "pending"
                    else (state or (0, None))[1]
                )
                if not isinstance(value, int):
                    raise RecordEncodeError(
                        f"cannot size {item.name}: its counter {counter.name} has no value",
                        field_path=path,
                        record_offset=offset,
                    )
                n = value
        if isinstance(item, Field):
            return self._codecs[id(item)].zero_bytes() * n
        one = bytearray()
        children = item.children  # type: ignore[attr-defined]
        i = 0
        while i < len(children):
            child = children[i]
            if child.redefined_by:
                members = self._sets[id(child)]
                area = max(m.total_length for m in members)
                image = self._blank(child, ctx, path, offset)
                one.extend(image + bytes([self.codepage.space]) * (area - len(image)))
                i += len(members)
                continue
            one.extend(self._blank(child, ctx, path, offset))
            i += 1
        return bytes(one) * n


def _qualifies(item: Item, qualifiers: tuple[str, ...]) -> bool:
    anc = item.parent
    for q in qualifiers:
        while anc is not None and anc.name != q:
            anc = anc.parent
        if anc is None:
            return False
        anc = anc.parent
    return True


class _Fn:
    """One generated function."""

    def __init__(self, name: str, params: list[str]) -> None:
        self.name = name
        self.params = params
        self.lines: list[str] = []
        self.indent = 1
        self.pending: list[tuple[FieldCodec, Field, int, str]] = []
        self.pending_base: str | None = None
        self.vars: dict[int, str] = {}
        self.fields: dict[int, str] = {}  # id(field) -> the variable holding its value

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def source(self) -> str:
        return f"def {self.name}({', '.join(self.params)}):\n" + "\n".join(self.lines) + "\n"


def _pos(base: str | None, off: int) -> str:
    if base is None:
        return str(off)
    return f"{base} + {off}" if off else base


#: entries per memo of field bytes (see _Generator.memo_open)
MEMO_SIZE = 512
#: the share of lookups that must hit for a memo to stay on (below: the work is cheaper than the memo)
MEMO_MIN_HITS = 0.75


def _memo_full_handler(ns: dict[str, Any]) -> Callable[[str], None]:
    """``_memo_full(unit)``, called by generated code when a memo is full: empty it, and switch it
    off when fewer than 3 in 4 of its lookups hit since it was last emptied (every record looks
    up every memo once; ``_n`` counts the records)."""
    since: dict[str, int] = {}
    enough = MEMO_SIZE / (1 - MEMO_MIN_HITS)  # lookups per MEMO_SIZE misses at the minimum hit rate

    def full(unit: str) -> None:
        looked = ns["_n"] - since.get(unit, 0)
        ns[f"_M{unit}"].clear()
        if looked < enough:
            ns[f"_on{unit}"] = False
        since[unit] = ns["_n"]

    return full


class _Generator:
    """Generates the fast decoder of a :class:`RecordCodec` (see the module docstring)."""

    def __init__(self, rc: RecordCodec, want: list[Field | None] | None = None) -> None:
        self.rc = rc
        self.ns: dict[str, Any] = {
            "__builtins__": {"int": int, "len": len, "list": list, "range": range, "Exception": Exception}
        }
        self.ns["_MISSING"] = _MISSING
        self._const_ids: dict[int, str] = {}
        self._keep: list[Any] = []
        self.functions: list[_Fn] = []
        self.n = 0
        self.callback = rc._callback is not None
        #: projection: the fields whose values make the result tuple (None: a full decode to a dict)
        self.want = want
        self.keep = None if want is None else {id(f) for f in want if f is not None}
        #: ChooseBy areas evaluated inline: id(area) -> (field or None, {key: indices}, default indices)
        self.choices: dict[int, tuple[Field | None, dict[Any, frozenset[int] | None], frozenset[int] | None]] = {}
        #: fields decoded even when a projection leaves them out (ChooseBy fields)
        self.needed: set[int] = set()
        for base_id, chooser in rc._dynamic.items():
            plan = self.inline_plan(base_id, chooser)
            if plan is None:
                self.callback = True  # the generic way: the values so far in a dict, rc._choose
            else:
                self.choices[base_id] = plan
        if self.callback:
            self.choices.clear()
        else:
            self.needed = {id(f) for f, _, _ in self.choices.values() if f is not None}

    def inline_plan(self, base_id: int, chooser: ChooseBy):
        """How to evaluate a ChooseBy inline, or None when only the generic callback way is exact:
        its field must be the only elementary field of that name, outside any OCCURS or REDEFINES,
        before the area, and the area outside any OCCURS (so both are in the record function)."""
        rc = self.rc
        members = rc._sets[base_id]
        try:
            table = {
                key: None if view is None else rc._member_indices(members, view)
                for key, view in chooser.views.items()
            }
            default = None if chooser.default is None else rc._member_indices(members, chooser.default)
        except CodecConfigError:
            return None  # the interpreter raises it per record, as a callback would
        tree = list(rc.layout.iter_tree())
        fields = [it for it in tree if isinstance(it, Field) and it.name == chooser.field]
        if not fields:
            return None, table, default  # never decoded: the key is always None
        if len(fields) > 1:
            return None
        field = fields[0]
        in_views = {id(m) for ms in rc._sets.values() for m in ms}
        order = {id(it): n for n, it in enumerate(tree)}

        def lineage(item: Item | None):
            while item is not None:
                yield item
                item = item.parent

        if any(a.occurs is not None or id(a) in in_views for a in lineage(field)):
            return None
        if any(a.occurs is not None for a in lineage(members[0])) or order[id(field)] > order[base_id]:
            return None
        return field, table, default

    def outputs(self, item: Item) -> bool:
        return self.keep is None or id(item) in self.keep

    def const(self, value: Any) -> str:
        name = self._const_ids.get(id(value))
        if name is None:
            self.n += 1
            name = f"_c{self.n}"
            self._const_ids[id(value)] = name
            self._keep.append(value)
            self.ns[name] = value
        return name

    def new(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def key(self, item: Item) -> str:
        return self.const(item.name)

    def build(self) -> tuple[Callable, str]:
        rc = self.rc
        layout = rc.layout
        # fixed layouts: _decode(b, o=0) decodes the record at offset o of b (readers pass their
        # chunk and the record's offset instead of slicing it out)
        base = None if layout.variable else "o"
        fn = _Fn("_decode", ["b"] if base is None else ["b", "o=0"])
        if self.callback:
            fn.emit("F = {}")
        parts: list[tuple[str, str, bool]] = []
        if isinstance(layout, Group):
            pos = self.children(fn, layout, (base, 0), parts)
        else:
            pos = self.item(fn, layout, (base, 0), parts)
        self.flush(fn)
        if self.want is not None:
            values = [fn.fields.get(id(f), "None") if f is not None else "None" for f in self.want]
            fn.emit(f"return ({''.join(v + ', ' for v in values)})")
            self.functions.append(fn)
            source = "\n".join(f.source() for f in self.functions)
            exec(compile(source, f"<copybook {rc.name} projection>", "exec"), self.ns)  # noqa: S102
            return self.ns["_decode"], source
        result = self.dict_expr(fn, parts)
        if layout.variable:
            fn.emit(f"return {result}, {_pos(*pos)}")
        else:
            fn.emit(f"return {result}")
        self.functions.append(fn)
        source = "\n".join(f.source() for f in self.functions)
        code = compile(source, f"<copybook {rc.name}>", "exec")
        exec(code, self.ns)  # noqa: S102 - source built only from generated identifiers and integers
        return self.ns["_decode"], source

    # -- structure ----------------------------------------------------------------------------
    def children(
        self, fn: _Fn, group: Group, pos: tuple[str | None, int], parts: list
    ) -> tuple[str | None, int]:
        rc = self.rc
        items = group.children
        i = 0
        while i < len(items):
            child = items[i]
            if child.redefined_by:
                members = rc._sets[id(child)]
                area = max(m.total_length for m in members)
                if self.callback or id(child) in self.choices:
                    self.flush(fn)
                    sel = self.new("s")
                    if self.callback:
                        chooser = functools.partial(rc._choose, child)
                        fn.emit(f"{sel} = {self.const(chooser)}(F)")
                    else:
                        self.emit_choice(fn, sel, *self.choices[id(child)])
                    for k, member in enumerate(members):
                        fn.emit(f"if {sel} is None or {k} in {sel}:")
                        fn.indent += 1
                        fn.emit("pass")
                        sub: list[tuple[str, str, bool]] = []
                        self.item(fn, member, pos, sub)
                        self.flush(fn)
                        assigned = []
                        for key, expr, _ in sub:
                            var = self.new("m")
                            fn.emit(f"{var} = {expr}")
                            assigned.append((key, var))
                        fn.indent -= 1
                        unset = [f"{var} = _MISSING" for _, var in assigned]
                        if self.keep is not None:  # projection: the view's wanted fields are None
                            unset = [f"{fn.fields[id(it)]} = None" for it in member.iter_tree()
                                     if id(it) in self.keep and id(it) in fn.fields]
                        if unset:
                            fn.emit("else:")
                            fn.indent += 1
                            for line in unset:
                                fn.emit(line)
                            fn.indent -= 1
                        parts.extend((key, var, True) for key, var in assigned)
                else:
                    chosen = rc._static.get(id(child))
                    for k, member in enumerate(members):
                        if chosen is None or k in chosen:
                            self.item(fn, member, pos, parts)
                pos = (pos[0], pos[1] + area)
                i += len(members)
                continue
            pos = self.item(fn, child, pos, parts)
            i += 1
        return pos

    def emit_choice(self, fn: _Fn, sel: str, field: Field | None, table: dict, default: Any) -> None:
        """``sel = `` the view indices a ChooseBy picks, from the variable of its field."""
        if field is None:
            fn.emit(f"{sel} = {self.const(default)}")
            return
        var = fn.fields.get(id(field))
        if var is None:  # inline_plan guarantees it; never guess
            raise _NoFastPath("ChooseBy field not decoded before its area")
        if isinstance(self.rc._codecs[id(field)], TextCodec):
            key = f"{var}.strip()"  # decoded text is always a str
        else:
            key = f"{self.const(ChooseBy.key)}({var})"
        fn.emit(f"{sel} = {self.const(table)}.get({key}, {self.const(default)})")

    def item(self, fn: _Fn, item: Item, pos: tuple[str | None, int], parts: list) -> tuple[str | None, int]:
        rc = self.rc
        if item.is_filler and not _transparent(item):
            if item.variable:
                raise _NoFastPath("variable-length FILLER")
            return (pos[0], pos[1] + item.total_length)
        occ = item.occurs
        if occ is None:
            if isinstance(item, Field):
                if not self.outputs(item):
                    self.check_field(fn, item, pos)
                    return (pos[0], pos[1] + item.length)
                var = self.add_field(fn, item, pos)
                if self.keep is None:
                    parts.append((self.key(item), var, False))
                return (pos[0], pos[1] + item.length)
            assert isinstance(item, Group)
            if item.is_filler:
                return self.children(fn, item, pos, parts)
            sub: list[tuple[str, str, bool]] = []
            end = self.children(fn, item, pos, sub)
            if self.keep is None:
                parts.append((self.key(item), self.dict_expr(fn, sub), False))
            return end
        # a table
        if occ.variable:
            self.flush(fn)
            counter = rc._counter_of[id(item)]
            cvar = fn.vars.get(id(counter))
            if cvar is None:
                raise _NoFastPath("counter not visible")
            count = self.new("n")
            fn.emit(f"{count} = {cvar}")
            fn.emit(f"if not {occ.min} <= {count} <= {occ.max}:")
            fn.emit(f"    raise {self.const(_OdoRange)}")
        else:
            count = str(occ.max)
        start = _pos(*pos)
        var = self.new("v")
        if isinstance(item, Field):
            codec = rc._codecs[id(item)]
            items_var = self.new("a")
            if occ.variable:
                cache = self.const(_StructCache(codec.struct_code))
                fn.emit(f"{items_var} = {cache}[{count}].unpack_from(b, {start})")
            else:
                st = self.const(struct.Struct(">" + codec.struct_code * occ.max))
                fn.emit(f"{items_var} = {st}.unpack_from(b, {start})")
            expr = codec.fast_expr("_x", self.const)
            if expr == "_x":
                fn.emit(f"{var} = list({items_var})")
            elif not codec.fast_needs_fallback:
                fn.emit(f"{var} = [{expr} for _x in {items_var}]")
            else:
                fn.emit("try:")
                fn.emit(f"    {var} = [{expr} for _x in {items_var}]")
                fn.emit("except Exception:")
                fn.emit(f"    {var} = [{self.const(codec.decode)}(_x) for _x in {items_var}]")
            if self.callback:
                fn.emit(f"F[{self.key(item)}] = {var}")
            if self.outputs(item):
                parts.append((self.key(item), var, False))
            length = item.length
            variable_elements = False
        else:
            assert isinstance(item, Group)
            variable_elements = _element_variable(item)
            elem, extra, passes_counters = self.element_function(fn, item, variable_elements)
            if passes_counters:
                self.flush(fn)  # the counters handed to the element function must be decoded first
            length = item.length
            if not variable_elements:
                stop = f"{start} + {count} * {length}"
                fn.emit(f"{var} = [{elem}(b, _o{extra}) for _o in range({start}, {stop}, {length})]")
            else:
                p = self.new("p")
                fn.emit(f"{var} = []")
                fn.emit(f"{p} = {start}")
                fn.emit(f"for _ in range({count}):")
                fn.emit(f"    _e, {p} = {elem}(b, {p}{extra})")
                fn.emit(f"    {var}.append(_e)")
                if self.outputs(item):
                    parts.append((self.key(item), var, False))
                return (p, 0)
            if self.outputs(item):
                parts.append((self.key(item), var, False))
        if occ.variable:
            p = self.new("p")
            fn.emit(f"{p} = {start} + {count} * {length}")
            return (p, 0)
        return (pos[0], pos[1] + item.total_length)

    def element_function(self, caller: _Fn, item: Group, variable_elements: bool) -> tuple[str, str, bool]:
        rc = self.rc
        name = self.new("_elem")
        params = ["b", "o"]
        args = ""
        if self.callback:
            params.append("F")
            args += ", F"
        inner = _Fn(name, params)
        inside = {id(it) for it in item.iter_tree()}
        passes_counters = False
        for sub in item.iter_tree():
            if sub is item or sub.occurs is None or not sub.occurs.variable:
                continue
            counter = rc._counter_of[id(sub)]
            if id(counter) in inside or id(counter) in inner.vars:
                continue
            outer = caller.vars.get(id(counter))
            if outer is None:
                raise _NoFastPath("counter not visible")
            param = self.new("e")
            inner.params.append(param)
            inner.vars[id(counter)] = param
            args += f", {outer}"
            passes_counters = True
        parts: list[tuple[str, str, bool]] = []
        end = self.children(inner, item, ("o", 0), parts)
        self.flush(inner)
        result = self.dict_expr(inner, parts)
        if variable_elements:
            inner.emit(f"return {result}, {_pos(*end)}")
        else:
            inner.emit(f"return {result}")
        self.functions.append(inner)
        return name, args, passes_counters

    def dict_expr(self, fn: _Fn, parts: list[tuple[str, str, bool]]) -> str:
        if not any(cond for _, _, cond in parts):
            return "{" + ", ".join(f"{k}: {e}" for k, e, _ in parts) + "}"
        self.flush(fn)
        d = self.new("d")
        lead = 0
        while not parts[lead][2]:
            lead += 1
        # one dict display for the leading unconditional entries (much cheaper than stores), then
        # the rest one by one: the key order is the layout's, as in the interpreter
        fn.emit(f"{d} = {{" + ", ".join(f"{k}: {e}" for k, e, _ in parts[:lead]) + "}")
        for key, expr, cond in parts[lead:]:
            if cond:
                fn.emit(f"if {expr} is not _MISSING:")
                fn.emit(f"    {d}[{key}] = {expr}")
            else:
                fn.emit(f"{d}[{key}] = {expr}")
        return d

    # -- fields --------------------------------------------------------------------------------
    def add_field(self, fn: _Fn, field: Field, pos: tuple[str | None, int], check_only: bool = False) -> str:
        if fn.pending and fn.pending_base != pos[0]:
            self.flush(fn)
        fn.pending_base = pos[0]
        var = "" if check_only else self.new("v")
        fn.pending.append((self.rc._codecs[id(field)], field, pos[1], var))
        if field.odo_counter and not check_only:
            fn.vars[id(field)] = var
        if not check_only:
            fn.fields[id(field)] = var
        return var

    def check_field(self, fn: _Fn, field: Field, pos: tuple[str | None, int]) -> None:
        """A field a projection leaves out: still rejected exactly when a full decode would be.

        Binary fields and text in a code page that maps every byte cannot fail: skipped.  Zoned
        and packed fields run their fast expression without the scaling and keep nothing.
        """
        codec = self.rc._codecs[id(field)]
        if id(field) in self.needed or field.odo_counter or self.callback:
            self.add_field(fn, field, pos)
        elif isinstance(codec, TextCodec):
            if "\ufffe" in codec.codepage.decoding_table:
                self.add_field(fn, field, pos)
        elif codec.fast_needs_fallback:
            self.add_field(fn, field, pos, check_only=True)

    def flush(self, fn: _Fn) -> None:
        if not fn.pending:
            return
        pending, fn.pending = fn.pending, []
        base = fn.pending_base
        # split into runs that never go backwards (REDEFINES views overlap)
        batches: list[list[tuple[FieldCodec, Field, int, str]]] = []
        end = None
        for entry in pending:
            off = entry[2]
            if end is None or off < end:
                batches.append([])
            batches[-1].append(entry)
            end = off + entry[0].size
        for batch in batches:
            self.emit_batch(fn, base, batch)

    def emit_batch(self, fn: _Fn, base: str | None, batch: list[tuple[FieldCodec, Field, int, str]]) -> None:
        start = batch[0][2]
        cursor = start
        runs: list[list[tuple[FieldCodec, Field, int, str]]] = []
        gaps: list[int] = []
        for entry in batch:
            codec, _, off, _ = entry
            text = isinstance(codec, TextCodec)
            if text and runs and off == cursor and isinstance(runs[-1][0][0], TextCodec):
                runs[-1].append(entry)
            else:
                runs.append([entry])
                gaps.append(off - cursor)
            cursor = off + codec.size
        fmt = [">"]
        raw_vars = []
        for run, gap in zip(runs, gaps, strict=True):
            if gap:
                fmt.append(f"{gap}x")
            if isinstance(run[0][0], TextCodec):
                fmt.append(f"{sum(e[0].size for e in run)}s")
            else:
                fmt.append(run[0][0].struct_code)
            raw_vars.append(self.new("r"))
        st = self.const(struct.Struct("".join(fmt)))
        fn.emit(f"{', '.join(raw_vars)}, = {st}.unpack_from(b, {_pos(base, start)})")
        for run, raw in zip(runs, raw_vars, strict=True):
            codec = run[0][0]
            memo = self.memo_open(fn, run, raw)
            if isinstance(codec, TextCodec):
                self.emit_text_run(fn, raw, run)
            else:
                self.emit_number(fn, raw, run[0])
            if memo is not None:
                self.memo_close(fn, run, raw, memo)

    def emit_number(self, fn: _Fn, raw: str, entry: tuple[FieldCodec, Field, int, str]) -> None:
        c, field, _, var = entry
        if not var:  # check only (a projection leaves the field out)
            fn.emit("try:")
            fn.emit(f"    {c.fast_check_expr(raw, self.const)}")
            fn.emit("except Exception:")
            fn.emit(f"    {self.const(c.decode)}({raw})")
            return
        expr = c.fast_expr(raw, self.const)
        if c.fast_needs_fallback:
            fn.emit("try:")
            fn.emit(f"    {var} = {expr}")
            fn.emit("except Exception:")
            fn.emit(f"    {var} = {self.const(c.decode)}({raw})")
        else:
            fn.emit(f"{var} = {expr}")
        self.after_field(fn, field, var)

    # -- memo of repeated field bytes ------------------------------------------------------------
    def memo_open(self, fn: _Fn, run: list[tuple[FieldCodec, Field, int, str]], raw: str) -> str | None:
        """Start a memo of a text run or a zoned/packed field (record function only): the same
        bytes give the same values, so a dict from bytes to values skips the work when a field
        repeats (codes, dates, blank or zero fields, the account of consecutive records).  Each
        memo holds at most MEMO_SIZE entries; when it fills up it is emptied, or switched off
        for good when fewer than 3 in 4 lookups hit since it was last emptied.  Values are
        immutable (str, int, Decimal), computed by the same code from the same bytes: a hit
        returns exactly what decoding returns."""
        if self.callback or fn.name != "_decode" or self.rc.variable:
            return None
        codec = run[0][0]
        if not isinstance(codec, TextCodec) and not codec.fast_needs_fallback:
            return None  # binary: the struct already did the work
        unit = self.new("")
        memo, on = f"_M{unit}", f"_on{unit}"
        self.ns[memo] = {}
        self.ns[f"_G{unit}"] = self.ns[memo].get  # a bound get: one lookup less per record
        self.ns[on] = True
        if "_n" not in self.ns:
            self.ns["_n"] = 0
            self.ns["_memo_full"] = _memo_full_handler(self.ns)
            fn.lines.insert(0, "    global _n")
            fn.lines.insert(1, "    _n += 1")
        fn.emit(f"_m = _G{unit}({raw}) if {on} else None")
        fn.emit("if _m is None:")
        fn.indent += 1
        return unit

    def memo_close(self, fn: _Fn, run: list[tuple[FieldCodec, Field, int, str]], raw: str, unit: str) -> None:
        memo, on = f"_M{unit}", f"_on{unit}"
        names = [var for _, _, _, var in run if var]
        value = "True" if not names else names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
        fn.emit(f"if {on}:")
        fn.emit(f"    if len({memo}) < {MEMO_SIZE}:")
        fn.emit(f"        {memo}[{raw}] = {value}")
        fn.emit("    else:")
        fn.emit(f"        _memo_full({unit!r})")
        fn.indent -= 1
        if names:
            fn.emit("else:")
            fn.emit(f"    {', '.join(names)}{',' if len(names) > 1 else ''} = _m")

    def emit_text_run(self, fn: _Fn, raw: str, run: list[tuple[FieldCodec, Field, int, str]]) -> None:
        """Adjacent text fields: one charmap decode, then slices.

        ``str.rstrip(" ")`` is several times slower than ``str.rstrip()``, which also strips
        tabs, NEL, NBSP ... and so would change data; when the decoded text is printable it
        holds no whitespace but blanks, and the fast form is exact.
        """
        codec = run[0][0]
        assert isinstance(codec, TextCodec)
        text = self.new("t")
        decode = self.const(_pycodecs.charmap_decode)
        fn.emit(f"{text} = {decode}({raw}, None, {self.const(codec.codepage.decoding_table)})[0]")
        slices = []
        rel = 0
        for c, field, _, var in run:
            assert isinstance(c, TextCodec)
            piece = text if len(run) == 1 else f"{text}[{rel}:{rel + c.size}]"
            slices.append((c, field, var, piece))
            rel += c.size
        if codec.trim == "none":
            for _, _, var, piece in slices:
                fn.emit(f"{var} = {piece}")
        else:
            fn.emit(f"if {text}.isprintable():")
            for c, _, var, piece in slices:
                fn.emit(f"    {var} = {c.trim_expr(piece, any_blank=True)}")
            fn.emit("else:")
            for c, _, var, piece in slices:
                fn.emit(f"    {var} = {c.trim_expr(piece)}")
        for _, field, var, _ in slices:
            self.after_field(fn, field, var)

    def after_field(self, fn: _Fn, field: Field, var: str) -> None:
        if self.callback:
            fn.emit(f"F[{self.key(field)}] = {var}")


def compile_record(layout: Item, **options: Any) -> RecordCodec:
    """``RecordCodec(layout, **options)``."""
    return RecordCodec(layout, **options)


def compile_copybook(copybook: Copybook, **options: Any) -> dict[str, RecordCodec]:
    """A :class:`RecordCodec` for every record of a copybook, by record name."""
    return {name: RecordCodec(layout, **options) for name, layout in copybook.records.items()}
