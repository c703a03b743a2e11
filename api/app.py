"""The FastAPI application: ``create_app(settings, gateways)``.

The app is assembled from what the composition root hands it (``api/bootstrap.py`` builds the
:class:`~api.gateways.Gateways` from the settings; tests hand in fakes) and owns nothing global:
its metrics registry, token cache, rate-limit buckets and cursor key are per instance.

One pure-ASGI middleware wraps every request (cheaper than Starlette's ``BaseHTTPMiddleware``):
it sets the request id (``X-Request-ID`` in and out, :data:`api.observability.request_id_var`),
refuses bodies above the cap with a 413 problem before the app reads them, turns any unhandled
exception into a 500 problem, and records the request's metrics and one access-log line. It is the
outermost layer (:class:`FacadeApp`), and inside it :class:`~api.fast_balance.FastBalanceRoute` answers
ordinary balance requests without FastAPI's routing and dependency solving (the hot path).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import SCOPES, Authenticator, TokenVerifier
from api.cursors import CursorCodec
from api.fast_balance import FastBalanceRoute
from api.gateways import Gateways
from api.observability import (
    REQUEST_INFO_KEY,
    Metrics,
    RequestInfo,
    mask_customer_id,
    new_request_id,
    request_id_var,
    valid_request_id,
)
from api.problems import (
    BAD_REQUEST,
    INTERNAL,
    PAYLOAD_TOO_LARGE,
    PROBLEM_SCHEMA,
    install_handlers,
    openapi_responses,
    problem_response,
    problem_types_markdown,
)
from api.reconciler import Reconciler
from api.routes import build_routers
from api.services import build_services
from api.settings import Settings
from api.store import Store, StoreSettings, build_store

__all__ = ["API_DESCRIPTION", "FacadeApp", "RequestMiddleware", "create_app"]

log = logging.getLogger("corebridge.api")
access_log = logging.getLogger("corebridge.access")

try:
    VERSION = metadata.version("corebridge")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
    VERSION = "0.0.0"

API_DESCRIPTION = f"""
corebridge serves a legacy core banking system (SOAP, ODBC, SFTP batch) as a JSON API.

**Money** is `{{"amount": "125.40", "currency": "EUR"}}`: the amount is a decimal *string* in the
currency's minor units, never a JSON number. Dates are `YYYY-MM-DD`, timestamps ISO 8601 with an offset.

**Authentication**: OAuth2 bearer JWTs (RS256/ES256) in the `Authorization` header only (a token in
the query string is refused). Scopes: {"; ".join(f"`{k}` ({v})" for k, v in SCOPES.items())}.
A customer token sees only its own customer's objects; anything else is a 404 indistinguishable
from a missing object. Admin tokens must name the customer in `X-On-Behalf-Of`.

**Pagination**: list endpoints return `next_cursor`; pass it back as `cursor`. Cursors are opaque and
signed: an altered cursor, or one from another listing, is a 400.

**Request ids**: send `X-Request-ID` (1-64 printable ASCII characters) or get one generated; it is
returned on every response and appears in every problem body and log line.

**Errors** are RFC 9457 `application/problem+json` with these stable `type` URIs:

