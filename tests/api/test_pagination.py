"""Cursors are opaque and tamper-proof; page sizes are capped."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cursors import CursorCodec, InvalidCursor
from tests.api.fakes import ACCT_MAIN, ACCT_SAVINGS, OTHER, make_gateways
from tests.api.helpers import assert_problem, make_settings

URL = f"/v1/accounts/{ACCT_MAIN}/transactions"


def _first_cursor(client, tokens, **params) -> str:
    body = client.get(URL, params={"limit": 3} | params, headers=tokens.headers()).json()
    assert body["next_cursor"]
    return body["next_cursor"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_cursor_is_opaque_and_signed(client, tokens):
    cursor = _first_cursor(client, tokens)
    payload, sig = cursor.split(".")
    assert len(base64.urlsafe_b64decode(sig + "==")) == 32


@pytest.mark.parametrize("how", ["flip a payload byte", "flip a signature byte", "forged payload", "garbage",
                                 "no signature", "too long"])
def test_tampered_cursor_is_400(client, tokens, how):
    cursor = _first_cursor(client, tokens)
    payload, sig = cursor.split(".")
    if how == "flip a payload byte":
        bad = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + sig
    elif how == "flip a signature byte":
        bad = payload + "." + sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    elif how == "forged payload":
        data = json.loads(base64.urlsafe_b64decode(payload + "=="))
        data["c"] = data["c"][:-9] + "000000999"
        bad = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True).encode()) + "." + sig
    elif how == "garbage":
        bad = "%%%not-a-cursor%%%"
    elif how == "no signature":
        bad = payload
    else:
        bad = "A" * 3000
    r = client.get(URL, params={"cursor": bad}, headers=tokens.headers())
    assert r.status_code in (400, 422)
    assert_problem(r, r.status_code, "invalid-cursor" if r.status_code == 400 else "validation-error")
    if how != "too long":
        assert r.status_code == 400


def test_cursor_of_another_account_is_400(client, tokens, core):
    # the savings account gets a history of its own first
    for i in range(5):
        core.book(ACCT_SAVINGS, "1.00", at=dt.datetime(2026, 11, 1 + i, tzinfo=dt.UTC), description="INTEREST")
    cursor = _first_cursor(client, tokens)
    r = client.get(f"/v1/accounts/{ACCT_SAVINGS}/transactions", params={"cursor": cursor}, headers=tokens.headers())
    assert_problem(r, 400, "invalid-cursor")


def test_cursor_with_other_filters_is_400(client, tokens):
    cursor = _first_cursor(client, tokens, **{"from": "2026-11-01"})
    r = client.get(URL, params={"cursor": cursor, "from": "2026-10-01"}, headers=tokens.headers())
    assert_problem(r, 400, "invalid-cursor")
    r = client.get(URL, params={"cursor": cursor}, headers=tokens.headers())
    assert_problem(r, 400, "invalid-cursor")


def test_cursor_signed_with_another_key_is_400(keys, core, tokens):
    one = create_app(make_settings(keys, cursor_secret="first-secret-0123456789"), make_gateways(core))
    two = create_app(make_settings(keys, cursor_secret="second-secret-0123456789"), make_gateways(core))
    with TestClient(one) as c1, TestClient(two) as c2:
        cursor = c1.get(URL, params={"limit": 3}, headers=tokens.headers()).json()["next_cursor"]
        assert c1.get(URL, params={"cursor": cursor}, headers=tokens.headers()).status_code == 200
        assert_problem(c2.get(URL, params={"cursor": cursor}, headers=tokens.headers()), 400, "invalid-cursor")


def test_someone_elses_account_is_404_even_with_a_valid_cursor(client, tokens):
    cursor = _first_cursor(client, tokens)
    r = client.get(URL, params={"cursor": cursor}, headers=tokens.headers(OTHER))
    assert_problem(r, 404, "not-found")


@pytest.mark.parametrize(("limit", "status"), [(0, 422), (-1, 422), (1, 200), (200, 200), (201, 422), (10_000, 422)])
def test_limit_is_capped(client, tokens, limit, status):
    r = client.get(URL, params={"limit": limit}, headers=tokens.headers())
    assert r.status_code == status
    if status == 422:
        assert_problem(r, 422, "validation-error")


def test_configured_page_cap(keys, core, tokens):
    settings = make_settings(keys, limits={"max_page_size": 10, "default_page_size": 5})
    with TestClient(create_app(settings, make_gateways(core))) as c:
        assert len(c.get(URL, headers=tokens.headers()).json()["items"]) == 5
        assert c.get(URL, params={"limit": 10}, headers=tokens.headers()).status_code == 200
        assert_problem(c.get(URL, params={"limit": 11}, headers=tokens.headers()), 422)


def test_codec_round_trip_and_refusals():
    codec = CursorCodec("k" * 32)
    token = codec.encode("110000000543", "cont-key", {"from": None, "to": "2026-11-30"})
    assert codec.decode(token, account_id="110000000543", filters={"from": None, "to": "2026-11-30"}) == "cont-key"
    for account, filters in (("110000000551", {"from": None, "to": "2026-11-30"}),
                             ("110000000543", {"from": None, "to": None})):
        with pytest.raises(InvalidCursor):
            codec.decode(token, account_id=account, filters=filters)
    with pytest.raises(InvalidCursor):
        CursorCodec("z" * 32).decode(token, account_id="110000000543", filters={"from": None, "to": "2026-11-30"})
    with pytest.raises(ValueError):
        CursorCodec("short")
