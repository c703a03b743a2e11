"""Exactly-once transfers with ``Idempotency-Key``: the facade over the fake core and a real store
(SQLite; the two-instance race on PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.errors import BackendTimeout, BackendUnavailable
from api.app import create_app
from api.reconciler import Reconciler
from api.store import IntentState, StoreSettings, build_store
from api.store.postgres import PostgresStore
from api.store.sqlite import SqliteStore
from canonical import Transfer
from tests.api.fakes import ACCT_MAIN, ACCT_OTHER, ACCT_SAVINGS, OTHER, OWNER, make_gateways
from tests.api.helpers import assert_problem
from tests.support import fresh_pg_database

BODY = {"from_account": ACCT_MAIN, "to_account": ACCT_SAVINGS, "amount": "1.25", "currency": "EUR",
        "memo": "IDEMPOTENT"}
FAST = StoreSettings(reconcile_interval_seconds=0.05, stale_after_seconds=0.5, lease_seconds=30)


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "store.db")
    yield s
    s.close()


def _app(settings, gateways, store, store_settings=FAST, reconciler=False):
    return create_app(settings, gateways, store=store, store_settings=store_settings, reconciler=reconciler)


@pytest.fixture
def eo_client(settings, gateways, store):
    with TestClient(_app(settings, gateways, store)) as c:
        yield c


def _post(client, tokens, key: str | None, body: dict[str, Any] = BODY, sub: str = OWNER):
    headers = tokens.headers(sub)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/v1/transfers", headers=headers, json=body)


def _postings(core, reference: str) -> list[Transfer]:
    return core.attempts(reference)


class DropResponse:
    """A TransferGateway that commits the posting, then loses the answer (``drops`` times)."""

    def __init__(self, inner: Any, drops: int = 1) -> None:
        self.inner = inner
        self.drops = drops

    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        result = self.inner.post(transfer, timeout=timeout)
        if self.drops > 0:
            self.drops -= 1
            raise BackendUnavailable("connection reset after the request was sent", backend="fake",
                                     operation="post", outcome_unknown=True)
        return result

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        return self.inner.inquire(reference, timeout=timeout)


class Slow:
    """A TransferGateway whose ``post`` takes a while, so racing requests find the key in flight."""

    def __init__(self, inner: Any, seconds: float = 0.3) -> None:
        self.inner = inner
        self.seconds = seconds

    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        time.sleep(self.seconds)
        return self.inner.post(transfer, timeout=timeout)

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        return self.inner.inquire(reference, timeout=timeout)


class Blocking:
    """A TransferGateway whose ``post`` waits for ``release`` (the first request stays in flight)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        self.entered.set()
        assert self.release.wait(10)
        return self.inner.post(transfer, timeout=timeout)

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        return self.inner.inquire(reference, timeout=timeout)


# -- the key's rules ------------------------------------------------------------------------------------
def test_missing_key_is_400(eo_client, tokens, core):
    before = len(core.attempts())
    body = assert_problem(_post(eo_client, tokens, None), 400, "bad-request")
    assert "Idempotency-Key" in body["detail"]
    assert len(core.attempts()) == before


def test_same_key_same_body_replays_byte_for_byte(eo_client, tokens, core):
    key = str(uuid.uuid4())
    first = _post(eo_client, tokens, key)
    assert first.status_code == 201, first.text
    ref = first.json()["reference"]
    assert first.json()["status"] == "posted" and first.headers["location"] == f"/v1/transfers/{ref}"
    again = _post(eo_client, tokens, key, dict(reversed(list(BODY.items()))))  # key order does not matter
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert len(_postings(core, ref)) == 1


def test_same_key_other_body_is_422(eo_client, tokens, core):
    key = str(uuid.uuid4())
    assert _post(eo_client, tokens, key).status_code == 201
    before = len(core.attempts())
    assert_problem(_post(eo_client, tokens, key, {**BODY, "amount": "2.50"}), 422, "idempotency-key-reused")
    assert len(core.attempts()) == before


def test_rejection_is_stored_and_replayed(eo_client, tokens, core):
    key = str(uuid.uuid4())
    body = {**BODY, "amount": "99999.00"}
    first = _post(eo_client, tokens, key, body)
    problem = assert_problem(first, 422, "rejected")
    assert problem["reason_code"] in ("R006", "R007")
    again = _post(eo_client, tokens, key, body)
    assert again.status_code == 422 and again.content == first.content
    assert len(_postings(core, problem["reference"])) == 1


