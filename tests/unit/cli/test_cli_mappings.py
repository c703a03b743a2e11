"""``corebridge mappings check|try|new`` on the repo's mapping files and the mock mainframe's real output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.cli_mappings import parse_soap, sample_record
from mappings.copybook import RecordCodec, load_copybook
from mappings.engine import check_file
from mappings.engine.contracts import load_copybook_record
from mappings.engine.examples import coerce_record
from mock_mainframe.batch.eod import EodWriter
from mock_mainframe.config import MockConfig
from mock_mainframe.ledger.posting import PostingEngine
from mock_mainframe.ledger.seed import seed_sqlite
from mock_mainframe.ledger.store import Ledger
from mock_mainframe.soap.envelope import reply
from mock_mainframe.soap.operations import Operations

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = ROOT / "mappings"
WSDL = ROOT / "adapters" / "wsdl" / "CoreBanking.wsdl"
ACCT = "110000000543"

runner = CliRunner()


def run(*args: str | Path, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="module")
def mock(tmp_path_factory) -> dict[str, Path]:
    """Real output of the mock mainframe (seed 7, 40 customers): SOAP replies, an ODBC-shaped row,
    end-of-day files."""
    tmp = tmp_path_factory.mktemp("mock")
    seed_sqlite(tmp / "ledger.db", seed=7, customers=40)
    ledger = Ledger(tmp / "ledger.db")
    try:
        ops = Operations(ledger, PostingEngine(ledger))
        files = {}
        for name, (body, _) in {
            "balance": ops.balance_inquiry({"ACCT-NO": ACCT}),
            "history": ops.transaction_history({"ACCT-NO": ACCT, "MAX-ROWS": "3"}),
            "not_found": ops.balance_inquiry({"ACCT-NO": "999999999999"}),
        }.items():
            files[name] = tmp / f"{name}.xml"
            files[name].write_bytes(reply(body, "req-1"))
        # an ACCTMAST row as the SQLite3 ODBC driver hands it over: every value as text
        row = {k: (v if isinstance(v, str) else str(v)) for k, v in dict(ledger.account(ACCT)).items()}
        files["row"] = tmp / "acctmast.json"
        files["row"].write_text(json.dumps(row))
        paths = EodWriter(MockConfig(data_dir=tmp / "mock", sftp_port=0), ledger).write_recent(1)
        files["txnhist"] = next(p for p in paths if p.name.startswith("TXNHIST"))
        files["stmt"] = next(p for p in paths if p.name.startswith("STMT"))
    finally:
        ledger.close()
    return files


# -- check ------------------------------------------------------------------------------------------------
def test_check_the_shipped_mappings_is_clean():
    result = run("mappings", "check")
    assert result.exit_code == 0, result.output
    assert re.search(r"checked \d+ mapping files: all good", result.stdout)
    assert run("mappings", "check", MAPPINGS / "soap", MAPPINGS / "batch" / "payin_detail.yaml").exit_code == 0


def test_check_a_broken_copy_names_the_line_and_the_hint(tmp_path):
    text = (MAPPINGS / "soap" / "balance_inquiry.yaml").read_text()
    text = text.replace("../../adapters/wsdl/CoreBanking.wsdl", WSDL.as_posix())
    assert "    from: ACCT-NO\n" in text
    broken = tmp_path / "soap" / "balance_inquiry.yaml"
    broken.parent.mkdir()
    broken.write_text(text.replace("    from: ACCT-NO\n", "    from: ACCT-NUM\n", 1))
    line = text.splitlines().index("    from: ACCT-NO") + 1
    result = run("mappings", "check", tmp_path)
    assert result.exit_code == 1
    assert re.search(rf"balance_inquiry\.yaml:{line}:\d+: from 'ACCT-NUM': .* has no field 'ACCT-NUM' "
                     r"\(did you mean ACCT-NO\?\)", result.stdout), result.stdout
    assert "checked 1 mapping file: 1 error in 1 file" in result.stdout


def test_check_reports_yaml_errors_and_missing_paths(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfields: [\n")
    result = run("mappings", "check", bad)
    assert result.exit_code == 1 and re.search(r"bad\.yaml:\d+:\d+: not valid YAML", result.stdout)
    assert run("mappings", "check", tmp_path / "nope.yaml").exit_code == 2


# -- try ---------------------------------------------------------------------------------------------------
def test_parse_soap_is_hardened_and_upper_cases_names():
    name, msg = parse_soap(b'<r:Resp xmlns:r="urn:x"><r:Acct-No>1 </r:Acct-No><r:TXN><r:A>1</r:A></r:TXN>'
                           b"<r:TXN><r:A>2</r:A></r:TXN></r:Resp>")
    assert name == "Resp" and msg == {"ACCT-NO": "1 ", "TXN": [{"A": "1"}, {"A": "2"}]}
    with pytest.raises(ValueError, match="DOCTYPE"):
        parse_soap(b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>')


def test_try_soap_response(mock):
    result = run("mappings", "try", MAPPINGS / "soap" / "balance_inquiry.yaml", "--input", mock["balance"])
    assert result.exit_code == 0, result.output
    balance = json.loads(result.stdout)
    assert balance["account_id"] == ACCT and balance["ledger"]["currency"] == "EUR"
    assert isinstance(balance["ledger"]["amount"], str) and balance["as_of"] == "2026-11-27"


def test_try_soap_list_takes_its_context_from_the_response(mock):
    mapping = MAPPINGS / "soap" / "transaction_history.yaml"
    result = run("mappings", "try", mapping, "-i", mock["history"])
    assert result.exit_code == 0, result.output
    txns = json.loads(result.stdout)
    assert len(txns) == 3 and all(t["account_id"] == ACCT for t in txns)
    one = run("mappings", "try", mapping, "-i", mock["history"], "--record-no", "2")
    assert json.loads(one.stdout) == txns[1]


def test_try_soap_not_found_and_doctype_fail(mock, tmp_path):
    result = run("mappings", "try", MAPPINGS / "soap" / "balance_inquiry.yaml", "--input", mock["not_found"])
    assert result.exit_code == 1 and "no element BALANCE" in result.stderr and "N001" in result.stderr
    evil = tmp_path / "evil.xml"
    evil.write_text('<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>')
    result = run("mappings", "try", MAPPINGS / "soap" / "balance_inquiry.yaml", "--input", evil)
    assert result.exit_code == 1 and "refused" in result.stderr


def test_try_odbc_json_row(mock):
    result = run("mappings", "try", MAPPINGS / "odbc" / "acctmast.yaml", "--input", mock["row"])
    assert result.exit_code == 0, result.output
    account = json.loads(result.stdout)
    assert account["id"] == ACCT and account["status"] == "open" and account["opened_on"] == "2015-02-24"


def test_try_soap_json_record(tmp_path):
    sample = tmp_path / "balance.json"
    sample.write_text(json.dumps({"ACCT-NO": ACCT, "CURR-CD": "EUR", "LEDGER-BAL": "+000000008341220",
                                  "AVAIL-BAL": "-000000000001050", "AS-OF-DT": "1261127"}))
    result = run("mappings", "try", MAPPINGS / "soap" / "balance_inquiry.yaml", "--input", sample)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["available"] == {"amount": "-10.50", "currency": "EUR"}


def test_try_mapping_error_exit_1(tmp_path):
    sample = tmp_path / "jpy.json"
    sample.write_text(json.dumps({"ACCT-NO": ACCT, "CURR-CD": "JPY", "LEDGER-BAL": "+000001130421050",
                                  "AVAIL-BAL": "+000000000000000", "AS-OF-DT": "1261127"}))
    result = run("mappings", "try", MAPPINGS / "soap" / "balance_inquiry.yaml", "--input", sample)
    assert result.exit_code == 1
    assert "more decimal places than JPY allows" in result.stderr and "LEDGER-BAL" in result.stderr


def test_try_copybook_record_from_a_real_file(mock):
    mapping = MAPPINGS / "batch" / "txnhist_detail.yaml"
    result = run("mappings", "try", mapping, "--input", mock["txnhist"])
    assert result.exit_code == 0, result.output
    assert "record 2 at offset 200" in result.stderr  # record 1 is the header: the first detail is taken
    txn = json.loads(result.stdout)
    assert re.fullmatch(r"\d{12}-\d+", txn["id"]) and isinstance(txn["amount"]["amount"], str)
    third = run("mappings", "try", mapping, "--input", mock["txnhist"], "--record-no", "3")
    assert third.exit_code == 0 and json.loads(third.stdout)["id"] != txn["id"]
    header = run("mappings", "try", mapping, "--input", mock["txnhist"], "--record-no", "1")
    assert header.exit_code == 1 and "record type 'H'" in header.stderr
    stmt = run("mappings", "try", MAPPINGS / "batch" / "stmt_record.yaml", "--input", mock["stmt"])
    assert stmt.exit_code == 0, stmt.output
    assert "rdw framing" in stmt.stderr and json.loads(stmt.stdout)["lines"]


def test_try_reverse_payin_detail_gives_the_record_bytes(tmp_path):
    transfer = {"reference": "PAY-0001", "from_account": "102000000348", "to_account": "102000000355",
                "amount": {"amount": "10.00", "currency": "USD"}, "memo": "INVOICE 4711",
                "value_date": "2026-11-28"}
    sample = tmp_path / "transfer.json"
    sample.write_text(json.dumps(transfer))
    out = tmp_path / "PAYIN.D261128"
    mapping = MAPPINGS / "batch" / "payin_detail.yaml"
    result = run("mappings", "try", mapping, "--reverse", "--input", sample, "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["length"] == 120 and doc["legacy"]["PID-AMOUNT"] == "10.00"
    data = bytes.fromhex(doc["hex"])
    assert data == out.read_bytes() and len(data) == 120
    assert data[:1].decode("cp037") == "D" and data[41:49] == bytes.fromhex("000000000001000C")  # packed 10.00
    assert doc["decoded"]["PID-TXN-REF"] == "PAY-0001" and doc["decoded"]["PID-VALUE-DATE"] == 1261128
    # and the bytes read back through the mapping give the transfer
    back = run("mappings", "try", mapping, "--input", out)
    assert back.exit_code == 0, back.output
    got = json.loads(back.stdout)
    assert {k: got[k] for k in transfer} == transfer and got["channel"] == "batch"


def test_try_reverse_needs_a_write_mapping(mock):
    result = run("mappings", "try", MAPPINGS / "odbc" / "acctmast.yaml", "--reverse", "--input", mock["row"])
    assert result.exit_code == 2 and "read-only" in result.stderr


# -- new -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("copybook", "record", "target"), [
    ("TXNHIST.cpy", "TXNHIST-DETAIL", "Transaction"),
    ("STMT.cpy", "STMT-RECORD", "Statement"),
    ("PAYIN.cpy", "PAYIN-DETAIL", "Transfer"),
    ("PAYACK.cpy", "PAYACK-TRAILER", "Transfer"),
])
def test_new_writes_a_skeleton_that_parses(tmp_path, copybook, record, target):
    cpy = MAPPINGS / "copybooks" / copybook
    out = tmp_path / "batch" / "new.yaml"
    out.parent.mkdir()
    result = run("mappings", "new", "--copybook", cpy, "--record", record, "--target", target, "--out", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    layout = load_copybook(cpy).record(record)
    for field in layout.fields():
        if not field.is_filler:
            assert re.search(rf"#\s+(from: \S*{field.name}\b|# \S*{field.name}: the OCCURS)", text), field.name
    assert "  kind: copybook\n" in text and f"    record: {record}\n" in text and f"target: {target}\n" in text
    diags = check_file(out)
    assert diags, "unmapped required fields are reported"
    assert all(re.fullmatch(rf"{target}\.\w+ is required but no rule sets it", d.message) for d in diags), diags
    # the example's input is a valid record of the layout
    spec_input = sample_record(layout)
    codec = RecordCodec(layout, view_errors="null")
    fields = load_copybook_record(cpy, record).fields
    decoded = codec.decode(codec.encode(coerce_record(spec_input, fields), fill_missing=True))
    assert set(spec_input) <= set(decoded)
    assert run("mappings", "new", "--copybook", cpy, "--record", record, "--out", out).exit_code == 2  # exists


def test_new_skeleton_rules_uncomment_into_a_working_mapping(tmp_path):
    cpy = MAPPINGS / "copybooks" / "TXNHIST.cpy"
    result = run("mappings", "new", "--copybook", cpy, "--record", "TXNHIST-DETAIL", "--target", "Transaction")
    assert result.exit_code == 0, result.output
    assert "relative to the current directory" in result.stderr
    text = result.stdout.replace(f"copybook: {Path(result.stdout.split('copybook: ')[1].split()[0])}",
                                 f"copybook: {cpy.as_posix()}")
    # uncomment the rule of TXD-ACCT-NO and point it at account_id
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if "from: TXD-ACCT-NO " in line)
    lines[i - 1:i + 2] = [lines[i - 1].replace("# - to: TODO", "- to: account_id"),
                          lines[i].replace("  #   from", "    from"), lines[i + 1].replace("  #   trans", "    trans")]
    lines[lines.index("fields: []")] = "fields:"
    mapping = tmp_path / "txn.yaml"
    mapping.write_text("\n".join(lines) + "\n")
    messages = [d.message for d in check_file(mapping)]
    assert messages and "Transaction.account_id is required but no rule sets it" not in messages
    assert all("is required but no rule sets it" in m for m in messages), messages


def test_new_target_checks(tmp_path):
    cpy = MAPPINGS / "copybooks" / "TXNHIST.cpy"
    result = run("mappings", "new", "--copybook", cpy, "--record", "TXNHIST-DETAIL", "--target", "Transacton")
    assert result.exit_code == 2 and "did you mean Transaction?" in result.stderr
    guessed = run("mappings", "new", "--copybook", cpy, "--record", "TXNHIST-DETAIL")
    assert guessed.exit_code == 0 and "target: Transaction\n" in guessed.stdout and "guessed" in guessed.stderr
    assert "name: batch.txnhist.detail\n" in guessed.stdout
    assert run("mappings", "new", "--copybook", cpy, "--record", "NOPE").exit_code == 2
