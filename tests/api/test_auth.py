"""Authentication, scopes and ownership: the endpoint x caller matrix, refused token shapes, admins."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import TokenVerifier, mint_demo_token
from tests.api.fakes import ACCT_MAIN, ACCT_OTHER, ACCT_SAVINGS, OTHER, OWNER, REF_OWNER
from tests.api.helpers import ALL_SCOPES, DEMO_SECRET, assert_problem, b64url, make_settings

TRANSFER_BODY = {"from_account": ACCT_MAIN, "to_account": ACCT_OTHER, "amount": "5.00", "currency": "EUR"}

# (method, path, json body, scope it needs, status for the owner)
ENDPOINTS = [
    ("GET", f"/v1/customers/{OWNER}", None, "accounts:read", 200),
    ("GET", f"/v1/customers/{OWNER}/accounts", None, "accounts:read", 200),
    ("GET", f"/v1/accounts/{ACCT_MAIN}", None, "accounts:read", 200),
    ("GET", f"/v1/accounts/{ACCT_MAIN}/balance", None, "accounts:read", 200),
    ("GET", f"/v1/accounts/{ACCT_MAIN}/transactions", None, "transactions:read", 200),
    ("POST", "/v1/transfers", TRANSFER_BODY, "transfers:write", 201),
    ("GET", f"/v1/transfers/{REF_OWNER}", None, "transfers:write", 200),
]
CALLERS = ["owner", "other customer", "no token", "expired token", "wrong scope"]
# what the owner's data looks like: none of it may appear in an answer to anyone else
OWNER_SECRETS = ("EXAMPLE", "ANNA", "3419.00", "3319.00", ACCT_SAVINGS, "DINNER", "POS SHOP", "anna@example.com")


def _headers(tokens, caller: str, scope: str) -> dict[str, str]:
    if caller == "owner":
        return tokens.headers(OWNER)
    if caller == "other customer":
        return tokens.headers(OTHER)
    if caller == "no token":
        return {}
    if caller == "expired token":
        return tokens.headers(OWNER, now=time.time() - 3600, ttl=60)
    if caller == "wrong scope":
        others = [s for s in ALL_SCOPES if s != scope]
        if scope == "transfers:write":  # GET /v1/transfers also takes transactions:read
            others = ["accounts:read"]
        return tokens.headers(OWNER, others)
    raise AssertionError(caller)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path", "body", "scope", "ok"), ENDPOINTS,
                         ids=[f"{m} {p}" for m, p, *_ in ENDPOINTS])
def test_matrix(client, tokens, caller, method, path, body, scope, ok):
    r = client.request(method, path, json=body, headers=_headers(tokens, caller, scope))
    if caller == "owner":
        assert r.status_code == ok, r.text
        return
    expected = {"other customer": (404, "not-found"), "no token": (401, "unauthorized"),
                "expired token": (401, "unauthorized"), "wrong scope": (403, "forbidden")}[caller]
    problem = assert_problem(r, *expected)
    assert set(problem) <= {"type", "title", "status", "detail", "request_id", "required_scopes"}
    for secret in OWNER_SECRETS:
        assert secret not in r.text
    if caller in ("no token", "expired token"):
        assert r.headers["www-authenticate"].startswith("Bearer")
    if caller == "wrong scope":
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_other_customers_objects_look_like_missing_ones(client, tokens):
    """The 404 for someone else's account is the same as for an account that does not exist."""
    theirs = client.get(f"/v1/accounts/{ACCT_OTHER}/balance", headers=tokens.headers(OWNER)).json()
    missing = client.get("/v1/accounts/999999999999/balance", headers=tokens.headers(OWNER)).json()
    theirs.pop("request_id")
    missing.pop("request_id")
    assert theirs == missing


def test_transfer_to_another_customers_account_is_allowed(client, tokens):
    r = client.post("/v1/transfers", json=TRANSFER_BODY, headers=tokens.headers(OWNER))
    assert r.status_code == 201


def test_other_customer_cannot_read_a_transfer_under_a_reused_reference(client, tokens, core):
    # the core does not de-duplicate references: OTHER posts under the owner's reference
    from canonical import Money, Transfer

    core.transfers.post(Transfer(reference=REF_OWNER, from_account=ACCT_OTHER, to_account=ACCT_MAIN,
                                 amount=Money.of("1.00", "EUR")))
    mine = client.get(f"/v1/transfers/{REF_OWNER}", headers=tokens.headers(OWNER)).json()
    theirs = client.get(f"/v1/transfers/{REF_OWNER}", headers=tokens.headers(OTHER)).json()
    assert mine["from_account"] == ACCT_MAIN and mine["amount"]["amount"] == "25.00"
    assert theirs["from_account"] == ACCT_OTHER and theirs["amount"]["amount"] == "1.00"


def test_es256_tokens_are_accepted(client, tokens):
    r = client.get(f"/v1/customers/{OWNER}", headers=tokens.headers(OWNER, alg="ES256"))
    assert r.status_code == 200