def test_same_key_in_flight_is_409(settings, core, store, tokens):
    blocking = Blocking(core.transfers)
    gateways = replace(make_gateways(core), transfers=blocking)
    key = str(uuid.uuid4())
    with TestClient(_app(settings, gateways, store)) as client, ThreadPoolExecutor(1) as pool:
        first = pool.submit(_post, client, tokens, key)
        assert blocking.entered.wait(10)
        second = _post(client, tokens, key)
        assert_problem(second, 409, "conflict")
        blocking.release.set()
        done = first.result(10)
        assert done.status_code == 201, done.text
        third = _post(client, tokens, key)
        assert third.status_code == 201 and third.content == done.content
    assert len(_postings(core, done.json()["reference"])) == 1


def test_keys_are_scoped_by_customer(eo_client, tokens, core):
    key = "shared-key-0001"
    mine = _post(eo_client, tokens, key)
    assert mine.status_code == 201
    ref = mine.json()["reference"]
    # the other customer's same key with the owner's body: a new request, and a foreign account is a 404
    assert_problem(_post(eo_client, tokens, key, sub=OTHER), 404, "not-found")
    # with its own body: its own transfer, nothing of the owner's revealed
    theirs = _post(eo_client, tokens, key, {**BODY, "from_account": ACCT_OTHER, "to_account": ACCT_MAIN},
                   sub=OTHER)
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["reference"] != ref and ACCT_SAVINGS not in theirs.text
    assert_problem(eo_client.get(f"/v1/transfers/{ref}", headers=tokens.headers(OTHER)), 404, "not-found")
    assert eo_client.get(f"/v1/transfers/{ref}", headers=tokens.headers(OWNER)).json()["status"] == "posted"


# -- unknown outcomes ----------------------------------------------------------------------------------
def test_lost_answer_is_resolved_by_inquiry_with_one_posting(settings, core, store, tokens):
    gateways = replace(make_gateways(core), transfers=DropResponse(core.transfers))
    key = str(uuid.uuid4())
    with TestClient(_app(settings, gateways, store)) as client:
        r = _post(client, tokens, key)
        assert r.status_code == 201, r.text
        ref = r.json()["reference"]
        assert r.json()["status"] == "posted"
        assert _post(client, tokens, key).content == r.content
    assert len(_postings(core, ref)) == 1
    assert store.by_reference(ref).state is IntentState.POSTED


def test_lost_request_found_nowhere_is_sent_again_under_the_same_reference(settings, gateways, store, tokens,
                                                                           core):
    """With resend_after_seconds=0 the resend is immediate (same reference, one posting)."""
    immediate = FAST.model_copy(update={"resend_after_seconds": 0})
    with TestClient(_app(settings, gateways, store, store_settings=immediate)) as client:
        core.fail_next("post", BackendTimeout("no answer", backend="fake", operation="post", outcome_unknown=True))
        r = _post(client, tokens, str(uuid.uuid4()))
    assert r.status_code == 201, r.text
    ref = r.json()["reference"]
    assert [op for op, k in core.calls if k == ref] == ["post", "inquire", "post"]
    assert len(_postings(core, ref)) == 1


def test_a_lost_request_is_not_resent_until_a_delayed_original_can_no_longer_arrive(settings, gateways, store,
                                                                                   tokens, core):
    """By default the core not having seen it YET is 202 UNKNOWN: no second send until resend_after_seconds
    have passed since the loss (a delayed original could still arrive; the core does not de-duplicate)."""
    later = FAST.model_copy(update={"resend_after_seconds": 0.6})
    key = str(uuid.uuid4())
    with TestClient(_app(settings, gateways, store, store_settings=later)) as client:
        core.fail_next("post", BackendTimeout("no answer", backend="fake", operation="post", outcome_unknown=True))
        r = _post(client, tokens, key)
        assert r.status_code == 202, r.text
        ref = r.json()["reference"]
        again = _post(client, tokens, key)  # the client retries at once: still unknown, nothing resent
        assert again.status_code == 202
        assert [op for op, k in core.calls if k == ref].count("post") == 1
        time.sleep(0.7)
        service = client.app.state.services.exactly_once
        service.reconcile()  # past the delay: the core still has nothing -> sent again, same reference
    assert store.by_reference(ref).state is IntentState.POSTED
    assert [op for op, k in core.calls if k == ref].count("post") == 2
    assert len(_postings(core, ref)) == 1


