"""The TCP relay: named proxies, each a listener that relays to an upstream through its toxics.

Everything runs on one asyncio loop. :class:`Engine` is the state (used by the HTTP API on that
loop); :class:`FaultProxy` runs an engine on its own loop thread and gives a thread-safe Python API.

Per connection and direction, a reader task stamps each chunk with its arrival time and queues it;
a writer task passes each chunk through the toxics that apply *now* (so toxics added or removed
while a connection is live affect the next chunk), then writes it. A close (EOF) from one side is
passed on as a half-close (``write_eof``); when both directions have closed, both sockets close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from .toxics import BadRequest, Conflict, NotFound, Toxic

log = logging.getLogger(__name__)

READ_SIZE = 32 * 1024
QUEUE_CHUNKS = 64


def parse_hostport(value: Any, field: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port); BadRequest naming ``field`` otherwise."""
    if not isinstance(value, str) or ":" not in value:
        raise BadRequest(f"{field} must be 'host:port', got {value!r}")
    host, _, port_s = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_s)
    except ValueError:
        port = -1
    if not host or not 0 <= port <= 65535:
        raise BadRequest(f"{field} must be 'host:port' with a port 0..65535, got {value!r}")
    return host, port


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Close(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, reset: bool = False) -> None:
        super().__init__("reset" if reset else "close")
        self.reset = reset