# -- refused tokens ------------------------------------------------------------------------------------
def _unsigned(alg: str, claims: dict) -> str:
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def _claims(**extra) -> dict:
    now = int(time.time())
    from tests.api.helpers import AUDIENCE, ISSUER

    return {"iss": ISSUER, "aud": AUDIENCE, "sub": OWNER, "iat": now, "exp": now + 300,
            "scope": " ".join(ALL_SCOPES)} | extra


def _refused(tokens, keys) -> dict[str, str]:
    rsa_public_pem = keys.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_with_public_key = (b64url(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode()) + "."
                          + b64url(json.dumps(_claims()).encode()))
    import hashlib
    import hmac

    sig = hmac.new(rsa_public_pem, hs_with_public_key.encode(), hashlib.sha256).digest()
    return {
        "alg none": _unsigned("none", _claims()),
        "alg None": _unsigned("None", _claims()),
        "unknown alg": _unsigned("XS999", _claims()) + "c2ln",
        "HS512": jwt.encode(_claims(), DEMO_SECRET + "x" * 40, algorithm="HS512"),
        "HS256 when not demo": jwt.encode(_claims(), DEMO_SECRET, algorithm="HS256"),
        "HS256 signed with the RSA public key": f"{hs_with_public_key}.{b64url(sig)}",
        "RS384 not allowed": jwt.encode(_claims(), keys.rsa, algorithm="RS384", headers={"kid": "rsa-1"}),
        "untrusted key": tokens.make(key=keys.untrusted, kid="rsa-1"),
        "unknown kid": tokens.make(kid="nope"),
        "ES256 token with the RSA kid": tokens.make(alg="ES256", kid="rsa-1"),
        "wrong issuer": tokens.make(iss="https://evil.example/"),
        "wrong audience": tokens.make(aud="someone-else"),
        "not yet valid": tokens.make(nbf=time.time() + 3600),
        "issued in the future": tokens.make(now=time.time() + 3600),
        "no exp": jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, keys.rsa, algorithm="RS256",
                             headers={"kid": "rsa-1"}),
        "no sub": jwt.encode({k: v for k, v in _claims().items() if k != "sub"}, keys.rsa, algorithm="RS256",
                             headers={"kid": "rsa-1"}),
        "garbage": "not-a-jwt",
        "tampered payload": _tamper(tokens.make()),
    }


def _tamper(token: str) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["sub"] = OTHER
    return ".".join([head, b64url(json.dumps(claims).encode()), sig])


REFUSED = ["alg none", "alg None", "unknown alg", "HS512", "HS256 when not demo",
           "HS256 signed with the RSA public key", "RS384 not allowed", "untrusted key", "unknown kid",
           "ES256 token with the RSA kid", "wrong issuer",
           "wrong audience", "not yet valid", "issued in the future", "no exp", "no sub", "garbage",
           "tampered payload"]


@pytest.mark.parametrize("case", REFUSED)
def test_refused_tokens(client, tokens, keys, case):
    token = _refused(tokens, keys)[case]
    r = client.get(f"/v1/customers/{OWNER}", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401, "unauthorized")


def test_token_in_query_string_is_refused(client, tokens):
    token = tokens.make()
    r = client.get(f"/v1/customers/{OWNER}", params={"access_token": token})
    assert_problem(r, 401, "unauthorized")
    r = client.get(f"/v1/customers/{OWNER}", params={"access_token": token}, headers=tokens.headers())
    assert_problem(r, 401, "unauthorized")


def test_non_bearer_scheme_is_refused(client, tokens):
    r = client.get(f"/v1/customers/{OWNER}", headers={"Authorization": f"Basic {tokens.make()}"})
    assert_problem(r, 401, "unauthorized")


def test_leeway_accepts_small_clock_skew(client, tokens):
    r = client.get(f"/v1/customers/{OWNER}", headers=tokens.headers(now=time.time() - 65, ttl=60))
    assert r.status_code == 200  # expired 5 s ago, inside the 10 s leeway


# -- admins --------------------------------------------------------------------------------------------
def test_admin_acts_on_behalf_of_a_customer(client, tokens):
    admin = tokens.headers("svc-mobile-backend", ["admin", "accounts:read"])
    r = client.get(f"/v1/accounts/{ACCT_OTHER}", headers=admin | {"X-On-Behalf-Of": OTHER})
    assert r.status_code == 200 and r.json()["customer_id"] == OTHER
    r = client.get(f"/v1/customers/{OWNER}/accounts", headers=admin | {"X-On-Behalf-Of": OWNER})
    assert r.status_code == 200 and len(r.json()["items"]) == 2


def test_admin_must_name_the_customer(client, tokens):
    admin = tokens.headers("svc-mobile-backend", ["admin", "accounts:read"])
    assert_problem(client.get(f"/v1/customers/{OWNER}", headers=admin), 400, "on-behalf-of-required")
    assert_problem(client.get(f"/v1/customers/{OWNER}", headers=admin | {"X-On-Behalf-Of": "bad id!"}), 400,
                   "on-behalf-of-required")


