"""The resilience pipeline around the real SOAP adapter, against the mock's fault injection.

These are the issue's end-to-end resilience claims: a hard-down core opens the breaker after the
configured minimum number of calls and nothing reaches the core while OPEN; one good half-open
round closes it; injected latency never lets a call outlive its deadline by more than 50 ms; and
during an outage retries stay within the retry budget (<= 10% of first attempts).
"""

from __future__ import annotations

import time

import pytest

from adapters.errors import BackendFault, BackendTimeout, BackendUnavailable, CircuitOpen, CoreError
from adapters.resilience import BreakerConfig, Pipeline, ResilienceConfig, State
from adapters.resilient import ResilientAccountSource
from adapters.soap import SoapCore, SoapSettings
from mock_mainframe.faults import FaultRule


@pytest.fixture
def soap(mock_only, core, registry):
    adapter = SoapCore(SoapSettings(endpoint=core.soap_url, username=core.soap_user,
                                    password=core.soap_password, read_timeout=2.0), registry)
    yield adapter
    adapter.close()


@pytest.fixture
def account(mock_only) -> str:
    return mock_only.ledger.accounts_of("C0000001")[0]["ACCT_NO"].strip()


def _requests_reaching_core(mock, kind: str) -> int:
    return mock.faults.snapshot()["counts"].get(f"soap.BalanceInquiry.{kind}", 0)


def test_hard_down_core_opens_the_breaker_then_one_good_half_open_round_closes_it(mock_only, soap, account):
    breaker = BreakerConfig(failure_rate_threshold=50, sliding_window_size=10, minimum_number_of_calls=5,
                            wait_duration_in_open=0.4, permitted_calls_in_half_open=2)
    pipeline = Pipeline("soap", ResilienceConfig(attempt_timeout=1.0, total_deadline=2.0, max_attempts=1,
                                                 breaker=breaker))
    source = ResilientAccountSource(soap, pipeline)
    mock_only.faults.set_rules([FaultRule(face="soap", operation="BalanceInquiry", error_rate=1.0,
                                          error="http500")])
    for _ in range(5):
        with pytest.raises(BackendFault):
            source.balance(account)
    assert pipeline.breaker.state is State.OPEN
    reached = _requests_reaching_core(mock_only, "http500")
    assert reached == 5
    for _ in range(50):
        with pytest.raises(CircuitOpen) as info:
            source.balance(account)
        assert 0 < info.value.retry_after <= 0.4
    assert _requests_reaching_core(mock_only, "http500") == reached, "a call reached the core while OPEN"
    mock_only.faults.clear()
    time.sleep(0.45)
    for _ in range(2):  # the half-open round: exactly the permitted calls, both good
        assert source.balance(account).account_id == account
    assert pipeline.breaker.state is State.CLOSED
    assert source.balance(account).available.currency


def test_injected_latency_never_lets_a_call_outlive_its_deadline(mock_only, soap, account):
    mock_only.faults.set_rules([FaultRule(face="soap", operation="BalanceInquiry", latency_ms=500)])
    pipeline = Pipeline("soap", ResilienceConfig(attempt_timeout=0.2, total_deadline=0.5, max_attempts=3,
                                                 backoff_base=0.01, backoff_cap=0.05,
                                                 breaker=BreakerConfig(minimum_number_of_calls=1000)))
    source = ResilientAccountSource(soap, pipeline)
    overruns = []
    for _ in range(5):
        t0 = time.monotonic()
        with pytest.raises((BackendTimeout, CoreError)):
            source.balance(account)
        overruns.append(time.monotonic() - t0 - 0.5)
    assert max(overruns) <= 0.05, overruns


def test_retry_amplification_during_an_outage_stays_within_the_budget(mock_only, soap, account):
    pipeline = Pipeline("soap", ResilienceConfig(attempt_timeout=0.5, total_deadline=1.0, max_attempts=3,
                                                 backoff_base=0.001, backoff_cap=0.002,
                                                 breaker=BreakerConfig(minimum_number_of_calls=10_000,
                                                                       sliding_window_size=10_000)))
    source = ResilientAccountSource(soap, pipeline)
    mock_only.faults.outage("soap", 30)
    try:
        first_attempts = 200
        for _ in range(first_attempts):
            with pytest.raises(BackendUnavailable):
                source.balance(account)
    finally:
        mock_only.faults.end_outage("soap")
    snap = pipeline.snapshot()
    assert snap["calls"] == first_attempts
    assert snap["retries"] <= 0.10 * first_attempts, snap
    assert snap["retries_denied_by_budget"] > 0
    assert source.balance(account).account_id == account  # recovered once the outage ended