class Connection:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: Proxy, number: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proxy, self.number = proxy, number
        self.client_r, self.client_w = reader, writer
        self.up_w: asyncio.StreamWriter | None = None
        self._applies: dict[Toxic, bool] = {}
        self._limit_sent: dict[str, int] = {}
        seed = proxy.engine.seed
        self._rng = {d: random.Random(f"{seed}|{proxy.name}|{number}|{d}") for d in ("upstream", "downstream")}
        self._timers: dict[Toxic, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._abort_reset: bool | None = None

    # -- toxics ---------------------------------------------------------------------------
    def applies(self, toxic: Toxic) -> bool:
        hit = self._applies.get(toxic)
        if hit is None:
            draw = random.Random(f"{self.proxy.engine.seed}|{self.proxy.name}|{self.number}|{toxic.draw_key()}")
            hit = self._applies[toxic] = draw.random() < toxic.toxicity
        return hit

    def _chain(self, direction: str) -> list[Toxic]:
        return [t for t in self.proxy.toxics.values() if t.stream == direction and self.applies(t)]

    def toxics_changed(self) -> None:
        """Start timers for new ``timeout`` toxics, cancel those of removed ones."""
        current = set(self.proxy.toxics.values())
        for toxic, timer in list(self._timers.items()):
            if toxic not in current:
                timer.cancel()
                del self._timers[toxic]
        for toxic in current:
            if (toxic.type == "timeout" and toxic.attributes["timeout"] > 0 and toxic not in self._timers
                    and self.applies(toxic)):
                self._timers[toxic] = asyncio.create_task(self._timeout(toxic))

    async def _timeout(self, toxic: Toxic) -> None:
        await asyncio.sleep(toxic.attributes["timeout"] / 1000)
        if toxic in self.proxy.toxics.values():
            self.abort(reset=False)

    async def _through(self, data: bytes, ts: float, chain: list[Toxic], i: int, direction: str,
                       dst: asyncio.StreamWriter) -> None:
        if i == len(chain):
            dst.write(data)
            await dst.drain()
            return
        async for piece in self._apply(chain[i], data, ts, direction):
            await self._through(piece, ts, chain, i + 1, direction, dst)

    async def _apply(self, toxic: Toxic, data: bytes, ts: float, direction: str) -> AsyncIterator[bytes]:
        a, kind = toxic.attributes, toxic.type
        loop = asyncio.get_running_loop()
        if kind == "latency":
            delay = a["latency"] + (self._rng[direction].uniform(-a["jitter"], a["jitter"]) if a["jitter"] else 0)
            wait = ts + delay / 1000 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            yield data
        elif kind == "bandwidth":
            rate = a["rate"]  # KB/s == bytes/ms
            if rate <= 0:
                yield data
                return
            step = max(1, int(rate * 100))  # 100 ms worth
            for off in range(0, len(data), step):
                piece = data[off:off + step]
                await asyncio.sleep(len(piece) / (rate * 1000))
                yield piece
        elif kind == "slicer":
            rng, avg, var = self._rng[direction], int(a["average_size"]), int(a["size_variation"])
            off = 0
            while off < len(data):
                if off and a["delay"]:
                    await asyncio.sleep(a["delay"] / 1_000_000)
                size = max(1, avg + rng.randint(-var, var) if var else avg)
                yield data[off:off + size]
                off += size
        elif kind == "limit_data":
            limit = int(a["bytes"])
            sent = self._limit_sent.get(toxic.name, 0)
            if sent >= limit:
                raise _Close()
            piece = data[:limit - sent]
            self._limit_sent[toxic.name] = sent + len(piece)
            yield piece
            if sent + len(piece) >= limit:
                raise _Close()
        elif kind == "timeout":
            return  # data dropped on the ground; the timer (if any) closes the connection
        elif kind == "reset_peer":
            await asyncio.sleep(a["timeout"] / 1000)
            raise _Close(reset=True)
        else:  # slow_close acts on close only
            yield data

    # -- relay ------------------------------------------------------------------------------
    async def run(self) -> None:
        self._task = asyncio.current_task()
        tasks: list[asyncio.Task[None]] = []
        reset = False
        try:
            try:
                up_r, self.up_w = await asyncio.open_connection(self.proxy.up_host, self.proxy.up_port)
            except OSError as exc:
                log.info("proxy %s: upstream %s refused: %s", self.proxy.name, self.proxy.upstream, exc)
                return
            self.toxics_changed()
            q_up: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue(QUEUE_CHUNKS)
            q_down: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue(QUEUE_CHUNKS)
            tasks = [asyncio.create_task(self._read(self.client_r, q_up)),
                     asyncio.create_task(self._read(up_r, q_down))]
            writers = [asyncio.create_task(self._write("upstream", q_up, self.up_w)),
                       asyncio.create_task(self._write("downstream", q_down, self.client_w))]
            tasks += writers
            await asyncio.gather(*writers)
        except _Close as exc:
            reset = exc.reset
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            reset = bool(self._abort_reset)
        finally:
            for t in [*tasks, *self._timers.values()]:
                t.cancel()
            await asyncio.gather(*tasks, *self._timers.values(), return_exceptions=True)
            self._timers.clear()
            for w in (self.client_w, self.up_w):
                if w is not None:
                    _close(w, reset)
            self.proxy.connections.discard(self)

    def abort(self, reset: bool = False) -> None:
        """Close this connection from outside (proxy disabled, timeout toxic fired)."""
        if self._task is not None and self._abort_reset is None:
            self._abort_reset = reset
            self._task.cancel()

    async def _read(self, src: asyncio.StreamReader, q: asyncio.Queue[tuple[bytes, float] | None]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await src.read(READ_SIZE):
                await q.put((data, loop.time()))
        except (ConnectionError, OSError):
            pass
        await q.put(None)

    async def _write(self, direction: str, q: asyncio.Queue[tuple[bytes, float] | None],
                     dst: asyncio.StreamWriter) -> None:
        while (item := await q.get()) is not None:
            data, ts = item
            await self._through(data, ts, self._chain(direction), 0, direction, dst)
        for toxic in self._chain(direction):
            if toxic.type == "slow_close":
                await asyncio.sleep(toxic.attributes["delay"] / 1000)
        if dst.can_write_eof() and not dst.is_closing():
            with contextlib.suppress(OSError):
                dst.write_eof()


def _close(w: asyncio.StreamWriter, reset: bool) -> None:
    if reset:
        sock = w.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()
    else:
        w.close()


class Proxy:
    """A named listener -> upstream relay with its toxics (ordered by insertion)."""

    def __init__(self, engine: Engine, name: str, listen: str, upstream: str) -> None:
        self.engine, self.name = engine, name
        self.host, self.port = parse_hostport(listen, "listen")
        self.up_host, self.up_port = parse_hostport(upstream, "upstream")
        self.enabled = False
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._count = 0

    @property
    def listen(self) -> str:
        return _fmt(self.host, self.port)

    @property
    def upstream(self) -> str:
        return _fmt(self.up_host, self.up_port)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": [t.to_json() for t in self.toxics.values()]}

    async def enable(self) -> None:
        if self.enabled:
            return
        try:
            self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        except OSError as exc:
            raise Conflict(f"listen {self.listen}: cannot bind: {exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    async def disable(self) -> None:
        """Close the listener and drop every live connection (like Toxiproxy)."""
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        conns = list(self.connections)
        for c in conns:
            c.abort()
        tasks = [c._task for c in conns if c._task is not None]  # noqa: SLF001
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.enabled:
            writer.close()
            return
        conn = Connection(self, self._count, reader, writer)
        self._count += 1
        self.connections.add(conn)
        await conn.run()

    def _changed(self) -> None:
        for c in list(self.connections):
            c.toxics_changed()

    def add_toxic(self, toxic: Toxic) -> Toxic:
        if toxic.name in self.toxics:
            raise Conflict(f"toxic {toxic.name!r} already exists on proxy {self.name!r}")
        self.toxics[toxic.name] = toxic
        self._changed()
        return toxic

    def toxic(self, name: str) -> Toxic:
        try:
            return self.toxics[name]
        except KeyError:
            raise NotFound(f"toxic {name!r} not found on proxy {self.name!r}") from None

    def update_toxic(self, name: str, data: Any) -> Toxic:
        new = self.toxic(name).updated(data)
        self.toxics[name] = new  # keeps its place in the order
        self._changed()
        return new

    def remove_toxic(self, name: str) -> None:
        self.toxic(name)
        del self.toxics[name]
        self._changed()


class Engine:
    """All proxies. Call only on its event loop."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.proxies: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise NotFound(f"proxy {name!r} not found") from None

    async def create(self, name: Any, upstream: Any, listen: Any = "127.0.0.1:0", enabled: Any = True) -> Proxy:
        if not isinstance(name, str) or not name or "/" in name:
            raise BadRequest(f"name must be a non-empty string without '/', got {name!r}")
        if not isinstance(enabled, bool):
            raise BadRequest(f"enabled must be true or false, got {enabled!r}")
        if name in self.proxies:
            raise Conflict(f"proxy {name!r} already exists")
        proxy = Proxy(self, name, listen, upstream)
        if enabled:
            await proxy.enable()
        self.proxies[name] = proxy
        return proxy

    async def update(self, name: str, data: Any) -> Proxy:
        """Toxiproxy's POST /proxies/{name}: change listen, upstream and/or enabled."""
        proxy = self.get(name)
        if not isinstance(data, dict):
            raise BadRequest("a proxy update must be a JSON object {listen, upstream, enabled}")
        unknown = sorted(set(data) - {"name", "listen", "upstream", "enabled"})
        if unknown:
            raise BadRequest(f"unknown field(s) {unknown} in proxy")
        if "name" in data and data["name"] != name:
            raise BadRequest("name of a proxy cannot be changed")
        enabled = data.get("enabled", proxy.enabled)
        if not isinstance(enabled, bool):
            raise BadRequest(f"enabled must be true or false, got {enabled!r}")
        new_listen = parse_hostport(data["listen"], "listen") if "listen" in data else None
        new_up = parse_hostport(data["upstream"], "upstream") if "upstream" in data else None
        restart = new_listen is not None and new_listen != (proxy.host, proxy.port)
        if new_up is not None:
            proxy.up_host, proxy.up_port = new_up  # new connections go there
        if (restart or not enabled) and proxy.enabled:
            await proxy.disable()
        if new_listen is not None:
            proxy.host, proxy.port = new_listen
        if enabled and not proxy.enabled:
            await proxy.enable()
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.disable()
        del self.proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (Toxiproxy's POST /reset)."""
        for proxy in self.proxies.values():
            proxy.toxics.clear()
            proxy._changed()  # noqa: SLF001
            await proxy.enable()

    async def close(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.disable()


class FaultProxy:
    """A fault proxy on its own loop thread, with a thread-safe Python API and optional HTTP API.

    >>> with FaultProxy(seed=1) as fp:
    ...     p = fp.create("core", upstream="127.0.0.1:8080")
    ...     fp.add_toxic("core", "latency", latency=200, jitter=50)
    """

    def __init__(self, seed: int = 0, api_listen: str | None = None) -> None:
        self.engine = Engine(seed)
        self._api_listen = parse_hostport(api_listen, "api_listen") if api_listen else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self.api_port: int | None = None

    @property
    def api_url(self) -> str | None:
        if self._api_listen is None or self.api_port is None:
            return None
        return f"http://{_fmt(self._api_listen[0], self.api_port)}"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                if self._api_listen is not None:
                    loop.run_until_complete(self._start_api())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            self._thread.join(5)
            self._thread = self._loop = None
            raise RuntimeError(f"fault proxy could not start: {errors[0]}")
        return self

    async def _start_api(self) -> None:
        from aiohttp import web

        from .api import make_app

        assert self._api_listen is not None
        self._runner = web.AppRunner(make_app(self.engine), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._api_listen[0], self._api_listen[1], reuse_address=True)
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes no public bound port
        self.api_port = server.sockets[0].getsockname()[1] if server else self._api_listen[1]

    async def _shutdown(self) -> None:
        await self.engine.close()
        if self._runner is not None:
            await self._runner.cleanup()
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the fault proxy is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(15)

    # -- Python API (thread-safe) -----------------------------------------------------------
    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True) -> Proxy:
        return self._call(self.engine.create(name, upstream, listen, enabled))

    def get(self, name: str) -> Proxy:
        async def go() -> Proxy:
            return self.engine.get(name)
        return self._call(go())

    def proxies(self) -> dict[str, dict[str, Any]]:
        async def go() -> dict[str, dict[str, Any]]:
            return {n: p.to_json() for n, p in self.engine.proxies.items()}
        return self._call(go())

    def update(self, name: str, **changes: Any) -> Proxy:
        return self._call(self.engine.update(name, changes))

    def disable(self, name: str) -> Proxy:
        return self.update(name, enabled=False)

    def enable(self, name: str) -> Proxy:
        return self.update(name, enabled=True)

    def delete(self, name: str) -> None:
        self._call(self.engine.delete(name))

    def add_toxic(self, proxy: str, type: str, *, name: str | None = None,
                  stream: str = "downstream", toxicity: float = 1.0, **attributes: Any) -> Toxic:
        async def go() -> Toxic:
            p = self.engine.get(proxy)
            return p.add_toxic(Toxic.create(type, name=name, stream=stream, toxicity=toxicity,
                                            attributes=attributes))
        return self._call(go())

    def update_toxic(self, proxy: str, name: str, *, toxicity: float | None = None, **attributes: Any) -> Toxic:
        data: dict[str, Any] = {"attributes": attributes}
        if toxicity is not None:
            data["toxicity"] = toxicity

        async def go() -> Toxic:
            return self.engine.get(proxy).update_toxic(name, data)
        return self._call(go())

    def remove_toxic(self, proxy: str, name: str) -> None:
        async def go() -> None:
            self.engine.get(proxy).remove_toxic(name)
        self._call(go())

    def reset(self) -> None:
        self._call(self.engine.reset())
