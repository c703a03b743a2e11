"""Copybook text -> :class:`~mappings.copybook.layout.Copybook` (record layouts by name).

Entry points: :func:`parse_copybook` (text) and :func:`load_copybook` (a file).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal

from .errors import CopybookLayoutError, CopybookSyntaxError, UnsupportedFeatureError
from .layout import (
    Condition,
    ConditionValue,
    Copybook,
    CopybookWarning,
    Field,
    Figurative,
    Group,
    Item,
    LiteralValue,
    Occurs,
    Picture,
    Renames,
    Usage,
)
from .lexer import Token, _Source, tokenize
from .picture import PictureError, parse_picture

__all__ = ["load_copybook", "parse_copybook", "storage_size"]

_USAGES = {
    "DISPLAY": Usage.DISPLAY,
    "COMP": Usage.BINARY,
    "COMPUTATIONAL": Usage.BINARY,
    "COMP-4": Usage.BINARY,
    "COMPUTATIONAL-4": Usage.BINARY,
    "BINARY": Usage.BINARY,
    "COMP-5": Usage.COMP5,
    "COMPUTATIONAL-5": Usage.COMP5,
    "COMP-3": Usage.PACKED,
    "COMPUTATIONAL-3": Usage.PACKED,
    "PACKED-DECIMAL": Usage.PACKED,
}
_UNSUPPORTED_USAGES = {
    "COMP-1": "COMP-1 (single-precision floating point)",
    "COMPUTATIONAL-1": "COMP-1 (single-precision floating point)",
    "COMP-2": "COMP-2 (double-precision floating point)",
    "COMPUTATIONAL-2": "COMP-2 (double-precision floating point)",
    "FLOAT-SHORT": "FLOAT-SHORT",
    "FLOAT-LONG": "FLOAT-LONG",
    "COMP-6": "COMP-6",
    "COMP-X": "COMP-X",
    "INDEX": "USAGE INDEX",
    "POINTER": "USAGE POINTER",
    "POINTER-32": "USAGE POINTER-32",
    "PROCEDURE-POINTER": "USAGE PROCEDURE-POINTER",
    "FUNCTION-POINTER": "USAGE FUNCTION-POINTER",
    "NATIONAL": "USAGE NATIONAL",
    "DISPLAY-1": "USAGE DISPLAY-1 (DBCS)",
    "UTF-8": "USAGE UTF-8",
}
_FIGURATIVES = {
    "ZERO": Figurative.ZERO,
    "ZEROS": Figurative.ZERO,
    "ZEROES": Figurative.ZERO,
    "SPACE": Figurative.SPACE,
    "SPACES": Figurative.SPACE,
    "LOW-VALUE": Figurative.LOW_VALUE,
    "LOW-VALUES": Figurative.LOW_VALUE,
    "HIGH-VALUE": Figurative.HIGH_VALUE,
    "HIGH-VALUES": Figurative.HIGH_VALUE,
    "QUOTE": Figurative.QUOTE,
    "QUOTES": Figurative.QUOTE,
    "NULL": Figurative.NULL,
    "NULLS": Figurative.NULL,
}
_CLAUSE_WORDS = (
    set(_USAGES)
    | set(_UNSUPPORTED_USAGES)
    | {
        "REDEFINES",
        "PIC",
        "PICTURE",
        "USAGE",
        "SIGN",
        "LEADING",
        "TRAILING",
        "SEPARATE",
        "OCCURS",
        "SYNC",
        "SYNCHRONIZED",
        "JUST",
        "JUSTIFIED",
        "BLANK",
        "VALUE",
        "VALUES",
        "GLOBAL",
        "EXTERNAL",
        "RENAMES",
        "DEPENDING",
        "ASCENDING",
        "DESCENDING",
        "INDEXED",
        "KEY",
        "TIMES",
        "IS",
        "ARE",
        "ON",
        "BY",
        "TO",
        "THRU",
        "THROUGH",
        "WHEN",
    }
)
_DIRECTIVES = {"EJECT", "SKIP1", "SKIP2", "SKIP3"}
_NAME_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]*$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def storage_size(picture: Picture, usage: Usage, sign_separate: bool = False) -> int:
    """Bytes taken by one elementary item (IBM rules)."""
    if not picture.numeric:
        return picture.size
    if usage is Usage.DISPLAY:
        return picture.digits + (1 if sign_separate else 0)
    if usage is Usage.PACKED:
        return picture.digits // 2 + 1
    if picture.digits <= 4:
        return 2
    if picture.digits <= 9:
        return 4
    return 8


@dataclass(eq=False)
class _Entry:
    level: int
    name: str | None
    line: int
    column: int
    pic: tuple[str, int, int] | None = None
    usage: tuple[str, int, int] | None = None
    sign: tuple[bool, bool, int, int] | None = None  # leading, separate, line, column
    occurs: tuple[Occurs, int, int] | None = None
    redefines: tuple[str, int, int] | None = None
    justified: bool = False
    blank_when_zero: bool = False
    value: LiteralValue | None = None
    sync: tuple[int, int] | None = None
    values88: list[ConditionValue] = field(default_factory=list)
    renames: tuple[str, str | None] | None = None
    children: list[_Entry] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    renames_entries: list[_Entry] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return self.name or "FILLER"


class _Parser:
    def __init__(self, tokens: list[Token], src: _Source, default_record_name: str) -> None:
        self.tokens = tokens
        self.src = src
        self.i = 0
        self.default_record_name = default_record_name.upper()
        self.warnings: list[CopybookWarning] = [
            CopybookWarning(message, src.filename, line, col) for line, col, message in src.warnings
        ]

    # -- token helpers ---------------------------------------------------------------------
    def error(self, message: str, tok: Token | None = None, hint: str | None = None, cls=CopybookSyntaxError):
        tok = tok or self.last()
        src_line = self.src.lines[tok.line - 1].expandtabs(8) if 0 < tok.line <= len(self.src.lines) else None
        return cls(
            message,
            filename=self.src.filename,
            line=tok.line,
            column=tok.column,
            hint=hint,
            source_line=src_line,
        )

    def error_at(
        self, message: str, line: int, column: int, hint: str | None = None, cls=CopybookSyntaxError
    ):
        return self.error(message, Token("WORD", "", line, column), hint, cls)

    def warn(self, message: str, line: int, column: int) -> None:
        self.warnings.append(CopybookWarning(message, self.src.filename, line, column))

    def last(self) -> Token:
        if self.i < len(self.tokens):
            return self.tokens[self.i]
        return self.tokens[-1] if self.tokens else Token("PERIOD", ".", 1, 1)

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "WORD" and tok.text in words

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end of the copybook", hint="the last entry is incomplete")
        self.i += 1
        return tok

    def skip(self, *words: str) -> None:
        """Skip one optional noise word."""
        if self.at_word(*words):
            self.i += 1

    def at_end_of_entry(self) -> bool:
        tok = self.peek()
        return tok is None or tok.kind == "PERIOD"

    def expect_word(self, what: str) -> Token:
        tok = self.peek()
        if tok is None or tok.kind != "WORD":
            raise self.error(f"expected {what}", tok)
        self.i += 1
        return tok

    def expect_int(self, what: str) -> int:
        tok = self.peek()
        if tok is None or tok.kind != "WORD" or not tok.text.isdigit():
            raise self.error(f"expected {what} (an unsigned integer)", tok)
        self.i += 1
        return int(tok.text)

    # -- entries ---------------------------------------------------------------------------
    def parse(self) -> list[_Entry]:
        entries: list[_Entry] = []
        while self.peek() is not None:
            tok = self.peek()
            assert tok is not None
            if tok.kind == "PERIOD":
                self.i += 1
                continue
            if tok.kind == "WORD" and tok.text in _DIRECTIVES:
                self.i += 1
                continue
            if tok.kind == "WORD" and tok.text in ("COPY", "REPLACE", "INCLUDE"):
                raise self.error(
                    f"{tok.text} statements are not supported",
                    tok,
                    "expand nested copybooks before parsing",
                    UnsupportedFeatureError,
                )
            if tok.kind != "WORD" or not tok.text.isdigit() or len(tok.text) > 2:
                raise self.error(
                    f"expected a level number, found {tok.text!r}",
                    tok,
                    "every entry starts with a level number (01-49, 66, 77 or 88) and ends with a period",
                )
            entries.append(self.parse_entry())
        return entries

    def parse_entry(self) -> _Entry:
        tok = self.take()
        level = int(tok.text)
        if not (1 <= level <= 49 or level in (66, 77, 88)):
            raise self.error(f"invalid level number {tok.text}", tok, "use 01-49, 66, 77 or 88")
        name = None
        nxt = self.peek()
        if (
            nxt is not None
            and nxt.kind == "WORD"
            and nxt.text not in _CLAUSE_WORDS
            and not nxt.text.isdigit()
        ):
            if not _NAME_RE.match(nxt.text) or nxt.text.endswith("-"):
                raise self.error(f"invalid data name {nxt.text!r}", nxt)
            name = None if nxt.text == "FILLER" else nxt.text
            self.i += 1
        entry = _Entry(level, name, tok.line, tok.column)
        if level == 88:
            if name is None:
                raise self.error("an 88-level entry needs a condition name", tok)
            self.parse_condition(entry)
        elif level == 66:
            if name is None:
                raise self.error("a 66-level entry needs a name", tok)
            self.parse_renames(entry)
        else:
            self.parse_clauses(entry)
        if self.peek() is None:
            self.warn("missing period at the end of the last entry", tok.line, tok.column)
        else:
            self.i += 1  # the period
        return entry

    def parse_condition(self, entry: _Entry) -> None:
        if not self.at_word("VALUE", "VALUES"):
            raise self.error("an 88-level entry needs VALUE or VALUES", self.peek() or self.last())
        self.i += 1
        self.skip("IS", "ARE")
        while not self.at_end_of_entry():
            if self.at_word("WHEN"):  # WHEN SET TO FALSE [IS] literal: accepted and ignored
                self.i += 1
                for word in ("SET", "TO", "FALSE"):
                    self.skip(word)
                self.skip("IS")
                self.parse_literal()
                continue
            low = self.parse_literal()
            high = None
            if self.at_word("THRU", "THROUGH"):
                self.i += 1
                high = self.parse_literal()
            entry.values88.append(ConditionValue(low, high))
        if not entry.values88:
            raise self.error("VALUE without a literal", self.last())

    def parse_renames(self, entry: _Entry) -> None:
        if not self.at_word("RENAMES"):
            raise self.error("a 66-level entry needs RENAMES", self.peek() or self.last())
        self.i += 1
        first = self.expect_word("the name of the renamed item").text
        thru = None
        if self.at_word("THRU", "THROUGH"):
            self.i += 1
            thru = self.expect_word("the name after THRU").text
        entry.renames = (first, thru)
        if not self.at_end_of_entry():
            raise self.error("expected a period after RENAMES", self.peek())

    def parse_literal(self) -> LiteralValue:
        tok = self.take()
        if tok.kind == "STRING":
            return tok.text
        if tok.kind == "HEX":
            return bytes.fromhex(tok.text)
        if tok.kind == "WORD":
            if tok.text in _FIGURATIVES:
                return _FIGURATIVES[tok.text]
            if tok.text == "ALL":
                return ("ALL", self.parse_literal())
            if _NUMBER_RE.match(tok.text):
                return Decimal(tok.text) if "." in tok.text else int(tok.text)
        raise self.error(f"expected a literal, found {tok.text!r}", tok)

    def parse_clauses(self, entry: _Entry) -> None:
        seen: set[str] = set()

        def once(key: str, tok: Token) -> None:
            if key in seen:
                raise self.error(f"duplicate {key} clause", tok)
            seen.add(key)

        while not self.at_end_of_entry():
            tok = self.take()
            word = tok.text
            if tok.kind != "WORD":
                raise self.error(f"unexpected literal {tok.text!r}", tok, "literals belong in a VALUE clause")
            if word == "REDEFINES":
                once("REDEFINES", tok)
                target = self.expect_word("the name of the redefined item")
                entry.redefines = (target.text, target.line, target.column)
            elif word in ("PIC", "PICTURE"):
                once("PICTURE", tok)
                self.skip("IS")
                pic = self.peek()
                if pic is None or pic.kind != "WORD":
                    raise self.error("expected a PICTURE string", pic or tok)
                self.i += 1
                entry.pic = (pic.text, pic.line, pic.column)
            elif word == "USAGE":
                once("USAGE", tok)
                self.skip("IS")
                usage = self.expect_word("a usage (DISPLAY, COMP, COMP-3, ...)")
                self.set_usage(entry, usage)
            elif word in _USAGES or word in _UNSUPPORTED_USAGES:
                once("USAGE", tok)
                self.set_usage(entry, tok)
            elif word in ("SIGN", "LEADING", "TRAILING"):
                once("SIGN", tok)
                if word == "SIGN":
                    self.skip("IS")
                    where = self.expect_word("LEADING or TRAILING")
                    if where.text not in ("LEADING", "TRAILING"):
                        raise self.error(f"expected LEADING or TRAILING, found {where.text!r}", where)
                    word = where.text
                separate = False
                if self.at_word("SEPARATE"):
                    self.i += 1
                    self.skip("CHARACTER")
                    separate = True
                entry.sign = (word == "LEADING", separate, tok.line, tok.column)
            elif word == "OCCURS":
                once("OCCURS", tok)
                self.parse_occurs(entry, tok)
            elif word in ("SYNC", "SYNCHRONIZED"):
                once("SYNCHRONIZED", tok)
                self.skip("LEFT", "RIGHT")
                entry.sync = (tok.line, tok.column)
            elif word in ("JUST", "JUSTIFIED"):
                once("JUSTIFIED", tok)
                self.skip("RIGHT")
                entry.justified = True
            elif word == "BLANK":
                once("BLANK WHEN ZERO", tok)
                self.skip("WHEN")
                zero = self.expect_word("ZERO")
                if zero.text not in ("ZERO", "ZEROS", "ZEROES"):
                    raise self.error(f"expected BLANK WHEN ZERO, found {zero.text!r}", zero)
                entry.blank_when_zero = True
            elif word in ("VALUE", "VALUES"):
                once("VALUE", tok)
                self.skip("IS", "ARE")
                entry.value = self.parse_literal()
            elif word in ("GLOBAL", "EXTERNAL"):
                pass
            elif word.isdigit() and len(word) <= 2:
                raise self.error(
                    f"expected a clause or a period, found level number {word}",
                    tok,
                    "the previous entry is probably missing its closing period",
                )
            else:
                raise self.error(
                    f"unknown clause {word!r}",
                    tok,
                    "expected PIC, USAGE, COMP/COMP-3/BINARY, OCCURS, REDEFINES, SIGN, VALUE, "
                    "SYNC, JUSTIFIED or BLANK WHEN ZERO (or a missing period before this word)",
                )

    def set_usage(self, entry: _Entry, tok: Token) -> None:
        if tok.text in _UNSUPPORTED_USAGES:
            raise self.error(
                f"{_UNSUPPORTED_USAGES[tok.text]} is not supported",
                tok,
                "supported usages: DISPLAY, COMP/COMP-4/BINARY, COMP-5, COMP-3/PACKED-DECIMAL",
                UnsupportedFeatureError,
            )
        if tok.text not in _USAGES:
            raise self.error(f"unknown usage {tok.text!r}", tok)
        entry.usage = (tok.text, tok.line, tok.column)

    def parse_occurs(self, entry: _Entry, tok: Token) -> None:
        low = self.expect_int("the number of occurrences")
        high = low
        to = False
        if self.at_word("TO"):
            self.i += 1
            high = self.expect_int("the maximum number of occurrences")
            to = True
        self.skip("TIMES")
        depending = None
        qualifiers: list[str] = []
        while not self.at_end_of_entry():
            if self.at_word("DEPENDING"):
                self.i += 1
                self.skip("ON")
                depending = self.expect_word("the name of the counter (DEPENDING ON name)").text
                while self.at_word("OF", "IN"):
                    self.i += 1
                    qualifiers.append(self.expect_word("a qualifying group name").text)
            elif self.at_word("ASCENDING", "DESCENDING"):
                self.i += 1
                self.skip("KEY")
                self.skip("IS")
                self._names("a key name")
            elif self.at_word("INDEXED"):
                self.i += 1
                self.skip("BY")
                self._names("an index name")
            else:
                break
        if to and depending is None:
            raise self.error(
                f"OCCURS {low} TO {high} needs DEPENDING ON", tok, "add DEPENDING ON <counter field>"
            )
        if depending is not None and not to:
            low = 0  # OCCURS n DEPENDING ON x: 0 to n
        if high < 1:
            raise self.error("OCCURS needs at least one occurrence", tok)
        if low > high:
            raise self.error(f"OCCURS {low} TO {high}: the minimum exceeds the maximum", tok)
        entry.occurs = (Occurs(low, high, depending, tuple(qualifiers)), tok.line, tok.column)

    def _names(self, what: str) -> None:
        self.expect_word(what)
        while True:
            tok = self.peek()
            if tok is None or tok.kind != "WORD" or tok.text in _CLAUSE_WORDS or tok.text.isdigit():
                return
            self.i += 1


class _Builder:
    """Entries -> layout items: hierarchy, inheritance, sizes, offsets, REDEFINES and ODO."""

    def __init__(self, parser: _Parser) -> None:
        self.p = parser
        self.filename = parser.src.filename

    def roots(self, entries: list[_Entry]) -> list[_Entry]:
        roots: list[_Entry] = []
        stack: list[_Entry] = []
        last: _Entry | None = None
        for e in entries:
            if e.level == 88:
                if last is None:
                    raise self.p.error_at(
                        "an 88-level condition must follow the item it belongs to", e.line, e.column
                    )
                last.conditions.append(Condition(e.name or "", tuple(e.values88), e.line, e.column))
                continue
            if e.level == 66:
                if not roots:
                    raise self.p.error_at("a 66-level RENAMES must follow a record", e.line, e.column)
                roots[-1].renames_entries.append(e)
                continue
            if e.level in (1, 77):
                roots.append(e)
                stack = [e]
                last = e
                continue
            if not stack:
                synthetic = _Entry(1, self.p.default_record_name, e.line, e.column)
                roots.append(synthetic)
                stack = [synthetic]
            if stack[0].level == 77:
                raise self.p.error_at(
                    f"level {e.level:02d} after a 77-level item",
                    e.line,
                    e.column,
                    "77-level items stand alone; start a record with 01",
                )
            popped: _Entry | None = None
            while len(stack) > 1 and stack[-1].level >= e.level:
                popped = stack.pop()
            if popped is not None and popped.level != e.level:
                self.p.warn(
                    f"level {e.level:02d} matches no enclosing level; treated as a sibling of "
                    f"{popped.display_name} (level {popped.level:02d})",
                    e.line,
                    e.column,
                )
            parent = stack[-1]
            if parent.pic is not None:
                raise self.p.error_at(
                    f"{parent.display_name} has a PICTURE, so it cannot have subordinate items",
                    e.line,
                    e.column,
                    f"check the level number of {e.display_name} or the period after {parent.display_name}",
                )
            parent.children.append(e)
            stack.append(e)
            last = e
        return roots

    # -- items -----------------------------------------------------------------------------
    def item(self, e: _Entry, usage: Usage | None, sign: tuple[bool, bool] | None, top: bool) -> Item:
        name = e.name or "FILLER"
        own_usage = _USAGES[e.usage[0]] if e.usage else None
        if e.occurs is not None and top:
            raise self.p.error_at(
                "OCCURS is not allowed on a level-01 or level-77 item", e.occurs[1], e.occurs[2]
            )
        common = dict(
            level=e.level,
            name=name,
            occurs=e.occurs[0] if e.occurs else None,
            redefines=e.redefines[0] if e.redefines else None,
            conditions=tuple(e.conditions),
            line=e.line,
            column=e.column,
            filename=self.filename,
        )
        if e.sync is not None:
            self.p.warn(
                f"SYNCHRONIZED on {name} is ignored: no slack bytes are inserted; check the offsets "
                "if the producing program was compiled with alignment",
                *e.sync,
            )
        if e.children:
            if e.pic is not None:  # pragma: no cover - caught while building the hierarchy
                raise self.p.error_at(f"group {name} has a PICTURE", e.pic[1], e.pic[2])
            if e.justified or e.blank_when_zero:
                self.p.warn(f"JUSTIFIED/BLANK WHEN ZERO on group {name} ignored", e.line, e.column)
            group_sign = sign
            if e.sign is not None:
                group_sign = (e.sign[0], e.sign[1])
            group = Group(**common, usage=own_usage or usage)
            for child in e.children:
                item = self.item(child, own_usage or usage, group_sign, False)
                item.parent = group
                group.children.append(item)
            return group
        return self.field(e, common, own_usage or usage, sign)

    def field(
        self, e: _Entry, common: dict, usage: Usage | None, inherited_sign: tuple[bool, bool] | None
    ) -> Field:
        name = common["name"]
        if e.pic is None:
            raise self.p.error_at(
                f"elementary item {name} has no PICTURE clause",
                e.line,
                e.column,
                "add PIC ..., or give it subordinate items",
            )
        text, line, col = e.pic
        try:
            picture = parse_picture(text)
        except PictureError as exc:
            cls = UnsupportedFeatureError if exc.unsupported else CopybookSyntaxError
            raise self.p.error_at(exc.message, line, col + exc.index, exc.hint, cls) from None
        usage = usage or Usage.DISPLAY
        if not picture.numeric and usage is not Usage.DISPLAY:
            where = e.usage[1:] if e.usage else (line, col)
            raise self.p.error_at(
                f"USAGE {usage.value} needs a numeric PICTURE, {name} is PIC {text}", *where
            )
        if usage in (Usage.BINARY, Usage.COMP5) and picture.digits > 18:
            raise self.p.error_at(
                f"binary item {name} has {picture.digits} digits; at most 18 are allowed", line, col
            )
        leading = separate = False
        if e.sign is not None:
            if not picture.signed:
                raise self.p.error_at(f"SIGN clause on {name}, whose PICTURE has no S", e.sign[2], e.sign[3])
            if usage is not Usage.DISPLAY:
                raise self.p.error_at(
                    f"SIGN clause on {name} needs USAGE DISPLAY, not {usage.value}", e.sign[2], e.sign[3]
                )
            leading, separate = e.sign[0], e.sign[1]
        elif inherited_sign is not None and picture.signed and usage is Usage.DISPLAY:
            leading, separate = inherited_sign
        if e.justified and picture.numeric:
            raise self.p.error_at(f"JUSTIFIED is not allowed on numeric item {name}", e.line, e.column)
        if e.blank_when_zero and (not picture.numeric or usage is not Usage.DISPLAY):
            raise self.p.error_at(
                f"BLANK WHEN ZERO needs a numeric DISPLAY item; {name} is not", e.line, e.column
            )
        return Field(
            **common,
            picture=picture,
            usage=usage,
            sign_leading=leading,
            sign_separate=separate,
            justified=e.justified,
            blank_when_zero=e.blank_when_zero,
            value=e.value,
            synchronized=e.sync is not None,
            length=storage_size(picture, usage, separate),
        )

    # -- positions ---------------------------------------------------------------------------
    def place(self, item: Item, offset: int, path: str) -> None:
        """Assign path, offset, length (groups) and resolve REDEFINES among siblings."""
        item.path = path
        item.offset = offset
        if not isinstance(item, Group):
            item.variable = bool(item.occurs and item.occurs.variable)
            return
        pos = offset
        base_pos = offset
        current_set: list[Item] = []  # the last redefines set: base + its redefiners
        for child in item.children:
            child_path = f"{path}.{child.name}"
            if child.redefines is None:
                base_pos = pos
                current_set = [child]
                self.place(child, pos, child_path)
            else:
                names = {m.name for m in current_set}
                if not current_set or child.redefines not in names:
                    raise self.p.error_at(
                        f"{child.name} REDEFINES {child.redefines}, which is not the item just before it",
                        child.line,
                        child.column,
                        "REDEFINES must name the preceding item of the same level "
                        "(only other REDEFINES of it may come in between)",
                        CopybookLayoutError,
                    )
                base = current_set[0]
                child.redefined_item = base
                base.redefined_by.append(child)
                current_set.append(child)
                self.place(child, base_pos, child_path)
                if child.total_length > base.total_length:
                    self.p.warn(
                        f"{child.name} ({child.total_length} bytes) is larger than the item it redefines, "
                        f"{base.name} ({base.total_length} bytes); the area takes the larger size",
                        child.line,
                        child.column,
                    )
            pos = max(pos, child.offset + child.total_length)
        item.length = pos - offset
        item.variable = bool(item.occurs and item.occurs.variable) or any(c.variable for c in item.children)

    # -- checks after placement ------------------------------------------------------------
    def resolve_odo(self, record: Item) -> None:
        order = list(record.iter_tree())
        index = {id(it): n for n, it in enumerate(order)}
        for subject in order:
            occ = subject.occurs
            if occ is None or not occ.variable:
                continue
            if _in_redefines(subject):
                raise self.p.error_at(
                    f"{subject.name} has OCCURS DEPENDING ON inside a REDEFINES",
                    subject.line,
                    subject.column,
                    "neither a redefined nor a redefining item may contain a variable-length table",
                    CopybookLayoutError,
                )
            candidates = [
                it
                for it in order
                if it.name == occ.depending_on and _qualified(it, occ.qualifiers) and it is not subject
            ]
            before = [
                c for c in candidates if index[id(c)] < index[id(subject)] and not _is_under(c, subject)
            ]
            if not before:
                after = [c for c in candidates if c not in before]
                if after:
                    raise self.p.error_at(
                        f"the counter {occ.depending_on} of {subject.name} is defined after (or inside) "
                        f"the table (line {after[0].line})",
                        subject.line,
                        subject.column,
                        "the DEPENDING ON field must come before the table in the record",
                        CopybookLayoutError,
                    )
                raise self.p.error_at(
                    f"the counter {occ.depending_on} of {subject.name} is not defined "
                    f"in record {record.name}",
                    subject.line,
                    subject.column,
                    "DEPENDING ON must name a numeric field defined earlier in the same record",
                    CopybookLayoutError,
                )
            if len(before) > 1:
                raise self.p.error_at(
                    f"the counter name {occ.depending_on} is ambiguous: " + ", ".join(c.path for c in before),
                    subject.line,
                    subject.column,
                    f"qualify it: DEPENDING ON {occ.depending_on} OF <group>",
                    CopybookLayoutError,
                )
            counter = before[0]
            if not isinstance(counter, Field) or not counter.numeric or counter.scale:
                raise self.p.error_at(
                    f"the counter {counter.name} of {subject.name} must be an integer numeric field",
                    subject.line,
                    subject.column,
                    cls=CopybookLayoutError,
                )
            if counter.occurs is not None:
                raise self.p.error_at(
                    f"the counter {counter.name} of {subject.name} is itself a table",
                    subject.line,
                    subject.column,
                    cls=CopybookLayoutError,
                )
            anc = counter.parent
            while anc is not None:
                if anc.occurs is not None and not _is_under(subject, anc):
                    raise self.p.error_at(
                        f"the counter {counter.name} of {subject.name} is inside table {anc.name}, "
                        "which does not contain the variable table",
                        subject.line,
                        subject.column,
                        "the counter would need a subscript; move it out of the table",
                        CopybookLayoutError,
                    )
                anc = anc.parent
            counter.odo_counter = True

    def resolve_renames(self, record: Item, entries: list[_Entry]) -> None:
        if not isinstance(record, Group):
            if entries:
                raise self.p.error_at("RENAMES needs a group record", entries[0].line, entries[0].column)
            return
        for e in entries:
            assert e.renames is not None
            first_name, thru_name = e.renames
            try:
                first = record.find(first_name)
                last = record.find(thru_name) if thru_name else first
            except KeyError as exc:
                raise self.p.error_at(
                    f"RENAMES {exc.args[0]}", e.line, e.column, cls=CopybookLayoutError
                ) from None
            end = last.offset + last.total_length
            if end <= first.offset:
                raise self.p.error_at(
                    f"RENAMES {first_name} THRU {thru_name}: the THRU item comes first",
                    e.line,
                    e.column,
                    cls=CopybookLayoutError,
                )
            record.renames.append(
                Renames(
                    e.name or "", first_name, thru_name, first.offset, end - first.offset, e.line, e.column
                )
            )

    def check_names(self, record: Item) -> None:
        """Dict keys must be unique per group (FILLER groups are transparent)."""
        for it in record.iter_tree():
            if not isinstance(it, Group):
                continue
            seen: dict[str, Item] = {}
            for key_item in _visible_children(it):
                if key_item.name in seen:
                    raise self.p.error_at(
                        f"{key_item.name} appears twice in group {it.name} "
                        f"(lines {seen[key_item.name].line} and {key_item.line})",
                        key_item.line,
                        key_item.column,
                        "rename one of them: decoded records are dicts keyed by field name",
                        CopybookLayoutError,
                    )
                seen[key_item.name] = key_item
            if (
                it.is_filler
                and it.occurs is not None
                and any(not c.is_filler for c in it.iter_tree() if c is not it)
            ):
                raise self.p.error_at(
                    f"a FILLER table with named items inside (line {it.line}) cannot be decoded",
                    it.line,
                    it.column,
                    "give the table a name",
                    CopybookLayoutError,
                )


def _visible_children(group: Group):
    for child in group.children:
        if child.is_filler:
            if isinstance(child, Group) and child.occurs is None:
                yield from _visible_children(child)
        else:
            yield child


def _in_redefines(item: Item) -> bool:
    it: Item | None = item
    while it is not None and it.parent is not None:
        if it.redefines is not None or it.redefined_by:
            return True
        it = it.parent
    return False


def _is_under(item: Item, ancestor: Item) -> bool:
    it = item.parent
    while it is not None:
        if it is ancestor:
            return True
        it = it.parent
    return False


def _qualified(item: Item, qualifiers: tuple[str, ...]) -> bool:
    anc = item.parent
    for q in qualifiers:
        while anc is not None and anc.name != q:
            anc = anc.parent
        if anc is None:
            return False
        anc = anc.parent
    return True


def parse_copybook(
    text: str,
    *,
    filename: str = "<copybook>",
    source_format: str = "auto",
    default_record_name: str = "RECORD",
) -> Copybook:
    """Parse copybook source text into record layouts.

    ``source_format`` is ``"auto"`` (detect), ``"fixed"`` (columns 7-72) or ``"free"``.
    Items before any 01 level are wrapped into a record called *default_record_name*.
    Raises :class:`CopybookSyntaxError` (or a subclass) with file, line and column.
    """
    tokens, src = tokenize(text, filename=filename, source_format=source_format)
    parser = _Parser(tokens, src, default_record_name)
    entries = parser.parse()
    builder = _Builder(parser)
    roots = builder.roots(entries)
    if not roots:
        raise CopybookSyntaxError(
            "the copybook describes no data items", filename=filename, hint="is it empty or all comments?"
        )
    records: dict[str, Item] = {}
    for root in roots:
        record = builder.item(root, None, None, True)
        if root.redefines is not None and root.level == 1:
            record.redefines = root.redefines[0]
        builder.place(record, 0, record.name)
        if record.name in records:
            raise parser.error_at(
                f"two records are called {record.name}",
                root.line,
                root.column,
                "give every 01 record a distinct name",
                CopybookLayoutError,
            )
        builder.resolve_odo(record)
        builder.resolve_renames(record, root.renames_entries)
        builder.check_names(record)
        records[record.name] = record
    for record in records.values():
        if isinstance(record, Group):
            first, last = record.line, _last_line(record)
            record.warnings = [w for w in parser.warnings if first <= w.line <= last]
    return Copybook(filename, records, list(parser.warnings))


def _last_line(record: Item) -> int:
    lines = [it.line for it in record.iter_tree()]
    lines += [c.line for it in record.iter_tree() for c in it.conditions]
    return max(lines)


def load_copybook(
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8",
    source_format: str = "auto",
    default_record_name: str = "RECORD",
) -> Copybook:
    """Read and parse a copybook file (see :func:`parse_copybook`)."""
    with open(path, encoding=encoding) as fh:
        text = fh.read()
    return parse_copybook(
        text, filename=os.fspath(path), source_format=source_format, default_record_name=default_record_name
    )
