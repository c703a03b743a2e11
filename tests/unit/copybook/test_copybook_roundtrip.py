"""Property tests: random layouts (groups, OCCURS, ODO, REDEFINES, every usage) and values fitting them.

decode(encode(v)) == v, encode(decode(b)) == b for the canonical bytes b, the generated fast path
equals the checked interpreter, and random bytes never crash the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.copybook import RecordCodec, RecordDecodeError, parse_copybook

CODEPAGES = ("cp037", "cp500", "cp1140", "cp273", "latin-1", "ascii")
TEXT = "ABCXYZabcxyz0129 .-/&"
SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@dataclass
class Spec:
    kind: str  # group, text, zoned, packed, binary, filler
    name: str
    clause: str = ""
    children: list[Spec] = field(default_factory=list)
    size: int = 0  # text length
    digits: int = 0
    scale: int = 0
    signed: bool = False
    native: bool = False
    justified: bool = False
    occurs: int | None = None
    odo: tuple[int, int, str] | None = None  # min, max, counter name
    counter_for: str | None = None  # this field counts that ODO table
    outer: bool = False  # the counted table sits inside a fixed table next to this counter
    redefines: str | None = None
    alternatives: list[Spec] = field(default_factory=list)  # views redefining this one


class Names:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"F{self.n}"


@st.composite
def elementary(draw, names: Names, numeric_only: bool = False) -> Spec:
    kind = draw(
        st.sampled_from(
            ["zoned", "packed", "binary"] if numeric_only else ["text", "zoned", "packed", "binary"]
        )
    )
    name = names()
    if kind == "text":
        size = draw(st.integers(1, 8))
        letter = draw(st.sampled_from("XA"))
        justified = draw(st.booleans()) and letter == "X"
        clause = f"PIC {letter}({size})" + (" JUSTIFIED RIGHT" if justified else "")
        return Spec("text", name, clause, size=size, justified=justified)
    digits = draw(st.integers(1, 18))
    scale = draw(st.integers(0, min(digits, 4)))
    signed = draw(st.booleans())
    pic = (
        ("S" if signed else "")
        + (f"9({digits - scale})" if digits > scale else "")
        + (f"V9({scale})" if scale else "")
    )
    clause = f"PIC {pic}"
    native = False
    if kind == "zoned":
        if signed:
            clause += draw(
                st.sampled_from(["", " SIGN LEADING", " SIGN TRAILING SEPARATE", " SIGN IS LEADING SEPARATE"])
            )
        clause += draw(st.sampled_from(["", " DISPLAY", " USAGE IS DISPLAY"]))
    elif kind == "packed":
        clause += draw(st.sampled_from([" COMP-3", " PACKED-DECIMAL", " USAGE COMP-3"]))
    else:
        usage = draw(st.sampled_from(["COMP", "COMP-4", "BINARY", "COMP-5", "COMPUTATIONAL"]))
        native = usage == "COMP-5"
        clause += f" {usage}"
    return Spec(kind, name, clause, digits=digits, scale=scale, signed=signed, native=native)


@st.composite
def counter(draw, names: Names, maximum: int) -> Spec:
    clause = draw(
        st.sampled_from(["PIC 9", "PIC 9(2)", "PIC S9(4) COMP", "PIC 9(3) COMP-3", "PIC 9(4) COMP-5"])
    )
    spec = Spec("counter", names(), clause)
    return spec


@st.composite
def redefines_pair(draw, names: Names) -> list[Spec]:
    size = draw(st.integers(2, 6))
    base = Spec("text", names(), f"PIC X({size})", size=size)
    alt_kind = draw(st.sampled_from(["zoned", "group", "packed"]))
    if alt_kind == "zoned":
        alt = Spec("zoned", names(), f"PIC 9({size})", digits=size)
    elif alt_kind == "packed":
        digits = draw(st.integers(1, 2 * size - 1))
        alt = Spec("packed", names(), f"PIC S9({digits}) COMP-3", digits=digits, signed=True)
    else:
        first = draw(st.integers(1, size - 1))
        alt = Spec(
            "group",
            names(),
            children=[
                Spec("text", names(), f"PIC X({first})", size=first),
                Spec("text", names(), f"PIC X({size - first})", size=size - first),
            ],
        )
    alt.redefines = base.name
    base.alternatives = [alt]
    return [base, alt]


@st.composite
def group_children(draw, names: Names, depth: int) -> list[Spec]:
    out: list[Spec] = []
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.sampled_from(["field", "field", "group", "odo", "outer-odo", "redefines", "filler"]))
        if choice == "group" and depth < 2:
            g = Spec("group", names(), children=draw(group_children(names, depth + 1)))
            if draw(st.booleans()):
                g.occurs = draw(st.integers(1, 3))
            out.append(g)
        elif choice == "odo" and depth < 2:
            maximum = draw(st.integers(1, 3))
            minimum = draw(st.integers(0, 1))
            cnt = draw(counter(names, maximum))
            if draw(st.booleans()):
                table = Spec("group", names(), children=draw(group_children(names, depth + 1)))
            else:
                table = draw(elementary(names))
            table.odo = (minimum, maximum, cnt.name)
            cnt.counter_for = table.name
            out += [cnt, table]
        elif choice == "outer-odo" and depth < 2:
            # the counter outside a fixed table whose elements hold the variable table
            cnt = draw(counter(names, 3))
            table = draw(elementary(names))
            table.odo = (0, draw(st.integers(1, 3)), cnt.name)
            cnt.counter_for, cnt.outer = table.name, True
            wrapper = Spec("group", names(), children=[draw(elementary(names)), table])
            wrapper.occurs = draw(st.integers(1, 2))
            out += [cnt, wrapper]
        elif choice == "redefines":
            out += draw(redefines_pair(names))
        elif choice == "filler":
            out.append(
                Spec("filler", "FILLER", draw(st.sampled_from(["PIC X(3)", "PIC S9(3) COMP-3", "PIC 9(2)"])))
            )
        else:
            f = draw(elementary(names))
            if draw(st.integers(0, 4)) == 0:
                f.occurs = draw(st.integers(1, 3))
            out.append(f)
    return out


def render(root: Spec, fixed: bool) -> str:
    lines: list[str] = []

    def emit(spec: Spec, level: int) -> None:
        parts = [f"{level:02d}", spec.name]
        if spec.redefines:
            parts.append(f"REDEFINES {spec.redefines}")
        if spec.clause:
            parts.append(spec.clause)
        if spec.occurs:
            parts.append(f"OCCURS {spec.occurs} TIMES")
        if spec.odo:
            lo, hi, cnt = spec.odo
            parts.append(f"OCCURS {lo} TO {hi} TIMES DEPENDING ON {cnt}")
        lines.append("    " * (level // 5) + " ".join(parts) + ".")
        for child in spec.children:
            emit(child, level + 5 if level > 1 else 5)

    emit(root, 1)
    if not fixed:
        return "\n".join(lines) + "\n"
    out = ["000000* generated by the round-trip property test"]
    for n, line in enumerate(lines, 1):
        # split long entries over two lines at a blank (a clause boundary)
        text = " " + line
        while len(text) > 64:
            cut = text.rfind(" ", 0, 64)
            out.append(f"{n:06d} {text[:cut]}")
            text = "        " + text[cut:].lstrip()
        out.append(f"{n:06d} {text}")
    return "\n".join(out) + "\n"


def number(draw, spec: Spec) -> Any:
    if spec.kind == "binary" and spec.native:
        bits = 16 if spec.digits <= 4 else 32 if spec.digits <= 9 else 64
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if spec.signed else (0, (1 << bits) - 1)
    else:
        hi = 10**spec.digits - 1
        lo = -hi if spec.signed else 0
    n = draw(st.integers(lo, hi))
    return Decimal(n).scaleb(-spec.scale) if spec.scale else n


def values_for(draw, spec: Spec, views: dict[Any, Any]) -> tuple[Any, Any]:
    """(value given to encode, value expected back from decode) of one occurrence.

    *views* fixes the REDEFINES view of each area (the same in every table element).
    """
    if spec.kind == "group":
        given: dict[str, Any] = {}
        expected: dict[str, Any] = {}
        counters: dict[str, Spec] = {}
        for child in spec.children:
            if child.kind == "filler":
                continue
            if child.redefines:
                continue  # handled with its base
            if child.kind == "counter" and child.outer:
                table = next(t for g in spec.children for t in g.children if t.name == child.counter_for)
                n = draw(st.integers(table.odo[0], table.odo[1]))  # type: ignore[index]
                views[("len", table.name)] = n  # every element of the fixed table has n entries
                expected[child.name] = n
                if draw(st.booleans()):
                    given[child.name] = n
                continue
            if child.kind == "counter":
                counters[child.counter_for or ""] = child
                continue
            if child.alternatives:
                if child.name not in views:
                    views[child.name] = draw(st.sampled_from([child, *child.alternatives]))
                view = views[child.name]
                g, e = item_values(draw, view, views)
                given[view.name] = g
                expected[view.name] = e
                continue
            g, e = item_values(draw, child, views)
            given[child.name] = g
            expected[child.name] = e
            if child.name in counters:
                cnt = counters[child.name]
                expected[cnt.name] = len(e)
                if draw(st.booleans()):
                    given[cnt.name] = len(e)
        return given, expected
    if spec.kind == "text":
        text = draw(st.text(alphabet=TEXT, max_size=spec.size))
        text = text.lstrip(" ") if spec.justified else text.rstrip(" ")
        return text, text
    value = number(draw, spec)
    return value, value


def item_values(draw, spec: Spec, views: dict[Any, Any]) -> tuple[Any, Any]:
    if spec.occurs or spec.odo:
        n = spec.occurs or views.get(("len", spec.name))
        if n is None:
            n = draw(st.integers(spec.odo[0], spec.odo[1]))  # type: ignore[index]
        pairs = [values_for(draw, spec, views) for _ in range(n)]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return values_for(draw, spec, views)


def all_views(root: Spec) -> list[Spec]:
    out = []

    def walk(spec: Spec) -> None:
        if spec.alternatives:
            out.append(spec)
        for c in spec.children:
            walk(c)

    walk(root)
    return out


@st.composite
def layouts_and_values(draw):
    names = Names()
    root = Spec("group", "ROOT-REC", children=draw(group_children(names, 0)))
    text = render(root, fixed=draw(st.booleans()))
    views: dict[Any, Any] = {}
    given, expected = values_for(draw, root, views)
    choice = {name: view.name for name, view in views.items() if isinstance(name, str)}
    # REDEFINES areas in empty tables were never reached: any view will do
    for base in all_views(root):
        choice.setdefault(base.name, base.name)
    codepage = draw(st.sampled_from(CODEPAGES))
    return text, given, expected, choice, codepage


@SETTINGS
@given(layouts_and_values())
def test_round_trip(case):
    text, given, expected, choice, codepage = case
    layout = parse_copybook(text).record()
    codec = RecordCodec(layout, codepage=codepage, redefines=choice)
    assert codec.has_fast_path, codec
    data = codec.encode(given)
    if not layout.variable:
        assert len(data) == codec.size
    decoded = codec.decode(data)
    assert decoded == expected
    assert codec.decode_checked(data) == decoded
    # the generated code itself handled the record (no silent fall-back to the interpreter)
    fast = codec._fast(data)
    assert (fast[0] if layout.variable else fast) == decoded
    # the same views chosen per record by a callback
    by_callback = RecordCodec(layout, codepage=codepage, redefines=lambda name, values: choice[name])
    fast = by_callback._fast(data)
    assert (fast[0] if layout.variable else fast) == decoded == by_callback.decode_checked(data)
    assert codec.encode(decoded) == data


@SETTINGS
@given(layouts_and_values(), st.data())
def test_random_bytes_never_crash(case, data):
    text, _, _, choice, codepage = case
    layout = parse_copybook(text).record()
    codec = RecordCodec(layout, codepage=codepage, redefines=choice, null_policy="null")
    raw = data.draw(st.binary(min_size=0, max_size=codec.size + 2))
    try:
        value = codec.decode(raw)
    except RecordDecodeError as exc:
        assert exc.field_path and exc.field_path.startswith("ROOT-REC")
        return
    assert codec.decode_checked(raw) == value
