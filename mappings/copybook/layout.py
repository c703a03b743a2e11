"""The layout tree a copybook parses into: groups, elementary fields, their byte positions.

Offsets are 0-based from the start of the record and describe the *first* occurrence of a table
element; when a table has OCCURS ... DEPENDING ON, offsets of everything after it are computed
with the maximum number of occurrences (the actual ones are found while decoding).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "Condition",
    "ConditionValue",
    "Copybook",
    "CopybookWarning",
    "Field",
    "Figurative",
    "Group",
    "Item",
    "Occurs",
    "Picture",
    "Renames",
    "Usage",
]


class Usage(enum.Enum):
    """Storage formats of elementary items (COMP-1/COMP-2 are refused by the parser)."""

    DISPLAY = "DISPLAY"
    BINARY = "COMP"  # COMP, COMP-4, COMPUTATIONAL, BINARY: big-endian, limited by the PIC digits
    COMP5 = "COMP-5"  # native binary: the full range of the 2/4/8 bytes
    PACKED = "COMP-3"  # COMP-3, PACKED-DECIMAL


class Figurative(enum.Enum):
    """Figurative constants usable in VALUE clauses."""

    ZERO = "ZERO"
    SPACE = "SPACE"
    LOW_VALUE = "LOW-VALUE"
    HIGH_VALUE = "HIGH-VALUE"
    QUOTE = "QUOTE"
    NULL = "NULL"


#: A literal of a VALUE clause: str (alphanumeric), bytes (X'..'), int/Decimal (numeric),
#: a figurative constant, or ("ALL", literal).
LiteralValue = str | bytes | int | Decimal | Figurative | tuple


@dataclass(frozen=True, slots=True)
class ConditionValue:
    """One value (``high is None``) or one ``low THRU high`` range of an 88-level."""

    low: LiteralValue
    high: LiteralValue | None = None

    def matches(self, value: object) -> bool:
        if self.high is None:
            return _same(value, self.low)
        try:
            return self.low <= value <= self.high  # type: ignore[operator]
        except TypeError:
            return False


def _same(value: object, literal: LiteralValue) -> bool:
    if isinstance(literal, Figurative):
        if literal is Figurative.ZERO:
            return value == 0 or (isinstance(value, str) and value != "" and set(value) == {"0"})
        if literal is Figurative.SPACE:
            return isinstance(value, str) and value.strip(" ") == ""
        return False
    if isinstance(value, str) and isinstance(literal, str):
        return value.rstrip(" ") == literal.rstrip(" ")
    return value == literal


@dataclass(frozen=True, slots=True)
class Condition:
    """An 88-level condition name: the code table entry of its parent item."""

    name: str
    values: tuple[ConditionValue, ...]
    line: int = 0
    column: int = 0

    def matches(self, value: object) -> bool:
        """Whether a decoded value of the parent item satisfies this condition."""
        return any(v.matches(value) for v in self.values)


@dataclass(frozen=True, slots=True)
class Picture:
    """A parsed PICTURE string.

    ``category`` is ``"X"`` (alphanumeric), ``"A"`` (alphabetic) or ``"9"`` (numeric);
    ``size`` is the number of character positions (digits for numerics, without the sign).
    """

    text: str
    category: str
    size: int
    digits: int = 0
    scale: int = 0
    signed: bool = False

    @property
    def numeric(self) -> bool:
        return self.category == "9"


@dataclass(frozen=True, slots=True)
class Occurs:
    """OCCURS n, or OCCURS min TO max DEPENDING ON counter."""

    min: int
    max: int
    depending_on: str | None = None
    qualifiers: tuple[str, ...] = ()

    @property
    def variable(self) -> bool:
        return self.depending_on is not None

    def describe(self) -> str:
        if self.depending_on is None:
            return str(self.max)
        of = "".join(f" OF {q}" for q in self.qualifiers)
        return f"{self.min} TO {self.max} DEPENDING ON {self.depending_on}{of}"


@dataclass(frozen=True, slots=True)
class CopybookWarning:
    """Something accepted but worth a look (SYNC, odd level numbers, oversized REDEFINES)."""

    message: str
    filename: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}: warning: {self.message}"


@dataclass(eq=False)
class Item:
    """Common part of groups and elementary fields."""

    level: int
    name: str  # upper-cased; "FILLER" for FILLER and unnamed items
    path: str = ""  # dotted, starting with the record name
    offset: int = 0  # 0-based within the record, first occurrence
    length: int = 0  # bytes of one occurrence (maximum when variable)
    occurs: Occurs | None = None
    redefines: str | None = None  # name of the item this one redefines
    conditions: tuple[Condition, ...] = ()
    line: int = 0
    column: int = 0
    filename: str = "<copybook>"
    parent: Group | None = field(default=None, repr=False)
    redefined_item: Item | None = field(default=None, repr=False)  # resolved REDEFINES target
    redefined_by: list[Item] = field(default_factory=list, repr=False)
    variable: bool = False  # the size depends on an OCCURS DEPENDING ON value (self or below)

    @property
    def is_filler(self) -> bool:
        return self.name == "FILLER"

    @property
    def total_length(self) -> int:
        """Bytes taken by all occurrences (maximum when the count is variable)."""
        return self.length * (self.occurs.max if self.occurs else 1)

    @property
    def is_group(self) -> bool:
        return False

    def iter_tree(self) -> Iterator[Item]:
        """This item and everything below it, in copybook order."""
        yield self

    def code_table(self) -> dict[str, tuple[ConditionValue, ...]]:
        """The 88-level conditions of this item as ``{condition name: values}``."""
        return {c.name: c.values for c in self.conditions}

    def conditions_met(self, value: object) -> list[str]:
        """Names of the 88-levels of this item that a decoded value satisfies."""
        return [c.name for c in self.conditions if c.matches(value)]


@dataclass(eq=False)
class Field(Item):
    """An elementary item (it has a PICTURE)."""

    picture: Picture = field(default_factory=lambda: Picture("X", "X", 1))
    usage: Usage = Usage.DISPLAY
    sign_leading: bool = False
    sign_separate: bool = False
    justified: bool = False
    blank_when_zero: bool = False
    value: LiteralValue | None = None
    synchronized: bool = False
    odo_counter: bool = False  # some OCCURS DEPENDING ON refers to this field

    @property
    def numeric(self) -> bool:
        return self.picture.numeric

    @property
    def signed(self) -> bool:
        return self.picture.signed

    @property
    def scale(self) -> int:
        return self.picture.scale

    @property
    def digits(self) -> int:
        return self.picture.digits

    @property
    def pic(self) -> str:
        return self.picture.text

    @property
    def kind(self) -> str:
        """``text``, ``zoned``, ``packed``, ``binary`` or ``binary-native`` (COMP-5)."""
        if not self.picture.numeric:
            return "text"
        return {
            Usage.DISPLAY: "zoned",
            Usage.PACKED: "packed",
            Usage.BINARY: "binary",
            Usage.COMP5: "binary-native",
        }[self.usage]


@dataclass(eq=False)
class Renames:
    """A 66-level RENAMES entry (recorded, not decoded)."""

    name: str
    from_name: str
    thru_name: str | None = None
    offset: int = 0
    length: int = 0
    line: int = 0
    column: int = 0


@dataclass(eq=False)
class Group(Item):
    """A group item; a level-01 group is a record layout."""

    children: list[Item] = field(default_factory=list)
    usage: Usage | None = None  # USAGE given on the group (inherited by its fields)
    renames: list[Renames] = field(default_factory=list)  # 66-levels (record level only)
    warnings: list[CopybookWarning] = field(default_factory=list)  # record level only

    @property
    def is_group(self) -> bool:
        return True

    def iter_tree(self) -> Iterator[Item]:
        yield self
        for child in self.children:
            yield from child.iter_tree()

    def fields(self) -> list[Field]:
        """Every elementary field below this group, in copybook order."""
        return [i for i in self.iter_tree() if isinstance(i, Field)]

    def find(self, name_or_path: str) -> Item:
        """The item with this path (``REC.GRP.X``) or this unique name (``X``)."""
        key = name_or_path.upper()
        by_path = [i for i in self.iter_tree() if i.path == key]
        if by_path:
            return by_path[0]
        by_name = [i for i in self.iter_tree() if i.name == key]
        if len(by_name) == 1:
            return by_name[0]
        if not by_name:
            raise KeyError(f"no item {name_or_path!r} in {self.path}")
        raise KeyError(f"{name_or_path!r} is ambiguous in {self.path}: " + ", ".join(i.path for i in by_name))


@dataclass(eq=False)
class Copybook:
    """A parsed copybook: one or more record layouts by name, plus the parser's warnings."""

    filename: str
    records: dict[str, Item]
    warnings: list[CopybookWarning] = field(default_factory=list)

    def record(self, name: str | None = None) -> Item:
        """The record layout called *name*; without a name, the only (or the first) one."""
        if name is None:
            return next(iter(self.records.values()))
        try:
            return self.records[name.upper()]
        except KeyError:
            raise KeyError(
                f"no record {name!r} in {self.filename}; records: {', '.join(self.records)}"
            ) from None

    def __getitem__(self, name: str) -> Item:
        return self.record(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)