def test_definite_failure_stores_nothing_and_the_retry_reuses_the_reference(eo_client, tokens, core):
    core.fail_next("post", BackendUnavailable("connection refused", backend="fake", operation="post"))
    key = str(uuid.uuid4())
    failed = assert_problem(_post(eo_client, tokens, key), 503, "backend-unavailable")
    retry = _post(eo_client, tokens, key)
    assert retry.status_code == 201, retry.text
    assert retry.json()["reference"] == failed["reference"]
    assert len(_postings(core, failed["reference"])) == 1


def test_unreachable_inquiry_is_202_unknown_then_the_reconciler_resolves_it(settings, core, store, tokens):
    gateways = replace(make_gateways(core), transfers=DropResponse(core.transfers))
    key = str(uuid.uuid4())
    down = BackendUnavailable("down", backend="fake", operation="inquire")
    with TestClient(_app(settings, gateways, store)) as client:
        for _ in range(3):  # the request's inquiry, the retry's, the GET's
            core.fail_next("inquire", down)
        r = _post(client, tokens, key)
        assert r.status_code == 202, r.text
        ref = r.json()["reference"]
        assert r.json()["status"] == "unknown"
        assert r.headers["location"] == f"/v1/transfers/{ref}" and int(r.headers["retry-after"]) >= 1
        replay = _post(client, tokens, key)  # still cannot ask: the stored 202 again
        assert replay.status_code == 202 and replay.content == r.content
        assert client.get(f"/v1/transfers/{ref}", headers=tokens.headers()).json()["status"] == "unknown"
        assert store.by_reference(ref).state is IntentState.UNKNOWN
        reconciler = client.app.state.services.exactly_once
        assert Reconciler(reconciler).run_once()[0] == 1
        assert store.by_reference(ref).state is IntentState.POSTED
        got = client.get(f"/v1/transfers/{ref}", headers=tokens.headers())
        assert got.status_code == 200 and got.json()["status"] == "posted"
        final = _post(client, tokens, key)  # once resolved, a replay is the final outcome
        assert final.status_code == 201 and final.json()["reference"] == ref
    assert len(_postings(core, ref)) == 1


def test_background_reconciler_runs_in_the_lifespan(settings, core, store, tokens):
    gateways = replace(make_gateways(core), transfers=DropResponse(core.transfers))
    core.fail_next("inquire", BackendUnavailable("down", backend="fake", operation="inquire"))
    app = _app(settings, gateways, store, reconciler=True)
    with TestClient(app) as client:
        assert app.state.reconciler.running
        r = _post(client, tokens, str(uuid.uuid4()))
        assert r.status_code == 202, r.text
        ref = r.json()["reference"]
        deadline = time.monotonic() + 5
        while store.by_reference(ref).state is not IntentState.POSTED and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.by_reference(ref).state is IntentState.POSTED
    assert not app.state.reconciler.running
    assert len(_postings(core, ref)) == 1


def test_stale_sent_intent_is_reconciled(settings, core, store, tokens):
    """A crash after SENT: the lease expires, the reconciler asks the core and finds the posting."""
    key = str(uuid.uuid4())
    with TestClient(_app(settings, make_gateways(core), store)) as client:
        r = _post(client, tokens, key)
        ref = r.json()["reference"]
    intent = store.by_reference(ref)
    assert store.claim(ref, "ghost", now=0, lease_seconds=0) is False  # final intents are never claimed
    # fabricate a crashed request: a SENT intent, posted in the core, lease long expired
    transfer = Transfer.model_validate_json(intent.transfer)
    crashed = transfer.model_copy(update={"reference": "CB00000000C0FFEE"})
    store.begin("C0000001", "crashed-key", fingerprint=intent.fingerprint, reference=crashed.reference,
                transfer=crashed.model_dump_json(), owner="ghost", now=time.time() - 100, lease_seconds=1,
                retention_seconds=3600)
    assert store.update(crashed.reference, "ghost", state=IntentState.SENT, now=time.time() - 100)
    core.transfers.post(crashed)
    service = client.app.state.services.exactly_once
    assert service.reconcile() == 1
    assert store.by_reference(crashed.reference).state is IntentState.POSTED
    assert len(_postings(core, crashed.reference)) == 1


