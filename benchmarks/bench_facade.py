"""The facade end to end: ``GET /v1/accounts/{id}/balance`` through uvicorn + the facade + the adapters
against the mock mainframe, beside the same BalanceInquiry posted straight to the mock's SOAP face.

Four processes on one (2-core) machine, as in production:

* the mock mainframe (``python -m mock_mainframe`` via :func:`api.demo.start_mock`, 40 customers);
* the facade: ``corebridge serve --workers 1`` (``python -m api.cli serve``: uvicorn's ``auto`` loop and
  HTTP parser, which are uvloop and httptools since ``uvicorn[standard]`` is installed: :func:`_server_stack`
  checks it and the rows say so), configured through ``COREBRIDGE_*`` environment variables with
  the demo settings of ``make run`` (balances over SOAP, the ownership look-up over the ODBC replica;
  the per-client rate limit raised out of the way, since one benchmark client is many app users);
* a load generator (aiohttp on uvloop, N keep-alive connections, each sending its next request as soon as
  the previous answer is read: a closed loop), in its own process so that it does not share a GIL with
  either server;
* this process, which orchestrates and measures.

The baseline is what any client of the core pays at least: the BalanceInquiry envelope the adapter would
send (WS-Security included, built once by zeep) POSTed over keep-alive connections to the SOAP face, with
the same generator, duration and concurrency. Rounds alternate baseline and facade so that drift on a
shared machine hits both; each figure is the median over rounds (p50/p99 are per-request latencies seen by
the generator, warm-up excluded). Per facade request the stack does more than the baseline's one call: the
HTTP server and FastAPI, a token check (cached), the ownership check (remembered for 30 s after one ODBC
look-up), the resilience pipeline, the SOAP call on the event loop (envelope template, strict lxml reader,
the mapping to canonical), the access log line and the metrics.

One worker: the mock and the load generator share the same two cores, and a second worker
(``corebridge serve --workers 2``) was no faster at c=32 (1,969 vs 1,965 req/s, measured on a quiet
machine): the machine is CPU-bound, not the worker's event loop.

Cold start: spawn ``corebridge serve``, poll ``/readyz`` every 10 ms, stop the clock at the first 200 (the
median of a few starts), beside a bare uvicorn hello-world app (``python -m uvicorn``). Memory: the RSS of
the facade's single uvicorn worker after the load, beside the bare app's after a short load.

``python -m benchmarks.bench_facade [seconds per run] [rounds]``
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import psutil
from lxml import etree
from pydantic import BaseModel, SecretStr

from api.demo import stop_child

DURATION = 5.0
WARMUP = 1.0
ROUNDS = 3
CONCURRENCY = (1, 32)
COLD_STARTS = 3
MOCK_ARGS = ["--soap-port", "0", "--sftp-port", "0", "--admin-port", "0", "--customers", "40", "--seed", "7",
             "--outbox-days", "1", "--log-level", "WARNING"]
CB = "urn:corebank:mainframe:v1"
#: on top of the demo settings: one benchmark client stands for many app users (no per-client limit in the
#: way); calls queue at the bulkheads instead of being shed (with no wait, a single worker answered a third
#: of a 32-connection closed loop with 503 backend-unavailable while the core was healthy); and the SOAP
#: bulkhead and pool let the facade keep as many calls in flight at the core as the direct baseline does
#: (32), so both put the same concurrency on the core. The default bulkhead (10 calls in flight, a
#: protective cap a bank sizes to its core) is measured too, at c=32, and reported beside it.
LOAD_TEST_SETTINGS = {
    "COREBRIDGE_RATE_LIMIT__RATE_PER_SECOND": "1000000", "COREBRIDGE_RATE_LIMIT__BURST": "1000000",
    "COREBRIDGE_RESILIENCE__SOAP__BULKHEAD_MAX_WAIT": "2.0", "COREBRIDGE_RESILIENCE__ODBC__BULKHEAD_MAX_WAIT": "2.0",
    "COREBRIDGE_RESILIENCE__SOAP__BULKHEAD_SIZE": "32", "COREBRIDGE_BACKENDS__SOAP__POOL_SIZE": "32",
}
DEFAULT_BULKHEAD = {"COREBRIDGE_RESILIENCE__SOAP__BULKHEAD_SIZE": "10", "COREBRIDGE_BACKENDS__SOAP__POOL_SIZE": "20"}

HELLO_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"ready"}'})
'''


# -- processes -----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env_of(settings: BaseModel, prefix: str = "COREBRIDGE_") -> dict[str, str]:
    """The explicitly set settings as ``COREBRIDGE_SECTION__KEY`` variables, secrets revealed."""
    env: dict[str, str] = {}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        key = prefix + name.upper()
        if isinstance(value, BaseModel):
            env.update(_env_of(value, key + "__"))
        elif value is None:
            continue
        elif isinstance(value, SecretStr):
            env[key] = value.get_secret_value()
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        elif isinstance(value, dict | list | tuple):
            env[key] = json.dumps(value)
        else:
            env[key] = str(value)
    return env


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COREBRIDGE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                      env.get("PYTHONPATH")]))
    return env


def _uvicorn(target: str, port: int, env: dict[str, str], log: Path, *, factory: bool = False,
             app_dir: Path | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--no-access-log", "--log-level", "warning"]
    if factory:
        cmd.append("--factory")
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _corebridge_serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``corebridge serve`` (``python -m api.cli serve``) on ``port``, configured by ``env``."""
    cmd = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _request(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
             timeout: float = 5.0) -> tuple[int, bytes]:
    """One request on a fresh connection (http.client: no proxy from the environment on loopback)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                     headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _start_ready(start: Any, port: int, log: Path, timeout: float = 60.0) -> tuple[subprocess.Popen, float]:
    """Spawn with ``start()``; seconds from the spawn to the first 200 from ``/readyz``."""
    t0 = time.perf_counter()
    proc = start()
    url = f"http://127.0.0.1:{port}/readyz"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see {log}:\n{log.read_text()[-3000:]}")
        try:
            status, _ = _request(url, timeout=1.0)
        except OSError:
            status = 0
        if status == 200:
            return proc, time.perf_counter() - t0
        time.sleep(0.01)
    stop_child(proc)
    raise RuntimeError(f"not ready within {timeout:.0f} s; see {log}")


# -- load generator (its own process) ------------------------------------------------------------------
def _generator(conn) -> None:
    """Child process: run load jobs sent over ``conn`` until ``None``; answer each with a summary.

    A request counts as good when its status is ``ok_status`` (and its body holds ``ok_marker``, if
    given). For writes, each request can be a new one: ``fresh_key`` sends a new ``Idempotency-Key``,
    ``placeholder`` is replaced in the body by a new 16-character reference."""
    import asyncio
    import secrets
    import uuid

    import aiohttp
    import uvloop

    async def job(spec: dict[str, Any]) -> dict[str, Any]:
        n, url, body = spec["concurrency"], spec["url"], spec["body"]
        headers, method = spec["headers"], spec["method"]
        ok_status, ok_marker = spec.get("ok_status", 200), spec.get("ok_marker")
        fresh_key, placeholder = spec.get("fresh_key", False), spec.get("placeholder")
        connector = aiohttp.TCPConnector(limit=n, limit_per_host=n, ttl_dns_cache=None)
        latencies: list[float] = []
        errors = 0
        statuses: dict[int, int] = {}
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30),
                                         skip_auto_headers=("User-Agent",)) as session:
            start = time.perf_counter()
            measure_from = start + spec["warmup"]
            end = measure_from + spec["duration"]

            async def worker() -> None:
                nonlocal errors
                while True:
                    data = body
                    if placeholder is not None:
                        data = body.replace(placeholder, ("BX" + secrets.token_hex(7).upper()).encode())
                    h = {**headers, "Idempotency-Key": uuid.uuid4().hex} if fresh_key else headers
                    t0 = time.perf_counter()
                    if t0 >= end:
                        return
                    async with session.request(method, url, data=data, headers=h) as response:
                        reply = await response.read()
                        ok = response.status == ok_status and (ok_marker is None or ok_marker in reply)
                        statuses[response.status] = statuses.get(response.status, 0) + 1
                    t1 = time.perf_counter()
                    if t0 >= measure_from and t1 <= end:
                        latencies.append(t1 - t0)
                        errors += not ok

            await asyncio.gather(*(worker() for _ in range(n)))
        latencies.sort()
        count = len(latencies)
        return {"count": count, "errors": errors, "statuses": statuses, "rps": count / spec["duration"],
                "p50_ms": latencies[count // 2] * 1000 if count else float("nan"),
                "p99_ms": latencies[min(count - 1, int(count * 0.99))] * 1000 if count else float("nan")}

    while True:
        spec = conn.recv()
        if spec is None:
            return
        conn.send(uvloop.run(job(spec)))


class LoadGenerator:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_generator, args=(child,), daemon=True)
        self._proc.start()

    def run(self, url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str],
            concurrency: int, duration: float, warmup: float, ok_status: int = 200, ok_marker: bytes | None = None,
            fresh_key: bool = False, placeholder: bytes | None = None) -> dict[str, Any]:
        self._conn.send({"url": url, "method": method, "body": body, "headers": headers,
                         "concurrency": concurrency, "duration": duration, "warmup": warmup,
                         "ok_status": ok_status, "ok_marker": ok_marker, "fresh_key": fresh_key,
                         "placeholder": placeholder})
        if not self._conn.poll(duration + warmup + 120):
            raise RuntimeError("the load generator did not answer")
        result = self._conn.recv()
        if result["errors"] or not result["count"]:
            raise RuntimeError(f"{url}: {result['errors']} of {result['count']} answers were not good ({ok_status}) "
                               f"(statuses {result['statuses']})")
        return result

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


# -- the two clients -----------------------------------------------------------------------------------
def _soap_request(settings: Any, account: str) -> tuple[bytes, dict[str, str]]:
    """The BalanceInquiry envelope (and headers) the adapter would send, built once by zeep."""
    from zeep.wsdl.utils import etree_to_string

    from adapters.soap import SoapCore
    from mappings.engine import MappingRegistry

    with SoapCore(settings.backends.soap.to_adapter_settings(), MappingRegistry.load()) as adapter:
        envelope, headers = adapter.service._binding._create("BalanceInquiry", (), {"ACCT-NO": account},
                                                             client=adapter.client)
        return etree_to_string(envelope), dict(headers)


def _server_stack() -> str:
    """What uvicorn's ``auto`` loop and HTTP settings pick here: uvloop and httptools when importable."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    bulkhead = LOAD_TEST_SETTINGS["COREBRIDGE_RESILIENCE__SOAP__BULKHEAD_SIZE"]
    return f"corebridge serve: uvicorn, 1 worker, {loop} + {http}, SOAP bulkhead {bulkhead}"


