"""The mapping engine: YAML mapping files -> compiled converters between legacy records and canonical objects.

Use::

    from mappings.engine import MappingRegistry

    registry = MappingRegistry.load()                 # every mappings/**/*.yaml, checked
    balance = registry["soap.balance_inquiry"].read(response["BALANCE"])
    request = registry["soap.funds_transfer.request"].write(transfer)   # Transfer -> SOAP dict

    registry.reload()   # after editing files: refused files keep their previous version

Modules::

    schema       the mapping file format (YAML with line numbers) -> MappingSpec
    transforms   the closed registry of named transforms and their inverses
    paths        field path syntax (ACCT-NO, GRP.FIELD, LIST[0].F, $context.F)
    contracts    WSDL/XSD, DDL and copybook contracts -> field trees
    binding      a spec bound to its contract and to its canonical target model
    compiler     spec -> CompiledMapping (flat closures; read / read_stream / record_codec / write)
    fastpath     the rules generated into one read function (dicts, or record bytes fused with the codec)
    check        diagnostics: schema, canonical types, contract fields, examples
    examples     the examples runner
    registry     MappingRegistry: load, atomic reload, lookup
    errors       MappingError (file:line:col + hint), MappingApplyError, Diagnostic
"""

from __future__ import annotations

from .check import check_file, check_spec, check_text
from .compiler import CompiledMapping, compile_file, compile_spec
from .errors import Diagnostic, MappingApplyError, MappingEngineError, MappingError
from .examples import ExampleResult, run_examples
from .registry import MAPPINGS_DIR, MappingRegistry, ReloadReport, UnknownMapping
from .schema import MappingSpec, load_spec, parse_spec
from .transforms import REGISTRY as TRANSFORMS

__all__ = [
    "MAPPINGS_DIR",
    "TRANSFORMS",
    "CompiledMapping",
    "Diagnostic",
    "ExampleResult",
    "MappingApplyError",
    "MappingEngineError",
    "MappingError",
    "MappingRegistry",
    "MappingSpec",
    "ReloadReport",
    "UnknownMapping",
    "check_file",
    "check_spec",
    "check_text",
    "compile_file",
    "compile_spec",
    "load_spec",
    "parse_spec",
    "run_examples",
]
