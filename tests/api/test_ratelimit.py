"""A token bucket per client: 429 with Retry-After once the burst is spent."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from api.ratelimit import TokenBucketLimiter
from tests.api.fakes import OTHER, OWNER, make_gateways
from tests.api.helpers import assert_problem, make_settings


def _app(keys, core, **rate):
    return create_app(make_settings(keys, rate_limit={"rate_per_second": 0.5, "burst": 3} | rate), make_gateways(core))


def test_burst_then_429_with_retry_after(keys, core, tokens):
    with TestClient(_app(keys, core)) as c:
        h = tokens.headers(OWNER)
        assert [c.get(f"/v1/customers/{OWNER}", headers=h).status_code for _ in range(3)] == [200] * 3
        r = c.get(f"/v1/customers/{OWNER}", headers=h)
        assert_problem(r, 429, "rate-limited")
        assert int(r.headers["retry-after"]) >= 1
        # another client has its own bucket
        assert c.get(f"/v1/customers/{OTHER}", headers=tokens.headers(OTHER)).status_code == 200
        assert 'corebridge_rate_limited_total 1.0' in c.get("/metrics").text


def test_unauthenticated_floods_are_limited_per_ip(keys, core):
    with TestClient(_app(keys, core)) as c:
        statuses = [c.get(f"/v1/customers/{OWNER}").status_code for _ in range(5)]
    assert statuses[:3] == [401] * 3 and statuses[3:] == [429, 429]


def test_probes_are_not_limited(keys, core):
    with TestClient(_app(keys, core, burst=1)) as c:
        assert {c.get("/healthz").status_code for _ in range(5)} == {200}


def test_limiter_refills_and_stays_bounded():
    now = [0.0]
    limiter = TokenBucketLimiter(2.0, 2, max_clients=3, clock=lambda: now[0])
    assert limiter.acquire("a") == 0 and limiter.acquire("a") == 0
    assert limiter.acquire("a") == 0.5
    now[0] += 0.5
    assert limiter.acquire("a") == 0
    for key in "bcde":
        limiter.acquire(key)
    assert len(limiter) == 3
