"""The SOAP face: a hand-written SOAP 1.1 endpoint on aiohttp's low-level server.

It runs in its own thread with its own event loop so that tests, the CLI and the other faces
can start and stop it like any object. Per request (POST ``/corebank/v1``):

  HTTP checks -> hardened parse -> envelope -> fault injection (``faults.decide`` once) ->
  WS-Security -> XSD validation of the Body payload -> the operation -> reply.

Reads against a SQLite ledger run inline on the loop (WAL readers never wait for a lock and a
primary-key lookup costs microseconds: measured faster than a thread hop); writes, and every
call against PostgreSQL, run in a small thread pool, because a writer may wait for the DB lock.
``GET <endpoint>?wsdl`` serves the WSDL file with ``soap:address`` set to the real endpoint; the
XSD is served at the URL the WSDL's relative ``schemaLocation`` resolves to
(``/corebank/CoreBanking.xsd``) and at ``<endpoint>?xsd=CoreBanking.xsd``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import posixpath
import socket
import sqlite3
import struct
import threading
import time
from typing import Any

from aiohttp import web

from ..config import MockConfig
from ..faults import FaultInjector
from ..ledger.posting import PostingEngine
from ..ledger.store import Ledger
from . import contract, envelope, wssecurity
from .envelope import SERVER, SoapError
from .operations import DISPATCH, Operations

log = logging.getLogger("mock_mainframe.soap")

DEFAULT_PATH = "/corebank/v1"
FACE = "soap"
_XML_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}
_CB_PREFIX_LEN = len(envelope.CB_NS) + 2
_LINGER_RESET = struct.pack("ii", 1, 0)
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def reset_transport(transport: Any) -> None:
    """Drop a connection with a TCP RST (SO_LINGER 0) instead of an orderly FIN."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class SoapFace:
    """The core's SOAP face. ``start()`` binds ``config.host:config.soap_port`` (0 = any free port)."""

    def __init__(self, config: MockConfig, ledger: Ledger, engine: PostingEngine,
                 faults: FaultInjector, *, path: str = DEFAULT_PATH, workers: int = 4,
                 inline_reads: bool | None = None) -> None:
        self.config = config
        self.ledger = ledger
        self.faults = faults
        self.path = path
        self._ops = Operations(ledger, engine)
        self._schema = contract.load_schema()
        self._wsdl_template = contract.wsdl_bytes()
        self._xsd = contract.xsd_bytes()
        self._xsd_path = posixpath.join(posixpath.dirname(path), contract.XSD_NAME)
        self._served_wsdl = b""
        self._workers = workers
        self._inline_reads = (ledger.dialect.name == "sqlite") if inline_reads is None else inline_reads
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: web.Server | None = None
        self._runner: web.ServerRunner | None = None
        self._site: web.TCPSite | None = None
        self._port: int | None = None
        self._down = False
        self._stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.requests = 0

    # -- life cycle -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("SOAP face not started")
        return self._port

    @property
    def url(self) -> str:
        """The endpoint URL (a wildcard bind address is given as the loopback address)."""
        host = _WILDCARDS.get(self.config.host, self.config.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.path}"

    @property
    def wsdl_url(self) -> str:
        return f"{self.url}?wsdl"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SoapFace:
        if self._thread is not None:
            raise RuntimeError("SOAP face already started")
        self._stopping = False
        self._down = False
        self._executor = concurrent.futures.ThreadPoolExecutor(self._workers,
                                                               thread_name_prefix="soap-ledger")
        self._loop = _new_loop()
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(ready, errors), name="soap-face",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(15) or errors:
            self._thread.join(5)
            self._thread = None
            self._executor.shutdown(wait=False)
            raise RuntimeError(f"SOAP face did not start on {self.config.host}:{self.config.soap_port}"
                               ) from (errors[0] if errors else None)
        self._served_wsdl = contract.served_wsdl(self._wsdl_template, self.url)
        self.faults.outage_listeners.append(self._on_outage)
        if self.faults.is_down(FACE):
            self._on_outage(FACE, True)
        log.info("SOAP face listening at %s (WSDL %s)", self.url, self.wsdl_url)
        return self

    def stop(self) -> None:
        """Close the listener and every connection, cancel in-flight requests, join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(ValueError):
            self.faults.outage_listeners.remove(self._on_outage)
        try:
            asyncio.run_coroutine_threadsafe(self._astop(), loop).result(timeout=15)
        except Exception:  # noqa: BLE001 - stopping anyway; the loop is stopped below
            log.exception("SOAP face did not shut down cleanly")
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(15)
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
            self._thread = None
            self._loop = None
            self._executor = None
            log.info("SOAP face stopped")

    def __enter__(self) -> SoapFace:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event, errors: list[BaseException]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._astart())
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            errors.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _astart(self) -> None:
        self._server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        self._runner = web.ServerRunner(self._server, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._bind(self.config.soap_port)
        self._port = self._runner.addresses[0][1]

    async def _bind(self, port: int) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.config.host, port, reuse_address=True, backlog=512)
        await site.start()
        self._site = site

    async def _astop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            for proto in self._server.connections:
                if proto.transport is not None:
                    proto.transport.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._site = None

    # -- outages ---------------------------------------------------------------------------
    def _on_outage(self, face: str, down: bool) -> None:
        """Fault-injector listener: an outage closes the listener and drops every connection."""
        loop = self._loop
        if face != FACE or loop is None or loop.is_closed():
            return
        fut = asyncio.run_coroutine_threadsafe(self._go_down() if down else self._go_up(), loop)
        if threading.current_thread() is not self._thread:
            try:
                fut.result(timeout=10)
            except Exception:  # noqa: BLE001 - a listener must not break the injector
                log.exception("SOAP face could not %s", "go down" if down else "come back up")

    async def _go_down(self) -> None:
        self._down = True
        site, self._site = self._site, None
        if site is not None:
            await site.stop()
        if self._server is not None:
            for proto in self._server.connections:
                reset_transport(proto.transport)
        log.warning("SOAP face DOWN (injected outage): listener closed, connections reset")

    async def _go_up(self) -> None:
        self._down = False
        if self._site is not None or self._stopping or self._port is None:
            return
        for attempt in range(50):
            try:
                await self._bind(self._port)
                break
            except OSError as exc:
                if attempt == 49:
                    raise
                log.debug("re-binding port %s failed (%s); retrying", self._port, exc)
                await asyncio.sleep(0.1)
        log.warning("SOAP face UP again at %s", self.url)

    # -- requests -------------------------------------------------------------------------
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            return await self._dispatch(request)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        if self._down:  # a request that slipped in as the outage began
            return self._reset(request)
        method = request.method
        if request.path != self.path:
            if request.path == self._xsd_path and method in ("GET", "HEAD"):
                return web.Response(body=self._xsd, headers=_XML_HEADERS)
            return self._fault(SoapError("CBE0007", f"no SOAP endpoint at {request.path}; the "
                                                    f"endpoint is {self.path}", http_status=404))
        if method != "POST":
            if method in ("GET", "HEAD"):
                served = self._serve_contract(request)
                if served is not None:
                    return served
            return self._fault(SoapError(
                "CBE0020", f"HTTP method {method} not allowed: POST a SOAP 1.1 envelope, or GET "
                           f"{self.path}?wsdl for the WSDL", http_status=405,
                headers={"Allow": "POST" if method not in ("GET", "HEAD") else "GET, POST"}))
        ctype = request.content_type
        if ctype != "text/xml":
            hint = (" (SOAP 1.2 is not supported)" if ctype == "application/soap+xml" else "")
            return self._fault(SoapError(
                "CBE0021", f"Content-Type {request.headers.get('Content-Type', '(none)')!r} not "
                           f"accepted{hint}: SOAP 1.1 needs text/xml", http_status=415))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            return self._fault(SoapError("CBE0022", f"request body too large: {exc.text}",
                                         http_status=413))
        try:
            env = envelope.parse(body)
        except SoapError as err:
            return self._fault(err, err.request_id)
        action = request.headers.get("SOAPAction", "").strip().strip('"')
        if action and action != f"{envelope.CB_NS}/{env.operation}":
            return self._fault(SoapError("CBE0008", f"SOAPAction {action!r} does not match the body's "
                                                    f"operation {env.operation} (expected "
                                                    f"{envelope.CB_NS}/{env.operation})"), env.request_id)
        return await self._serve(request, env)

    def _serve_contract(self, request: web.BaseRequest) -> web.StreamResponse | None:
        keys = {k.lower(): v for k, v in request.query.items()}
        if "wsdl" in keys:
            served = self._served_wsdl
            if self.config.host in _WILDCARDS and request.host:  # tell the client the address it used
                served = contract.served_wsdl(self._wsdl_template, f"http://{request.host}{self.path}")
            return web.Response(body=served, headers=_XML_HEADERS)
        if "xsd" in keys:
            if keys["xsd"] == contract.XSD_NAME:
                return web.Response(body=self._xsd, headers=_XML_HEADERS)
            return self._fault(SoapError("CBE0007", f"no schema {keys['xsd']!r}; the WSDL imports "
                                                    f"{contract.XSD_NAME}", http_status=404))
        return None

    async def _serve(self, request: web.BaseRequest, env: envelope.Envelope) -> web.StreamResponse:
        op, rid = env.operation, env.request_id
        started = time.perf_counter()
        decision = self.faults.decide(FACE, op)
        if not decision.clean:
            if decision.delay_s:
                await asyncio.sleep(decision.delay_s)
            if decision.error == "fault":
                log.info("soap %s rid=%s injected fault", op, rid)
                return self._fault(SoapError("CBE0030", f"INJECTED FAULT: simulated system error in {op} "
                                                        "(fault injection)", faultcode=SERVER), rid)
            if decision.error == "http500":
                log.info("soap %s rid=%s injected http500", op, rid)
                return web.Response(status=500, text=f"Internal Server Error (injected http500 in {op})\n",
                                    content_type="text/plain")
            if decision.error == "reset":
                log.info("soap %s rid=%s injected reset", op, rid)
                return self._reset(request)
            if decision.error == "hang":
                log.info("soap %s rid=%s injected hang %.1fs", op, rid, decision.hang_s)
                await asyncio.sleep(decision.hang_s)
                return self._reset(request)
        try:
            wssecurity.check(env.headers, self.config.soap_user, self.config.soap_password)
            self._validate(env)
            body_xml, rc = await self._execute(op, env.payload)
        except SoapError as err:
            log.info("soap %s rid=%s fault %s %s", op, rid, err.code, err.text)
            return self._fault(err, rid)
        except Exception as exc:  # noqa: BLE001 - any failure is a soap:Server fault, never a crash
            db = _is_db_error(exc)
            log.exception("soap %s rid=%s %s", op, rid, "ledger failure" if db else "internal error")
            what = "ledger failure" if db else "internal error"
            return self._fault(SoapError("CBE0031" if db else "CBE0039",
                                         f"SYSTEM ERROR (RETURN-CODE 0012): {what} "
                                         f"{type(exc).__name__}: {exc}", faultcode=SERVER), rid)
        self.requests += 1
        if decision.drop_after_commit and op == "FundsTransfer":
            log.info("soap %s rid=%s rc=%s committed, response dropped (injected)", op, rid, rc)
            return self._reset(request)
        log.info("soap %s rid=%s rc=%s %.2fms", op, rid, rc, (time.perf_counter() - started) * 1000)
        return web.Response(body=envelope.reply(body_xml, rid), headers=_XML_HEADERS)

    def _validate(self, env: envelope.Envelope) -> None:
        if self._schema.validate(env.payload):
            return
        error = self._schema.error_log[0]
        path = _readable_path(error.path, env.operation)
        raise SoapError("CBE0005", f"request does not match CoreBanking.xsd at {path}: {error.message}",
                        path=path)

    async def _execute(self, op: str, payload: Any) -> tuple[str, str]:
        method, writes = DISPATCH[op]
        fields = {child.tag[_CB_PREFIX_LEN:]: child.text or "" for child in payload
                  if isinstance(child.tag, str)}
        if self._inline_reads and not writes:
            return method(self._ops, fields)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, method, self._ops, fields)

    # -- replies ----------------------------------------------------------------------------
    @staticmethod
    def _fault(err: SoapError, request_id: str | None = None) -> web.Response:
        return web.Response(status=err.http_status, body=envelope.fault(err, request_id),
                            headers={**_XML_HEADERS, **err.headers})

    @staticmethod
    def _reset(request: web.BaseRequest) -> web.Response:
        reset_transport(request.transport)
        # aiohttp's attempt to write this reply to the closed transport is a quiet ConnectionError.
        return web.Response(status=500)


def _is_db_error(exc: BaseException) -> bool:
    """A failure of the ledger's database (SQLite or PostgreSQL), as opposed to a bug of ours."""
    return isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("psycopg")


def _readable_path(path: str | None, operation: str) -> str:
    """lxml's '/cb:BalanceInquiry/cb:ACCT-NO' (or '/*' style) as '/BalanceInquiry/ACCT-NO'."""
    if not path:
        return f"/{operation}"
    parts = [p.split(":", 1)[-1] for p in path.split("/") if p]
    return "/" + "/".join(parts) if parts else f"/{operation}"


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it comes with uvicorn[standard]), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
