"""Schemathesis against the facade's own ``/openapi.json``, over the real stack.

facade (built by ``api.bootstrap.build_gateways`` exactly as ``make run`` builds it) -> resilience ->
SOAP/ODBC adapters -> the mock mainframe, in-process on free ports. Every documented operation is
called with generated data, valid (positive) and, where there is a parameter or a body to spoil,
invalid (negative), with a valid demo token of a customer that exists. Path parameters, the
``X-On-Behalf-Of`` header and the transfer body are often swapped for that customer's own ids (and
sometimes another customer's) in the valid cases, so that those reach the backends instead of
stopping at a 404.

Each response must:

* not be a 5xx: the mock is healthy, so even the documented 502/503/504 problems are failures here;
* conform to the document: status code documented, content type, headers and body schema
  (schemathesis' checks, valid data accepted and invalid data refused included);
* when it is an error (>= 400), be ``application/problem+json`` with ``type``, ``title`` and ``status``
  (the status in the body equal to the HTTP status).

And valid data must reach the core: every operation that reads or writes it gets at least one 2xx.

CI-sized and deterministic: ``derandomize`` (the seed comes from the test), no example database,
``MAX_EXAMPLES`` per operation and mode. Written against the schemathesis Python API
(``from_asgi`` + ``APIOperation.as_strategy`` under ``hypothesis.given``) rather than
``schemathesis.pytest.from_fixture``, whose runner reads ``Function._nodeid``, gone in pytest 9.2.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode

from api.app import create_app
from api.auth import mint_demo_token
from api.bootstrap import build_gateways
from api.demo import DEMO_SCOPES, demo_settings
from api.observability import Metrics
from tests.support import running_mock

MAX_EXAMPLES = 40
PROBLEM_JSON = "application/problem+json"
#: what valid data may get: someone else's object is a 404, X-On-Behalf-Of with a customer token a 403
ACCEPTED = ["2xx", "401", "403", "404"]

OPERATIONS = [
    ("GET", "/v1/customers/{customer_id}"),
    ("GET", "/v1/customers/{customer_id}/accounts"),
    ("GET", "/v1/accounts/{account_id}"),
    ("GET", "/v1/accounts/{account_id}/balance"),
    ("GET", "/v1/accounts/{account_id}/transactions"),
    ("POST", "/v1/transfers"),
    ("GET", "/v1/transfers/{reference}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
_REACH_THE_CORE = [op for op in OPERATIONS if op[1].startswith("/v1/")]
CASES = [pytest.param(m, p, GenerationMode.POSITIVE, id=f"{m} {p} positive") for m, p in OPERATIONS] + [
    # invalid data only where there is something to spoil (a parameter or a body)
    pytest.param(m, p, GenerationMode.NEGATIVE, id=f"{m} {p} negative") for m, p in _REACH_THE_CORE]


@dataclass(frozen=True)
class World:
    """Ids of the real ledger the generated requests are steered towards."""

    customer: str
    currencies: dict[str, str]  # the customer's open accounts -> their currency
    other_customer: str
    other_account: str
    references: tuple[str, ...]  # the customer's own transfers
    other_reference: str  # another customer's transfer
    headers: dict[str, str]


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    with running_mock(tmp_path_factory.mktemp("schemathesis-mock"), seed=11, customers=20) as mm:
        yield mm


@pytest.fixture(scope="module")
def facade(mock):
    endpoints = mock.endpoints_dict()
    settings = demo_settings(endpoints, "127.0.0.1", 8000)
    # one client sends hundreds of requests a second here: the per-client rate limit would turn most of
    # them into 429s before they reach a backend (tests/api/test_ratelimit.py covers the limit)
    settings = settings.model_copy(update={"rate_limit": settings.rate_limit.model_copy(update={"enabled": False})})
    metrics = Metrics()
    gateways = build_gateways(settings, metrics)
    app = create_app(settings, gateways, metrics=metrics)
    try:
        yield app, settings
    finally:
        gateways.close()


def _open_accounts(mock, customer: str) -> dict[str, str]:
    return {a["ACCT_NO"].strip(): a["CURR_CD"].strip() for a in mock.ledger.accounts_of(customer)
            if a["ACCT_STAT"] == "A"}


def _post(client: TestClient, headers: dict[str, str], src: str, dst: str, currency: str) -> str:
    r = client.post("/v1/transfers", headers=headers, json={"from_account": src, "to_account": dst, "amount": "0.01",
                                                            "currency": currency, "memo": "SCHEMATHESIS"})
    assert r.status_code == 201, r.text
    return r.json()["reference"]


@pytest.fixture(scope="module")
def world(facade, mock) -> World:
    app, settings = facade
    customers = [r["CUST_NO"].strip() for r in mock.ledger.query("SELECT CUST_NO FROM CUSTMAST ORDER BY CUST_NO")]
    customer = next(c for c in customers if len(_open_accounts(mock, c)) >= 2)
    other = next(c for c in customers if c != customer and len(_open_accounts(mock, c)) >= 2)
    mine, theirs = _open_accounts(mock, customer), _open_accounts(mock, other)
    headers = {"Authorization": f"Bearer {mint_demo_token(settings.auth, customer, DEMO_SCOPES)}"}
    other_headers = {"Authorization": f"Bearer {mint_demo_token(settings.auth, other, DEMO_SCOPES)}"}
    # no ``with``: the lifespan's shutdown would close the gateways the generated requests need
    client = TestClient(app)
    (a, ccy), (b, _) = list(mine.items())[:2]
    (c, other_ccy), (d, _) = list(theirs.items())[:2]
    references = (_post(client, headers, a, b, ccy),)
    other_reference = _post(client, other_headers, c, d, other_ccy)
    return World(customer=customer, currencies=mine, other_customer=other, other_account=c,
                 references=references, other_reference=other_reference, headers=headers)


# -- steering: generated values, often swapped for real ones ------------------------------------------
def _sometimes(value, real: st.SearchStrategy):
    """``value`` with some of its members replaced by real ones, or as generated. (Real first: hypothesis
    leans towards the first alternative.)"""
    return st.one_of(real.map(lambda own: {**value, **own}), st.just(value))


def _hooks(world: World):
    own_accounts = sorted(world.currencies)
    path_pools = {
        "customer_id": st.sampled_from([world.customer, world.customer, world.other_customer]),
        "account_id": st.sampled_from([*own_accounts, *own_accounts, world.other_account]),
        "reference": st.sampled_from([*world.references, *world.references, world.other_reference]),
    }

    def flatmap_path_parameters(context, path_parameters):
        steer = {k: path_pools[k] for k in path_parameters if k in path_pools} if isinstance(path_parameters,
                                                                                              dict) else {}
        if not steer:
            return st.just(path_parameters)
        return _sometimes(path_parameters, st.fixed_dictionaries(steer))

    def flatmap_headers(context, headers):
        # X-On-Behalf-Of is for admin tokens: with a customer token only its own id (or none) passes
        if not isinstance(headers, dict) or "X-On-Behalf-Of" not in headers:
            return st.just(headers)
        without = {k: v for k, v in headers.items() if k != "X-On-Behalf-Of"}
        return st.sampled_from([without, {**headers, "X-On-Behalf-Of": world.customer}, headers])

    def own_transfer(account: str):
        return st.fixed_dictionaries({
            "from_account": st.just(account),
            "to_account": st.sampled_from([a for a in own_accounts if a != account] + [world.other_account]),
            "currency": st.just(world.currencies[account]),
            "amount": st.sampled_from(["0.01", "1", "2.50", "99999999.00"]),
        })

    def flatmap_body(context, body):
        if not isinstance(body, dict) or "from_account" not in body:
            return st.just(body)
        return _sometimes(body, st.sampled_from(own_accounts).flatmap(own_transfer))

    return [flatmap_path_parameters, flatmap_headers, flatmap_body]


def _without_lifespan(app):
    """The app for HTTP only. The schemathesis pytest plugin ends an ASGI app's lifespan after every
    test (and starts it again on the next request); the facade's shutdown closes its gateways, which
    the ``facade`` fixture owns and closes once, at the end."""

    async def http_only(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await app(scope, receive, send)

    return http_only


def problem_details(ctx, response, case):
    """An error is RFC 9457 problem+json with type, title and status (= the HTTP status)."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.split(";")[0].strip() == PROBLEM_JSON, (
        f"{response.status_code} answered with {content_type!r}, not {PROBLEM_JSON}")
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    for member in ("type", "title", "status"):
        assert member in body, f"problem without {member!r}: {body}"
    assert body["status"] == response.status_code, body
    assert isinstance(body["type"], str) and isinstance(body["title"], str), body
    return None


