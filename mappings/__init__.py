"""Mappings: legacy records <-> canonical objects, driven by data files, never by code in them.

* ``mappings.engine``   the mapping language: loader with line-numbered errors, closed transform
                        registry, compiler, checker, examples runner, reloadable registry;
* ``mappings.copybook`` the COBOL copybook parser and record codec;
* ``mappings/soap``, ``mappings/odbc``, ``mappings/batch``: the mapping files (YAML);
* ``mappings/copybooks``, ``mappings/ddl``: the adapter side's copies of the core's contracts
  (the WSDL/XSD copy is in ``adapters/wsdl``).

``from mappings import MappingRegistry`` works too (imported lazily, so that importing
``mappings.copybook`` alone stays light). ``mappings`` imports only the standard library,
its dependencies and ``canonical``.
"""

from __future__ import annotations

from typing import Any

_ENGINE_NAMES = {
    "CompiledMapping", "Diagnostic", "MappingApplyError", "MappingError", "MappingRegistry", "check_file",
    "compile_file", "MAPPINGS_DIR",
}

__all__ = sorted(_ENGINE_NAMES)


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'mappings' has no attribute {name!r}")
