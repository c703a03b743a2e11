"""``GET /v1/accounts/{account_id}/balance`` answered without FastAPI's routing and dependency solving.

The balance is the mobile app's hottest call, and under load FastAPI's per-request machinery (route
matching over every route, dependency solving with pydantic validation of the header, security and path
parameters, the request object) cost about a third of the facade's CPU per balance (py-spy, c=32),
more than the SOAP call itself. This ASGI layer sits between :class:`api.app.RequestMiddleware` (request
id, metrics, access log: unchanged) and FastAPI, and serves the *ordinary* balance request itself:

* ``GET`` on exactly that path, an id matching the route's pattern, no ``access_token`` in the query;
* ``Authorization: Bearer <token>`` whose token the verifier has already accepted and cached (still
  valid), a customer token (not admin) carrying ``accounts:read``, no ``X-On-Behalf-Of`` header.

Everything else (no or unknown token, expired, wrong scope, admin, bad id, HEAD...) goes on to FastAPI
untouched, before this layer has done anything with side effects, so those answers are FastAPI's own.
Once it serves a request it does what the route does, with the same objects: the authenticator's
per-client rate limit, :meth:`AccountService.abalance`, the bytes ``json_response`` would send; an
exception is answered by the app's own exception handler for it (the same problem+json) or, without
one, re-raised to the RequestMiddleware's 500, as on the FastAPI path.
``tests/api/test_fast_balance.py`` compares both paths response by response.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette._utils import get_route_path  # the router's own path rule (root_path stripped)
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import ACCOUNTS_READ, Authenticator, Caller
from api.observability import REQUEST_INFO_KEY
from api.schemas import ID_PATTERN
from api.services import Services

__all__ = ["BALANCE_PATH", "FastBalanceRoute"]

BALANCE_PATH = "/v1/accounts/{account_id}/balance"
_PATH = re.compile(r"/v1/accounts/([^/]+)/balance")
_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))  # fullmatch: "$" would let a final "\n" in
_NEEDED = frozenset({ACCOUNTS_READ})


class FastBalanceRoute:
    def __init__(self, app: ASGIApp, *, fastapi: FastAPI, auth: Authenticator, services: Services) -> None:
        self.app = app
        self.fastapi = fastapi
        self.auth = auth
        self.accounts = services.accounts
        self._route = _find_route(fastapi, BALANCE_PATH, "GET")
        self.served = 0  # requests answered here rather than by FastAPI (tests; a cheap sanity figure)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _PATH.fullmatch(get_route_path(scope))
            if match is not None:
                caller = self._ordinary_caller(scope, match.group(1))
                if caller is not None:
                    self.served += 1
                    await self._serve(scope, receive, send, caller, match.group(1))
                    return
        await self.app(scope, receive, send)

    def _ordinary_caller(self, scope: Scope, account_id: str) -> Caller | None:
        """The caller when the request is an ordinary one (see the module docstring), else None.
        No side effects: a None sends the request on to FastAPI as if this layer were not there."""
        if not _ID.fullmatch(account_id) or b"access_token" in scope.get("query_string", b""):
            return None
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value
            elif name == b"x-on-behalf-of":
                return None
        if authorization is None:
            return None
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if not token or scheme.lower() != "bearer":  # as FastAPI's HTTPBearer reads the header
            return None
        return self.auth.cached_caller(token, _NEEDED)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, caller: Caller, account_id: str) -> None:
        scope["route"] = self._route
        scope["path_params"] = {"account_id": account_id}
        try:
            self.auth.throttle("sub:" + caller.principal.subject)
            info = scope.get(REQUEST_INFO_KEY)
            if info is not None:
                info.customer = caller.customer_id
            balance = await self.accounts.abalance(caller, account_id)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        # what json_response's Response sends, without building one (the tests compare the bytes)
        body = balance.model_dump_json().encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    def _handler_for(self, exc: Exception) -> Any:
        """The app's exception handler for ``exc`` (nearest class in its MRO), as Starlette looks it up."""
        handlers = self.fastapi.exception_handlers
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None



def _find_route(app: FastAPI, path: str, method: str) -> Any:
    """The app's route for ``method path`` (through included routers): set as ``scope["route"]``, as FastAPI
    does, for the metrics' and access log's route label."""
    pending = list(app.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers as a branch
        if included is not None:
            pending.extend(included.routes)
        elif getattr(route, "path", None) == path and method in (getattr(route, "methods", None) or ()):
            return route
    raise LookupError(f"no {method} {path} route in the app")