def test_admin_still_gets_only_the_named_customers_objects(client, tokens):
    admin = tokens.headers("svc-mobile-backend", ["admin", "accounts:read"])
    r = client.get(f"/v1/accounts/{ACCT_MAIN}", headers=admin | {"X-On-Behalf-Of": OTHER})
    assert_problem(r, 404, "not-found")


def test_admin_needs_the_operation_scope_too(client, tokens):
    admin = tokens.headers("svc-mobile-backend", ["admin"])
    r = client.get(f"/v1/customers/{OWNER}", headers=admin | {"X-On-Behalf-Of": OWNER})
    assert_problem(r, 403, "forbidden")


def test_customer_cannot_act_on_behalf_of_someone_else(client, tokens):
    r = client.get(f"/v1/customers/{OTHER}", headers=tokens.headers(OWNER) | {"X-On-Behalf-Of": OTHER})
    assert_problem(r, 403, "forbidden")
    r = client.get(f"/v1/customers/{OWNER}", headers=tokens.headers(OWNER) | {"X-On-Behalf-Of": OWNER})
    assert r.status_code == 200


# -- demo mode -----------------------------------------------------------------------------------------
def test_demo_mode_accepts_hs256_demo_tokens(keys, gateways):
    settings = make_settings(keys, auth={"demo_mode": True, "demo_hs256_secret": DEMO_SECRET})
    token = mint_demo_token(settings.auth, OWNER, ["accounts:read"])
    with TestClient(create_app(settings, gateways)) as c:
        assert c.get(f"/v1/customers/{OWNER}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        forged = jwt.encode(_claims(), "another-secret-of-enough-length-123456", algorithm="HS256")
        assert_problem(c.get(f"/v1/customers/{OWNER}", headers={"Authorization": f"Bearer {forged}"}), 401)


def test_demo_tokens_are_refused_outside_demo_mode(settings):
    with pytest.raises(PermissionError):
        mint_demo_token(settings.auth, OWNER, ["accounts:read"])


def test_demo_mode_needs_a_long_secret(keys):
    with pytest.raises(ValueError, match="demo_hs256_secret"):
        make_settings(keys, auth={"demo_mode": True, "demo_hs256_secret": "short"})


# -- the verifier ------------------------------------------------------------------------------------------
def test_verified_tokens_are_cached_until_they_expire(settings, tokens):
    now = [time.time()]
    verifier = TokenVerifier(settings.auth, clock=lambda: now[0])
    token = tokens.make(ttl=60, now=now[0])
    first = verifier.verify(token)
    assert verifier.cached(token) is first
    now[0] += 60 + settings.auth.leeway_seconds + 1
    assert verifier.cached(token) is None


def test_token_cache_is_bounded(keys, tokens):
    settings = make_settings(keys, auth={"token_cache_size": 3})
    verifier = TokenVerifier(settings.auth)
    made = [tokens.make(sub=f"C000000{i}") for i in range(5)]
    for t in made:
        verifier.verify(t)
    assert verifier.cached(made[0]) is None and verifier.cached(made[-1]) is not None


def test_verifier_needs_keys(keys):
    settings = make_settings(keys, auth={"jwks_file": None})
    with pytest.raises(ValueError, match="no token keys"):
        TokenVerifier(settings.auth)


def test_jwks_url_keys_are_fetched_once_and_off_the_event_loop(keys, tokens, gateways):
    """A JWKS URL: keys come through PyJWKClient (here a stub that counts fetches)."""
    jwks = json.loads(keys.jwks_file.read_text())

    class StubClient:
        fetches = 0

        def get_jwk_set(self, refresh: bool = False):
            StubClient.fetches += 1
            return jwt.PyJWKSet.from_dict(jwks)

        def get_signing_key(self, kid):
            StubClient.fetches += 1
            for key in jwt.PyJWKSet.from_dict(jwks).keys:
                if key.key_id == kid:
                    return key
            raise jwt.PyJWKClientError("no such kid")

    settings = make_settings(keys, auth={"jwks_file": None, "jwks_url": "https://auth.test.example/jwks.json"})
    verifier = TokenVerifier(settings.auth, jwks_client=StubClient())  # type: ignore[arg-type]
    with TestClient(create_app(settings, gateways, verifier=verifier)) as c:
        assert StubClient.fetches == 1  # prefetched at startup
        for alg in ("RS256", "ES256", "RS256"):
            assert c.get(f"/v1/customers/{OWNER}", headers=tokens.headers(alg=alg)).status_code == 200
        assert StubClient.fetches == 1
        assert_problem(c.get(f"/v1/customers/{OWNER}", headers=tokens.headers(kid="rotated")), 401)
        assert StubClient.fetches == 2