@pytest.fixture(scope="module")
def api_schema(facade, world):
    app, _ = facade
    config = schemathesis.Config.from_dict({
        "generation": {
            "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none",
            # the test sends the token itself; unknown query parameters are ignored by design
            "with-security-parameters": False, "allow-extra-parameters": False,
        },
        "checks": {
            # a healthy mock: no 5xx at all, not even the documented 502/503/504 problems
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx"]},
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
        },
        "operations": [
            # a cursor the service did not sign is a 400 (opaque, HMAC-signed); from > to is a 422
            {"include-path": "/v1/accounts/{account_id}/transactions",
             "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400", "422"]}}},
            # rules JSON Schema cannot state (amount > 0 within the currency's minor units, from != to)
            # and the core's business rejections (R001-R010) are 422 problems
            {"include-path": "/v1/transfers", "include-method": "POST",
             "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}}},
        ],
    })
    app = _without_lifespan(app)
    schemas = {mode: schemathesis.openapi.from_asgi("/openapi.json", app, config=config) for mode in GenerationMode}
    # valid data only: a value swapped into a negative case could repair the very member it spoiled
    for hook in _hooks(world):
        schemas[GenerationMode.POSITIVE].hook(hook)
    return schemas


def test_the_document_lists_exactly_these_operations(api_schema):
    operations = api_schema[GenerationMode.POSITIVE].get_all_operations()
    assert {(op.ok().method.upper(), op.ok().path) for op in operations} == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_the_facade_honours_its_openapi_document(api_schema, world, method, path, mode):
    operation = api_schema[mode][path][method]
    statuses: Counter[int] = Counter()

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call_and_validate(headers=world.headers, additional_checks=[problem_details])
        statuses[response.status_code] += 1

    check()
    if mode is GenerationMode.POSITIVE:
        assert any(200 <= s < 300 for s in statuses), f"valid data never got through: {dict(statuses)}"


@pytest.mark.parametrize(("query", "some"), [
    ("from=1305-02-02&to=1305-02-02", False),  # schemathesis' find: a 500 (the core cannot write 1305 as CYYMMDD)
    ("from=1800-01-01", True),
    ("to=2500-12-31", True),
    ("from=1899-12-31&to=2100-01-01", True),
    ("from=2100-01-01", False),
])
def test_dates_outside_the_cores_calendar_filter_as_asked(facade, world, query, some):
    app, _ = facade
    account = sorted(world.currencies)[0]
    r = TestClient(app).get(f"/v1/accounts/{account}/transactions?{query}&limit=5", headers=world.headers)
    assert r.status_code == 200, r.text
    assert bool(r.json()["items"]) is some