def _median(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def _rss_mb(proc: subprocess.Popen) -> float:
    return psutil.Process(proc.pid).memory_info().rss / 2**20


def run(duration: float = DURATION, rounds: int = ROUNDS) -> list[dict]:
    from api.auth import mint_demo_token
    from api.demo import DEMO_CUSTOMER, DEMO_SCOPES, demo_settings, start_mock

    with tempfile.TemporaryDirectory(prefix="bench-facade-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "hello.py").write_text(HELLO_APP)
        mock, ep = start_mock(tmp / "mock", MOCK_ARGS)
        procs: list[subprocess.Popen] = []
        generator: LoadGenerator | None = None
        try:
            generator = LoadGenerator()
            port, hello_port = _free_port(), _free_port()
            settings = demo_settings(ep, "127.0.0.1", port)
            env = {**_base_env(), **_env_of(settings), **LOAD_TEST_SETTINGS}
            hello_env = _base_env()
            log = tmp / "facade.log"

            def facade() -> subprocess.Popen:
                return _corebridge_serve(port, env, log)

            def hello() -> subprocess.Popen:
                return _uvicorn("hello:app", hello_port, hello_env, log, app_dir=tmp)

            # cold starts, alternating; the last of each stays up
            facade_starts: list[float] = []
            hello_starts: list[float] = []
            for i in range(COLD_STARTS):
                last = i == COLD_STARTS - 1
                for start, p, times in ((hello, hello_port, hello_starts), (facade, port, facade_starts)):
                    proc, seconds = _start_ready(start, p, log)
                    times.append(seconds)
                    if last:
                        procs.append(proc)
                    else:
                        stop_child(proc)
            hello_proc, facade_proc = procs

            generator.run(f"http://127.0.0.1:{hello_port}/readyz", headers={}, concurrency=32, duration=1.0,
                          warmup=0.2)
            hello_rss = _rss_mb(hello_proc)
            stop_child(hello_proc)
            capped_port = _free_port()  # the same facade with the default SOAP bulkhead (not timed)
            capped_env = {**env, "COREBRIDGE_SERVER__PORT": str(capped_port), **DEFAULT_BULKHEAD}
            capped_proc, _ = _start_ready(lambda: _corebridge_serve(capped_port, capped_env, log), capped_port, log)
            procs.append(capped_proc)

            token = mint_demo_token(settings.auth, DEMO_CUSTOMER, DEMO_SCOPES, ttl=3600)
            auth = {"Authorization": f"Bearer {token}"}
            base = f"http://127.0.0.1:{port}"
            status, body = _request(f"{base}/v1/customers/{DEMO_CUSTOMER}/accounts", headers=auth)
            assert status == 200, body
            account = next(a["id"] for a in json.loads(body)["items"] if a["status"] == "open")
            balance_url = f"{base}/v1/accounts/{account}/balance"
            status, body = _request(balance_url, headers=auth)
            assert status == 200 and json.loads(body)["stale"] is False, body
            envelope, soap_headers = _soap_request(settings, account)
            status_ok = _post_once(ep["soap_url"], envelope, soap_headers)
            assert status_ok, "the raw BalanceInquiry did not answer RETURN-CODE 0000"

            direct: dict[int, list[dict[str, Any]]] = {c: [] for c in CONCURRENCY}
            ours: dict[int, list[dict[str, Any]]] = {c: [] for c in CONCURRENCY}
            capped: list[dict[str, Any]] = []
            capped_url = balance_url.replace(f":{port}/", f":{capped_port}/")
            for _ in range(rounds):
                for c in CONCURRENCY:
                    direct[c].append(generator.run(ep["soap_url"], method="POST", body=envelope,
                                                   headers=soap_headers, concurrency=c, duration=duration,
                                                   warmup=WARMUP))
                    ours[c].append(generator.run(balance_url, headers=auth, concurrency=c, duration=duration,
                                                 warmup=WARMUP))
                capped.append(generator.run(capped_url, headers=auth, concurrency=CONCURRENCY[-1],
                                            duration=duration, warmup=WARMUP))
            facade_rss = _rss_mb(facade_proc)
        finally:
            if generator is not None:
                generator.close()
            for proc in procs:
                stop_child(proc)
            stop_child(mock)
    return _rows(direct, ours, capped, facade_starts, hello_starts, facade_rss, hello_rss)


def _post_once(url: str, body: bytes, headers: dict[str, str]) -> bool:
    status, reply = _request(url, method="POST", body=body, headers=headers, timeout=10)
    root = etree.fromstring(reply, etree.XMLParser(resolve_entities=False, no_network=True))
    return status == 200 and root.findtext(f".//{{{CB}}}RETURN-CODE") == "0000"


def _rows(direct: dict[int, list[dict]], ours: dict[int, list[dict]], capped: list[dict],
          facade_starts: list[float], hello_starts: list[float], facade_rss: float, hello_rss: float) -> list[dict]:
    rows = []
    d50, f50 = _median(direct[1], "p50_ms"), _median(ours[1], "p50_ms")
    rows.append({"name": "facade_balance_p50_added_ms_c1", "value": round(f50 - d50, 3), "unit": "ms",
                 "baseline": "direct SOAP BalanceInquiry p50 (ms), c=1", "baseline_value": round(d50, 3),
                 "ratio": round(f50 / d50, 3), "target": "<= 2 ms"})
    for c in CONCURRENCY:
        f, d = _median(ours[c], "rps"), _median(direct[c], "rps")
        rows.append({"name": f"facade_balance_rps_c{c}", "value": round(f, 1), "unit": "req/s",
                     "baseline": f"direct SOAP BalanceInquiry, c={c} keep-alive (facade: {_server_stack()})",
                     "baseline_value": round(d, 1),
                     "ratio": round(f / d, 3),
                 "target": ">= 0.5x direct" if c == CONCURRENCY[-1] else "reported (the goal is at c=32)"})
        for q in ("p50", "p99"):
            if c == 1 and q == "p50":
                continue  # the added p50 above
            f, d = _median(ours[c], f"{q}_ms"), _median(direct[c], f"{q}_ms")
            rows.append({"name": f"facade_balance_{q}_ms_c{c}", "value": round(f, 3), "unit": "ms",
                         "baseline": f"direct SOAP {q}, c={c}", "baseline_value": round(d, 3),
                         "ratio": round(f / d, 3), "target": "reported"})
    c = CONCURRENCY[-1]
    f, d = _median(capped, "rps"), _median(direct[c], "rps")
    rows.append({"name": f"facade_balance_rps_c{c}_default_bulkhead", "value": round(f, 1), "unit": "req/s",
                 "baseline": f"direct SOAP BalanceInquiry, c={c} keep-alive", "baseline_value": round(d, 1),
                 "ratio": round(f / d, 3),
                 "target": "report (the default SOAP bulkhead: 10 calls in flight at the core, the rest queue)"})
    f, h = statistics.median(facade_starts), statistics.median(hello_starts)
    rows.append({"name": "facade_cold_start_to_ready_s", "value": round(f, 3), "unit": "s",
                 "baseline": "bare uvicorn hello-world app, same launch", "baseline_value": round(h, 3),
                 "ratio": round(f / h, 3), "target": "<= 2 s"})
    rows.append({"name": "facade_rss_mb_per_worker", "value": round(facade_rss, 1), "unit": "MB",
                 "baseline": "bare uvicorn hello-world worker", "baseline_value": round(hello_rss, 1),
                 "ratio": round(facade_rss / hello_rss, 3), "target": "<= 150 MB"})
    return rows


if __name__ == "__main__":
    args = [float(sys.argv[1])] if len(sys.argv) > 1 else []
    if len(sys.argv) > 2:
        args.append(int(sys.argv[2]))
    for row in run(*args):
        print(row)
    sys.exit(0)
