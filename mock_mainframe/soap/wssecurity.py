"""WS-Security 1.0 UsernameToken (PasswordText) check, as the core's SOAP gateway applies it.

Every operation needs ``wsse:Security/wsse:UsernameToken`` with ``wsse:Username`` and a
``wsse:Password`` of type PasswordText (or no Type, which the spec reads as PasswordText).
A missing piece is named in the fault; wrong credentials are not told apart (user or password),
as a real gateway would not tell an attacker which one was right.
"""

from __future__ import annotations

import hmac

from lxml import etree

from .envelope import FAILED_AUTH, SECURITY_TAG, WSSE_NS, SoapError

_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = _PROFILE + "#PasswordText"  # noqa: S105 - a URI, not a secret
_TOKEN = f"{{{WSSE_NS}}}UsernameToken"
_USERNAME = f"{{{WSSE_NS}}}Username"
_PASSWORD = f"{{{WSSE_NS}}}Password"


def _fail(code: str, text: str) -> SoapError:
    return SoapError(code, text, faultcode=FAILED_AUTH)


def check(headers: list[etree._Element], user: str, password: str) -> str:
    """Return the authenticated user name or raise a FailedAuthentication :class:`SoapError`."""
    security = next((h for h in headers if h.tag == SECURITY_TAG), None)
    if security is None:
        raise _fail("CBE0010", "WS-Security header missing: every operation needs a wsse:Security "
                               "header with a UsernameToken (PasswordText)")
    token = security.find(_TOKEN)
    if token is None:
        raise _fail("CBE0010", "wsse:Security has no wsse:UsernameToken")
    name_el = token.find(_USERNAME)
    pass_el = token.find(_PASSWORD)
    if name_el is None or not (name_el.text or "").strip():
        raise _fail("CBE0010", "wsse:UsernameToken has no wsse:Username")
    if pass_el is None:
        raise _fail("CBE0010", "wsse:UsernameToken has no wsse:Password")
    ptype = pass_el.get("Type")
    if ptype is not None and ptype != PASSWORD_TEXT:
        kind = ptype.rsplit("#", 1)[-1]
        raise _fail("CBE0012", f"password type {kind} is not supported: send PasswordText")
    given_user = (name_el.text or "").strip()
    given_pass = pass_el.text or ""
    ok_user = hmac.compare_digest(given_user.encode(), user.encode())
    ok_pass = hmac.compare_digest(given_pass.encode(), password.encode())
    if not (ok_user and ok_pass):
        raise _fail("CBE0011", f"authentication failed for user {given_user[:32]!r}: "
                               "unknown user or wrong password")
    return given_user
