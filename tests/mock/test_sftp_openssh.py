"""The SFTP face through OpenSSH's own ``sftp`` client in batch mode, with the host key pinned
(StrictHostKeyChecking=yes) and the demo client key: what a bank's scheduler would run."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from mock_mainframe.batch.eod import EodWriter
from mock_mainframe.config import MockConfig
from mock_mainframe.sftp.server import SftpFace
from tests.support import require_tool

BLANK = b"\x40"


@pytest.fixture
def config(tmp_path) -> MockConfig:
    return MockConfig(data_dir=tmp_path / "mock", sftp_port=0)


@pytest.fixture
def face(config, ledger, engine, faults):
    EodWriter(config, ledger, faults).write_recent(2)
    f = SftpFace(config, ledger, engine, faults)
    f.start()
    yield f
    f.stop()


@pytest.fixture
def known_hosts(face, tmp_path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(face.known_hosts_line() + "\n")
    return path


def run_sftp(face: SftpFace, commands: list[str], known_hosts: Path,
             timeout: float = 30) -> subprocess.CompletedProcess:
    sftp = require_tool("sftp")
    batch = known_hosts.parent / f"batch-{uuid.uuid4().hex}.txt"
    batch.write_text("\n".join(commands) + "\n")
    cfg = face.config
    return subprocess.run(
        [sftp, "-F", "/dev/null", "-b", str(batch), "-P", str(face.port),
         "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-i", str(cfg.client_key_path), f"{cfg.sftp_user}@{cfg.host}"],
        capture_output=True, text=True, timeout=timeout)


def wait_for(path: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


def yesterday(face: SftpFace) -> dt.date:
    return face.ledger.business_date() - dt.timedelta(days=1)


# -- a minimal PAYIN file, from PAYIN.cpy -----------------------------------------------------------
def _x(value: str, n: int) -> bytes:
    return value.ljust(n).encode("cp037")


def _rec(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return body + BLANK * (120 - len(body))


def _pack(amount: Decimal, digits: int) -> bytes:
    return bytes.fromhex(str(int(amount.scaleb(2))).rjust(digits, "0") + "c")


def payin(transfers: list[tuple[str, str, str, Decimal]]) -> bytes:
    out = [_rec(_x("H", 1), _x("PAYIN", 8), _x("1261126", 7), _x("000042", 6), _x("CBRIDGE", 8))]
    for ref, debit, credit, amount in transfers:
        out.append(_rec(_x("D", 1), _x(ref, 16), _x(debit, 12), _x(credit, 12), _pack(amount, 15),
                        _x("USD", 3), _x("1261126", 7), _x("SFTP UPLOAD", 40)))
    total = sum((t[3] for t in transfers), Decimal("0.00"))
    out.append(_rec(_x("T", 1), _x(f"{len(transfers):09d}", 9), _pack(total, 17)))
    return b"".join(out)


# -- tests -----------------------------------------------------------------------------------------
def test_lists_outbox_and_downloads_a_txnhist_file(face, known_hosts, tmp_path):
    name = f"TXNHIST.D{yesterday(face):%y%m%d}"
    local = tmp_path / "download.bin"
    res = run_sftp(face, ["ls -1 /outbox", f"get /outbox/{name} {local}"], known_hosts)
    assert res.returncode == 0, res.stderr
    assert name in res.stdout and f"STMT.D{yesterday(face):%y%m%d}" in res.stdout
    assert local.read_bytes() == (face.config.outbox / name).read_bytes()
    assert len(local.read_bytes()) % 200 == 0


def test_upload_is_taken_only_after_the_rename(face, known_hosts, tmp_path, ledger):
    rows = ledger.query("SELECT ACCT_NO, LEDGER_BAL FROM ACCTMAST WHERE ACCT_STAT = 'A' "
                        "AND CURR_CD = 'USD' AND AVAIL_BAL > 100 ORDER BY ACCT_NO LIMIT 2")
    (a, bal_a), (b, bal_b) = ((r["ACCT_NO"].strip(), r["LEDGER_BAL"]) for r in rows)
    local = tmp_path / "payin.bin"
    local.write_bytes(payin([("SFTP-0001", a, b, Decimal("7.50")), ("SFTP-0002", b, a, Decimal("2.25"))]))
    final, temp = "PAYIN.D261126.S000042", ".PAYIN.D261126.S000042.tmp"

    res = run_sftp(face, [f"put {local} /inbox/{temp}", "ls -la /inbox"], known_hosts)
    assert res.returncode == 0, res.stderr
    assert temp in res.stdout
    time.sleep(1.5)  # three polls of the watcher: a temp name is never taken
    assert (face.config.inbox / temp).exists()
    assert not (face.config.outbox / "PAYACK.D261126.S000042").exists()
    assert ledger.account(a)["LEDGER_BAL"] == bal_a

    res = run_sftp(face, [f"rename /inbox/{temp} /inbox/{final}"], known_hosts)
    assert res.returncode == 0, res.stderr
    ack = face.config.outbox / "PAYACK.D261126.S000042"
    assert wait_for(ack), "the rename hands the file to the inbox"
    data = ack.read_bytes()
    assert len(data) == 4 * 100 and data[52:53].decode("cp037") == "A"
    assert [data[i + 24:i + 25].decode("cp037") for i in (100, 200)] == ["A", "A"]
    assert ledger.account(a)["LEDGER_BAL"] == bal_a - Decimal("7.50") + Decimal("2.25")
    assert ledger.account(b)["LEDGER_BAL"] == bal_b + Decimal("7.50") - Decimal("2.25")
    assert (face.config.inbox / "processed" / final).exists()

    got = tmp_path / "ack.bin"
    res = run_sftp(face, [f"get /outbox/PAYACK.D261126.S000042 {got}", "ls /inbox/processed"],
                   known_hosts)
    assert res.returncode == 0, res.stderr
    assert got.read_bytes() == data and final in res.stdout


def test_a_wrong_known_hosts_entry_fails(face, tmp_path):
    keygen = require_tool("ssh-keygen")
    other = tmp_path / "other_key"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key_type, blob = other.with_suffix(".pub").read_text().split()[:2]
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[{face.config.host}]:{face.port} {key_type} {blob}\n")
    res = run_sftp(face, ["ls /outbox"], wrong)
    assert res.returncode != 0
    assert "Host key verification failed" in res.stderr
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    res = run_sftp(face, ["ls /outbox"], empty)
    assert res.returncode != 0 and "Host key verification failed" in res.stderr


def test_fingerprint_matches_ssh_keygen(face):
    keygen = require_tool("ssh-keygen")
    pub = face.config.host_key_path.with_name(face.config.host_key_path.name + ".pub")
    out = subprocess.run([keygen, "-l", "-E", "sha256", "-f", str(pub)], check=True,
                         capture_output=True, text=True).stdout
    assert out.split()[1] == face.host_key_fingerprint
    assert out.split()[-1] == "(ED25519)"


def test_outbox_is_read_only(face, known_hosts, tmp_path):
    local = tmp_path / "x.bin"
    local.write_bytes(b"x")
    name = f"TXNHIST.D{yesterday(face):%y%m%d}"
    for command in (f"put {local} /outbox/EVIL", f"rm /outbox/{name}",
                    f"rename /outbox/{name} /outbox/OTHER", f"put {local} /EVIL", "mkdir /inbox/sub"):
        res = run_sftp(face, [command], known_hosts)
        assert res.returncode != 0, command
        assert "Permission denied" in res.stderr, res.stderr
    assert (face.config.outbox / name).exists()
    assert not (face.config.outbox / "EVIL").exists()


def test_several_clients_at_once(face, known_hosts, tmp_path):
    name = f"TXNHIST.D{yesterday(face):%y%m%d}"
    expect = (face.config.outbox / name).read_bytes()
    results: dict[int, tuple[int, bytes]] = {}

    def one(i: int) -> None:
        local = tmp_path / f"dl{i}.bin"
        res = run_sftp(face, [f"get /outbox/{name} {local}"], known_hosts)
        results[i] = (res.returncode, local.read_bytes() if local.exists() else b"")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: (0, expect) for i in range(6)}
