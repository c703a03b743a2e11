"""`python -m mock_mainframe` as a user runs it: one command, three faces, a clean Ctrl-C.

Each face is reached by a real client (raw SOAP over HTTP, OpenSSH's sftp, pyodbc through
unixODBC) using only what the banner printed.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pyodbc
import pytest
import requests

from mock_mainframe.config import MockConfig
from mock_mainframe.odbc import postgres_connection_string
from mock_mainframe.runtime import MockMainframe
from tests.support import fresh_pg_database, require_tool

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "balance-inquiry.xml"
SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}


def soap(url: str, operation: str, body: str) -> str:
    envelope = EXAMPLE.read_text()
    envelope = re.sub(r"<soapenv:Body>.*</soapenv:Body>", f"<soapenv:Body>{body}</soapenv:Body>",
                      envelope, flags=re.S)
    r = requests.post(url, data=envelope.encode(), timeout=10,
                      headers={**SOAP_HEADERS, "SOAPAction": f'"urn:corebank:mainframe:v1/{operation}"'})
    assert r.status_code == 200, r.text
    return r.text


def transfer_body(ref: str, src: str, dst: str, amount_cents: int, currency: str) -> str:
    return (f"<cb:FundsTransfer><cb:XFER-REF>{ref}</cb:XFER-REF><cb:FROM-ACCT>{src}</cb:FROM-ACCT>"
            f"<cb:TO-ACCT>{dst}</cb:TO-ACCT><cb:XFER-AMT>+{amount_cents:015d}</cb:XFER-AMT>"
            f"<cb:CURR-CD>{currency}</cb:CURR-CD></cb:FundsTransfer>")


class Running:
    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mock_mainframe", "--data-dir", str(data_dir), "--customers", "30",
             "--soap-port", "0", "--sftp-port", "0", "--admin-port", "0", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.banner = self._read_banner()

    def _read_banner(self) -> str:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"mock exited early: {self.proc.stderr.read() if self.proc.stderr else ''}")
            lines.append(line)
            if line.startswith("Ctrl-C stops it."):
                return "".join(lines)
        raise AssertionError("no banner within 60 s")

    def find(self, pattern: str) -> str:
        m = re.search(pattern, self.banner)
        assert m, f"{pattern!r} not in banner:\n{self.banner}"
        return m.group(1)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(15)


@pytest.fixture
def running(tmp_path):
    r = Running(tmp_path / "mock")
    yield r
    if r.proc.poll() is None:
        r.proc.kill()
        r.proc.wait()


def test_banner_says_how_to_reach_every_face(running):
    for label in ("SOAP", "WSDL", "UsernameToken", "SFTP", "host key SHA256:", "known_hosts:", "ODBC",
                  "DRIVER={SQLite3}", "admin"):
        assert label in running.banner


def test_each_face_answers_a_real_client_then_ctrl_c_stops_cleanly(running, tmp_path):
    soap_url = running.find(r"SOAP\s+(http://\S+)")
    # SOAP: the README's sample request, as printed there
    reply = soap(soap_url, "BalanceInquiry", "<cb:BalanceInquiry><cb:ACCT-NO>125000000019</cb:ACCT-NO>"
                                             "</cb:BalanceInquiry>")
    assert "<cb:RETURN-CODE>0000</cb:RETURN-CODE>" in reply and "<cb:AVAIL-BAL>+" in reply
    assert requests.get(soap_url + "?wsdl", timeout=5).text.count(soap_url) == 1
    # SFTP: OpenSSH's client, host key pinned from the banner's known_hosts line
    sftp = require_tool("sftp")
    port = running.find(r"SFTP\s+127\.0\.0\.1:(\d+)")
    known = tmp_path / "known_hosts"
    known.write_text(running.find(r"known_hosts: (.+)") + "\n")
    key = running.find(r"or key (\S+)\)")
    out = subprocess.run(
        [sftp, "-b", "-", "-P", port, "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={known}", "cbbatch@127.0.0.1"],
        input="ls -1 outbox\n", capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "TXNHIST.D261126" in out.stdout and "STMT.D261126" in out.stdout
    # ODBC: the printed connection string, through unixODBC
    conn = pyodbc.connect(running.find(r"ODBC\s+(DRIVER=\S+)"), autocommit=True)
    rows = conn.execute("SELECT ACCT_NO, AVAIL_BAL FROM ACCTMAST WHERE ACCT_NO = ?", "125000000019").fetchall()
    conn.close()
    assert len(rows) == 1 and f"+{int(Decimal(rows[0][1]) * 100):015d}" in reply
    # admin
    admin = running.find(r"admin\s+(http://\S+)/status")
    assert requests.get(admin + "/status", timeout=5).json()["business_date"] == "2026-11-27"
    assert running.interrupt() == 0
    assert "stopping mock mainframe" in running.proc.stderr.read()


def test_ledger_survives_a_restart(tmp_path):
    data = tmp_path / "mock"
    first = Running(data)
    try:
        url = first.find(r"SOAP\s+(http://\S+)")
        reply = soap(url, "FundsTransfer", transfer_body("RESTART-0001", "125000000019", "125000000026",
                                                         1234, "USD"))
        assert "<cb:RETURN-CODE>0000</cb:RETURN-CODE>" in reply
    finally:
        assert first.interrupt() == 0
    second = Running(data)
    try:
        url = second.find(r"SOAP\s+(http://\S+)")
        status = soap(url, "TransferStatusInquiry",
                      "<cb:TransferStatusInquiry><cb:XFER-REF>RESTART-0001</cb:XFER-REF></cb:TransferStatusInquiry>")
        assert "<cb:XFER-COUNT>001</cb:XFER-COUNT>" in status
    finally:
        assert second.interrupt() == 0


@pytest.mark.postgres
def test_whole_mock_on_postgres_all_faces_agree(tmp_path):
    """--odbc postgres: SOAP postings land in PostgreSQL and psqlODBC reads them back."""
    with fresh_pg_database("cb_mock_rt") as dsn:
        cfg = MockConfig(data_dir=tmp_path / "mock", customers=30, soap_port=0, sftp_port=0, admin_port=0,
                         odbc="postgres", pg_dsn=dsn)
        with MockMainframe(cfg) as mock:
            ep = mock.endpoints
            assert ep.odbc_connection_string.startswith("DRIVER={PostgreSQL Unicode}")
            conn = pyodbc.connect(postgres_connection_string(dsn), autocommit=True)
            before = conn.execute("SELECT AVAIL_BAL FROM ACCTMAST WHERE ACCT_NO = ?", "125000000019").fetchone()[0]
            reply = soap(ep.soap_url, "FundsTransfer",
                         transfer_body("PG-ROUTE-0001", "125000000019", "125000000026", 500, "USD"))
            assert "<cb:RETURN-CODE>0000</cb:RETURN-CODE>" in reply
            after = conn.execute("SELECT AVAIL_BAL FROM ACCTMAST WHERE ACCT_NO = ?", "125000000019").fetchone()[0]
            assert isinstance(after, Decimal) and after == before - Decimal("5.00")
            n = conn.execute("SELECT COUNT(*) FROM TXNHIST WHERE TXN_REF = ?", "PG-ROUTE-0001".ljust(16)).fetchone()[0]
            assert n == 2
            conn.close()
