"""The fault injector and its admin endpoint: rules validate, draws are reproducible by seed."""

from __future__ import annotations

import json
import time

import pytest
import requests

from mock_mainframe.admin import AdminFace
from mock_mainframe.faults import FaultInjector, FaultRule, FaultRuleError


def _draws(inj: FaultInjector, n: int = 200) -> list:
    return [inj.decide("soap", "BalanceInquiry") for _ in range(n)]


def test_same_seed_same_faults():
    rules = [FaultRule(face="soap", error_rate=0.3, error="reset", latency_ms=10, jitter_ms=5)]
    a, b = FaultInjector(seed=9), FaultInjector(seed=9)
    a.set_rules([FaultRule(**vars(r)) for r in rules])
    b.set_rules([FaultRule(**vars(r)) for r in rules])
    da, db = _draws(a), _draws(b)
    assert da == db
    errors = sum(1 for d in da if d.error == "reset")
    assert 30 <= errors <= 90  # ~30% of 200
    assert all(0.005 <= d.delay_s <= 0.015 for d in da)


def test_different_seed_differs():
    a, b = FaultInjector(seed=1), FaultInjector(seed=2)
    for inj in (a, b):
        inj.set_rules([FaultRule(error_rate=0.5)])
    assert [d.error for d in _draws(a)] != [d.error for d in _draws(b)]


def test_rule_scoping_by_face_and_operation():
    inj = FaultInjector()
    inj.set_rules([FaultRule(face="soap", operation="FundsTransfer", error_rate=1.0, error="http500")])
    assert inj.decide("soap", "FundsTransfer").error == "http500"
    assert inj.decide("soap", "BalanceInquiry").clean
    assert inj.decide("sftp", "FundsTransfer").clean


def test_remaining_retires_rule():
    inj = FaultInjector()
    inj.set_rules([FaultRule(error_rate=1.0, remaining=2)])
    assert [inj.decide("soap", "X").error for _ in range(4)] == ["fault", "fault", None, None]
    assert inj.snapshot()["rules"] == []


def test_drop_after_commit_and_counts():
    inj = FaultInjector()
    inj.set_rules([FaultRule(face="soap", operation="FundsTransfer", drop_response_rate=1.0)])
    d = inj.decide("soap", "FundsTransfer")
    assert d.drop_after_commit and d.error is None
    assert inj.snapshot()["counts"] == {"soap.FundsTransfer.drop": 1}


def test_corruption_consumed_once():
    inj = FaultInjector()
    inj.set_rules([FaultRule(face="batch", corrupt="wrong_count", remaining=1)])
    assert inj.corruption() == "wrong_count"
    assert inj.corruption() is None


@pytest.mark.parametrize("bad, word", [
    ({"face": "tape"}, "face"),
    ({"error": "explode"}, "error"),
    ({"error_rate": 1.5}, "error_rate"),
    ({"latency_ms": -1}, "latency_ms"),
    ({"corrupt": "melted"}, "corrupt"),
    ({"nonsense": 1}, "unknown key"),
])
def test_bad_rules_are_refused_with_the_key_named(bad, word):
    with pytest.raises(FaultRuleError, match=word):
        FaultRule.from_json(bad)


def test_outage_window_notifies_and_ends_by_itself():
    inj = FaultInjector()
    events: list[tuple[str, bool]] = []
    inj.outage_listeners.append(lambda face, down: events.append((face, down)))
    inj.outage("soap", 0.2)
    assert inj.is_down("soap") and not inj.is_down("sftp")
    deadline = time.monotonic() + 3
    while inj.is_down("soap") and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    assert not inj.is_down("soap")
    assert events == [("soap", True), ("soap", False)]


@pytest.fixture
def admin():
    inj = FaultInjector(seed=3)
    closed: list[int] = []

    def close_day():
        closed.append(1)
        return {"closed": "2026-11-27", "files": ["TXNHIST.D261127"]}

    face = AdminFace("127.0.0.1", 0, inj, status=lambda: {"business_date": "2026-11-27"},
                     close_day=close_day)
    face.start()
    yield face, inj, closed
    face.stop()


def test_admin_switches_faults_at_run_time(admin):
    face, inj, closed = admin
    r = requests.put(f"{face.url}/faults", json={"seed": 5, "rules": [
        {"face": "soap", "operation": "BalanceInquiry", "error_rate": 1.0, "error": "reset"}]}, timeout=5)
    assert r.status_code == 200, r.text
    assert inj.decide("soap", "BalanceInquiry").error == "reset"
    r = requests.post(f"{face.url}/faults", json={"face": "sftp", "latency_ms": 100}, timeout=5)
    assert r.status_code == 201
    assert inj.decide("sftp", "read").delay_s == pytest.approx(0.1)
    status = requests.get(f"{face.url}/status", timeout=5).json()
    assert status["business_date"] == "2026-11-27"
    assert len(status["faults"]["rules"]) == 2 and status["faults"]["seed"] == 5
    assert requests.delete(f"{face.url}/faults", timeout=5).json()["rules"] == []
    assert inj.decide("soap", "BalanceInquiry").clean
    assert requests.post(f"{face.url}/eod", timeout=5).json()["files"] == ["TXNHIST.D261127"]
    assert closed == [1]


def test_admin_outage_and_recovery(admin):
    face, inj, _ = admin
    r = requests.post(f"{face.url}/outage", json={"face": "soap", "seconds": 30}, timeout=5)
    assert r.status_code == 201 and inj.is_down("soap")
    assert "soap" in requests.get(f"{face.url}/faults", timeout=5).json()["outages"]
    requests.delete(f"{face.url}/outage/soap", timeout=5)
    assert not inj.is_down("soap")


@pytest.mark.parametrize("method, path, body, word", [
    ("put", "/faults", {"rules": [{"error": "explode"}]}, "error"),
    ("put", "/faults", {"rules": "all"}, "rules"),
    ("post", "/faults", {"face": "tape"}, "face"),
    ("post", "/outage", {"face": "soap", "seconds": "long"}, "seconds"),
    ("post", "/outage", {"face": "tape", "seconds": 1}, "face"),
])
def test_admin_refuses_bad_requests_with_a_reason(admin, method, path, body, word):
    face, inj, _ = admin
    r = getattr(requests, method)(f"{face.url}{path}", json=body, timeout=5)
    assert r.status_code == 400
    assert word in r.json()["error"]
    assert inj.snapshot()["rules"] == []


def test_admin_rejects_non_json(admin):
    face, _, _ = admin
    r = requests.put(f"{face.url}/faults", data=b"{not json", timeout=5,
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "not JSON" in json.loads(r.text)["error"]
