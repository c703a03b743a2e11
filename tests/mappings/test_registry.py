"""MappingRegistry: load a directory, reload edits atomically, refuse broken files (the old version serves)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

import pytest

from mappings.engine import MappingRegistry, UnknownMapping

ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = """\
name: {name}
version: {version}
source:
  kind: soap
  contract:
    wsdl: {wsdl}
    operation: BalanceInquiry
    element: BALANCE
target: Balance
direction: read
fields:
  - to: account_id
    from: ACCT-NO
    transforms: [{trim}]
  - to: ledger
    from: LEDGER-BAL
    transforms: [implied_decimal, {{money: CURR-CD}}]
  - to: available
    from: AVAIL-BAL
    transforms: [implied_decimal, {{money: CURR-CD}}]
  - to: as_of
    from: AS-OF-DT
    transforms: [date]
examples:
  - name: ok
    input: {{ACCT-NO: "1 ", CURR-CD: EUR, LEDGER-BAL: "+000000000012540", AVAIL-BAL: "+000000000000100",
             AS-OF-DT: "1261127"}}
    output: {{account_id: "1", ledger: {{amount: "125.40", currency: EUR}},
              available: {{amount: "1.00", currency: EUR}}, as_of: "2026-11-27", stale: false}}
  - name: JPY
    input: {{ACCT-NO: "2", CURR-CD: JPY, LEDGER-BAL: "+000000000150000", AVAIL-BAL: "+000000000150000",
             AS-OF-DT: "1261127"}}
    output: {{account_id: "2", ledger: {{amount: "1500", currency: JPY}},
              available: {{amount: "1500", currency: JPY}}, as_of: "2026-11-27", stale: false}}
