"""In-memory fakes of the three ports for the API tests, seeded with two customers.

The port fakes themselves are :class:`tests.fakes.core.FakeCore`'s (the same fakes the contract
suite runs against the real SOAP adapter, so they keep the core's promises: ``RecordNotFound`` for
unknown ids, ``Rejected`` with the core's reason codes, newest-first history with the core's
continuation keys). This module adds what the API tests need on top:

* :func:`build_core`: customer ``C0000001`` (two EUR accounts, 30 transactions on the first, one
  transfer) and customer ``C0000002`` (one EUR account, one transfer of its own);
* :class:`FakeHealth`: ``Gateways.health()`` rows shaped like ``ResilienceRegistry.snapshot()``;
* :class:`Spy`: wraps a port, logs every call *with its raw arguments* (account numbers: the log
  scan must find them masked) and records the request id each call saw;
* :class:`StaleBalances`: an ``AccountSource`` whose balances come "from a fallback".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from api.gateways import Gateways
from api.observability import request_id_var
from canonical import Account, Address, Balance, Customer, Money, Transfer
from tests.fakes.core import FakeCore

__all__ = [
    "ACCT_MAIN",
    "ACCT_OTHER",
    "ACCT_SAVINGS",
    "OTHER",
    "OWNER",
    "REF_OTHER",
    "REF_OWNER",
    "FakeHealth",
    "Spy",
    "StaleBalances",
    "build_core",
    "make_gateways",
]

log = logging.getLogger("corebridge.tests.fakecore")

OWNER = "C0000001"
OTHER = "C0000002"
ACCT_MAIN = "110000000543"
ACCT_SAVINGS = "110000000551"
ACCT_OTHER = "120000000014"
REF_OWNER = "MOB-20261127-001"
REF_OTHER = "MOB-OTHER-0001"
HISTORY_SIZE = 30
BUSINESS_DATE = dt.date(2026, 11, 27)


def build_core() -> FakeCore:
    core = FakeCore(business_date=BUSINESS_DATE,
                    clock=lambda: dt.datetime(2026, 11, 27, 10, 15, 0, tzinfo=dt.UTC))
    core.add_customer(Customer(id=OWNER, type="personal", status="active", last_name="EXAMPLE", first_name="ANNA",
                               birth_date=dt.date(1980, 4, 12), email="anna@example.com",
                               address=Address(line1="1 HIGH ST", city="BERLIN", postal_code="10115", country="DE"),
                               branch="1100", created_on=dt.date(2015, 3, 2)))
    core.add_customer(Customer(id=OTHER, type="personal", status="active", last_name="ZWEIG", first_name="BERTA",
                               birth_date=dt.date(1975, 1, 30), email="berta@example.com"))
    opened = dt.date(2019, 5, 18)
    core.add_account(Account(id=ACCT_MAIN, customer_id=OWNER, status="open", product="current", currency="EUR",
                             title="ANNA CURRENT", opened_on=opened, branch="1100"), ledger="2000.00", hold="100.00")
    core.add_account(Account(id=ACCT_SAVINGS, customer_id=OWNER, status="open", product="savings", currency="EUR",
                             title="ANNA SAVINGS", opened_on=opened, branch="1100"), ledger="10000.00")
    core.add_account(Account(id=ACCT_OTHER, customer_id=OTHER, status="open", product="current", currency="EUR",
                             title="BERTA CURRENT", opened_on=opened), ledger="777.77")
    start = dt.datetime(2026, 10, 29, 8, 0, tzinfo=dt.UTC)
    for i in range(HISTORY_SIZE):
        at = start + dt.timedelta(days=i, minutes=i)
        if i % 5 == 0:
            core.book(ACCT_MAIN, "300.00", at=at, description="SALARY ACME", kind="salary", channel="batch")
        else:
            core.book(ACCT_MAIN, f"-{i}.25", at=at, description=f"POS SHOP {i}", kind="card_purchase",
                      channel="card")
    core.transfers.post(Transfer(reference=REF_OWNER, from_account=ACCT_MAIN, to_account=ACCT_OTHER,
                                 amount=Money.of("25.00", "EUR"), memo="DINNER"))
    core.transfers.post(Transfer(reference=REF_OTHER, from_account=ACCT_OTHER, to_account=ACCT_MAIN,
                                 amount=Money.of("10.00", "EUR"), memo="BERTA PAYS BACK"))
    core.calls.clear()
    return core


class FakeHealth:
    """``Gateways.health()``: one row per (backend, operation class); all breakers closed at first."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        for backend, op in (("soap", "read"), ("soap", "write"), ("odbc", "read")):
            self.rows[(backend, op)] = {
                "backend": backend, "operation_class": op, "breaker_state": "closed", "failure_rate": -1.0,
                "slow_call_rate": -1.0, "buffered_calls": 0, "not_permitted_calls": 0, "calls": 10, "attempts": 12,
                "retries": 2, "budget_tokens": 10.0, "retries_denied_by_budget": 0, "in_flight": 0,
                "bulkhead_rejected": 0, "bulkhead_size": 10,
            }

    def set_state(self, backend: str, operation_class: str, state: str) -> None:
        self.rows[(backend, operation_class)]["breaker_state"] = state

    def __call__(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows.values()]


class Spy:
    """Wraps a port: logs each call with its raw arguments and records the request id it ran under."""

    def __init__(self, inner: Any, name: str) -> None:
        self._inner = inner
        self._name = name
        self.request_ids: list[str | None] = []

    def __getattr__(self, attr: str) -> Callable[..., Any]:
        target = getattr(self._inner, attr)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.request_ids.append(request_id_var.get())
            log.info("fake core: %s.%s%r", self._name, attr, args)
            return target(*args, **kwargs)

        return call


class StaleBalances:
    """An AccountSource whose balances are served from a fallback (``stale: true``)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)

    def balance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        return self._inner.balance(account_id, timeout=timeout).model_copy(update={"stale": True})


class Closer:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def make_gateways(core: FakeCore, health: FakeHealth | None = None, *, stale_balances: bool = False,
                  mappings_loaded: Callable[[], bool] | None = None) -> Gateways:
    accounts: Any = StaleBalances(core.accounts) if stale_balances else core.accounts
    return Gateways(
        customers=Spy(core.customers, "customers"),
        accounts=Spy(accounts, "accounts"),
        transfers=Spy(core.transfers, "transfers"),
        health=health or FakeHealth(),
        close=Closer(),
        mappings_loaded=mappings_loaded or (lambda: True),
    )
