"""Operations endpoints: ``/healthz`` (the process is alive), ``/readyz`` (it can serve: mappings
loaded and no required backend's circuit breaker open), ``/metrics`` (Prometheus text)."""

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from api.gateways import Gateways
from api.observability import Metrics
from api.problems import NOT_READY, openapi_responses, problem_response
from api.schemas import BackendReadiness, Health, Readiness
from api.settings import Settings

__all__ = ["evaluate_readiness", "router"]

log = logging.getLogger("corebridge.api.health")

_REFUSING = frozenset({"open", "forced_open"})
_RANK = {"open": 4, "forced_open": 4, "half_open": 3, "unknown": 2, "closed": 1, "disabled": 0}
_HEALTHY = b'{"status":"ok"}'


def evaluate_readiness(rows: Iterable[Mapping[str, Any]], required: Iterable[str], mappings_loaded: bool) -> Readiness:
    required = frozenset(required)
    per_backend: dict[str, dict[str, str]] = {}
    for row in rows:
        backend = str(row.get("backend", "unknown"))
        op = str(row.get("operation_class", "default"))
        per_backend.setdefault(backend, {})[op] = str(row.get("breaker_state", "unknown"))
    backends: dict[str, BackendReadiness] = {}
    blocking: list[str] = []
    for backend, ops in sorted(per_backend.items()):
        worst = max(ops.values(), key=lambda s: _RANK.get(s, 2))
        is_required = backend in required
        backends[backend] = BackendReadiness(state=worst, required=is_required, operations=ops)
        if is_required and any(s in _REFUSING for s in ops.values()):
            blocking.append(backend)
    ready = mappings_loaded and not blocking
    return Readiness(status="ready" if ready else "not_ready", mappings_loaded=mappings_loaded,
                     backends=backends, blocking=blocking)


def router(settings: Settings, gateways: Gateways, metrics: Metrics) -> APIRouter:
    r = APIRouter(tags=["operations"])
    required = settings.routing.required_backends

    @r.get("/healthz", response_model=Health, summary="Liveness",
           description="200 while the process serves HTTP; calls no backend.")
    async def healthz() -> Response:
        return Response(_HEALTHY, media_type="application/json")

    @r.get("/readyz", response_model=Readiness, summary="Readiness",
           description="200 when the mapping files are loaded and no required backend's circuit breaker is open; "
                       "otherwise a 503 `not-ready` problem whose `blocking` names the backends (and `backends` "
                       "gives every breaker's state).",
           responses=openapi_responses(503))
    def readyz() -> Response:
        try:
            rows = list(gateways.health())
            loaded = bool(gateways.mappings_loaded())
        except Exception:  # noqa: BLE001 - a failing probe means not ready, not a 500
            log.warning("readiness probe failed", exc_info=True)
            return problem_response(NOT_READY, "The readiness probe failed.")
        readiness = evaluate_readiness(rows, required, loaded)
        if readiness.status == "ready":
            return Response(readiness.model_dump_json(), media_type="application/json")
        reasons = []
        if not loaded:
            reasons.append("the mapping files are not loaded")
        if readiness.blocking:
            reasons.append("circuit breaker open for " + ", ".join(readiness.blocking))
        return problem_response(NOT_READY, "Not ready: " + "; ".join(reasons) + ".",
                                **readiness.model_dump(mode="json", exclude={"status"}))

    @r.get("/metrics", summary="Prometheus metrics", response_class=Response,
           responses={200: {"content": {"text/plain": {"example": "corebridge_http_requests_total{...} 1.0"}}}})
    def prometheus_metrics() -> Response:
        body, content_type = metrics.render()
        return Response(body, headers={"Content-Type": content_type})

    return r
