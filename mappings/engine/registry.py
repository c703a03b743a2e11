"""The set of mapping files in service, reloadable without a restart.

``MappingRegistry.load(dir)`` checks and compiles every ``*.yaml`` below ``dir``;
``reload()`` re-reads the files that changed (their text, or the contract file they name).
A file that fails ``check`` is refused with a logged error and the version that was serving
keeps serving; the new set replaces the old one in a single reference swap, so a reader sees
either the old set or the new one, never a mixture.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .check import check_spec
from .compiler import CompiledMapping
from .contracts import file_stamp
from .errors import Diagnostic, MappingEngineError
from .schema import load_spec

__all__ = ["MAPPINGS_DIR", "MappingRegistry", "ReloadReport", "UnknownMapping"]

log = logging.getLogger("mappings.registry")

#: the mapping files shipped with corebridge (mappings/soap, mappings/odbc, mappings/batch)
MAPPINGS_DIR = Path(__file__).resolve().parent.parent


class UnknownMapping(MappingEngineError, KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        from .errors import did_you_mean

        hint = did_you_mean(name, known)
        super().__init__(f"no mapping named {name!r}" + (f" ({hint})" if hint else ""))
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class ReloadReport:
    loaded: list[str] = field(default_factory=list)  # names (re)compiled from a changed file
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: dict[str, list[Diagnostic]] = field(default_factory=dict)  # file -> problems

    @property
    def ok(self) -> bool:
        return not self.refused


@dataclass
class _Entry:
    path: Path
    fingerprint: tuple
    mapping: CompiledMapping


def _fingerprint(text: bytes, mapping: CompiledMapping | None) -> tuple:
    """The mapping file's content and the versions of the contract files it was checked against."""
    files = mapping.binding.files if mapping is not None else []
    return hashlib.sha256(text).hexdigest(), tuple(file_stamp(p) for p in files)


class MappingRegistry(Mapping[str, CompiledMapping]):
    """Compiled mappings by name. Reading is lock-free; reloads are serialised."""

    def __init__(self, directory: str | Path = MAPPINGS_DIR, *, resolve: Callable[[Path], Path] | None = None,
                 examples: bool = True) -> None:
        self.directory = Path(directory)
        self._resolve = resolve
        self._examples = examples
        self._by_name: dict[str, CompiledMapping] = {}
        self._entries: dict[Path, _Entry] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, directory: str | Path = MAPPINGS_DIR, **kwargs: Any) -> MappingRegistry:
        registry = cls(directory, **kwargs)
        registry.reload()
        return registry

    # -- Mapping interface --------------------------------------------------------------------------
    def __getitem__(self, name: str) -> CompiledMapping:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownMapping(name, list(self._by_name)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def get_mapping(self, name: str) -> CompiledMapping:
        return self[name]

    def read(self, name: str, record: Any, context: Mapping[str, Any] | None = None) -> Any:
        return self[name].read(record, context)

    def write(self, name: str, obj: Any) -> dict[str, Any]:
        return self[name].write(obj)

    def find(self, *, kind: str | None = None, target: str | None = None, **contract: str) -> list[CompiledMapping]:
        """Mappings by source kind, target and contract keys: ``find(kind="soap", operation="BalanceInquiry")``."""
        out = []
        for m in self._by_name.values():
            if kind is not None and m.source_kind != kind:
                continue
            if target is not None and m.target != target:
                continue
            if any(m.spec.source.contract.get(k) != v for k, v in contract.items()):
                continue
            out.append(m)
        return out

    # -- loading -----------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """``*.yaml`` below the directory, except hidden files and Python package directories
        (``mappings/engine``, ``mappings/copybook``: their YAML would be fixtures, not mappings)."""
        out = []
        for p in self.directory.rglob("*.yaml"):
            rel = p.relative_to(self.directory)
            if any(part.startswith(".") for part in rel.parts):
                continue
            parents = [self.directory.joinpath(*rel.parts[:i]) for i in range(1, len(rel.parts))]
            if any((d / "__init__.py").exists() for d in parents):
                continue
            out.append(p)
        return sorted(out)

    def reload(self) -> ReloadReport:
        """Re-read changed files; refuse the ones that fail check (the old version keeps serving)."""
        with self._lock:
            report = ReloadReport()
            entries: dict[Path, _Entry] = {}
            for path in self.files():
                try:
                    raw = path.read_bytes()
                except OSError as exc:
                    report.refused[str(path)] = [Diagnostic(str(path), 0, 0, f"cannot read: {exc.strerror}")]
                    if path in self._entries:
                        entries[path] = self._entries[path]
                    continue
                old = self._entries.get(path)
                if old is not None and old.fingerprint == _fingerprint(raw, old.mapping):
                    entries[path] = old
                    report.unchanged.append(old.mapping.name)
                    continue
                mapping, problems = self._compile(path)
                if mapping is None:
                    report.refused[str(path)] = problems
                    log.error("mapping file %s refused; %s:\n%s", path,
                              "the previous version keeps serving" if old else "it is not loaded",
                              "\n".join(str(d) for d in problems))
                    if old is not None:
                        entries[path] = old
                    continue
                entries[path] = _Entry(path, _fingerprint(raw, mapping), mapping)
                report.loaded.append(mapping.name)
                if old is not None:
                    log.info("mapping %s reloaded from %s (version %s)", mapping.name, path, mapping.version)
            by_name: dict[str, CompiledMapping] = {}
            kept: dict[Path, _Entry] = {}
            for path, entry in sorted(entries.items()):
                name = entry.mapping.name
                if name in by_name:
                    diag = Diagnostic(str(path), 1, 1, f"mapping name {name!r} is already used by "
                                      f"{by_name[name].file}")
                    report.refused[str(path)] = [diag]
                    log.error("%s", diag)
                    previous = self._entries.get(path)
                    if previous is not None and previous.mapping.name not in by_name:
                        by_name[previous.mapping.name] = previous.mapping
                        kept[path] = previous
                    continue
                by_name[name] = entry.mapping
                kept[path] = entry
            current = set(by_name)
            report.removed = sorted(set(self._by_name) - current)
            for name in report.removed:
                log.warning("mapping %s removed (its file is gone or renamed)", name)
            self._entries = kept
            self._by_name = by_name  # the swap: readers see the old dict or the new one
            return report

    def _compile(self, path: Path) -> tuple[CompiledMapping | None, list[Diagnostic]]:
        spec, problems = load_spec(path)
        if spec is None or any(d.severity == "error" for d in problems):
            return None, problems
        diags, compiled = check_spec(spec, resolve=self._resolve, examples=self._examples)
        errors = [d for d in problems + diags if d.severity == "error"]
        if errors or compiled is None:
            return None, errors or diags
        for d in diags:
            log.warning("%s", d)
        return compiled, []