{problem_types_markdown()}
"""

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestMiddleware:
    """Request id, body cap, safety net, metrics and the access log, in one ASGI layer."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid: str | None = None
        content_length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = valid_request_id(value)
            elif name == b"content-length":
                content_length = value
        if rid is None:
            rid = new_request_id()
        info = RequestInfo(rid)
        scope[REQUEST_INFO_KEY] = info
        token = request_id_var.set(rid)
        rid_header = (b"x-request-id", rid.encode("ascii"))
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), rid_header]}
            await send(message)

        try:
            refusal, receive = await self._check_body(scope, receive, content_length)
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            log.error("unhandled error in %s %s", scope.get("method"), _route_of(scope), exc_info=True)
            if started:
                raise
            await problem_response(INTERNAL, "An unexpected error occurred; quote the request id.")(
                scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = _route_of(scope)
            method = scope.get("method", "GET")
            self.metrics.observe_request(method, route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                # every field is ours or masked already (route is the template, never the path), so the
                # masking filter is told to skip the line; JSON output still re-checks the client's request id
                access_log.info("%s %s %d", method, route, status, extra={
                    "method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 3),
                    "request_id": rid, "customer": mask_customer_id(info.customer), "_masked": True})
            request_id_var.reset(token)

    async def _check_body(self, scope: Scope, receive: Receive,
                          content_length: bytes | None) -> tuple[Any, Receive]:
        """``(refusal response or None, receive)``: a declared length over the cap is refused unread; a
        body without a length (chunked) is read up to the cap and replayed."""
        if content_length is not None:
            try:
                declared = int(content_length)
            except ValueError:
                return problem_response(BAD_REQUEST, "Invalid Content-Length."), receive
            if declared > self.max_body:
                return self._too_large(), receive
            return None, receive
        if scope.get("method") not in _BODY_METHODS:
            return None, receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, _replay([], message, receive)
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body:
                return self._too_large(), receive
            chunks.append(body)
            if not message.get("more_body", False):
                break
        return None, _replay(chunks, None, receive)

    def _too_large(self) -> Any:
        return problem_response(PAYLOAD_TOO_LARGE, f"The request body exceeds {self.max_body} bytes.",
                                headers={"Connection": "close"})


def _replay(chunks: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if pending is not None:
                return pending
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await receive()

    return replay


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class FacadeApp(FastAPI):
    """FastAPI with our layers outermost: :class:`RequestMiddleware` (and the balance fast route) wrap
    FastAPI's whole stack (its error, telemetry and body-limit middleware, exception handlers, router)
    instead of sitting inside it. Everything FastAPI serves passes the same layers as before; a balance
    served by :class:`~api.fast_balance.FastBalanceRoute` passes no FastAPI layer at all. RequestMiddleware
    turns any exception into the 500 problem itself, so Starlette's error middleware (which answered a bare
    500 and re-raised) is left out."""

    outer_layers: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.outer_layers is None:
            return stack
        if isinstance(stack, ServerErrorMiddleware):  # RequestMiddleware takes its place (its 500 is ours)
            stack = stack.app
        return self.outer_layers(stack)


def _install_openapi(app: FastAPI) -> None:
    """FastAPI's schema, plus the Problem schema, with every 422 documented as problem+json."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        schema = generate()
        if not done:
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = PROBLEM_SCHEMA
            problem_422 = openapi_responses(422)[422]
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    responses = operation.get("responses", {})
                    if "422" in responses:
                        responses["422"] = problem_422
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            done = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings, gateways: Gateways, *, metrics: Metrics | None = None,
               verifier: TokenVerifier | None = None, store: Store | None = None,
               store_settings: StoreSettings | None = None, reconciler: bool = True,
               fast_balance: bool = True) -> FastAPI:
    """The facade over ``gateways``, configured by ``settings``.

    ``metrics``: pass the :class:`Metrics` whose ``observe_core_call`` / ``count_mapping_error`` the
    adapters' wrappers were given (the composition root creates it first); a fresh one otherwise.
    ``verifier``: a prepared :class:`TokenVerifier` (tests, or a shared JWKS client).
    The app calls ``gateways.close()`` on shutdown.
    ``store``: the idempotency store (:mod:`api.store`; shared by instances for PostgreSQL), owned by the
    caller; without one, a ``store`` section in ``settings`` (when present) builds one the app owns and
    closes; with neither, ``Idempotency-Key`` is ignored. With a store the lifespan runs the background
    :class:`~api.reconciler.Reconciler` (``reconciler=False``: tests drive it themselves).
    ``fast_balance``: serve ordinary balance requests in :class:`~api.fast_balance.FastBalanceRoute` (off:
    every request goes through FastAPI; tests compare the two).
    """
    if not isinstance(settings, Settings) or not isinstance(gateways, Gateways):
        raise TypeError("create_app(settings: Settings, gateways: Gateways)")
    metrics = metrics or Metrics()
    metrics.attach(gateways.health, gateways.mappings_loaded, gateways.pools)
    verifier = verifier or TokenVerifier(settings.auth)
    auth = Authenticator(verifier, settings.rate_limit, metrics)
    cursors = CursorCodec(settings.cursor_secret.get_secret_value())
    owned_store = False
    if store is None:
        configured = getattr(settings, "store", None)  # once Settings has a ``store: StoreSettings`` section
        if isinstance(configured, StoreSettings):
            store_settings = store_settings or configured
            store = build_store(configured)
            owned_store = store is not None
    services = build_services(gateways, cursors, timeout=settings.limits.core_timeout, store=store,
                              store_settings=store_settings)
    background = (Reconciler(services.exactly_once)
                  if services.exactly_once is not None and reconciler else None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.auth.demo_mode:
            log.warning("demo mode: HS256 tokens signed with the demo secret are accepted; never in production")
        if settings.auth.jwks_url:
            try:
                await anyio.to_thread.run_sync(verifier.prefetch)
            except Exception:  # noqa: BLE001 - keys are fetched again on first use
                log.warning("could not prefetch the JWKS; will retry on first use", exc_info=True)
        if background is not None:
            background.start()
        try:
            yield
        finally:
            if background is not None:
                await anyio.to_thread.run_sync(background.stop)
            if owned_store and store is not None:
                store.close()
            try:
                await gateways.aclose()
            except Exception:  # noqa: BLE001 - shutdown goes on
                log.warning("closing the gateways' event-loop clients failed", exc_info=True)
            try:
                await anyio.to_thread.run_sync(gateways.close)
            except Exception:  # noqa: BLE001 - shutdown goes on
                log.warning("closing the gateways failed", exc_info=True)

    app = FacadeApp(
        # FastAPI's native OpenTelemetry hooks ask the global providers on every request (~3% of the balance
        # route's time) though nothing here configures OpenTelemetry; metrics and logs are ours (masked)
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        title="corebridge",
        version=VERSION,
        summary="A JSON facade over a legacy core banking system",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        root_path=settings.server.root_path,
        openapi_tags=[
            {"name": "customers", "description": "the caller's customer record"},
            {"name": "accounts", "description": "accounts, balances and transactions"},
            {"name": "transfers", "description": "posting and looking up transfers"},
            {"name": "operations", "description": "health, readiness and metrics"},
        ],
    )
    install_handlers(app, on_contract_violation=metrics.count_mapping_error)
    for router in build_routers(settings, services, auth, gateways, metrics):
        app.include_router(router)

    def outer_layers(stack: ASGIApp) -> ASGIApp:
        if fast_balance:
            stack = FastBalanceRoute(stack, fastapi=app, auth=auth, services=services)
        return RequestMiddleware(stack, metrics=metrics, max_body_bytes=settings.limits.max_body_bytes)

    app.outer_layers = outer_layers
    _install_openapi(app)
    app.state.settings = settings
    app.state.gateways = gateways
    app.state.metrics = metrics
    app.state.services = services
    app.state.store = store
    app.state.reconciler = background
    app.state.verifier = verifier
    app.state.authenticator = auth
    return app
