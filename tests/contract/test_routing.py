"""Routing with fallback against the real ODBC face: when the online source (SOAP) cannot answer, a
balance still comes, from the ODBC read replica, marked stale and equal to the ledger.

The SOAP side is a fake primary here (it raises what an open breaker or a dead link raises); the
fallback is the real ``OdbcCore`` behind its own resilience pipeline, on the mock's SQLite ledger.
"""

from __future__ import annotations

import logging
import random

import pytest

from adapters.errors import BackendUnavailable, CircuitOpen, RecordNotFound
from adapters.odbc import OdbcCore, OdbcSettings
from adapters.resilience import Pipeline, ResilienceConfig
from adapters.resilient import ResilientAccountSource
from adapters.routing import RoutedAccountSource
from mappings.engine import MappingRegistry
from tests.support import require

pyodbc = pytest.importorskip("pyodbc", reason="missing: pyodbc (needs libodbc2)")

pytestmark = pytest.mark.contract

ROUTES = {"customer": "soap", "accounts": "odbc", "account": "soap", "balance": "soap", "history": "odbc"}


class DownSource:
    """A primary whose every call fails the way the path to it fails (nothing reaches a core)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def _fail(self, *args, **kwargs):
        self.calls += 1
        raise self.error

    accounts_of = account = balance = history = _fail


@pytest.fixture(scope="module")
def odbc(mock):
    if mock is None:
        pytest.skip("compares with the mock's ledger; not run against a real core")
    require("SQLite3" in pyodbc.drivers(), "ODBC driver SQLite3 (Debian libsqliteodbc)")
    core = OdbcCore(OdbcSettings(connection_string=mock.odbc_connection_string), MappingRegistry.load())
    yield core
    core.close()


@pytest.fixture
def ledger(mock):
    return mock.ledger


def odbc_source(odbc: OdbcCore) -> ResilientAccountSource:
    return ResilientAccountSource(odbc, Pipeline("odbc", ResilienceConfig(), operation_class="read",
                                                 rng=random.Random(1)))


def some_accounts(ledger, n: int = 5) -> list[dict]:
    return ledger.query("SELECT * FROM ACCTMAST ORDER BY ACCT_NO LIMIT ?", (n,))


def test_with_the_soap_breaker_open_the_balance_comes_stale_from_odbc(odbc, ledger, caplog):
    soap = DownSource(CircuitOpen(retry_after=10.0, backend="soap", operation="balance"))
    routed = RoutedAccountSource({"soap": soap, "odbc": odbc_source(odbc)}, ROUTES, fallbacks={"balance": "odbc"})
    with caplog.at_level(logging.WARNING, logger="adapters.routing"):
        for row in some_accounts(ledger):
            acct = row["ACCT_NO"].strip()
            balance = routed.balance(acct)
            assert balance.stale is True
            assert balance.account_id == acct
            assert balance.ledger.amount == row["LEDGER_BAL"] and balance.available.amount == row["AVAIL_BAL"]
            assert balance.as_of == ledger.business_date()
    assert soap.calls == 5
    assert routed.snapshot()["fallbacks_served"] == {"odbc": 5}
    assert "served stale from odbc" in caplog.text
    assert not any(r["ACCT_NO"].strip() in caplog.text for r in some_accounts(ledger))


def test_a_real_open_breaker_falls_back_without_calling_soap(odbc, ledger):
    soap = DownSource(BackendUnavailable("connection refused"))
    soap_pipeline = Pipeline("soap", ResilienceConfig(max_attempts=1), operation_class="read")
    soap_pipeline.breaker.transition_to_open()
    routed = RoutedAccountSource({"soap": ResilientAccountSource(soap, soap_pipeline), "odbc": odbc_source(odbc)},
                                 ROUTES, fallbacks={"balance": "odbc"})
    row = some_accounts(ledger, 1)[0]
    balance = routed.balance(row["ACCT_NO"].strip())
    assert balance.stale is True and balance.ledger.amount == row["LEDGER_BAL"]
    assert soap.calls == 0 and soap_pipeline.snapshot()["not_permitted_calls"] == 1


def test_an_unknown_account_is_never_served_stale(odbc):
    routed = RoutedAccountSource({"soap": DownSource(RecordNotFound("no such account")), "odbc": odbc_source(odbc)},
                                 ROUTES, fallbacks={"balance": "odbc"})
    with pytest.raises(RecordNotFound):
        routed.balance("110000000543")
    # the replica may lag behind the online core (an account opened a moment ago): its "not found"
    # is not trusted, the caller gets the primary's error and tries again later
    with pytest.raises(CircuitOpen):
        RoutedAccountSource({"soap": DownSource(CircuitOpen(retry_after=1.0)), "odbc": odbc_source(odbc)},
                            ROUTES, fallbacks={"balance": "odbc"}).balance("199999999999")


def test_history_routed_to_odbc_pages_through_the_ledger(odbc, ledger):
    routed = RoutedAccountSource({"soap": DownSource(CircuitOpen(retry_after=1.0)), "odbc": odbc_source(odbc)},
                                 ROUTES)
    acct = ledger.query("SELECT ACCT_NO FROM TXNHIST GROUP BY ACCT_NO ORDER BY COUNT(*) DESC LIMIT 1")[0]["ACCT_NO"]
    acct = acct.strip()
    expected, _ = ledger.history(acct, limit=10**6)
    ids, cursor = [], None
    while True:
        page = routed.history(acct, limit=40, cursor=cursor)
        ids.extend(t.id for t in page.items)
        if page.next_cursor is None:
            break
        assert page.next_cursor.startswith("odbc:")
        cursor = page.next_cursor
    assert ids == [f"{acct}-{r['TXN_SEQ']}" for r in expected]
    assert [a.id for a in routed.accounts_of("C0000001")] == [
        r["ACCT_NO"].strip() for r in ledger.accounts_of("C0000001")]
