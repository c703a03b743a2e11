"""The mapping loader skips comment gathering (start-up time); it must read every document, and
place every position, exactly as ruamel's full round-trip loader does."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from mappings.engine import schema

ROOT = Path(__file__).resolve().parents[2] / "mappings"
FILES = sorted(ROOT.glob("*/*.yaml"))


def _full_rt() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def _parse_all(texts):
    return [schema.parse_spec(text, str(path)) for path, text in texts]


def test_the_shipped_mapping_files_are_found():
    assert len(FILES) >= 10


def test_every_shipped_mapping_file_parses_to_the_same_spec_with_both_loaders(monkeypatch):
    texts = [(p, p.read_text(encoding="utf-8")) for p in FILES]
    ours = _parse_all(texts)
    monkeypatch.setattr(schema, "_yaml", _full_rt)
    theirs = _parse_all(texts)
    assert ours == theirs
    assert all(spec is not None and not diags for spec, diags in ours)


def test_comments_everywhere_change_neither_values_nor_positions(monkeypatch):
    path = ROOT / "soap" / "balance_inquiry.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    commented = "# head comment\n" + "\n".join(
        line + ("  # trailing" if line.strip() and not line.rstrip().endswith(("|", ">")) and ": " in line
                and "#" not in line else "") for line in lines) + "\n# tail\n"
    ours = schema.parse_spec(commented, "x.yaml")
    monkeypatch.setattr(schema, "_yaml", _full_rt)
    assert ours == schema.parse_spec(commented, "x.yaml")


@pytest.mark.parametrize("text, line", [
    ("name: a\nname: b\n", 2),                 # duplicate key
    ("name: a\n  bad: [\n", 2),                # broken flow sequence
    ("name: a\nrules:\n  - to: x\n   from: y\n", 4),  # bad indentation
])
def test_yaml_errors_name_the_same_line_with_both_loaders(monkeypatch, text, line):
    spec, diags = schema.parse_spec(text, "bad.yaml")
    assert spec is None and diags and diags[0].message.startswith("not valid YAML")
    assert diags[0].line == line
    monkeypatch.setattr(schema, "_yaml", _full_rt)
    spec2, diags2 = schema.parse_spec(text, "bad.yaml")
    assert (diags2[0].line, diags2[0].message) == (diags[0].line, diags[0].message)
