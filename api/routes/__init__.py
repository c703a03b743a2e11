"""HTTP routes, one module per resource. Routes are thin: parse, call a service, serialise.

Routers are built per app (``build_routers``) from the app's own services and authenticator, so
nothing here is global: two apps in one process (tests) share no state.

Responses are serialised straight from the canonical models (``model_dump_json``: money amounts as
strings, ISO dates) into a ``Response``, skipping FastAPI's re-validation of the return value; the
``response_model`` of each route still documents the shape in OpenAPI.

The route modules do not use ``from __future__ import annotations``: their dependencies are built
inside the router factories, and FastAPI must see those annotations as objects, not strings it
would try to resolve from module globals.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.responses import Response

from api.auth import Authenticator
from api.gateways import Gateways
from api.observability import Metrics
from api.services import Services
from api.settings import Settings

__all__ = ["build_routers", "json_response"]


def json_response(model: BaseModel, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, headers=dict(headers) if headers else None,
                    media_type="application/json")


def build_routers(settings: Settings, services: Services, auth: Authenticator, gateways: Gateways,
                  metrics: Metrics) -> list[APIRouter]:
    from api.routes import accounts, customers, health, transfers

    return [
        customers.router(services, auth),
        accounts.router(services, auth, settings),
        transfers.router(services, auth),
        health.router(settings, gateways, metrics),
    ]
