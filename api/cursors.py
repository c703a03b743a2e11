"""Opaque, tamper-proof pagination cursors.

A cursor is ``base64url(JSON payload) + "." + base64url(HMAC-SHA256(key, payload))``; the payload
binds the adapter's own continuation token to the account and the filters it was issued for::

    {"v": 1, "a": "<account id>", "c": "<adapter cursor>", "f": {"from": "2026-11-01", "to": null}}

The adapter cursor never reaches a client unsigned, so a client cannot steer the adapter (an ODBC
offset, a SOAP continuation key) to rows it was not given. Decoding refuses, with
:class:`InvalidCursor` (a 400 problem), a cursor that is malformed, altered, signed with another
key, or issued for another account or other filters.

The key comes from ``Settings.cursor_secret``; instances behind one load balancer must share it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping

__all__ = ["MAX_CURSOR_LENGTH", "CursorCodec", "InvalidCursor"]

MAX_CURSOR_LENGTH = 2048
_VERSION = 1
_CONTEXT = b"corebridge.cursor.v1\x00"


class InvalidCursor(ValueError):
    """The cursor is malformed, altered, or not for this listing; the reason is for logs only."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ValueError("the cursor key must be at least 16 bytes")
        self._key = key

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, _CONTEXT + payload, hashlib.sha256).digest()

    def encode(self, account_id: str, adapter_cursor: str, filters: Mapping[str, str | None]) -> str:
        payload = json.dumps({"v": _VERSION, "a": account_id, "c": adapter_cursor, "f": dict(filters)},
                             separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._sign(payload))}"

    def decode(self, cursor: str, *, account_id: str, filters: Mapping[str, str | None]) -> str:
        """The adapter cursor inside ``cursor``, after checking signature, account and filters."""
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursor("cursor too long")
        body, dot, sig = cursor.partition(".")
        if not dot or not body or not sig:
            raise InvalidCursor("not a cursor")
        try:
            payload = _b64decode(body)
            signature = _b64decode(sig)
        except (binascii.Error, ValueError):
            raise InvalidCursor("not base64url") from None
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise InvalidCursor("bad signature")
        try:
            data = json.loads(payload)
        except ValueError:
            raise InvalidCursor("bad payload") from None
        if not isinstance(data, dict) or data.get("v") != _VERSION or not isinstance(data.get("c"), str):
            raise InvalidCursor("bad payload")
        if data.get("a") != account_id:
            raise InvalidCursor("cursor of another account")
        if data.get("f") != dict(filters):
            raise InvalidCursor("cursor of other filters")
        return data["c"]
