"""The forked decoder: items and exceptions come through as they would in-process; a child that dies fails the
file cleanly (nothing committed, no claim left, a re-run loads it); a child is never left behind."""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing as mp
import os
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest

from api.batch import TxnhistIngestor, open_store
from api.batch.pipeline import ChildDied, can_fork, in_child
from mock_mainframe.batch.eod import build_txnhist, txnhist_name
from mock_mainframe.ledger.legacy import to_cyymmdd

pytestmark = pytest.mark.skipif(not can_fork(), reason="needs fork")

DAY = dt.date(2026, 11, 27)


def synthetic_rows(n: int, day: int):
    for i in range(n):
        yield {"ACCT_NO": f"{900000000000 + i % 500:012d}", "TXN_SEQ": i + 1, "POST_DT": day, "POST_TM": 101010,
               "VALUE_DT": day, "TXN_CD": "DEP", "DR_CR_IND": "C", "TXN_AMT": Decimal(i % 10000) / 100 + 1,
               "RUN_BAL": Decimal("1000.00"), "CURR_CD": "USD", "TXN_DESC": "SYNTHETIC", "TXN_REF": "",
               "CHANNEL": "WEB", "TXN_STAT": "P", "CNTR_ACCT": "900000000001"}


def numbers(n: int, fail_at: int | None = None):
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"bad item {i}")
        yield i, os.getpid()


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickles by args: (a,) only, so it cannot be rebuilt
        super().__init__(a)


def raise_unpicklable():
    yield 1
    raise Unpicklable(1, 2)


def gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def test_items_come_in_order_from_another_process():
    with in_child(numbers, 1000) as items:
        got = list(items)
    assert [i for i, _ in got] == list(range(1000))
    assert {pid for _, pid in got} != {os.getpid()}
    assert not mp.active_children()


def test_an_exception_in_the_child_is_raised_again_here():
    got = []
    with pytest.raises(ValueError, match="bad item 7"), in_child(numbers, 100, 7) as items:
        got.extend(i for i, _ in items)
    assert got == list(range(7))
    with pytest.raises(ChildDied, match="Unpicklable"), in_child(raise_unpicklable) as items:
        list(items)


def test_leaving_early_kills_the_child():
    with in_child(numbers, 10**9) as items:
        next(items)
        [child] = mp.active_children()
        pid = child.pid
    assert gone(pid) and not mp.active_children()


def test_a_killed_child_raises_child_died():
    with pytest.raises(ChildDied, match="exit code -9"), in_child(numbers, 10**9) as items:
        next(items)
        [child] = mp.active_children()
        os.kill(child.pid, signal.SIGKILL)
        for _ in items:
            pass


def _txnhist_file(directory: Path, n: int, name: str | None = None) -> tuple[Path, str]:
    """A TXNHIST file of ``n`` synthetic details for DAY, and its SHA-256."""
    data = build_txnhist(synthetic_rows(n, to_cyymmdd(DAY)), DAY)
    path = directory / (name or txnhist_name(DAY))
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_decoder_that_dies_mid_file_fails_the_file_cleanly(tmp_path, registry, monkeypatch):
    monkeypatch.setattr("api.batch.ingest.PROCESS_MIN_BYTES", 0)
    monkeypatch.setattr("api.batch.ingest.BATCH_ROWS", 500)
    n = 20_000
    path, sha = _txnhist_file(tmp_path, n)
    killed: list[int] = []

    def kill_decoder(records: int, position: int) -> None:
        if not killed:
            [child] = mp.active_children()
            os.kill(child.pid, signal.SIGKILL)
            killed.append(child.pid)

    with open_store(tmp_path / "batch.db") as store:
        ing = TxnhistIngestor(store, registry, quarantine_dir=tmp_path / "q", on_batch=kill_decoder)
        with pytest.raises(ChildDied, match="txnhist-decoder"):
            ing.ingest(path, sha)
        assert killed and gone(killed[0])
        assert store.transaction_count() == 0
        assert store.scalar("SELECT COUNT(*) FROM claims") == 0
        assert store.known_file(path.name, sha) is None
        assert path.exists() and not (tmp_path / "q").exists()  # not the file's fault: not quarantined

        again = TxnhistIngestor(store, registry, quarantine_dir=tmp_path / "q").ingest(path, sha)
        assert again.status == "loaded" and again.loaded == n == store.transaction_count()


@pytest.mark.parametrize("process_min_bytes", [0, None])
def test_a_file_replaced_under_its_path_mid_ingest_is_still_read_whole(tmp_path, registry, monkeypatch,
                                                                        process_min_bytes):
    """Both processes read the file that was opened (the one the SHA-256 is of), not whatever the path names now."""
    monkeypatch.setattr("api.batch.ingest.PROCESS_MIN_BYTES", process_min_bytes)
    monkeypatch.setattr("api.batch.ingest.BATCH_ROWS", 100)
    monkeypatch.setattr("api.batch.ingest.SEGMENT_RECORDS", 100)
    n = 3000
    path, sha = _txnhist_file(tmp_path, n)
    other, _ = _txnhist_file(tmp_path, 10, "other")

    def replace(records: int, position: int) -> None:
        if other.exists():
            os.replace(other, path)

    with open_store(tmp_path / "batch.db") as store:
        ing = TxnhistIngestor(store, registry, quarantine_dir=tmp_path / "q", on_batch=replace)
        report = ing.ingest(path, sha)
        assert report.status == "loaded", report.reason
        assert report.loaded == n == store.transaction_count()