# -- expiry ----------------------------------------------------------------------------------------------
def test_sweeper_expires_old_keys_but_keeps_unresolved_intents(store):
    now = 1_000_000.0
    for key, ref in (("old", "CB0000000000AAA1"), ("young", "CB0000000000AAA2"), ("lost", "CB0000000000AAA3")):
        store.begin(OWNER, key, fingerprint="f", reference=ref, transfer="{}", owner="o", now=now,
                    lease_seconds=1, retention_seconds=7 * 86400 if key == "young" else 60)
        store.update(ref, "o", state=IntentState.UNKNOWN if key == "lost" else IntentState.POSTED, now=now,
                     release=True)
    assert store.sweep(now + 30) == 0
    assert store.sweep(now + 61) == 1  # "old"; "lost" is unresolved and stays
    assert store.get(OWNER, "old") is None
    assert store.get(OWNER, "young") is not None and store.get(OWNER, "lost") is not None
    assert store.sweep(now + 7 * 86400 + 1) == 1
    assert store.count() == 1


def test_an_expired_key_starts_a_new_transfer(eo_client, tokens, core, store):
    key = str(uuid.uuid4())
    first = _post(eo_client, tokens, key)
    assert store.sweep(time.time() + 7 * 86400 + 1) == 1  # default retention: 7 days
    second = _post(eo_client, tokens, key)
    assert second.status_code == 201 and "idempotent-replayed" not in second.headers
    assert second.json()["reference"] != first.json()["reference"]


def test_retention_defaults_to_seven_days():
    assert StoreSettings().key_retention_seconds == 7 * 86400
    with pytest.raises(ValueError):
        StoreSettings(key_retention_seconds=1)


def test_without_a_store_the_key_is_optional(client, tokens):
    assert _post(client, tokens, None).status_code == 201


# -- concurrency -------------------------------------------------------------------------------------------
def _race(clients: list[TestClient], tokens, key: str, n: int = 20) -> list[Any]:
    barrier = threading.Barrier(n)
    headers = {**tokens.headers(), "Idempotency-Key": key}

    def one(i: int) -> Any:
        barrier.wait(10)
        return clients[i % len(clients)].post("/v1/transfers", headers=headers, json=BODY)

    with ThreadPoolExecutor(n) as pool:
        replies = list(pool.map(one, range(n)))
    assert sorted(r.status_code for r in replies)[:2] == [201, 409]  # one winner, the rest saw it in flight
    return replies


def test_threads_racing_one_key_make_one_posting_sqlite(settings, core, store, tokens):
    before = len(core.attempts())
    with TestClient(_app(settings, replace(make_gateways(core), transfers=Slow(core.transfers)), store)) as client:
        replies = _race([client], tokens, str(uuid.uuid4()))
    assert {r.status_code for r in replies} <= {201, 409}, [r.text for r in replies if r.status_code not in (201, 409)]
    refs = {r.json()["reference"] for r in replies if r.status_code == 201}
    assert len(refs) == 1
    assert len(core.attempts()) == before + 1


@pytest.mark.postgres
def test_two_instances_racing_one_key_make_one_posting_postgres(settings, core, tokens):
    with fresh_pg_database("cb_idem") as dsn:
        shared = PostgresStore(dsn)
        try:
            apps = [_app(settings, replace(make_gateways(core), transfers=Slow(core.transfers)), shared)
                    for _ in range(2)]
            with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
                before = len(core.attempts())
                key = str(uuid.uuid4())
                replies = _race([a, b], tokens, key)
                assert {r.status_code for r in replies} <= {201, 409}, [r.text for r in replies]
                refs = {r.json()["reference"] for r in replies if r.status_code == 201}
                assert len(refs) == 1
                assert len(core.attempts()) == before + 1
                [ref] = refs
                assert len(_postings(core, ref)) == 1
                replay = _post(b, tokens, key)  # the other instance replays the same answer
                assert replay.status_code == 201 and replay.json()["reference"] == ref
        finally:
            shared.close()


def test_build_store_from_settings(tmp_path):
    assert build_store(StoreSettings(backend="none")) is None
    sqlite = build_store(StoreSettings(backend="sqlite", sqlite_path=tmp_path / "s.db"))
    try:
        assert isinstance(sqlite, SqliteStore)
        assert sqlite._execute("PRAGMA journal_mode")[1][0][0] == "wal"
    finally:
        sqlite.close()
    with pytest.raises(ValueError, match="postgres_dsn"):
        build_store(StoreSettings(backend="postgres"))


@pytest.mark.postgres
def test_postgres_pool_is_bounded():
    with fresh_pg_database("cb_idem") as dsn:
        shared = build_store(StoreSettings(backend="postgres", postgres_dsn=dsn, postgres_pool_size=2))
        try:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: shared.get(OWNER, f"k{i}"), range(40)))
            assert shared._created <= 2
        finally:
            shared.close()
