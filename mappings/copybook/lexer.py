"""Copybook source text -> tokens (with the line and column each one came from).

Reference format (as on the mainframe): columns 1-6 sequence area (ignored), column 7 indicator
(``*`` or ``/`` comment, ``D`` debugging line, ``-`` continuation), columns 8-72 the program
text, columns 73-80 ignored.  Free format: the whole line is text, ``*`` as the first non-blank
character or ``*>`` anywhere starts a comment.  ``detect_format`` chooses: fixed when every
non-blank line has only blanks or digits in columns 1-6 and a valid indicator in column 7, and
no line has program text (a period, parenthesis or quote) after column 72.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CopybookSyntaxError

__all__ = ["Token", "detect_format", "tokenize"]

_INDICATORS = frozenset(" *-/Dd")
_QUOTES = "'\""


@dataclass(frozen=True, slots=True)
class Token:
    """A word (``kind == "WORD"``; ``text`` upper-cased), a literal (``STRING``: ``text`` is
    the value; ``HEX``: ``text`` is the hex digits), or the separator period (``PERIOD``)."""

    kind: str
    text: str
    line: int
    column: int


def detect_format(text: str) -> str:
    """``"fixed"`` or ``"free"`` (see the module docstring)."""
    seen = False
    for raw in text.splitlines():
        line = raw.expandtabs(8)
        if not line.strip():
            continue
        seen = True
        seq = line[:6]
        if any(not (c == " " or c.isdigit()) for c in seq):
            return "free"
        if len(line) > 6 and line[6] not in _INDICATORS:
            return "free"
        if _looks_like_code(line[72:]):
            return "free"
    return "fixed" if seen else "free"


def _looks_like_code(tail: str) -> bool:
    """Identification areas (columns 73-80) hold tags like ``TXNREC01``, not COBOL text."""
    return any(c in tail for c in ".()'\"")


class _Source:
    """The logical program text (continuations joined) and the position of every character."""

    def __init__(self, text: str, filename: str, source_format: str) -> None:
        self.filename = filename
        self.lines = text.splitlines()
        self.chars: list[str] = []
        self.pos: list[tuple[int, int]] = []
        #: (line, column, message) about text the fixed format ignores
        self.warnings: list[tuple[int, int, str]] = []
        fmt = detect_format(text) if source_format == "auto" else source_format
        if fmt not in ("fixed", "free"):
            raise ValueError(f"source_format must be 'auto', 'fixed' or 'free', not {source_format!r}")
        self.format = fmt
        self._build()

    def error(self, message: str, line: int, column: int, hint: str | None = None) -> CopybookSyntaxError:
        src = self.lines[line - 1].expandtabs(8) if 0 < line <= len(self.lines) else None
        return CopybookSyntaxError(
            message, filename=self.filename, line=line, column=column, hint=hint, source_line=src
        )

    def _append(self, text: str, line: int, first_col: int) -> None:
        self.chars.extend(text)
        self.pos.extend((line, first_col + i) for i in range(len(text)))

    def _build(self) -> None:
        open_quote: str | None = None  # literal still open at the end of the previous line
        for lineno, raw in enumerate(self.lines, 1):
            line = raw.expandtabs(8)
            continuation = False
            if self.format == "fixed":
                if len(line) < 7:
                    if line[:6].strip() and not line[:6].strip().isdigit():
                        raise self.error("text in the sequence area (columns 1-6)", lineno, 1)
                    continue
                indicator = line[6]
                if indicator in "*/Dd":
                    continue
                if indicator not in " -":
                    raise self.error(
                        f"invalid indicator {indicator!r} in column 7",
                        lineno,
                        7,
                        "column 7 must be blank, '*' or '/' (comment) or '-' (continuation); "
                        "is this a free-format copybook? pass source_format='free'",
                    )
                continuation = indicator == "-"
                area, first_col = line[7:72], 8
                if _looks_like_code(line[72:]) and indicator in " -":
                    self.warnings.append(
                        (lineno, 73, f"text after column 72 is ignored (fixed format): {line[72:].strip()!r}")
                    )
            else:
                stripped = line.lstrip()
                if not stripped or stripped.startswith("*"):
                    continue
                area, first_col = line, 1
            if not area.strip():
                continue
            if continuation:
                open_quote = self._continue(area, first_col, lineno, open_quote)
            else:
                if open_quote is not None:
                    line0, col0 = self._last_pos()
                    raise self.error(
                        "literal not closed at the end of the line",
                        line0,
                        col0,
                        "continue it on the next line with '-' in column 7 and a quote before the rest",
                    )
                if self.chars:
                    self._append("\n", lineno, 0)
                self._append(area, lineno, first_col)
                open_quote = _scan_quotes(area, None)
            if open_quote is not None and self.format == "fixed":
                # a continued literal runs up to column 72
                self._append(" " * (65 - len(area)), lineno, first_col + len(area))
        if open_quote is not None:
            line0, col0 = self._last_pos()
            raise self.error("literal not closed at the end of the copybook", line0, col0)

    def _last_pos(self) -> tuple[int, int]:
        return self.pos[-1] if self.pos else (1, 1)

    def _continue(self, area: str, first_col: int, lineno: int, open_quote: str | None) -> str | None:
        start = len(area) - len(area.lstrip())
        rest = area[start:]
        if not self.chars:
            raise self.error("continuation line without a line to continue", lineno, 7)
        if open_quote is not None:
            if rest[0] != open_quote:
                raise self.error(
                    "a continued literal must resume with a quote",
                    lineno,
                    first_col + start,
                    f"start the continuation with {open_quote} (the literal is still open)",
                )
            self._append(rest[1:], lineno, first_col + start + 1)
            return _scan_quotes(rest[1:], open_quote)
        # continued word: glue to the last non-blank character
        while self.chars and self.chars[-1].isspace():
            self.chars.pop()
            self.pos.pop()
        self._append(rest, lineno, first_col + start)
        return _scan_quotes(rest, None)


def _scan_quotes(text: str, open_quote: str | None) -> str | None:
    """The quote still open after *text* (None if every literal is closed)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if open_quote is None:
            if c in _QUOTES:
                open_quote = c
            elif c == "*" and text[i + 1 : i + 2] == ">":
                return None
        elif c == open_quote:
            if text[i + 1 : i + 2] == open_quote:
                i += 1
            else:
                open_quote = None
        i += 1
    return open_quote


