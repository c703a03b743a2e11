"""Field paths of the mapping language.

Legacy (``from``) paths name a field of the legacy record::

    ACCT-NO                         a top-level field / column / element
    TXD-CNTR-INFO.TXD-CNTR-ACCT     a field inside a group (nested dict)
    STMT-LINE[0].STMT-LINE-AMT      one element of a repeated group (list)
    $response.ACCT-NO               a field of a context record the adapter passes alongside
                                    (declared under ``source.context``)

Canonical (``to``) paths are dotted attribute names: ``amount``, ``ledger.amount``,
``address.city``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CanonicalPath", "PathSyntaxError", "SourcePath", "parse_canonical_path", "parse_source_path"]

_NAME = r"[A-Za-z0-9_][A-Za-z0-9_\-#@]*"
_SEGMENT = re.compile(rf"({_NAME})((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")
_CANONICAL = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*\Z")


class PathSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class SourcePath:
    text: str
    context: str | None  # None: the record itself
    segments: tuple[str | int, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The field names along the path, indexes left out (for contract lookups)."""
        return tuple(s for s in self.segments if isinstance(s, str))

    @property
    def leaf(self) -> str:
        return self.names[-1]


@dataclass(frozen=True)
class CanonicalPath:
    text: str
    parts: tuple[str, ...]


def parse_source_path(text: str) -> SourcePath:
    if not isinstance(text, str) or not text.strip():
        raise PathSyntaxError("a field path must be a non-empty string")
    body = text.strip()
    context = None
    if body.startswith("$"):
        head, _, rest = body[1:].partition(".")
        if not head or not rest:
            raise PathSyntaxError(f"{text!r}: a context path is $name.FIELD")
        context, body = head, rest
    segments: list[str | int] = []
    for part in body.split("."):
        m = _SEGMENT.fullmatch(part)
        if not m:
            raise PathSyntaxError(f"{text!r}: {part!r} is not a field name (letters, digits, '-', '_')")
        segments.append(m.group(1))
        segments.extend(int(i) for i in _INDEX.findall(m.group(2)))
    return SourcePath(text, context, tuple(segments))


def parse_canonical_path(text: str) -> CanonicalPath:
    if not isinstance(text, str) or not _CANONICAL.match(text.strip()):
        raise PathSyntaxError(f"{text!r} is not a canonical field path (lower_case names joined by '.')")
    t = text.strip()
    return CanonicalPath(t, tuple(t.split(".")))
