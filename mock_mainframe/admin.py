"""The admin endpoint: switch faults at run time, take a face down, close the business day.

A small JSON API on its own loopback port, so tests (and people) can drive the mock while it
runs. It is deliberately separate from the SOAP port: faults injected there never break it.

  GET    /admin/status            business date, endpoints, faults in force
  GET    /admin/faults            the rules, outages and counts
  PUT    /admin/faults            {"seed": 1, "rules": [FaultRule, ...]}  replace all rules
  POST   /admin/faults            FaultRule                                 add one rule
  DELETE /admin/faults            clear every rule and end every outage
  POST   /admin/outage            {"face": "soap", "seconds": 30}          take a face down
  DELETE /admin/outage/{face}     bring it back now
  POST   /admin/eod               write the business day's files and advance the date
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .faults import FaultInjector, FaultRule, FaultRuleError

log = logging.getLogger(__name__)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str, indent=1))


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status=status)


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"body is not JSON: {exc}"}),
                                 content_type="application/json") from exc


class AdminFace:
    """The admin HTTP server, running on its own event loop in a background thread."""

    def __init__(self, host: str, port: int, faults: FaultInjector,
                 status: Callable[[], dict[str, Any]],
                 close_day: Callable[[], dict[str, Any]] | None = None) -> None:
        self.host, self._port = host, port
        self.faults = faults
        self._status = status
        self._close_day = close_day
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/admin"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/admin/status", self._get_status)
        app.router.add_get("/admin/faults", self._get_faults)
        app.router.add_put("/admin/faults", self._put_faults)
        app.router.add_post("/admin/faults", self._post_fault)
        app.router.add_delete("/admin/faults", self._delete_faults)
        app.router.add_post("/admin/outage", self._post_outage)
        app.router.add_delete("/admin/outage/{face}", self._delete_outage)
        app.router.add_post("/admin/eod", self._post_eod)
        return app

    # -- handlers --------------------------------------------------------------------
    async def _get_status(self, _: web.Request) -> web.Response:
        status = await asyncio.to_thread(self._status)
        return _json({**status, "faults": self.faults.snapshot()})

    async def _get_faults(self, _: web.Request) -> web.Response:
        return _json(self.faults.snapshot())

    async def _put_faults(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("rules", []), list):
            return _error(400, 'expected {"seed": int (optional), "rules": [rule, ...]}')
        try:
            rules = [FaultRule.from_json(r) for r in body.get("rules", [])]
        except FaultRuleError as exc:
            return _error(400, f"bad fault rule: {exc}")
        seed = body.get("seed")
        if seed is not None and not isinstance(seed, int):
            return _error(400, "seed must be an integer")
        self.faults.set_rules(rules, seed=seed)
        log.info("fault rules replaced: %d rule(s), seed=%s", len(rules), seed)
        return _json(self.faults.snapshot())

    async def _post_fault(self, request: web.Request) -> web.Response:
        try:
            rule = FaultRule.from_json(await _body(request))
        except FaultRuleError as exc:
            return _error(400, f"bad fault rule: {exc}")
        self.faults.add_rule(rule)
        log.info("fault rule added: %s", rule)
        return _json(self.faults.snapshot(), status=201)

    async def _delete_faults(self, _: web.Request) -> web.Response:
        await asyncio.to_thread(self.faults.clear)
        return _json(self.faults.snapshot())

    async def _post_outage(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict):
            return _error(400, 'expected {"face": "soap|sftp|odbc", "seconds": number}')
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float):
            return _error(400, "seconds must be a number")
        try:
            await asyncio.to_thread(self.faults.outage, str(body.get("face")), float(seconds))
        except FaultRuleError as exc:
            return _error(400, str(exc))
        return _json(self.faults.snapshot(), status=201)

    async def _delete_outage(self, request: web.Request) -> web.Response:
        await asyncio.to_thread(self.faults.end_outage, request.match_info["face"])
        return _json(self.faults.snapshot())

    async def _post_eod(self, _: web.Request) -> web.Response:
        if self._close_day is None:
            return _error(501, "end-of-day processing is not configured")
        result = await asyncio.to_thread(self._close_day)
        return _json(result)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner = web.AppRunner(self.app(), access_log=None)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, self.host, self._port, reuse_address=True)
                loop.run_until_complete(site.start())
                server = site._server  # noqa: SLF001 - aiohttp exposes no public bound port
                self.port = server.sockets[0].getsockname()[1] if server else self._port
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="mock-admin", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise RuntimeError(f"admin endpoint could not start on {self.host}:{self._port}: {errors[0]}")

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None