def _is_sep(s: str, i: int) -> bool:
    """A period, comma or semicolon at *i* is a separator when followed by a space or the end."""
    return i + 1 >= len(s) or s[i + 1].isspace()


def tokenize(
    text: str, *, filename: str = "<copybook>", source_format: str = "auto"
) -> tuple[list[Token], _Source]:
    """Split copybook text into tokens; returns them and the source (for error messages)."""
    src = _Source(text, filename, source_format)
    s = "".join(src.chars)
    pos = src.pos
    tokens: list[Token] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
            continue
        line, col = pos[i]
        if c == "*" and s[i + 1 : i + 2] == ">":
            while i < n and s[i] != "\n":
                i += 1
            continue
        if c in ",;" and _is_sep(s, i):
            i += 1
            continue
        if c == "." and _is_sep(s, i):
            tokens.append(Token("PERIOD", ".", line, col))
            i += 1
            continue
        kind = "STRING"
        if c in _QUOTES:
            start = i
        elif c.upper() in "XNGZB" and s[i + 1 : i + 2] in ("'", '"'):
            prefix = c.upper()
            if prefix != "X":
                raise src.error(
                    f"{prefix}'...' literals are not supported", line, col, "use plain or X'...' literals"
                )
            kind, start = "HEX", i + 1
        else:
            j = i
            while j < n and not s[j].isspace() and s[j] not in _QUOTES:
                if s[j] in ".,;" and _is_sep(s, j):
                    break
                j += 1
            tokens.append(Token("WORD", s[i:j].upper(), line, col))
            i = j
            continue
        quote = s[start]
        j = start + 1
        value: list[str] = []
        while True:
            if j >= n or s[j] == "\n":
                raise src.error(
                    "literal not closed",
                    line,
                    col,
                    "close it on the same line or continue it with '-' in column 7",
                )
            if s[j] == quote:
                if s[j + 1 : j + 2] == quote:
                    value.append(quote)
                    j += 2
                    continue
                break
            value.append(s[j])
            j += 1
        literal = "".join(value)
        if kind == "HEX":
            if len(literal) % 2 or any(ch not in "0123456789abcdefABCDEF" for ch in literal):
                raise src.error(f"invalid hexadecimal literal X'{literal}'", line, col)
            literal = literal.upper()
        tokens.append(Token(kind, literal, line, col))
        i = j + 1
    return tokens, src
