"""The balance fast route (api/fast_balance.py) answers exactly as FastAPI does.

Two apps over the same fake core, one with the fast route and one without; every request goes to both
with the same X-Request-ID, and the responses must be byte-for-byte the same (status, headers but
``date``, body). ``served`` proves which requests the fast route took itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.errors import BackendFault, BackendTimeout, BackendUnavailable, CircuitOpen
from api.app import RequestMiddleware, create_app
from api.fast_balance import FastBalanceRoute
from tests.api.fakes import ACCT_MAIN, ACCT_OTHER, OWNER, make_gateways
from tests.api.helpers import assert_problem, make_settings

BALANCE = f"/v1/accounts/{ACCT_MAIN}/balance"


def _fast_route(app: Any) -> FastBalanceRoute:
    stack = app.middleware_stack
    assert isinstance(stack, RequestMiddleware) and isinstance(stack.app, FastBalanceRoute)
    return stack.app


class Pair:
    """The same request to the app with the fast route and to the one without; both answers compared."""

    def __init__(self, fast: TestClient, plain: TestClient) -> None:
        self.fast, self.plain = fast, plain
        self._n = 0

    @property
    def served(self) -> int:
        return _fast_route(self.fast.app).served

    def get(self, url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Any:
        self._n += 1
        h = {"X-Request-ID": f"pair-{self._n}", **(headers or {})}
        a = self.fast.request(method, url, headers=h)
        b = self.plain.request(method, url, headers=h)
        assert a.status_code == b.status_code, (a.text, b.text)
        assert a.content == b.content
        strip = {"date"}
        assert [(k, v) for k, v in a.headers.multi_items() if k not in strip] == \
               [(k, v) for k, v in b.headers.multi_items() if k not in strip]
        return a


@pytest.fixture
def pair(keys, core) -> Iterator[Pair]:
    def app(fast: bool, **overrides: Any) -> Any:
        return create_app(make_settings(keys, **overrides), make_gateways(core), fast_balance=fast)

    with TestClient(app(True)) as fast, TestClient(app(False)) as plain:
        yield Pair(fast, plain)


def test_an_ordinary_balance_is_served_by_the_fast_route_and_equals_fastapis(pair, tokens):
    auth = tokens.headers()
    first = pair.get(BALANCE, auth)  # the token is not cached yet: FastAPI verifies (and caches) it
    assert first.status_code == 200 and pair.served == 0
    again = pair.get(BALANCE, auth)
    assert again.status_code == 200 and pair.served == 1
    assert again.json()["ledger"] == first.json()["ledger"]
    assert again.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("case", "status", "slug"), [
    ("other customer's account", 404, "not-found"),
    ("missing account", 404, "not-found"),
    ("core down", 503, "backend-unavailable"),
    ("breaker open", 503, "backend-unavailable"),
    ("core timeout", 504, "backend-timeout"),
    ("core fault", 502, "backend-error"),
    ("bug", 500, "internal-error"),
])
def test_errors_after_the_fast_route_took_the_request_are_fastapis_problems(pair, tokens, core, case, status,
                                                                           slug):
    auth = tokens.headers()
    pair.get(BALANCE, auth)  # cache the token
    url = {"other customer's account": f"/v1/accounts/{ACCT_OTHER}/balance",
           "missing account": "/v1/accounts/999999999999/balance"}.get(case, BALANCE)
    failure = {"core down": BackendUnavailable("down", backend="soap", operation="balance"),
               "breaker open": CircuitOpen("soap/read", retry_after=3.0),
               "core timeout": BackendTimeout("slow", backend="soap", operation="balance"),
               "core fault": BackendFault("fault", backend="soap", operation="balance"),
               "bug": RuntimeError("a bug with 4111111111111111 in it")}.get(case)
    if failure is not None:  # once for each app
        core.fail_next("balance", failure)  # type: ignore[arg-type]
        core.fail_next("balance", failure)  # type: ignore[arg-type]
    before = pair.served
    assert_problem(pair.get(url, auth), status, slug)
    assert pair.served == before + 1


@pytest.mark.parametrize("case", ["no token", "not a bearer", "expired", "wrong scope", "admin without on-behalf",
                                  "admin on behalf", "on behalf of another", "on behalf of itself", "bad id",
                                  "id with a newline", "token in query", "HEAD", "POST"])
def test_everything_else_goes_to_fastapi(pair, tokens, case):
    good = tokens.make()
    pair.get(BALANCE, {"Authorization": f"Bearer {good}"})  # cached: the fast route would take it
    admin = tokens.make("ops-console", ("accounts:read", "admin"))
    pair.get(BALANCE, {"Authorization": f"Bearer {admin}", "X-On-Behalf-Of": OWNER})  # cache the admin token too
    scoped = tokens.make(scopes=("transactions:read",))
    pair.get(BALANCE, {"Authorization": f"Bearer {scoped}"})
    url, method = BALANCE, "GET"
    headers = {"Authorization": f"Bearer {good}"}
    if case == "no token":
        headers = {}
    elif case == "not a bearer":
        headers = {"Authorization": f"Basic {good}"}
    elif case == "expired":
        headers = {"Authorization": f"Bearer {tokens.make(ttl=-120)}"}
    elif case == "wrong scope":
        headers = {"Authorization": f"Bearer {scoped}"}
    elif case == "admin without on-behalf":
        headers = {"Authorization": f"Bearer {admin}"}
    elif case == "admin on behalf":
        headers = {"Authorization": f"Bearer {admin}", "X-On-Behalf-Of": OWNER}
    elif case == "on behalf of another":
        headers["X-On-Behalf-Of"] = "C0000002"
    elif case == "on behalf of itself":
        headers["X-On-Behalf-Of"] = OWNER
    elif case == "bad id":
        url = "/v1/accounts/bad!id/balance"
    elif case == "id with a newline":
        url = f"/v1/accounts/{ACCT_MAIN}%0A/balance"
    elif case == "token in query":
        url = f"{BALANCE}?access_token={good}"
    else:
        method = case
    before = pair.served
    response = pair.get(url, headers, method=method)
    assert pair.served == before, f"{case}: the fast route took a request that is FastAPI's"
    expected = {"no token": 401, "not a bearer": 401, "expired": 401, "wrong scope": 403,
                "admin without on-behalf": 400, "admin on behalf": 200, "on behalf of another": 403,
                "on behalf of itself": 200, "bad id": 422, "id with a newline": 422, "token in query": 401,
                "HEAD": 405, "POST": 405}[case]
    assert response.status_code == expected, response.text


def test_the_rate_limit_applies_on_the_fast_route_too(keys, core, tokens):
    def app(fast: bool) -> Any:
        return create_app(make_settings(keys, rate_limit={"rate_per_second": 0.01, "burst": 3}),
                          make_gateways(core), fast_balance=fast)

    with TestClient(app(True)) as fast, TestClient(app(False)) as plain:
        pair = Pair(fast, plain)
        auth = tokens.headers()
        statuses = [pair.get(BALANCE, auth).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert pair.served == 3  # the 2nd, 3rd and the refused 4th
        assert pair.get(BALANCE, auth).headers["retry-after"]


def test_the_access_log_and_metrics_name_the_route(pair, tokens, caplog):
    auth = tokens.headers()
    pair.get(BALANCE, auth)
    caplog.clear()
    with caplog.at_level("INFO", logger="corebridge.access"):
        pair.get(BALANCE, auth)
    lines = [r.getMessage() for r in caplog.records if r.name == "corebridge.access"]
    assert lines == ["GET /v1/accounts/{account_id}/balance 200"] * 2
    metrics = pair.fast.get("/metrics").text
    assert 'route="/v1/accounts/{account_id}/balance"' in metrics


def test_under_a_root_path_the_fast_route_still_matches(keys, core, tokens):
    app = create_app(make_settings(keys, server={"root_path": "/bank"}), make_gateways(core))
    with TestClient(app, root_path="/bank") as client:
        auth = tokens.headers()
        assert client.get(BALANCE, headers=auth).status_code == 200
        assert client.get(BALANCE, headers=auth).status_code == 200
        assert _fast_route(app).served == 1
