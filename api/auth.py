"""OAuth2 bearer JWTs: verification, scopes, ownership context and the per-client rate limit.

* Tokens come in ``Authorization: Bearer ...`` only; a token in the query string
  (``?access_token=``) is refused (401), because URLs end up in logs and browser histories.
* Accepted algorithms are the asymmetric ones in ``auth.algorithms`` (RS256, ES256 by default),
  verified with keys from a local JWKS file (``PyJWKSet``) or a JWKS URL (``PyJWKClient``, fetched
  once and refreshed after ``jwks_cache_seconds`` or for an unknown ``kid``, off the event loop).
  HS256 is accepted only in demo mode, with ``demo_hs256_secret``. ``alg: none`` and every other
  algorithm are refused; a JWKS key is only ever used with its own algorithm.
* ``iss``, ``aud``, ``exp`` and ``sub`` are required; ``exp``, ``nbf`` and ``iat`` are checked with
  a small leeway. A verified token is cached (bounded LRU, keyed by the token string) until it
  expires, so the hot path costs a dictionary lookup.
* Scopes (``scope``: space-separated, or ``scp``): ``accounts:read``, ``transactions:read``,
  ``transfers:write``; a missing one is 403. ``admin`` widens *whose* data a client may act on,
  not *what* it may do: an admin token still needs the operation's scope, and must name the
  customer in ``X-On-Behalf-Of`` (400 when missing).
* The subject of a customer token is the customer id: the services check every object against
  :attr:`Caller.customer_id` (someone else's object is a 404).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal

import anyio
import jwt
from fastapi import Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt import PyJWK, PyJWKClient, PyJWKSet

from api.observability import REQUEST_INFO_KEY, Metrics
from api.problems import FORBIDDEN, ON_BEHALF_OF_REQUIRED, RATE_LIMITED, UNAUTHORIZED, ProblemError, retry_after_header
from api.ratelimit import TokenBucketLimiter
from api.settings import ASYMMETRIC_ALGORITHMS, AuthSettings, RateLimitSettings

__all__ = [
    "ACCOUNTS_READ",
    "ADMIN",
    "SCOPES",
    "TRANSACTIONS_READ",
    "TRANSFERS_WRITE",
    "AuthError",
    "Authenticator",
    "Caller",
    "Principal",
    "TokenVerifier",
    "bearer_scheme",
    "mint_demo_token",
]

log = logging.getLogger("corebridge.api.auth")

ACCOUNTS_READ = "accounts:read"
TRANSACTIONS_READ = "transactions:read"
TRANSFERS_WRITE = "transfers:write"
ADMIN = "admin"
SCOPES: dict[str, str] = {
    ACCOUNTS_READ: "read the caller's customer record, accounts and balances",
    TRANSACTIONS_READ: "read the caller's transaction history and transfers",
    TRANSFERS_WRITE: "post transfers from the caller's accounts (and read them back)",
    ADMIN: "service clients: act for any customer named in X-On-Behalf-Of",
}

_SUBJECT = re.compile(r"[A-Za-z0-9._:@-]{1,64}\Z")
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")

bearer_scheme = HTTPBearer(
    auto_error=False, bearerFormat="JWT", scheme_name="bearer",
    description="OAuth2 access token (JWT, RS256/ES256). Scopes: "
                + "; ".join(f"`{k}`: {v}" for k, v in SCOPES.items()),
)


class AuthError(Exception):
    """Authentication failed; ``reason`` is a short code for logs and metrics, never for clients."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _FetchNeeded(Exception):
    """The key must be fetched from the JWKS URL (blocking: done off the event loop)."""


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    scopes: frozenset[str]
    expires_at: float
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking (``principal``) and for which customer (``customer_id``)."""

    principal: Principal
    customer_id: str

    @property
    def on_behalf(self) -> bool:
        return self.principal.subject != self.customer_id


def _scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    if scope is None:
        scope = claims.get("scp")
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list):
        return frozenset(s for s in scope if isinstance(s, str))
    return frozenset()


class TokenVerifier:
    """Verifies tokens against the configured keys; verified tokens are cached until they expire."""

    def __init__(self, settings: AuthSettings, *, jwks_client: PyJWKClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._algorithms = frozenset(settings.algorithms) | ({"HS256"} if settings.demo_mode else frozenset())
        self._hs_secret = (settings.demo_hs256_secret.get_secret_value().encode()
                           if settings.demo_mode and settings.demo_hs256_secret else None)
        self._keys: dict[str | None, PyJWK] = {}
        if settings.jwks_file is not None:
            self._add_keys(PyJWKSet.from_json(settings.jwks_file.read_text(encoding="utf-8")).keys, None)
        self._client = jwks_client
        if self._client is None and settings.jwks_url:
            self._client = PyJWKClient(settings.jwks_url, cache_keys=False, cache_jwk_set=True,
                                       lifespan=settings.jwks_cache_seconds, timeout=settings.jwks_fetch_timeout)
        self._fetched: dict[str | None, tuple[PyJWK, float]] = {}
        if not self._keys and self._client is None and self._hs_secret is None:
            raise ValueError("no token keys: set auth.jwks_file or auth.jwks_url (or auth.demo_mode with "
                             "auth.demo_hs256_secret)")
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = settings.token_cache_size
        self._lock = threading.Lock()
        self._options: Any = {"require": ["exp", "iss", "aud", "sub"], "verify_signature": True,
                              "verify_exp": True, "verify_nbf": True, "verify_iat": True,
                              "verify_aud": True, "verify_iss": True}

    def _usable(self, key: PyJWK) -> bool:
        return (key.algorithm_name in ASYMMETRIC_ALGORITHMS and key.algorithm_name in self._algorithms
                and (key.public_key_use or "sig") == "sig")

    def _add_keys(self, keys: Iterable[PyJWK], fetched_at: float | None) -> None:
        for key in keys:
            if not self._usable(key):
                continue
            if fetched_at is None:
                self._keys[key.key_id] = key
            else:
                self._fetched[key.key_id] = (key, fetched_at)

    # -- keys ------------------------------------------------------------------------------------
    def prefetch(self) -> None:
        """Load the JWKS URL's keys now (blocking; the app's startup runs it in a thread)."""
        if self._client is not None:
            keys = self._client.get_jwk_set(refresh=True).keys
            self._add_keys(keys, self._clock())

    def _key(self, alg: str, kid: Any, allow_fetch: bool) -> PyJWK | bytes:
        if alg == "HS256":
            if self._hs_secret is None:
                raise AuthError("algorithm")
            return self._hs_secret
        if kid is not None and not isinstance(kid, str):
            raise AuthError("malformed")
        key = self._keys.get(kid)
        if key is None and kid is None:
            candidates = [k for k in self._keys.values() if k.algorithm_name == alg]
            key = candidates[0] if len(candidates) == 1 else None
        if key is None and self._client is not None:
            entry = self._fetched.get(kid)
            if entry is not None and self._clock() - entry[1] < self.settings.jwks_cache_seconds:
                key = entry[0]
            elif not allow_fetch:
                raise _FetchNeeded
            else:
                try:
                    fetched = self._client.get_signing_key(kid) if kid else None
                except jwt.PyJWKClientError as exc:
                    log.info("JWKS lookup of a key failed: %s", exc)
                    raise AuthError("unknown_key") from None
                if fetched is None or not self._usable(fetched):
                    raise AuthError("unknown_key")
                self._fetched[kid] = (fetched, self._clock())
                key = fetched
        if key is None:
            raise AuthError("unknown_key")
        if key.algorithm_name != alg:
            raise AuthError("algorithm")
        return key

    # -- verification -----------------------------------------------------------------------------
    def cached(self, token: str) -> Principal | None:
        with self._lock:
            principal = self._cache.get(token)
            if principal is None:
                return None
            if self._clock() >= principal.expires_at + self.settings.leeway_seconds:
                del self._cache[token]
                return None
            self._cache.move_to_end(token)
            return principal

    def verify(self, token: str, *, allow_fetch: bool = True) -> Principal:
        """The token's principal; :class:`AuthError` when it is not acceptable. May block on a JWKS
        fetch unless ``allow_fetch`` is False (then ``_FetchNeeded`` is raised instead)."""
        principal = self.cached(token)
        if principal is not None:
            return principal
        if len(token) > self.settings.max_token_bytes:
            raise AuthError("too_large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthError("algorithm")
        key = self._key(alg, header.get("kid"), allow_fetch)
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], audience=self.settings.audience,
                                issuer=self.settings.issuer, leeway=self.settings.leeway_seconds,
                                options=self._options)
        except jwt.ExpiredSignatureError:
            raise AuthError("expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("not_yet_valid") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise AuthError("wrong_issuer_or_audience") from None
        except jwt.PyJWTError:
            raise AuthError("invalid") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not _SUBJECT.match(subject):
            raise AuthError("subject")
        scopes = _scopes_of(claims)
        principal = Principal(subject=subject, scopes=scopes, expires_at=float(claims["exp"]),
                              is_admin=self.settings.admin_scope in scopes)
        if self._cache_size:
            with self._lock:
                self._cache[token] = principal
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return principal

    async def averify(self, token: str) -> Principal:
        """:meth:`verify` for the event loop: a JWKS fetch, when needed, runs in a worker thread."""
        try:
            return self.verify(token, allow_fetch=False)
        except _FetchNeeded:
            return await anyio.to_thread.run_sync(partial(self.verify, token, allow_fetch=True))


def mint_demo_token(settings: AuthSettings, subject: str, scopes: Iterable[str], *, ttl: int = 3600,
                    admin: bool = False, now: float | None = None) -> str:
    """An HS256 token signed with the demo secret; refused unless demo mode is on."""
    if not settings.demo_mode or settings.demo_hs256_secret is None:
        raise PermissionError("demo tokens need auth.demo_mode=true and auth.demo_hs256_secret")
    if not _SUBJECT.match(subject):
        raise ValueError(f"subject {subject!r} is not 1-64 characters of [A-Za-z0-9._:@-]")
    scope_list = [s for s in scopes if s]
    if admin and settings.admin_scope not in scope_list:
        scope_list.append(settings.admin_scope)
    issued = int(now if now is not None else time.time())
    claims = {"iss": settings.issuer, "aud": settings.audience, "sub": subject, "iat": issued, "nbf": issued,
              "exp": issued + int(ttl), "jti": secrets.token_urlsafe(12), "scope": " ".join(scope_list)}
    return jwt.encode(claims, settings.demo_hs256_secret.get_secret_value(), algorithm="HS256")


# -- FastAPI dependencies ------------------------------------------------------------------------
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="corebridge", error="invalid_token"'}
_NO_TOKEN = {"WWW-Authenticate": 'Bearer realm="corebridge"'}
_DETAILS = {
    "missing": "A bearer token is required (Authorization: Bearer <token>).",
    "token_in_query": "Tokens are accepted in the Authorization header only, never in the URL.",
    "expired": "The access token has expired.",
    "not_yet_valid": "The access token is not valid yet.",
}


class Authenticator:
    """Builds the auth dependencies of the routes: verify, rate-limit, check scopes, resolve the customer."""

    def __init__(self, verifier: TokenVerifier, rate_limit: RateLimitSettings, metrics: Metrics) -> None:
        self.verifier = verifier
        self.metrics = metrics
        self.limiter = (TokenBucketLimiter(rate_limit.rate_per_second, rate_limit.burst,
                                           max_clients=rate_limit.max_clients)
                        if rate_limit.enabled else None)

    def throttle(self, key: str) -> None:
        """Take one request from ``key``'s bucket; a 429 problem when it is empty."""
        if self.limiter is None:
            return
        wait = self.limiter.acquire(key)
        if wait > 0:
            self.metrics.rate_limited.inc()
            raise ProblemError(RATE_LIMITED, "Too many requests; slow down.", headers=retry_after_header(wait))

    def _fail(self, request: Request, reason: str) -> ProblemError:
        client = request.client.host if request.client else "unknown"
        self.throttle("ip:" + client)
        self.metrics.auth_failures.labels(reason).inc()
        log.info("authentication failed: %s", reason)
        headers = _NO_TOKEN if reason == "missing" else _INVALID_TOKEN
        return ProblemError(UNAUTHORIZED, _DETAILS.get(reason, "The access token is not valid."), headers=headers)

    async def authenticate(self, request: Request, credentials: HTTPAuthorizationCredentials | None,
                           on_behalf_of: str | None, scopes: frozenset[str], mode: str) -> Caller:
        query = request.scope.get("query_string", b"")
        if b"access_token" in query and "access_token" in request.query_params:
            raise self._fail(request, "token_in_query")
        if credentials is None or not credentials.credentials:
            raise self._fail(request, "missing")
        try:
            principal = await self.verifier.averify(credentials.credentials)
        except AuthError as exc:
            raise self._fail(request, exc.reason) from None
        self.throttle("sub:" + principal.subject)
        granted = principal.scopes
        if not (scopes <= granted if mode == "all" else scopes & granted):
            needed = " ".join(sorted(scopes))
            raise ProblemError(FORBIDDEN, f"This operation needs the scope{'s' if len(scopes) > 1 else ''} "
                                          f"{needed}" + (" (any one)" if mode == "any" and len(scopes) > 1 else "")
                                          + ".",
                               headers={"WWW-Authenticate": f'Bearer realm="corebridge", error="insufficient_scope", '
                                                            f'scope="{needed}"'},
                               required_scopes=sorted(scopes))
        if principal.is_admin:
            if not on_behalf_of:
                raise ProblemError(ON_BEHALF_OF_REQUIRED,
                                   "Admin tokens must name the customer in the X-On-Behalf-Of header.")
            if not _CUSTOMER_ID.match(on_behalf_of):
                raise ProblemError(ON_BEHALF_OF_REQUIRED, "X-On-Behalf-Of must be a customer id (1-64 characters "
                                                          "of A-Z a-z 0-9 . _ -).")
            customer_id = on_behalf_of
        else:
            if on_behalf_of and on_behalf_of != principal.subject:
                raise ProblemError(FORBIDDEN, "Only admin clients may act on behalf of another customer.",
                                   required_scopes=[self.verifier.settings.admin_scope])
            customer_id = principal.subject
        info = request.scope.get(REQUEST_INFO_KEY)
        if info is not None:
            info.customer = customer_id
        return Caller(principal=principal, customer_id=customer_id)

    def cached_caller(self, token: str, scopes: frozenset[str]) -> Caller | None:
        """The :class:`Caller` :meth:`authenticate` would give for ``token`` (no ``X-On-Behalf-Of``) when it
        is an already verified, cached, still valid customer token holding every one of ``scopes``; None
        for anything that needs :meth:`authenticate`'s full path. No side effects (no rate-limit token
        taken, no metric), so a None leaves the request to that path untouched."""
        principal = self.verifier.cached(token)
        if principal is None or principal.is_admin or not scopes <= principal.scopes:
            return None
        return Caller(principal=principal, customer_id=principal.subject)

    def require(self, *scopes: str, mode: Literal["all", "any"] = "all") -> Callable[..., Any]:
        """A dependency returning the :class:`Caller` once the token carries the scopes (all, or any one)."""
        needed = frozenset(scopes)

        async def caller(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
            on_behalf_of: Annotated[str | None, Header(
                alias="X-On-Behalf-Of", max_length=64,
                description="Admin tokens only (required for them): the customer id the call acts for.",
                examples=["C0000001"])] = None,
        ) -> Caller:
            return await self.authenticate(request, credentials, on_behalf_of, needed, mode)

        return caller
