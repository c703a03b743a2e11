"""Helpers of the API tests (imported by conftest and test modules): keys and tokens, settings,
the problem assertion, and the log-line scanner."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.observability import JsonFormatter, luhn_valid
from api.settings import Settings
from tests.api.fakes import OWNER

ISSUER = "https://auth.test.example/"
AUDIENCE = "corebridge-test"
ALL_SCOPES = ("accounts:read", "transactions:read", "transfers:write")
CURSOR_SECRET = "test-cursor-secret-0123456789abcdef"
DEMO_SECRET = "demo-secret-for-tests-only-0123456789"


# -- the log scan ----------------------------------------------------------------------------------
_DIGITS_10 = re.compile(r"(?<!\d)\d{10,19}(?!\d)")
_GROUPED = re.compile(r"\d+(?:[ -]\d+)+")


def _card_in(line: str) -> str | None:
    for m in _GROUPED.finditer(line):
        groups = re.split(r"[ -]", m.group(0))
        for i in range(len(groups)):
            digits = ""
            for g in groups[i:]:
                digits += g
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    return m.group(0)
    return None


def unmasked(line: str) -> str | None:
    """The first unmasked account number (10-19 digits) or Luhn-valid card number in ``line``."""
    m = _DIGITS_10.search(line)
    if m:
        return m.group(0)
    return _card_in(line)


class ScanHandler(logging.Handler):
    """Formats every record as the service would (JsonFormatter, which masks) and keeps violations."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines = 0
        self.masked_accounts = 0
        self.violations: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.lines += 1
        if "********" in line:
            self.masked_accounts += 1
        if unmasked(line):
            self.violations.append(line)


# -- keys and tokens -------------------------------------------------------------------------------
@dataclass
class Keys:
    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    untrusted: rsa.RSAPrivateKey
    jwks_file: Path


def _jwk(public: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") else jwt.algorithms.ECAlgorithm
    data = json.loads(algo.to_jwk(public))
    data.update(kid=kid, alg=alg, use="sig")
    return data


def make_keys(directory: Path) -> Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    untrusted = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "jwks.json"
    path.write_text(json.dumps({"keys": [_jwk(rsa_key.public_key(), "rsa-1", "RS256"),
                                         _jwk(ec_key.public_key(), "ec-1", "ES256")]}))
    return Keys(rsa=rsa_key, ec=ec_key, untrusted=untrusted, jwks_file=path)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Tokens:
    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def make(self, sub: str = OWNER, scopes: tuple[str, ...] | list[str] = ALL_SCOPES, *, alg: str = "RS256",
             ttl: int = 300, now: float | None = None, nbf: float | None = None, iss: str = ISSUER,
             aud: str = AUDIENCE, key: Any = None, kid: str | None = None, **claims: Any) -> str:
        issued = int(now if now is not None else time.time())
        payload: dict[str, Any] = {"iss": iss, "aud": aud, "sub": sub, "iat": issued, "exp": issued + ttl,
                                   "scope": " ".join(scopes)}
        if nbf is not None:
            payload["nbf"] = int(nbf)
        payload.update(claims)
        if key is None:
            key = {"RS256": self.keys.rsa, "ES256": self.keys.ec}.get(alg, DEMO_SECRET)
        if kid is None:
            kid = {"RS256": "rsa-1", "ES256": "ec-1"}.get(alg)
        headers = {"kid": kid} if kid else None
        return jwt.encode(payload, key, algorithm=alg, headers=headers)

    def headers(self, sub: str = OWNER, scopes: tuple[str, ...] | list[str] = ALL_SCOPES, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.make(sub, scopes, **kw)}"}


def make_settings(keys: Keys, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "auth": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": str(keys.jwks_file)},
        "cursor_secret": CURSOR_SECRET,
        "rate_limit": {"rate_per_second": 10_000, "burst": 10_000},
        # the store (Idempotency-Key) is exercised by test_idempotency.py with stores of its own
        "store": {"backend": "none"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return Settings(**values)


FORBIDDEN_WORDS = ("Traceback", "zeep", "pyodbc", "paramiko", "SELECT", "soap:", "ACCTMAST", "File \"")


def assert_problem(response: Any, status: int, type_slug: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and type), and leaks no internals."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://corebridge.example/problems/")
    if type_slug is not None:
        assert body["type"] == f"https://corebridge.example/problems/{type_slug}", body
    assert body["title"] and body["detail"]
    assert body.get("request_id") == response.headers["x-request-id"]
    for word in FORBIDDEN_WORDS:
        assert word not in response.text, f"{word!r} leaked in {response.text}"
    return body
