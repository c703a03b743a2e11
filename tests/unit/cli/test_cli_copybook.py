"""``corebridge copybook show|decode`` on the repo's copybooks and the mock mainframe's real files."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from mock_mainframe.batch.eod import EodWriter
from mock_mainframe.config import MockConfig
from mock_mainframe.ledger.seed import seed_sqlite
from mock_mainframe.ledger.store import Ledger
from tests.support import require

ROOT = Path(__file__).resolve().parents[3]
COPYBOOKS = ROOT / "mappings" / "copybooks"
TXNHIST = COPYBOOKS / "TXNHIST.cpy"
STMT = COPYBOOKS / "STMT.cpy"
LRECL = 200

runner = CliRunner()


def run(*args: str | Path, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="module")
def eod_files(tmp_path_factory) -> dict[str, Path]:
    """Real end-of-day files of the mock mainframe (seed 7, 40 customers): TXNHIST and STMT of two days."""
    tmp = tmp_path_factory.mktemp("eod")
    seed_sqlite(tmp / "ledger.db", seed=7, customers=40)
    ledger = Ledger(tmp / "ledger.db")
    try:
        paths = EodWriter(MockConfig(data_dir=tmp / "mock", sftp_port=0), ledger).write_recent(2)
    finally:
        ledger.close()
    txnhist = [p for p in paths if p.name.startswith("TXNHIST")]
    stmt = [p for p in paths if p.name.startswith("STMT") and p.stat().st_size > 0]
    assert txnhist and stmt
    return {"txnhist": txnhist[0], "stmt": stmt[0]}


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def trailer_count(path: Path) -> int:
    """TXT-REC-COUNT read by hand (PIC 9(09) zoned, bytes 2-10 of the last record)."""
    last = path.read_bytes()[-LRECL:]
    assert last[:1].decode("cp037") == "T"
    return int(last[1:10].decode("cp037"))


def table_row(output: str, name: str) -> list[str]:
    """The cells of the rich table row whose NAME column is *name* (the header row for ``NAME``)."""
    line = next(line for line in output.splitlines() if re.search(rf"[│┃]\s+{re.escape(name)}\s+[│┃]", line))
    return [cell.strip() for cell in re.split("[│┃]", line.strip().strip("│┃"))]


# -- show ----------------------------------------------------------------------------------------------
def test_show_lists_every_01_record_with_jrecord_positions():
    result = run("copybook", "show", TXNHIST)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for title in ("TXNHIST-HEADER  (200 bytes)", "TXNHIST-DETAIL  (200 bytes)", "TXNHIST-TRAILER  (200 bytes)"):
        assert title in out
    header = table_row(out, "NAME")
    amt = dict(zip(header, table_row(out, "TXD-TXN-AMT"), strict=True))
    assert amt == {"LVL": "05", "NAME": "TXD-TXN-AMT", "POS": "40", "END": "47", "LEN": "8",
                   "TYPE": "packed decimal", "USAGE": "COMP-3", "PIC": "S9(13)V99", "SCALE": "2",
                   "SIGNED": "yes", "OCCURS": "", "REDEFINES": ""}
    card = dict(zip(header, table_row(out, "TXD-CARD-INFO"), strict=True))
    assert (card["POS"], card["LEN"], card["REDEFINES"]) == ("119", "20", "TXD-CNTR-INFO")
    trailer_total = dict(zip(header, table_row(out, "TXT-CTL-TOTAL"), strict=True))
    assert (trailer_total["POS"], trailer_total["LEN"], trailer_total["USAGE"]) == ("11", "9", "COMP-3")


def test_show_one_record_as_json_with_odo_and_conditions():
    result = run("copybook", "show", STMT, "--record", "stmt-record", "--format", "json", "--conditions")
    assert result.exit_code == 0, result.output
    [rec] = json.loads(result.stdout)
    assert rec["record"] == "STMT-RECORD" and rec["variable"] is True and rec["length"] == 40 + 44 * 200
    items = {i["name"]: i for i in rec["items"]}
    assert items["STMT-LINE"]["occurs"] == "0 TO 200 DEPENDING ON STMT-LINE-COUNT"
    assert (items["STMT-LINE-AMT"]["offset"], items["STMT-LINE-AMT"]["length"]) == (78, 7)
    assert items["STMT-LINE-COUNT"]["usage"] == "COMP"

    txn = json.loads(run("copybook", "show", TXNHIST, "-r", "TXNHIST-DETAIL", "-f", "json",
                         "--conditions").stdout)[0]
    conditions = [i for i in txn["items"] if i["level"] == 88]
    assert {c["name"]: c["pic"] for c in conditions}["TXD-POSTED"] == "'P'"


def test_show_prints_warnings(tmp_path):
    cpy = tmp_path / "SYNC.cpy"
    cpy.write_text("       01  REC.\n           05  A   PIC X(3).\n           05  B   PIC S9(4) COMP SYNC.\n")
    result = run("copybook", "show", cpy)
    assert result.exit_code == 0, result.output
    assert re.search(r"SYNC\.cpy:3:\d+: warning: SYNCHRONIZED on B is ignored", result.stderr)
    assert dict(zip(table_row(result.stdout, "NAME"), table_row(result.stdout, "B"), strict=True))["POS"] == "4"


def test_malformed_copybook_is_file_line_col_exit_2(tmp_path):
    cpy = tmp_path / "BAD.cpy"
    cpy.write_text("       01  REC.\n           05  A   PIC X(3).\n           05  B   PIC 9(2) COMP-7.\n")
    for args in (("copybook", "show", cpy), ("copybook", "decode", cpy, cpy)):
        result = run(*args)
        assert result.exit_code == 2
        assert re.match(rf"{re.escape(str(cpy))}:3:\d+: unknown clause 'COMP-7'", result.stderr)
        assert result.stdout == ""


def test_unknown_record_and_missing_file_exit_2(tmp_path):
    result = run("copybook", "show", TXNHIST, "--record", "TXNHIST-DETALE")
    assert result.exit_code == 2 and "TXNHIST-DETAIL" in result.stderr
    result = run("copybook", "show", tmp_path / "nope.cpy")
    assert result.exit_code == 2 and "cannot read" in result.stderr


# -- decode ----------------------------------------------------------------------------------------------
def test_decode_txnhist_infers_layouts_from_88_levels(eod_files):
    path = eod_files["txnhist"]
    result = run("copybook", "decode", TXNHIST, path)
    assert result.exit_code == 0, result.stderr
    records = json_lines(result.stdout)
    count = trailer_count(path)
    assert len(records) == count + 2
    assert [r["_record"] for r in records] == list(range(1, count + 3))
    assert [r["_layout"] for r in records] == ["TXNHIST-HEADER"] + ["TXNHIST-DETAIL"] * count + ["TXNHIST-TRAILER"]
    assert "record type in byte 1: 'H' = TXNHIST-HEADER, 'D' = TXNHIST-DETAIL, 'T' = TXNHIST-TRAILER" in result.stderr
    assert f"summary: {count + 2} records, {count + 2} decoded, 0 rejected" in result.stderr
    details, trailer = records[1:-1], records[-1]
    for d in details:
        assert isinstance(d["TXD-TXN-AMT"], str) and re.fullmatch(r"-?\d+\.\d\d", d["TXD-TXN-AMT"])
        assert isinstance(d["TXD-FEE-AMT"], str) and isinstance(d["TXD-TXN-SEQ"], int)
        assert d["TXD-ACCT-NO"] == d["TXD-ACCT-NO"].rstrip() and isinstance(d["TXD-CNTR-INFO"], dict)
    assert trailer["TXT-REC-COUNT"] == count
    assert Decimal(trailer["TXT-CTL-TOTAL"]) == sum(Decimal(d["TXD-TXN-AMT"]) for d in details)
    assert records[0]["TXH-FILE-ID"] == "TXNHIST"


def test_decode_with_explicit_record_type_field_gives_the_same_records(eod_files):
    path = eod_files["txnhist"]
    inferred = run("copybook", "decode", TXNHIST, path)
    explicit = run("copybook", "decode", TXNHIST, path, "--record-type-field", "1:1",
                   "--layout", "H=TXNHIST-HEADER", "--layout", "D=txnhist-detail", "-l", "T=TXNHIST-TRAILER",
                   "--encoding", "cp037", "--framing", "fixed")
    assert explicit.exit_code == 0, explicit.stderr
    assert explicit.stdout == inferred.stdout
    assert "from the 88-levels" not in explicit.stderr


def test_decode_corrupted_packed_nibble_rejects_one_record_and_prints_the_rest(eod_files, tmp_path):
    data = bytearray(eod_files["txnhist"].read_bytes())
    record_no, amt = 3, 39  # TXD-TXN-AMT at offset 40 (1-based) of the third record (a detail)
    pos = (record_no - 1) * LRECL + amt
    data[pos] = 0xA0 | (data[pos] & 0x0F)  # a digit nibble A: not packed decimal
    bad = tmp_path / "TXNHIST.BAD"
    bad.write_bytes(bytes(data))
    result = run("copybook", "decode", TXNHIST, bad)
    assert result.exit_code == 1
    [reject] = [line for line in result.stderr.splitlines() if line.startswith("reject:")]
    assert f"record {record_no}" in reject and f"offset {pos}" in reject
    assert "TXNHIST-DETAIL.TXD-TXN-AMT" in reject and "packed decimal" in reject
    assert f"bytes: {data[pos:pos + 8].hex(' ').upper()}" in reject and reject.split("bytes: ")[1].startswith("A")
    records = json_lines(result.stdout)
    total = len(data) // LRECL
    assert len(records) == total - 1
    assert record_no not in [r["_record"] for r in records]
    assert f"summary: {total} records, {total - 1} decoded, 1 rejected" in result.stderr


def test_decode_truncated_file_rejects_the_partial_record(eod_files, tmp_path):
    data = eod_files["txnhist"].read_bytes()
    cut = tmp_path / "TXNHIST.CUT"
    cut.write_bytes(data[: len(data) - LRECL // 2])
    result = run("copybook", "decode", TXNHIST, cut)
    assert result.exit_code == 1
    assert "truncated last record" in result.stderr
    assert len(json_lines(result.stdout)) == len(data) // LRECL - 1


def test_decode_rdw_stmt_file_with_odo(eod_files):
    path = eod_files["stmt"]
    result = run("copybook", "decode", STMT, path, "--framing", "rdw")
    assert result.exit_code == 0, result.stderr
    records = json_lines(result.stdout)
    # count the RDWs by hand: bytes 1-2 the record length including the RDW
    data, n, pos = path.read_bytes(), 0, 0
    while pos < len(data):
        pos += int.from_bytes(data[pos:pos + 2], "big")
        n += 1
    assert len(records) == n > 0
    for r in records:
        assert "_layout" not in r
        assert len(r["STMT-LINE"]) == r["STMT-LINE-COUNT"]
        total = sum(Decimal(line["STMT-LINE-AMT"]) for line in r["STMT-LINE"])
        assert Decimal(r["STMT-CLOSE-BAL"]) == Decimal(r["STMT-OPEN-BAL"]) + total
        assert all(isinstance(line["STMT-LINE-AMT"], str) for line in r["STMT-LINE"])
    # the same file read as fixed-length records is garbage, and says so
    fixed = run("copybook", "decode", STMT, path)
    assert fixed.exit_code == 1 and "reject:" in fixed.stderr


def test_decode_csv_of_one_layout_of_a_multi_layout_file(eod_files):
    path = eod_files["txnhist"]
    result = run("copybook", "decode", TXNHIST, path, "--format", "csv", "--only", "TXNHIST-DETAIL")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == trailer_count(path)
    assert list(rows[0])[:3] == ["_record", "TXD-REC-TYPE", "TXD-ACCT-NO"]
    assert {"TXD-CNTR-INFO.TXD-CNTR-ACCT", "TXD-CARD-INFO.TXD-CARD-MCC"} <= set(rows[0])
    assert "FILLER" not in rows[0]
    jsonl = [r for r in json_lines(run("copybook", "decode", TXNHIST, path).stdout)
             if r["_layout"] == "TXNHIST-DETAIL"]
    for row, rec in zip(rows, jsonl, strict=True):
        assert row["_record"] == str(rec["_record"])
        assert row["TXD-TXN-AMT"] == rec["TXD-TXN-AMT"]
        assert row["TXD-CNTR-INFO.TXD-CNTR-ACCT"] == rec["TXD-CNTR-INFO"]["TXD-CNTR-ACCT"]
    assert "skipped (not TXNHIST-DETAIL)" in result.stderr


def test_decode_csv_flattens_tables(eod_files):
    result = run("copybook", "decode", STMT, eod_files["stmt"], "--framing", "rdw", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert "STMT-LINE[0].STMT-LINE-AMT" in rows[0] and "STMT-LINE[199].STMT-LINE-DESC" in rows[0]
    for row in rows:
        n = int(row["STMT-LINE-COUNT"])
        assert row[f"STMT-LINE[{n - 1}].STMT-LINE-DATE"] != "" and row[f"STMT-LINE[{n}].STMT-LINE-DATE"] == ""


def test_decode_csv_needs_one_layout(eod_files):
    result = run("copybook", "decode", TXNHIST, eod_files["txnhist"], "--format", "csv")
    assert result.exit_code == 2 and "--only" in result.stderr


def test_decode_multi_layout_without_type_codes_needs_a_choice(tmp_path):
    cpy = tmp_path / "TWO.cpy"
    cpy.write_text("       01  A-REC.\n           05  A-X  PIC X(2).\n"
                   "       01  B-REC.\n           05  B-X  PIC X(2).\n")
    data = tmp_path / "two.dat"
    data.write_bytes("ABCD".encode("cp037"))
    result = run("copybook", "decode", cpy, data)
    assert result.exit_code == 2 and "--record" in result.stderr and "A-REC, B-REC" in result.stderr
    result = run("copybook", "decode", cpy, data, "--record", "B-REC")
    assert result.exit_code == 0
    assert json_lines(result.stdout) == [{"_record": 1, "B-X": "AB"}, {"_record": 2, "B-X": "CD"}]
    result = run("copybook", "decode", cpy, data, "--layout", "A=A-REC")
    assert result.exit_code == 2 and "--record-type-field" in result.stderr
    result = run("copybook", "decode", cpy, data, "--record-type-field", "1:1", "--layout", "A=A-REC",
                 "--layout", "*=B-REC")
    assert result.exit_code == 0
    assert [r["_layout"] for r in json_lines(result.stdout)] == ["A-REC", "B-REC"]


@pytest.mark.parametrize(("policy", "code", "value"), [("error", 1, None), ("null", 0, None), ("zero", 0, 0)])
def test_decode_null_policy(tmp_path, policy, code, value):
    cpy = tmp_path / "N.cpy"
    cpy.write_text("       01  N-REC.\n           05  N-TXT  PIC X(2).\n           05  N-NUM  PIC 9(3).\n")
    data = tmp_path / "n.dat"
    data.write_bytes("AB   ".encode("cp037") + "CD012".encode("cp037"))
    result = run("copybook", "decode", cpy, data, "--null-policy", policy)
    assert result.exit_code == code
    records = json_lines(result.stdout)
    assert records[-1] == {"_record": 2, "N-TXT": "CD", "N-NUM": 12}
    if policy == "error":
        assert len(records) == 1 and "N-REC.N-NUM" in result.stderr and "40 40 40" in result.stderr
    else:
        assert records[0] == {"_record": 1, "N-TXT": "AB", "N-NUM": value}


def test_decode_reads_stdin_and_stops_at_limit(eod_files):
    data = eod_files["txnhist"].read_bytes()
    result = run("copybook", "decode", TXNHIST, "-", "--limit", "2", input=data)
    assert result.exit_code == 0, result.stderr
    assert [r["_layout"] for r in json_lines(result.stdout)] == ["TXNHIST-HEADER", "TXNHIST-DETAIL"]
    assert "--limit 2" in result.stderr


def test_decode_bad_options_exit_2(eod_files):
    path = eod_files["txnhist"]
    assert run("copybook", "decode", TXNHIST, path, "--encoding", "klingon").exit_code == 2
    assert run("copybook", "decode", TXNHIST, path, "--record-type-field", "x", "-l", "H=TXNHIST-HEADER").exit_code == 2
    assert run("copybook", "decode", TXNHIST, path, "--framing", "vb").exit_code == 2
    assert run("copybook", "decode", TXNHIST, path / "nope").exit_code == 2


# -- the installed command ---------------------------------------------------------------------------------
def test_console_script_and_module_run():
    script = Path(sys.executable).parent / "corebridge"
    require(script.exists(), f"console script {script} (pip install -e .)")
    for cmd in ([str(script), "--help"], [sys.executable, "-m", "api.cli", "copybook", "--help"]):
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "copybook" in done.stdout
    done = subprocess.run([str(script), "copybook", "show", str(TXNHIST), "-r", "TXNHIST-TRAILER", "-f", "text"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "TXT-CTL-TOTAL" in done.stdout
