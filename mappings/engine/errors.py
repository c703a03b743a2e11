"""Errors of the mapping engine, each pointing at the place to fix::

    MappingEngineError
    ├── MappingError          a mapping file is wrong: file:line:col, message, hint
    └── MappingApplyError     a record could not be mapped: mapping, rule, source field, value
        (also a ValueError)

``check`` does not raise: it returns :class:`Diagnostic` objects (the same shape as
``MappingError``) so that a file shows all its problems at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mappings.copybook.errors import RecordDecodeError

__all__ = ["Diagnostic", "MappedRecordError", "MappingApplyError", "MappingEngineError", "MappingError",
           "did_you_mean"]


def did_you_mean(word: str, candidates: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> str | None:
    """``"did you mean ACCT-NO?"`` for the closest candidate, or None (difflib ratio >= cutoff)."""
    pool = sorted({c for c in candidates if isinstance(c, str)})
    close = difflib.get_close_matches(word, pool, n=n, cutoff=cutoff)
    if not close and word.upper() != word:
        close = difflib.get_close_matches(word.upper(), pool, n=n, cutoff=cutoff)
    if not close and word.lower() != word:
        close = difflib.get_close_matches(word.lower(), pool, n=n, cutoff=cutoff)
    if not close:
        return None
    return "did you mean " + " or ".join(close) + "?"


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a mapping file. ``line``/``col`` are 1-based (0: unknown)."""

    file: str
    line: int
    col: int
    message: str
    hint: str | None = None
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        text = f"{where}: {self.severity}: {self.message}" if self.severity != "error" else f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class MappingEngineError(Exception):
    """Base of the mapping engine's errors."""


class MappingError(MappingEngineError):
    """A mapping file that cannot be used; ``diagnostics`` lists every problem found."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic) -> None:
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        self.file = first.file if first else ""
        self.line = first.line if first else 0
        self.col = first.col if first else 0
        self.hint = first.hint if first else None
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class MappingApplyError(MappingEngineError, ValueError):
    """A legacy record (or a canonical object, when writing) that a mapping could not convert.

    Names the mapping, the field rule (its ``to``/``from`` and file line), the source field and
    the offending value, then the reason.
    """

    def __init__(
        self,
        mapping: str,
        reason: str,
        *,
        rule: str | None = None,
        source: str | None = None,
        value: Any = None,
        line: int = 0,
        has_value: bool = True,
    ) -> None:
        self.mapping = mapping
        self.reason = reason
        self.rule = rule
        self.source = source
        self.value = value
        self.line = line
        parts = [f"mapping {mapping}"]
        if rule:
            parts.append(f"rule {rule}" + (f" (line {line})" if line else ""))
        if source:
            parts.append(f"field {source}")
        if has_value:
            parts.append(f"value {value!r}")
        super().__init__(", ".join(parts) + f": {reason}")


class MappedRecordError(RecordDecodeError):
    """A record the codec decoded but its mapping refused, raised by ``record_codec().decode``.

    A ``RecordDecodeError`` so that ``read_records`` turns it into a ``Reject`` (of kind
    ``"mapping"``) instead of stopping; ``mapping_error`` is the :class:`MappingApplyError`,
    ``field_path`` / ``record_offset`` / ``data`` point at the rule's source field when it is
    a field of the record.
    """

    reject_kind = "mapping"

    def __init__(self, reason: str, *, mapping_error: MappingApplyError | None = None, **kwargs: Any) -> None:
        self.mapping_error = mapping_error
        super().__init__(reason, **kwargs)

    @classmethod
    def of(cls, exc: MappingApplyError, codec: Any, record: bytes) -> MappedRecordError:
        item = None
        if exc.source:
            try:
                item = codec._item_at(tuple(exc.source.split(".")))
            except Exception:  # noqa: BLE001 - only for locating the field
                item = None
        if item is None or item.occurs is not None:
            return cls(str(exc), mapping_error=exc, field_path=exc.source)
        return cls(str(exc), mapping_error=exc, field_path=item.path, record_offset=item.offset,
                   data=bytes(record[item.offset:item.offset + item.length]))

    def located(self, *, record_no: int | None, record_start: int | None) -> MappedRecordError:
        err = super().located(record_no=record_no, record_start=record_start)
        err.mapping_error = self.mapping_error  # type: ignore[attr-defined]
        return err  # type: ignore[return-value]
