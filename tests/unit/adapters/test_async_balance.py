"""``abalance``, the event-loop form of the balance read: through the same pipeline (retries, breaker,
observer) and the same routing and stale fallback as ``balance``; a port with its own coroutine is
awaited on the loop, any other runs in a worker thread. Hand-written fakes, no patching."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from decimal import Decimal

import pytest

from adapters.errors import BackendTimeout, BackendUnavailable, CircuitOpen, ContractViolation, RecordNotFound
from adapters.resilient import ResilientAccountSource
from adapters.routing import RoutedAccountSource
from tests.unit.adapters.test_resilient_routing import ACCT, ROUTES, FakeCore, pipeline


class FakeAsyncCore(FakeCore):
    """A port with a native ``abalance`` (like the SOAP adapter); records the thread it ran on."""

    def __init__(self, name: str, **kw) -> None:
        super().__init__(name, **kw)
        self.threads: list[threading.Thread] = []

    async def abalance(self, account_id, *, timeout=None):
        self.threads.append(threading.current_thread())
        await asyncio.sleep(0)
        return self.balance(account_id, timeout=timeout)


def run(coro):
    return asyncio.run(coro)


def test_a_native_coroutine_is_awaited_on_the_loop_through_the_pipeline():
    fake, p = FakeAsyncCore("soap"), pipeline()
    seen = []
    source = ResilientAccountSource(fake, p, observer=lambda *a: seen.append(a))
    fake.fail["balance"] = [BackendUnavailable("reset"), BackendTimeout("slow")]
    balance = run(source.abalance(ACCT, timeout=5.0))
    assert balance.ledger.amount == Decimal("100.00") and balance.stale is False
    assert fake.threads == [threading.main_thread()] * 3  # retried twice, never in a worker thread
    assert 0 < max(fake.timeouts) <= 2.0  # each attempt gets min(attempt timeout, time left)
    snap = p.snapshot()
    assert (snap["attempts"], snap["retries"], snap["in_flight"]) == (3, 2, 0)
    [(backend, operation, seconds, error)] = seen
    assert (backend, operation, error) == ("soap", "balance", None) and seconds >= 0


def test_a_blocking_port_runs_in_a_worker_thread():
    fake, p = FakeCore("odbc"), pipeline("odbc")
    threads = []
    original = fake.balance

    def balance(account_id, *, timeout=None):
        threads.append(threading.current_thread())
        return original(account_id, timeout=timeout)

    fake.balance = balance
    assert run(ResilientAccountSource(fake, p).abalance(ACCT)).ledger.amount == Decimal("99.00")
    assert threads and threads[0] is not threading.main_thread()


@pytest.mark.parametrize("error", [RecordNotFound("none"), ContractViolation("bad")])
def test_answers_are_not_retried_and_reach_the_observer(error):
    fake, seen = FakeAsyncCore("soap"), []
    fake.fail["balance"] = [error]
    with pytest.raises(type(error)):
        run(ResilientAccountSource(fake, pipeline(), observer=lambda *a: seen.append(a)).abalance(ACCT))
    assert fake.count("balance") == 1 and seen[0][3] is error


def test_with_the_soap_breaker_open_the_balance_comes_stale_from_the_blocking_replica():
    soap, odbc = FakeAsyncCore("soap"), FakeCore("odbc", as_of=dt.date(2026, 11, 26))
    soap_pipeline = pipeline("soap")
    soap_pipeline.breaker.transition_to_open()
    routed = RoutedAccountSource({"soap": ResilientAccountSource(soap, soap_pipeline),
                                  "odbc": ResilientAccountSource(odbc, pipeline("odbc"))},
                                 ROUTES, fallbacks={"balance": "odbc"})
    balance = run(routed.abalance(ACCT, timeout=3.0))
    assert balance.stale is True and balance.as_of == dt.date(2026, 11, 26)
    assert soap.calls == [] and odbc.count("balance") == 1 and 0 < odbc.timeouts[0] <= 2.0
    assert routed.snapshot()["fallbacks_served"] == {"odbc": 1}


@pytest.mark.parametrize("error", [CircuitOpen(retry_after=5.0), BackendUnavailable("refused"),
                                   BackendTimeout("no answer")])
def test_balance_falls_back_when_the_path_is_down(error):
    src = {"soap": FakeAsyncCore("soap"), "odbc": FakeCore("odbc")}
    src["soap"].fail["balance"] = [error]
    balance = run(RoutedAccountSource(src, ROUTES, fallbacks={"balance": "odbc"}).abalance(ACCT))
    assert balance.stale is True and src["odbc"].count("balance") == 1


def test_never_on_an_answer_and_the_primarys_error_when_both_fail():
    src = {"soap": FakeAsyncCore("soap"), "odbc": FakeCore("odbc")}
    routed = RoutedAccountSource(src, ROUTES, fallbacks={"balance": "odbc"})
    src["soap"].fail["balance"] = [RecordNotFound("none")]
    with pytest.raises(RecordNotFound):
        run(routed.abalance(ACCT))
    assert src["odbc"].calls == []
    src["soap"].fail["balance"] = [CircuitOpen(retry_after=5.0)]
    src["odbc"].fail["balance"] = [BackendUnavailable("replica down")]
    with pytest.raises(CircuitOpen):
        run(routed.abalance(ACCT))
    assert run(routed.abalance(ACCT)).stale is False  # a healthy primary is never stale
