"""The batch pull scheduler inside ``corebridge serve``: a new TXNHIST file in the mock's outbox is ingested
within a couple of intervals, a failing pull is logged and retried (never raised), stop is clean, and the
composition root starts/stops it from ``batch.schedule_interval_seconds``."""

from __future__ import annotations

import threading
import time

import pytest

from adapters.sftp import SftpBatchDropbox, SftpSettings
from api.batch import open_store
from api.batch.scheduler import PullScheduler, pull_job
from api.batch.settings import BatchSettings
from mappings.engine import MappingRegistry
from mock_mainframe.batch.eod import EodWriter, txnhist_name
from mock_mainframe.config import MockConfig
from mock_mainframe.faults import FaultInjector
from mock_mainframe.ledger.posting import PostingEngine
from mock_mainframe.sftp.server import SftpFace

INTERVAL = 0.3


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def mock_sftp(tmp_path, ledger):
    config = MockConfig(data_dir=tmp_path / "mock", sftp_port=0)
    faults = FaultInjector(seed=42)
    writer = EodWriter(config, ledger, faults)
    writer.write_recent(1)
    face = SftpFace(config, ledger, PostingEngine(ledger), faults).start()
    yield face, writer
    face.stop()


def sftp_settings(face: SftpFace, port: int | None = None) -> SftpSettings:
    cfg = face.config
    return SftpSettings(host=cfg.host, port=port or face.port, username=cfg.sftp_user, password=cfg.sftp_password,
                        host_key_fingerprint=face.host_key_fingerprint, connect_timeout=2, banner_timeout=2,
                        auth_timeout=2, channel_timeout=2, operation_timeout=5)


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "batch.db")
    yield s
    s.close()


def loaded_files(store) -> set[str]:
    return {r["file_name"] for r in store.query("SELECT file_name FROM ingested_files WHERE status = 'loaded'")}


def test_a_new_outbox_file_is_ingested_within_a_couple_of_intervals(mock_sftp, store, tmp_path):
    face, writer = mock_sftp
    batch = BatchSettings(store=str(tmp_path / "batch.db"), work_dir=tmp_path / "work",
                          schedule_interval_seconds=INTERVAL)
    job = pull_job(store, MappingRegistry.load(), batch, lambda: SftpBatchDropbox(sftp_settings(face)),
                   outbox="/outbox")
    scheduler = PullScheduler(job, batch.schedule_interval_seconds).start()
    try:
        assert wait_for(lambda: len(loaded_files(store)) == 1), scheduler.snapshot()
        before = store.transaction_count()
        day = writer.ledger.business_date()
        writer.close_business_day()  # the core's end of day: a new TXNHIST file appears in the outbox
        name = txnhist_name(day)
        started = time.monotonic()
        assert wait_for(lambda: name in loaded_files(store), timeout=10), scheduler.snapshot()
        assert time.monotonic() - started < 10
        assert store.transaction_count() >= before
        assert (tmp_path / "work" / "archive" / name).exists()
        runs = scheduler.runs
        assert wait_for(lambda: scheduler.runs >= runs + 1)  # later runs are no-ops: nothing new
        assert len(loaded_files(store)) == 2 and scheduler.failures == 0
    finally:
        scheduler.stop()
    assert not scheduler.running


def test_a_failing_pull_is_logged_and_retried_never_raised(mock_sftp, store, tmp_path, caplog):
    face, _ = mock_sftp
    batch = BatchSettings(work_dir=tmp_path / "work", schedule_interval_seconds=INTERVAL)
    broken = {"on": True}

    def dropbox() -> SftpBatchDropbox:
        if broken["on"]:
            return SftpBatchDropbox(sftp_settings(face, port=1))  # nothing listens there
        return SftpBatchDropbox(sftp_settings(face))

    scheduler = PullScheduler(pull_job(store, MappingRegistry.load(), batch, dropbox, outbox="/outbox"), INTERVAL)
    with caplog.at_level("WARNING", logger="api.batch.scheduler"):
        scheduler.start()
        try:
            assert wait_for(lambda: scheduler.failures >= 2), scheduler.snapshot()
            assert scheduler.running and scheduler.last_error
            broken["on"] = False  # the core's SFTP is back: the next run loads the file
            assert wait_for(lambda: len(loaded_files(store)) == 1), scheduler.snapshot()
            assert wait_for(lambda: scheduler.last_error is None)
        finally:
            scheduler.stop()
    assert any("batch pull failed" in r.getMessage() for r in caplog.records)
    assert not scheduler.running


def test_stop_is_clean_and_waits_for_the_run_in_progress():
    entered, release = threading.Event(), threading.Event()
    done: list[str] = []

    def job() -> list:
        entered.set()
        release.wait(5)
        done.append("run")
        return []

    scheduler = PullScheduler(job, 60.0).start()  # one run now, the next in a minute
    assert entered.wait(5)
    stopper = threading.Thread(target=scheduler.stop)
    stopper.start()
    time.sleep(0.1)
    assert stopper.is_alive() and not done  # stop waits for the run
    release.set()
    stopper.join(5)
    assert not stopper.is_alive() and done == ["run"] and not scheduler.running
    assert scheduler.runs == 1
    scheduler.stop()  # idempotent
    with pytest.raises(ValueError):
        PullScheduler(job, 0)


def test_an_exception_in_the_job_never_escapes():
    calls = {"n": 0}

    def job() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")

    scheduler = PullScheduler(job, 0.05).start()
    try:
        assert wait_for(lambda: calls["n"] >= 3)
    finally:
        scheduler.stop()
    assert scheduler.failures == 1 and scheduler.runs >= 3 and scheduler.last_error is None


def test_the_composition_root_runs_and_stops_the_scheduler(tmp_path, monkeypatch):
    """``batch.schedule_interval_seconds`` > 0: build_gateways starts it; Gateways.close stops it."""
    from api import bootstrap
    from api.batch import scheduler as scheduler_mod
    from api.observability import Metrics
    from api.settings import Settings

    started: list[PullScheduler] = []
    real_start = scheduler_mod.PullScheduler.start

    def spy_start(self):
        started.append(self)
        return real_start(self)

    monkeypatch.setattr(scheduler_mod.PullScheduler, "start", spy_start)
    settings = Settings(batch=BatchSettings(store=str(tmp_path / "b.db"), work_dir=tmp_path / "w",
                                            schedule_interval_seconds=3600),
                        backends={"sftp": {"port": 1, "connect_timeout": 0.5}})
    gateways = bootstrap.build_gateways(settings, Metrics())
    assert len(started) == 1 and started[0].interval == 3600
    assert wait_for(lambda: started[0].runs >= 1)  # the first run failed (no SFTP on port 1), logged only
    assert started[0].failures == 1
    gateways.close()
    assert not started[0].running
