"""Toxiproxy's (v2) HTTP API, on the fault proxy's own loop, so a real Toxiproxy can replace it.

  GET    /version                             {"version": ...}
  POST   /reset                               enable every proxy, remove every toxic     204
  GET    /proxies                             {name: proxy, ...}
  POST   /proxies                             {name, listen, upstream, enabled}          201 proxy
  GET    /proxies/{name}                      proxy
  POST   /proxies/{name}                      {listen?, upstream?, enabled?}             200 proxy
  DELETE /proxies/{name}                                                                 204
  GET    /proxies/{name}/toxics               [toxic, ...]
  POST   /proxies/{name}/toxics               {name?, type, stream?, toxicity?, attributes}  200 toxic
  GET    /proxies/{name}/toxics/{toxic}       toxic
  POST   /proxies/{name}/toxics/{toxic}       {toxicity?, attributes?}                   200 toxic
  DELETE /proxies/{name}/toxics/{toxic}                                                  204

A proxy is {name, listen, upstream, enabled, toxics}; a toxic {name, type, stream, toxicity,
attributes}. Errors are {"error": message, "status": code}: 400 bad request (the message names the
field), 404 unknown proxy or toxic, 409 duplicate name (or a listen address that cannot be bound).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .proxy import Engine
from .toxics import BadRequest, ProxyError, Toxic

VERSION = "2.9.0-corebridge"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _no_content() -> web.Response:
    return web.Response(status=204)


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProxyError as exc:
        return _json({"error": str(exc), "status": exc.status}, status=exc.status)


def make_app(engine: Engine) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[_errors])

    async def version(_: web.Request) -> web.Response:
        return _json({"version": VERSION})

    async def reset(_: web.Request) -> web.Response:
        await engine.reset()
        return _no_content()

    async def list_proxies(_: web.Request) -> web.Response:
        return _json({n: p.to_json() for n, p in engine.proxies.items()})

    async def create_proxy(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict):
            raise BadRequest("a proxy must be a JSON object {name, listen, upstream, enabled}")
        unknown = sorted(set(body) - {"name", "listen", "upstream", "enabled"})
        if unknown:
            raise BadRequest(f"unknown field(s) {unknown} in proxy")
        for key in ("name", "upstream"):
            if key not in body:
                raise BadRequest(f"{key} is required")
        proxy = await engine.create(body["name"], body["upstream"], body.get("listen", "127.0.0.1:0"),
                                    body.get("enabled", True))
        return _json(proxy.to_json(), status=201)

    async def get_proxy(request: web.Request) -> web.Response:
        return _json(engine.get(request.match_info["proxy"]).to_json())

    async def update_proxy(request: web.Request) -> web.Response:
        proxy = await engine.update(request.match_info["proxy"], await _body(request))
        return _json(proxy.to_json())

    async def delete_proxy(request: web.Request) -> web.Response:
        await engine.delete(request.match_info["proxy"])
        return _no_content()

    async def list_toxics(request: web.Request) -> web.Response:
        proxy = engine.get(request.match_info["proxy"])
        return _json([t.to_json() for t in proxy.toxics.values()])

    async def create_toxic(request: web.Request) -> web.Response:
        proxy = engine.get(request.match_info["proxy"])
        toxic = proxy.add_toxic(Toxic.from_json(await _body(request)))
        return _json(toxic.to_json())

    async def get_toxic(request: web.Request) -> web.Response:
        proxy = engine.get(request.match_info["proxy"])
        return _json(proxy.toxic(request.match_info["toxic"]).to_json())

    async def update_toxic(request: web.Request) -> web.Response:
        proxy = engine.get(request.match_info["proxy"])
        toxic = proxy.update_toxic(request.match_info["toxic"], await _body(request))
        return _json(toxic.to_json())

    async def delete_toxic(request: web.Request) -> web.Response:
        engine.get(request.match_info["proxy"]).remove_toxic(request.match_info["toxic"])
        return _no_content()

    r = app.router
    r.add_get("/version", version)
    r.add_post("/reset", reset)
    r.add_get("/proxies", list_proxies)
    r.add_post("/proxies", create_proxy)
    r.add_get("/proxies/{proxy}", get_proxy)
    r.add_post("/proxies/{proxy}", update_proxy)
    r.add_patch("/proxies/{proxy}", update_proxy)
    r.add_delete("/proxies/{proxy}", delete_proxy)
    r.add_get("/proxies/{proxy}/toxics", list_toxics)
    r.add_post("/proxies/{proxy}/toxics", create_toxic)
    r.add_get("/proxies/{proxy}/toxics/{toxic}", get_toxic)
    r.add_post("/proxies/{proxy}/toxics/{toxic}", update_toxic)
    r.add_patch("/proxies/{proxy}/toxics/{toxic}", update_toxic)
    r.add_delete("/proxies/{proxy}/toxics/{toxic}", delete_toxic)
    return app
