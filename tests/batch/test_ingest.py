"""``batch pull`` end to end: the mock's SFTP face writes TXNHIST files, the real adapter fetches them,
the ingestor loads them into the batch store (SQLite, and PostgreSQL for the claim between instances).

Checked: counts and exact amounts against the mock's ledger; trailer/truncation/bad-packed corruption from
the mock's fault injection quarantined whole with the right reason (or, with load-good, the good records
loaded and the bad one named in the reject file); re-runs are no-ops; a crash mid-file followed by a
re-run loads every record exactly once; two instances never ingest one file twice.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from adapters.errors import CoreError
from adapters.sftp import SftpBatchDropbox, SftpSettings
from api.batch import BatchStore, PullDirs, TxnhistIngestor, open_store, pull
from api.batch.settings import BatchSettings
from api.cli import app
from mock_mainframe.batch.eod import (
    EodWriter,
    build_txnhist,
    corrupt_txnhist,
    file_sequence,
    signed_amount,
    txnhist_name,
)
from mock_mainframe.batch.files import atomic_write
from mock_mainframe.config import MockConfig
from mock_mainframe.faults import FaultInjector, FaultRule
from mock_mainframe.ledger.legacy import to_cyymmdd
from mock_mainframe.ledger.posting import PostingEngine
from mock_mainframe.ledger.store import Ledger
from mock_mainframe.sftp.server import SftpFace
from tests.support import fresh_pg_database

pytestmark = pytest.mark.contract

DAYS = 3


# -- the mock mainframe ----------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path) -> MockConfig:
    return MockConfig(data_dir=tmp_path / "mock", sftp_port=0)


@pytest.fixture
def writer(config, ledger, faults) -> EodWriter:
    return EodWriter(config, ledger, faults)


@pytest.fixture
def face(config, ledger, faults, writer):
    writer.write_recent(DAYS)
    f = SftpFace(config, ledger, PostingEngine(ledger), faults).start()
    yield f
    f.stop()


def settings_for(face: SftpFace) -> SftpSettings:
    cfg = face.config
    return SftpSettings(host=cfg.host, port=face.port, username=cfg.sftp_user, password=cfg.sftp_password,
                        host_key_fingerprint=face.host_key_fingerprint, connect_timeout=5, banner_timeout=5,
                        auth_timeout=5, channel_timeout=5, operation_timeout=10)


@pytest.fixture
def box(face):
    adapter = SftpBatchDropbox(settings_for(face))
    yield adapter
    adapter.close()


@pytest.fixture
def dirs(tmp_path) -> PullDirs:
    return PullDirs(tmp_path / "work")


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "batch.db")
    yield s
    s.close()


@pytest.fixture(params=["inline", "process"])
def decoder(request, monkeypatch) -> str:
    """Decode in this process only, or (``process``) mostly in the forked decoder process, whatever the file's
    size; small segments, so that a file is several (``process``: one record each, 2 of 3 decoded there)."""
    process = request.param == "process"
    monkeypatch.setattr("api.batch.ingest.PROCESS_MIN_BYTES", 0 if process else None)
    monkeypatch.setattr("api.batch.ingest.SEGMENT_RECORDS", 1 if process else 7)
    return request.param


def ingestor(store: BatchStore, registry, dirs: PullDirs, **kw) -> TxnhistIngestor:
    return TxnhistIngestor(store, registry, quarantine_dir=dirs.quarantine, rejects_dir=dirs.rejects, **kw)


def run_pull(box, store, registry, dirs, **kw):
    return pull(box, ingestor(store, registry, dirs, **kw), outbox=box.settings.outbox, dirs=dirs)


def ledger_rows(ledger: Ledger, days) -> list[dict]:
    rows = []
    for day in days:
        rows += list(ledger.transactions_on(to_cyymmdd(day)))
    return rows


def recent_days(ledger: Ledger, n: int = DAYS):
    today = ledger.business_date()
    return [today - dt.timedelta(days=back) for back in range(n, 0, -1)]


def stored(store: BatchStore) -> dict[str, dict]:
    return {r["id"]: r for r in store.query("SELECT * FROM transactions")}


def close_day_with(faults: FaultInjector, writer: EodWriter, kind: str | None) -> str:
    """Close the current business day; its TXNHIST (the first file written) gets ``kind``."""
    day = writer.ledger.business_date()
    if kind:
        faults.set_rules([FaultRule(face="batch", corrupt=kind, remaining=1)])
    writer.close_business_day()
    return txnhist_name(day)


# -- the happy path --------------------------------------------------------------------------------
def test_pull_loads_every_row_of_the_ledger_exactly(decoder, box, store, registry, dirs, ledger):
    reports = run_pull(box, store, registry, dirs)
    days = recent_days(ledger)
    assert [r.file_name for r in reports] == [txnhist_name(d) for d in days]
    assert all(r.status == "loaded" for r in reports), [(r.file_name, r.reason) for r in reports]
    rows = ledger_rows(ledger, days)
    assert rows, "the seeded ledger has history on the recent days"
    got = stored(store)
    assert len(got) == len(rows) == sum(r.loaded for r in reports)
    for row in rows:
        t = got[f"{row['ACCT_NO'].strip()}-{row['TXN_SEQ']}"]
        assert Decimal(t["amount"]) == signed_amount(row)  # exact: TEXT decimal, never REAL
        assert t["currency"] == row["CURR_CD"]
        assert t["file_name"] in {txnhist_name(d) for d in days}
    # sequences are consecutive days: no gap reported; control totals match the ledger
    assert [r.seq_no for r in reports] == [file_sequence(d) for d in days]
    assert all(r.sequence_note is None for r in reports)
    for r, day in zip(reports, days, strict=True):
        assert Decimal(r.control_total) == sum((signed_amount(x) for x in ledger_rows(ledger, [day])), Decimal(0))
    assert sorted(p.name for p in dirs.archive.iterdir()) == [r.file_name for r in reports]

    again = run_pull(box, store, registry, dirs)  # idempotent: name + size + mtime known, not even downloaded
    assert [r.status for r in again] == ["already-ingested"] * DAYS
    assert all("not downloaded" in r.reason for r in again)
    assert [r.sha256 for r in again] == [r.sha256 for r in reports]
    assert store.transaction_count() == len(rows)


def test_a_sequence_gap_is_reported(box, store, registry, dirs, ledger, face):
    first = recent_days(ledger)[0]
    (face.config.outbox / txnhist_name(recent_days(ledger)[1])).unlink()  # the middle day never arrives
    reports = run_pull(box, store, registry, dirs)
    assert [r.status for r in reports] == ["loaded", "loaded"]
    assert reports[0].seq_no == file_sequence(first)
    seq = file_sequence(first)
    assert reports[1].sequence_note == f"gap: sequence {seq + 2} after {seq} (1 missing)"


# -- re-runs: known files are not downloaded again -------------------------------------------------
def refuse_downloads(faults: FaultInjector) -> None:
    """From now on every SFTP open fails: a pull that tried to download anything would fail."""
    faults.set_rules([FaultRule(face="sftp", operation="open", error_rate=1.0)])


def test_rerun_downloads_no_known_file_loaded_or_quarantined(box, store, registry, dirs, ledger, faults, writer):
    bad = close_day_with(faults, writer, "wrong_total")
    first = {r.file_name: r for r in run_pull(box, store, registry, dirs)}
    assert first[bad].status == "quarantined" and len(first) == DAYS + 1
    refuse_downloads(faults)
    again = run_pull(box, store, registry, dirs)
    assert {r.file_name: r.status for r in again} == dict.fromkeys(first, "already-ingested")
    assert all("not downloaded" in r.reason for r in again)
    assert {r.file_name: r.sha256 for r in again} == {n: r.sha256 for n, r in first.items()}
    assert "already quarantined" in next(r.reason for r in again if r.file_name == bad)
    assert not dirs.incoming.exists() or not any(dirs.incoming.iterdir())
    with pytest.raises(CoreError):  # the fault bites: any download would have failed the pull
        box.fetch(box.settings.outbox, bad, dirs.incoming)


def test_same_content_with_a_new_mtime_is_downloaded_once_then_known(box, store, registry, dirs, ledger, faults,
                                                                     face):
    run_pull(box, store, registry, dirs)
    name = txnhist_name(recent_days(ledger)[0])
    path = face.config.outbox / name
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 3600))
    again = {r.file_name: r for r in run_pull(box, store, registry, dirs)}
    assert again[name].status == "already-ingested" and "nothing to do" in again[name].reason  # SHA-256 decided
    assert all("not downloaded" in r.reason for n, r in again.items() if n != name)
    refuse_downloads(faults)  # the new mtime was remembered: the next pull downloads nothing
    third = run_pull(box, store, registry, dirs)
    assert all(r.status == "already-ingested" and "not downloaded" in r.reason for r in third)


@pytest.mark.parametrize("change", ["other size", "same size, new mtime"])
def test_changed_file_under_a_known_name_is_downloaded_and_reported(box, store, registry, dirs, ledger, face,
                                                                    change):
    first = {r.file_name: r for r in run_pull(box, store, registry, dirs)}
    day = recent_days(ledger)[1]
    name = txnhist_name(day)
    path = face.config.outbox / name
    before = path.stat()
    if change == "other size":
        data = build_txnhist(synthetic_rows(7, to_cyymmdd(day)), day)
    else:  # same bytes count, other content: only the mtime and the SHA-256 can tell
        data = corrupt_txnhist(path.read_bytes(), "wrong_total")
    atomic_write(path, data)
    os.utime(path, (before.st_atime, before.st_mtime + 60))
    assert (path.stat().st_size == before.st_size) == (change != "other size")
    reports = {r.file_name: r for r in run_pull(box, store, registry, dirs)}
    r = reports[name]
    assert r.sha256 != first[name].sha256
    assert r.status == ("loaded" if change == "other size" else "quarantined"), r.reason
    assert r.changed is not None and first[name].sha256[:16] in r.changed and "loaded before" in r.changed
    assert json.loads(store.known_file(name, r.sha256)["report"])["changed"] == r.changed
    if change == "other size":
        assert r.loaded == 7 and store.scalar("SELECT COUNT(*) FROM transactions WHERE file_sha256 = ?",
                                              (r.sha256,)) == 7
    assert all("not downloaded" in x.reason for n, x in reports.items() if n != name)


# -- corruption from the mock's fault injection ----------------------------------------------------
@pytest.mark.parametrize(("kind", "reason"), [
    ("wrong_count", "trailer record count"),
    ("wrong_total", "trailer control total"),
    ("truncated", "truncated file"),
    ("bad_packed", "under policy reject-file"),
])
def test_corrupt_file_is_quarantined_whole(decoder, box, store, registry, dirs, ledger, faults, writer, kind, reason):
    name = close_day_with(faults, writer, kind)
    reports = {r.file_name: r for r in run_pull(box, store, registry, dirs)}
    bad = reports[name]
    assert bad.status == "quarantined"
    assert reason in bad.reason
    assert store.scalar("SELECT COUNT(*) FROM transactions WHERE file_name = ?", (name,)) == 0
    assert (dirs.quarantine / name).exists()
    report = json.loads((dirs.quarantine / f"{name}.report.json").read_text())
    assert report["status"] == "quarantined" and reason in report["reason"]
    assert report["records"] >= 1 or kind == "truncated"
    if kind == "bad_packed":
        assert report["rejects"] == 1 and report["reject_details"][0]["field"].endswith("TXD-TXN-AMT")
    # the healthy days still loaded; the store remembers the quarantine, so a re-run is a no-op
    assert all(r.status == "loaded" for n, r in reports.items() if n != name)
    assert store.known_file(name, bad.sha256)["status"] == "quarantined"
    again = {r.file_name: r for r in run_pull(box, store, registry, dirs)}
    assert again[name].status == "already-ingested"


def test_load_good_loads_the_good_records_and_names_the_bad_one(decoder, box, store, registry, dirs, ledger, faults,
                                                                 writer):
    day = ledger.business_date()
    name = close_day_with(faults, writer, "bad_packed")
    rows = ledger_rows(ledger, [day])
    reports = {r.file_name: r for r in run_pull(box, store, registry, dirs, policy="load-good")}
    r = reports[name]
    assert r.status == "loaded"
    assert r.records == len(rows) and r.rejects == 1 and r.loaded == len(rows) - 1
    assert "control total unverifiable" in r.reason
    first = rows[0]
    assert Decimal(r.reason.rsplit("imply ", 1)[1]) == signed_amount(first)  # the bad record's amount
    got = stored(store)
    assert f"{first['ACCT_NO'].strip()}-{first['TXN_SEQ']}" not in got
    assert all(f"{x['ACCT_NO'].strip()}-{x['TXN_SEQ']}" in got for x in rows[1:])
    rejects = json.loads((dirs.rejects / f"{name}.rejects.json").read_text())["rejects"]
    assert len(rejects) == 1
    assert rejects[0]["record_no"] == 2 and rejects[0]["offset"] >= 200
    assert rejects[0]["field"].endswith("TXD-TXN-AMT") and rejects[0]["reason"]
    row = store.known_file(name, r.sha256)
    assert row["rejects"] == 1 and json.loads(row["report"])["rejects_path"].endswith(".rejects.json")


# -- crash safety and several instances ------------------------------------------------------------
class Crash(Exception):
    pass


def test_crash_mid_file_then_rerun_loads_everything_exactly_once(decoder, box, store, registry, dirs, ledger,
                                                                  monkeypatch):
    days = recent_days(ledger)
    rows = ledger_rows(ledger, days)
    big = max(days, key=lambda d: len(ledger_rows(ledger, [d])))
    n_big = len(ledger_rows(ledger, [big]))
    assert n_big > 20
    monkeypatch.setattr("api.batch.ingest.BATCH_ROWS", max(1, n_big // 4))  # several batches per file
    current = [""]

    def crash_halfway(records: int, position: int) -> None:
        if current[0] == txnhist_name(big) and records >= n_big // 2:
            raise Crash("power cut halfway through the file")

    ing = ingestor(store, registry, dirs, on_batch=crash_halfway)
    ingest = ing.ingest

    def tracking(path, sha, name=None, **listing):
        current[0] = name or path.name
        return ingest(path, sha, name, **listing)

    ing.ingest = tracking  # type: ignore[method-assign]
    with pytest.raises(Crash):
        pull(box, ing, outbox=box.settings.outbox, dirs=dirs)
    # batches were inserted before the crash, all inside the file's transaction: none of them stayed
    assert store.scalar("SELECT COUNT(*) FROM transactions WHERE file_name = ?", (txnhist_name(big),)) == 0
    assert store.scalar("SELECT COUNT(*) FROM claims WHERE file_name = ?", (txnhist_name(big),)) == 0
    assert store.known_file(txnhist_name(big), "x") is None

    reports = run_pull(box, store, registry, dirs)  # the re-run after the crash
    assert all(r.status in ("loaded", "already-ingested") for r in reports)
    assert {r.file_name for r in reports if r.status == "loaded"} >= {txnhist_name(big)}
    got = stored(store)
    assert len(got) == len(rows) == store.transaction_count()


def synthetic_rows(n: int, day: int):
    for i in range(n):
        yield {"ACCT_NO": f"{900000000000 + i % 500:012d}", "TXN_SEQ": i + 1, "POST_DT": day, "POST_TM": 101010,
               "VALUE_DT": day, "TXN_CD": "TFO" if i % 2 else "DEP", "DR_CR_IND": "D" if i % 2 else "C",
               "TXN_AMT": Decimal(i % 10000) / 100 + Decimal("0.01"), "RUN_BAL": Decimal("1000.00"),
               "CURR_CD": "USD", "TXN_DESC": "SYNTHETIC", "TXN_REF": "", "CHANNEL": "WEB", "TXN_STAT": "P",
               "CNTR_ACCT": "900000000001"}


def cli_pull_args(face: SftpFace, store: Path, work: Path) -> list[str]:
    cfg = face.config
    return ["batch", "pull", "--store", str(store), "--work-dir", str(work), "--host", cfg.host, "--port",
            str(face.port), "--user", cfg.sftp_user, "--password", cfg.sftp_password, "--fingerprint",
            face.host_key_fingerprint]


def children_of(pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(pid).children()]


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkill_mid_ingest_then_rerun_loads_every_record_once(face, ledger, tmp_path):
    """A real crash: ``corebridge batch pull`` in a subprocess, SIGKILLed while it ingests a large file."""
    n = 100_000
    day = ledger.business_date()  # after the recent days: ingested last
    big = txnhist_name(day)
    atomic_write(face.config.outbox / big, build_txnhist(synthetic_rows(n, to_cyymmdd(day)), day))
    small = len(ledger_rows(ledger, recent_days(ledger)))
    store_path, work = tmp_path / "kill.db", tmp_path / "kill"
    cmd = [sys.executable, "-m", "api.cli", *cli_pull_args(face, store_path, work)]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (work / "incoming" / big).exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert (work / "incoming" / big).exists(), proc.stdout.read().decode() if proc.poll() is not None else ""
        time.sleep(0.4)  # the ingest of 100k records takes seconds: this lands in the middle of it
        assert proc.poll() is None, "the pull finished before the kill: make the file larger"
        decoders = children_of(proc.pid)
        assert decoders, "a file this size is decoded in a child process"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10  # the orphaned decoder notices at its next send and exits
        while any(map(running, decoders)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(running, decoders)), "a decoder outlived its parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    with open_store(store_path) as s:
        assert s.scalar("SELECT COUNT(*) FROM transactions WHERE file_name = ?", (big,)) == 0
        assert s.transaction_count() == small  # the smaller files before it had committed
        assert s.scalar("SELECT COUNT(*) FROM claims WHERE file_name = ?", (big,)) == 0

    result = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True,
                            timeout=60, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    with open_store(store_path) as s:
        assert s.scalar("SELECT COUNT(*) FROM transactions WHERE file_name = ?", (big,)) == n
        assert s.transaction_count() == small + n == s.scalar("SELECT COUNT(DISTINCT id) FROM transactions")
        assert s.scalar("SELECT COUNT(*) FROM ingested_files WHERE status = 'loaded'") == DAYS + 1


@pytest.mark.postgres
def test_two_instances_on_postgres_ingest_a_file_once(box, face, registry, tmp_path, ledger):
    with fresh_pg_database("cb_batch") as dsn:
        stores = [open_store(dsn), open_store(dsn)]
        boxes = [box, SftpBatchDropbox(settings_for(face))]
        results: list = [None, None]

        def run(i: int) -> None:
            d = PullDirs(tmp_path / f"work{i}")
            results[i] = run_pull(boxes[i], stores[i], registry, d)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        try:
            statuses = [r.status for res in results for r in res]
            assert statuses.count("loaded") == DAYS, statuses
            assert set(statuses) <= {"loaded", "claimed-elsewhere", "already-ingested"}
            assert stores[0].transaction_count() == len(ledger_rows(ledger, recent_days(ledger)))
            assert stores[0].scalar("SELECT COUNT(*) FROM ingested_files") == DAYS
        finally:
            boxes[1].close()
            for s in stores:
                s.close()


# -- the command line ------------------------------------------------------------------------------
def test_cli_pull_prints_a_summary_and_loads(face, tmp_path, ledger):
    args = cli_pull_args(face, tmp_path / "cli.db", tmp_path / "cli")
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "batch pull" in result.output and "loaded" in result.output
    with open_store(tmp_path / "cli.db") as s:
        assert s.transaction_count() == len(ledger_rows(ledger, recent_days(ledger)))
    again = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "already-ingested" in again.output


@pytest.mark.parametrize("decoder_process", [True, False])
def test_the_decoder_process_setting_decides_whether_a_big_file_forks(box, store, registry, dirs, ledger,
                                                                      monkeypatch, decoder_process):
    monkeypatch.setattr("api.batch.ingest.PROCESS_MIN_BYTES", 0)  # every file counts as big
    monkeypatch.setattr("api.batch.ingest.SEGMENT_RECORDS", 1)
    monkeypatch.setattr("api.batch.ingest.BATCH_ROWS", 1)
    seen: list[int] = []
    reports = run_pull(box, store, registry, dirs, decoder_process=decoder_process,
                       on_batch=lambda *_: seen.append(len(children_of(os.getpid()))))
    assert reports and all(r.status == "loaded" for r in reports)
    assert seen
    assert (max(seen) >= 1) is decoder_process  # a forked decoder was there while inserting, or never
    assert BatchSettings().decoder_process is True
    assert BatchSettings(decoder_process=False).decoder_process is False
