"""The batch store's own look-ups: listing entries known by name + size (+ mtime), and references indexed."""

from __future__ import annotations

import pytest

from api.batch import open_store


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "batch.db")
    yield s
    s.close()


def ingested(store, name: str, sha: str, status: str = "loaded") -> None:
    store.record_file(name=name, sha256=sha, status=status, file_date=None, seq_no=None, records=0, rejects=0,
                      duplicates=0, control_total=None, reason=None, report="{}")


def test_a_listing_entry_is_known_only_by_the_same_name_size_and_recorded_mtime(store):
    ingested(store, "TXNHIST.D261127", "a" * 64)
    store.remember_remote("TXNHIST.D261127", "a" * 64, 4000, "2026-11-27T22:00:00+00:00")
    known = store.known_remote("TXNHIST.D261127", 4000, "2026-11-27T22:00:00+00:00")
    assert known is not None and known["sha256"] == "a" * 64 and known["status"] == "loaded"
    assert store.known_remote("TXNHIST.D261127", 4200, "2026-11-27T22:00:00+00:00") is None  # other size
    assert store.known_remote("TXNHIST.D261127", 4000, "2026-11-27T22:01:00+00:00") is None  # other mtime
    assert store.known_remote("TXNHIST.D261127", 4000, None) is None  # the server gave none this time
    assert store.known_remote("TXNHIST.D261128", 4000, "2026-11-27T22:00:00+00:00") is None  # other name


def test_no_recorded_mtime_matches_on_name_and_size(store):
    ingested(store, "TXNHIST.D261127", "b" * 64, status="quarantined")
    store.remember_remote("TXNHIST.D261127", "b" * 64, 4000, None)
    assert store.known_remote("TXNHIST.D261127", 4000, "2026-11-27T22:00:00+00:00")["status"] == "quarantined"
    assert store.known_remote("TXNHIST.D261127", 4001, None) is None


def test_a_listing_without_an_ingested_file_is_not_known(store):
    store.remember_remote("TXNHIST.D261127", "c" * 64, 4000, None)  # e.g. the file's transaction rolled back
    assert store.known_remote("TXNHIST.D261127", 4000, None) is None


def test_the_latest_sighting_of_a_file_wins(store):
    ingested(store, "TXNHIST.D261127", "d" * 64)
    store.remember_remote("TXNHIST.D261127", "d" * 64, 4000, "2026-11-27T22:00:00+00:00")
    store.remember_remote("TXNHIST.D261127", "d" * 64, 4000, "2026-11-28T06:00:00+00:00")  # touched, same bytes
    assert store.known_remote("TXNHIST.D261127", 4000, "2026-11-27T22:00:00+00:00") is None
    assert store.known_remote("TXNHIST.D261127", 4000, "2026-11-28T06:00:00+00:00") is not None


def test_lookups_by_reference_use_the_reference_index(store):
    plan = store.query("EXPLAIN QUERY PLAN SELECT t.reference, f.file_date FROM transactions t JOIN ingested_files f "
                       "ON f.file_name = t.file_name AND f.sha256 = t.file_sha256 "
                       "WHERE f.status = 'loaded' AND t.reference IN (?, ?)", ("CB1", "CB2"))
    assert any("USING INDEX transactions_reference" in row["detail"] for row in plan), plan
