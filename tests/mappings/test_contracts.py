"""The contract between the two sides: our copies equal the mock's published files, and every
mapping's source fields exist in the mock's contracts (WSDL/XSD, DDL, copybooks).

When the mainframe side changes a layout, this fails before production does.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
import xmlschema

from mappings.engine import MAPPINGS_DIR, check_file, load_spec
from mappings.engine.binding import bind_source
from mappings.engine.contracts import ContractError, load_copybook_record, load_ddl, load_wsdl, parse_ddl

ROOT = Path(__file__).resolve().parents[2]
MOCK = ROOT / "mock_mainframe"
COPIES = {  # ours -> the mock's published original
    ROOT / "adapters" / "wsdl" / "CoreBanking.wsdl": MOCK / "wsdl" / "CoreBanking.wsdl",
    ROOT / "adapters" / "wsdl" / "CoreBanking.xsd": MOCK / "wsdl" / "CoreBanking.xsd",
    ROOT / "mappings" / "ddl" / "ledger.sql": MOCK / "ddl" / "ledger.sql",
    **{ROOT / "mappings" / "copybooks" / p.name: p for p in sorted((MOCK / "copybooks").glob("*.cpy"))},
}
FILES = sorted(p for p in MAPPINGS_DIR.rglob("*.yaml") if not p.name.startswith("."))


def to_mock(path: Path) -> Path:
    """Resolve a mapping's contract to the mock's published file instead of our copy."""
    return COPIES.get(path.resolve(), path)


@pytest.mark.parametrize("ours,theirs", list(COPIES.items()), ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_our_copy_equals_the_published_contract(ours, theirs):
    assert ours.exists(), f"{ours.relative_to(ROOT)} is missing: copy {theirs.relative_to(ROOT)}"
    assert filecmp.cmp(ours, theirs, shallow=False), (
        f"{ours.relative_to(ROOT)} differs from {theirs.relative_to(ROOT)}: the mainframe side changed its "
        "contract; review the change, copy it, and run the mapping checks")


def test_every_published_copybook_has_a_copy():
    ours = {p.name for p in (ROOT / "mappings" / "copybooks").glob("*.cpy")}
    assert ours == {p.name for p in (MOCK / "copybooks").glob("*.cpy")}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(MAPPINGS_DIR)))
def test_mapping_fields_exist_in_the_mocks_published_contract(path):
    spec, _ = load_spec(path)
    binding, problems = bind_source(spec, to_mock)
    assert not problems, problems
    assert binding.contract_file is not None and MOCK in binding.contract_file.parents
    found = check_file(path, resolve=to_mock)
    assert not found, "\n".join(map(str, found))


def test_ddl_reader_agrees_with_the_mocks_own_column_list():
    from mock_mainframe.odbc import published_columns

    ours = load_ddl(MOCK / "ddl" / "ledger.sql").tables
    theirs = published_columns()
    assert set(ours) == set(theirs)
    for table, columns in theirs.items():
        assert list(ours[table]) == [c.name for c in columns]
        for c in columns:
            info = ours[table][c.name]
            if c.type_name == "CHAR":
                assert (info.kind, info.width) == ("text", c.size)
            else:
                assert (info.kind, info.digits, info.scale) == ("numeric", c.size, c.scale)
            assert info.required == (not c.nullable)


def test_xsd_reader_agrees_with_xmlschema():
    """An independent witness: xmlschema's view of every operation's request and response."""
    schema = xmlschema.XMLSchema(str(MOCK / "wsdl" / "CoreBanking.xsd"))
    wsdl = load_wsdl(MOCK / "wsdl" / "CoreBanking.wsdl")
    ns = "{urn:corebank:mainframe:v1}"
    assert len(wsdl.operations) == 7
    for op in wsdl.operations:
        for message in ("request", "response"):
            ours = wsdl.record(op, message)
            element = schema.elements[wsdl.message_element(op, message)]
            theirs = [e.name.replace(ns, "") for e in element.type.content.iter_elements()]
            assert list(ours.fields) == theirs, (op, message)
            for e in element.type.content.iter_elements():
                name = e.name.replace(ns, "")
                assert ours.fields[name].required == (e.min_occurs > 0)
                assert ours.fields[name].repeated == (e.max_occurs is None or e.max_occurs > 1)
                facets = getattr(e.type, "max_length", None)
                if facets is not None and ours.fields[name].kind == "text":
                    assert ours.fields[name].width == facets, (op, name)


def test_copybook_contract_mirrors_the_codec_layout():
    rec = load_copybook_record(MOCK / "copybooks" / "TXNHIST.cpy", "TXNHIST-DETAIL")
    assert "FILLER" not in rec.fields
    assert list(rec.fields["TXD-CNTR-INFO"].children) == ["TXD-CNTR-ACCT", "TXD-CNTR-BANK"]
    assert rec.fields["TXD-STATUS"].conditions == {"TXD-POSTED": ("P",), "TXD-REVERSED": ("R",)}
    assert rec.fields["TXD-TXN-AMT"].scale == 2 and rec.fields["TXD-TXN-AMT"].numeric
    stmt = load_copybook_record(MOCK / "copybooks" / "STMT.cpy", "STMT-RECORD")
    assert stmt.fields["STMT-LINE"].repeated and list(stmt.fields["STMT-LINE"].children) == [
        "STMT-LINE-DATE", "STMT-LINE-DESC", "STMT-LINE-AMT"]
    with pytest.raises(ContractError, match="no record 'TXNHIST-DETALE'") as err:
        load_copybook_record(MOCK / "copybooks" / "TXNHIST.cpy", "TXNHIST-DETALE")
    assert "TXNHIST-DETAIL" in err.value.candidates


@pytest.mark.parametrize("payload,message", [
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', "DOCTYPE/ENTITY"),
    (b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://example.com/x.dtd"><x/>', "DOCTYPE"),
    (b"<definitions", "not well-formed"),
])
def test_contract_xml_is_parsed_hardened(tmp_path, payload, message):
    path = tmp_path / "evil.wsdl"
    path.write_bytes(payload)
    with pytest.raises(ContractError, match=message):
        load_wsdl(path)


def test_remote_schema_locations_are_refused(tmp_path):
    text = (MOCK / "wsdl" / "CoreBanking.wsdl").read_text().replace(
        'schemaLocation="CoreBanking.xsd"', 'schemaLocation="http://evil.example/CoreBanking.xsd"')
    path = tmp_path / "CoreBanking.wsdl"
    path.write_text(text)
    with pytest.raises(ContractError, match="must be a relative file name"):
        load_wsdl(path)


def test_ddl_parser_reads_types_and_nullability():
    tables = parse_ddl("""
        -- comment (with parens, and commas)
        CREATE TABLE T1 (
            A   CHAR(3)        NOT NULL,
            B   DECIMAL(15,2),
            C   INTEGER        NOT NULL,
            PRIMARY KEY (A, C)
        );""")
    t = tables["T1"]
    assert (t["A"].kind, t["A"].width, t["A"].required) == ("text", 3, True)
    assert (t["B"].kind, t["B"].digits, t["B"].scale, t["B"].required) == ("numeric", 15, 2, False)
    assert t["C"].kind == "numeric" and list(t) == ["A", "B", "C"]
