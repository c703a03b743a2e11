"""Every mapping file: checks clean, and every example in it runs (forward; write mappings by round trip).

New mapping files and new examples are picked up automatically: add an example to a YAML file
and it is a test case here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings.engine import MAPPINGS_DIR, MappingRegistry, check_file, compile_file, load_spec
from mappings.engine.examples import run_example
from mappings.engine.schema import UNSET

FILES = sorted(p for p in MAPPINGS_DIR.rglob("*.yaml") if not p.name.startswith("."))


def _label(path: Path) -> str:
    return str(path.relative_to(MAPPINGS_DIR))


def _cases():
    for path in FILES:
        spec, _ = load_spec(path)
        for i, ex in enumerate(spec.examples if spec else []):
            yield pytest.param(path, i, id=f"{_label(path)}::{ex.name}")


_compiled: dict[Path, object] = {}


def compiled(path: Path):
    if path not in _compiled:
        _compiled[path] = compile_file(path)
    return _compiled[path]


def test_the_mapping_files_cover_every_source_shape():
    names = {load_spec(p)[0].name for p in FILES}
    assert {
        "soap.customer_inquiry", "soap.account_inquiry", "soap.account_list", "soap.balance_inquiry",
        "soap.transaction_history", "soap.transfer_status", "soap.funds_transfer.request",
        "soap.funds_transfer.response",
        "odbc.custmast", "odbc.acctmast", "odbc.acctmast_balance", "odbc.txnhist", "odbc.xferlog",
        "batch.txnhist.detail", "batch.stmt.record", "batch.payin.detail", "batch.payack.detail",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=_label)
def test_mapping_file_checks_clean(path):
    problems = check_file(path)
    assert not problems, "\n".join(map(str, problems))


@pytest.mark.parametrize("path", FILES, ids=_label)
def test_mapping_file_has_examples_and_write_mappings_show_what_they_write(path):
    spec, _ = load_spec(path)
    assert len(spec.examples) >= 2, "give at least two examples taken from real legacy output"
    if spec.direction in ("write", "both"):
        assert any(ex.written is not UNSET for ex in spec.examples), "a write mapping shows a `written:` record"


@pytest.mark.parametrize("path,index", list(_cases()))
def test_example(path, index):
    mapping = compiled(path)
    result = run_example(mapping, mapping.spec.examples[index])
    assert result.ok, result.message


def test_registry_serves_every_file_under_a_unique_name():
    registry = MappingRegistry.load()
    assert len(registry) == len(FILES)
    assert sorted(m.file for m in registry.values()) == sorted(str(p) for p in FILES)