"""

RECORD = {"ACCT-NO": "110000000543", "CURR-CD": "EUR", "LEDGER-BAL": "+000000000012540",
          "AVAIL-BAL": "+000000000012540", "AS-OF-DT": "1261127"}


@pytest.fixture
def contracts(tmp_path) -> Path:
    """Our own copy of the WSDL + XSD, so that a test can change the contract under a mapping."""
    d = tmp_path / "contracts"
    d.mkdir()
    for name in ("CoreBanking.wsdl", "CoreBanking.xsd"):
        shutil.copy(ROOT / "adapters" / "wsdl" / name, d / name)
    return d / "CoreBanking.wsdl"


def write(path: Path, wsdl: Path, *, name="t.balance", version=1, trim="trim") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(name=name, version=version, wsdl=wsdl, trim=trim))


def test_load_serves_every_valid_file(tmp_path, contracts):
    write(tmp_path / "maps" / "soap" / "a.yaml", contracts, name="a")
    write(tmp_path / "maps" / "b.yaml", contracts, name="b")
    (tmp_path / "maps" / ".hidden.yaml").write_text("not: a mapping")
    reg = MappingRegistry.load(tmp_path / "maps")
    assert sorted(reg) == ["a", "b"] and len(reg) == 2
    assert str(reg["a"].read(RECORD).ledger) == "125.40 EUR"
    assert sorted(m.name for m in reg.find(kind="soap", operation="BalanceInquiry", target="Balance")) == ["a", "b"]
    assert reg.find(kind="odbc") == []
    with pytest.raises(UnknownMapping, match="no mapping named 'c'"):
        reg["c"]
    with pytest.raises(KeyError):
        reg.get_mapping("aa")


def test_a_broken_edit_is_refused_and_the_previous_version_keeps_serving(tmp_path, contracts, caplog):
    path = tmp_path / "maps" / "a.yaml"
    write(path, contracts, name="a", version=1)
    reg = MappingRegistry.load(tmp_path / "maps")
    serving = reg["a"]

    write(path, contracts, name="a", version=2, trim="trimm")  # an unknown transform
    with caplog.at_level(logging.ERROR, logger="mappings.registry"):
        report = reg.reload()
    assert not report.ok and list(report.refused) == [str(path)]
    [problem] = report.refused[str(path)]
    assert problem.line == 14 and problem.hint == "did you mean trim?"
    assert "refused" in caplog.text and "previous version keeps serving" in caplog.text and "trimm" in caplog.text
    assert reg["a"] is serving and reg["a"].version == 1
    assert reg.read("a", RECORD).account_id == "110000000543"

    write(path, contracts, name="a", version=3)  # fixed
    report = reg.reload()
    assert report.ok and report.loaded == ["a"] and reg["a"].version == 3 and reg["a"] is not serving


def test_a_broken_example_is_refused_too(tmp_path, contracts):
    path = tmp_path / "maps" / "a.yaml"
    write(path, contracts, name="a")
    reg = MappingRegistry.load(tmp_path / "maps")
    path.write_text(path.read_text().replace('"125.40"', '"125.41"'))
    report = reg.reload()
    assert "example 'ok' failed" in str(report.refused[str(path)][0]) and reg["a"].version == 1


def test_unchanged_files_are_not_recompiled(tmp_path, contracts):
    write(tmp_path / "maps" / "a.yaml", contracts, name="a")
    reg = MappingRegistry.load(tmp_path / "maps")
    before = reg["a"]
    report = reg.reload()
    assert report.unchanged == ["a"] and report.loaded == [] and reg["a"] is before


def test_new_broken_file_is_not_loaded_and_removed_file_is_dropped(tmp_path, contracts):
    write(tmp_path / "maps" / "a.yaml", contracts, name="a")
    reg = MappingRegistry.load(tmp_path / "maps")
    write(tmp_path / "maps" / "b.yaml", contracts, name="b", trim="trimm")
    report = reg.reload()
    assert "b" not in reg and str(tmp_path / "maps" / "b.yaml") in report.refused
    (tmp_path / "maps" / "a.yaml").unlink()
    report = reg.reload()
    assert report.removed == ["a"] and "a" not in reg


def test_duplicate_names_are_refused(tmp_path, contracts):
    write(tmp_path / "maps" / "a.yaml", contracts, name="same")
    write(tmp_path / "maps" / "b.yaml", contracts, name="same")
    reg = MappingRegistry.load(tmp_path / "maps")
    report = reg.reload()
    assert list(reg) == ["same"] and reg["same"].file.endswith("a.yaml")
    assert "already used by" in str(report.refused[str(tmp_path / "maps" / "b.yaml")][0])


def test_a_contract_change_rechecks_the_mappings_that_use_it(tmp_path, contracts):
    write(tmp_path / "maps" / "a.yaml", contracts, name="a")
    reg = MappingRegistry.load(tmp_path / "maps")
    serving = reg["a"]
    xsd = contracts.parent / "CoreBanking.xsd"
    xsd.write_text(xsd.read_text().replace('name="AS-OF-DT"', 'name="ASOF-DT"'))
    report = reg.reload()
    [problem] = report.refused[str(tmp_path / "maps" / "a.yaml")]
    assert "has no field 'AS-OF-DT'" in problem.message and problem.hint == "did you mean ASOF-DT?"
    assert reg["a"] is serving


def test_readers_never_see_a_half_loaded_registry(tmp_path, contracts):
    n = 3
    for i in range(n):
        write(tmp_path / "maps" / f"m{i}.yaml", contracts, name=f"m{i}")
    reg = MappingRegistry.load(tmp_path / "maps")
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                for i in range(n):
                    assert reg.read(f"m{i}", RECORD).account_id == "110000000543"
                reads.append(1)
                time.sleep(0.0002)  # let the reloading thread run
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    reads: list[int] = []
    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for version in range(2, 6):
            for i in range(n):
                write(tmp_path / "maps" / f"m{i}.yaml", contracts, name=f"m{i}", version=version,
                      trim="trimm" if version % 2 else "trim")
            reg.reload()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert reads and {reg[f"m{i}"].version for i in range(n)} == {4}


def test_yaml_inside_python_packages_is_not_a_mapping(tmp_path, contracts):
    write(tmp_path / "maps" / "soap" / "a.yaml", contracts, name="a")
    (tmp_path / "maps" / "codec").mkdir()
    (tmp_path / "maps" / "codec" / "__init__.py").write_text("")
    (tmp_path / "maps" / "codec" / "fixture.yaml").write_text("some: fixture")
    reg = MappingRegistry.load(tmp_path / "maps")
    assert list(reg) == ["a"] and reg.reload().ok
