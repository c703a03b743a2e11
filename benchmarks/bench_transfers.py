"""Transfers end to end (issue 6): ``POST /v1/transfers`` through uvicorn + the facade + the exactly-once
machinery (SQLite intent log) against the mock mainframe, beside FundsTransfer posted straight to the mock's
SOAP face; and what the Idempotency-Key machinery adds to a transfer's p50.

Processes as in :mod:`benchmarks.bench_facade` (whose helpers this reuses): the mock mainframe, two facades
(``api.bootstrap:create_app_from_settings`` under uvicorn, one worker each, the demo settings plus the load-test
overrides): one with the SQLite store (``Idempotency-Key`` required), one with ``store.backend=none`` (each POST
posted once under a fresh reference, no key), a load generator in its own process, and this orchestrator.

Every request is a new transfer: the generator stamps a fresh ``Idempotency-Key`` (a UUID) on each facade POST,
and a fresh 16-character XFER-REF into each direct FundsTransfer envelope (built once by zeep, WS-Security
included, exactly as the adapter would send it). Each transfer moves the currency's smallest unit between two
open accounts of one customer in one currency, debiting the account with the biggest available balance among the
mock's customers (the demo customer holds no two accounts in one currency); the demo token (minted for that
customer with the demo scopes) carries ``transfers:write``. An answer counts only if it is a posting (facade:
201; SOAP: 200 and XFER-STAT P).

Rows (medians over rounds that alternate the clients so that drift hits all of them):

* ``transfers_per_s_c16``: facade with the store, 16 keep-alive connections in a closed loop, beside direct
  FundsTransfer at c=16;
* ``transfer_p50_ms_c1``: the facade-with-store p50 at c=1, beside direct FundsTransfer p50 at c=1;
* ``idempotency_added_p50_ms_c1``: facade-with-store p50 minus facade-without-store p50 at c=1 (target <= 2 ms).

``python -m benchmarks.bench_transfers [seconds per run] [rounds]``
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from api.demo import stop_child
from benchmarks.bench_facade import (
    LOAD_TEST_SETTINGS,
    MOCK_ARGS,
    LoadGenerator,
    _base_env,
    _env_of,
    _free_port,
    _median,
    _request,
    _start_ready,
    _uvicorn,
)

DURATION = 3.0
WARMUP = 0.5
ROUNDS = 3
CUSTOMERS = int(MOCK_ARGS[MOCK_ARGS.index("--customers") + 1])
#: 16 characters (the width of XFER-REF), replaced per request by the generator
REF_PLACEHOLDER = "BENCHREFXXXXXXXX"
POSTED = b"XFER-STAT>P<"


# -- load generator (its own process): a fresh key / reference per request --------------------------------
class TransferLoad:
    """bench_facade's load generator, posting: each request counts only when it is a posting."""

    def __init__(self) -> None:
        self._gen = LoadGenerator()

    def post(self, url: str, *, body: bytes, headers: dict[str, str], concurrency: int, duration: float,
             warmup: float, ok_status: int, fresh_key: bool = False, placeholder: bytes | None = None,
             ok_marker: bytes | None = None) -> dict[str, Any]:
        return self._gen.run(url, method="POST", body=body, headers=headers, concurrency=concurrency,
                             duration=duration, warmup=warmup, ok_status=ok_status, ok_marker=ok_marker,
                             fresh_key=fresh_key, placeholder=placeholder)

    def close(self) -> None:
        self._gen.close()


# -- set-up ---------------------------------------------------------------------------------------------
def _funds_transfer_request(settings: Any, src: str, dst: str, amount: str,
                            currency: str) -> tuple[bytes, dict[str, str]]:
    """The FundsTransfer envelope (and headers) the adapter would send, built once by zeep, with
    :data:`REF_PLACEHOLDER` as XFER-REF."""
    from zeep.wsdl.utils import etree_to_string

    from adapters.soap import MAPPINGS, SoapCore
    from canonical import Money, Transfer
    from mappings.engine import MappingRegistry

    transfer = Transfer(reference=REF_PLACEHOLDER, from_account=src, to_account=dst,
                        amount=Money.of(Decimal(amount), currency))
    registry = MappingRegistry.load()
    with SoapCore(settings.backends.soap.to_adapter_settings(), registry) as adapter:
        fields = registry[MAPPINGS["transfer_request"]].write(transfer)
        envelope, headers = adapter.service._binding._create("FundsTransfer", (), fields, client=adapter.client)
        body = etree_to_string(envelope)
    assert body.count(REF_PLACEHOLDER.encode()) == 1, "the placeholder reference is not in the envelope once"
    return body, dict(headers)


def _pick_accounts(base: str, settings: Any) -> tuple[str, dict[str, str], str, str, str, Decimal]:
    """(customer, auth headers, debit, credit, currency, available): over the mock's customers, the open account
    with the biggest available balance whose customer holds another open account in its currency."""
    from api.auth import mint_demo_token
    from api.demo import DEMO_SCOPES

    best: tuple[str, dict[str, str], str, str, str, Decimal] | None = None
    for i in range(1, CUSTOMERS + 1):
        customer = f"C{i:07d}"
        auth = {"Authorization": f"Bearer {mint_demo_token(settings.auth, customer, DEMO_SCOPES, ttl=3600)}"}
        status, body = _request(f"{base}/v1/customers/{customer}/accounts", headers=auth)
        if status != 200:
            continue
        accounts = [a for a in json.loads(body)["items"] if a["status"] == "open"]
        for a in accounts:
            others = [b for b in accounts if b["id"] != a["id"] and b["currency"] == a["currency"]]
            if not others:
                continue
            status, body = _request(f"{base}/v1/accounts/{a['id']}/balance", headers=auth)
            assert status == 200, body
            available = Decimal(str(json.loads(body)["available"]["amount"]))
            if best is None or _units(available, a["currency"]) > _units(best[-1], best[-2]):
                best = (customer, auth, a["id"], others[0]["id"], a["currency"], available)
    if best is None:
        raise RuntimeError("no customer of the mock holds two open accounts in one currency")
    return best


def _smallest(currency: str) -> Decimal:
    from canonical import minor_units

    return Decimal(1).scaleb(-minor_units(currency))


def _units(amount: Decimal, currency: str) -> Decimal:
    """How many transfers of the smallest amount ``amount`` pays for."""
    return amount / _smallest(currency)


def run(duration: float = DURATION, rounds: int = ROUNDS) -> list[dict]:
    from api.demo import demo_settings, start_mock

    with tempfile.TemporaryDirectory(prefix="bench-transfers-") as tmp_name:
        tmp = Path(tmp_name)
        mock, ep = start_mock(tmp / "mock", MOCK_ARGS)
        procs: list[subprocess.Popen] = []
        load: TransferLoad | None = None
        try:
            load = TransferLoad()
            port, plain_port = _free_port(), _free_port()
            settings = demo_settings(ep, "127.0.0.1", port, store_path=tmp / "store.db")
            store_env = {**_base_env(), **_env_of(settings), **LOAD_TEST_SETTINGS}
            # the same secrets (one demo token serves both), no store
            plain_env = {k: v for k, v in store_env.items() if not k.startswith("COREBRIDGE_STORE__")}
            plain_env.update(COREBRIDGE_STORE__BACKEND="none", COREBRIDGE_SERVER__PORT=str(plain_port))
            log = tmp / "facade.log"
            for env, p in ((store_env, port), (plain_env, plain_port)):
                def start(env: dict[str, str] = env, p: int = p) -> subprocess.Popen:
                    return _uvicorn("api.bootstrap:create_app_from_settings", p, env, log, factory=True)

                procs.append(_start_ready(start, p, log)[0])

            base, plain_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{plain_port}"
            customer, auth, src, dst, currency, available = _pick_accounts(base, settings)
            if _units(available, currency) < 100_000:
                raise RuntimeError(f"{customer}'s {src} has only {available} {currency} available")
            amount = str(_smallest(currency))
            transfer_body = json.dumps({"from_account": src, "to_account": dst, "amount": amount,
                                        "currency": currency, "memo": "BENCH"}).encode()
            json_headers = {**auth, "Content-Type": "application/json"}

            # sanity: the store facade requires a key and posts with one; the plain one posts without
            status, body = _request(f"{base}/v1/transfers", method="POST", body=transfer_body, headers=json_headers)
            assert status == 400, (status, body)
            status, body = _request(f"{base}/v1/transfers", method="POST", body=transfer_body,
                                    headers={**json_headers, "Idempotency-Key": "bench-sanity-1"})
            assert status == 201 and json.loads(body)["status"] == "posted", body
            status, body = _request(f"{plain_base}/v1/transfers", method="POST", body=transfer_body,
                                    headers=json_headers)
            assert status == 201 and json.loads(body)["status"] == "posted", body
            envelope, soap_headers = _funds_transfer_request(settings, src, dst, amount, currency)
            status, body = _request(ep["soap_url"], method="POST", headers=soap_headers, timeout=10,
                                    body=envelope.replace(REF_PLACEHOLDER.encode(), b"BXSANITY00000001"))
            assert status == 200 and POSTED in body, body[-1500:]

            def direct(c: int) -> dict[str, Any]:
                return load.post(ep["soap_url"], body=envelope, headers=soap_headers, concurrency=c,
                                 duration=duration, warmup=WARMUP, ok_status=200,
                                 placeholder=REF_PLACEHOLDER.encode(), ok_marker=POSTED)

            def facade(c: int) -> dict[str, Any]:
                return load.post(f"{base}/v1/transfers", body=transfer_body, headers=json_headers, concurrency=c,
                                 duration=duration, warmup=WARMUP, ok_status=201, fresh_key=True)

            def no_store(c: int) -> dict[str, Any]:
                return load.post(f"{plain_base}/v1/transfers", body=transfer_body, headers=json_headers,
                                 concurrency=c, duration=duration, warmup=WARMUP, ok_status=201)

            results: dict[str, list[dict[str, Any]]] = {
                k: [] for k in ("direct16", "facade16", "direct1", "facade1", "plain1")}
            for _ in range(rounds):
                results["direct16"].append(direct(16))
                results["facade16"].append(facade(16))
                results["direct1"].append(direct(1))
                results["facade1"].append(facade(1))
                results["plain1"].append(no_store(1))
        finally:
            if load is not None:
                load.close()
            for proc in procs:
                stop_child(proc)
            stop_child(mock)
    return _rows(results)


def _rows(r: dict[str, list[dict[str, Any]]]) -> list[dict]:
    f16, d16 = _median(r["facade16"], "rps"), _median(r["direct16"], "rps")
    f1, d1, p1 = (_median(r[k], "p50_ms") for k in ("facade1", "direct1", "plain1"))
    return [
        {"name": "transfers_per_s_c16", "value": round(f16, 1), "unit": "transfers/s",
         "baseline": "direct SOAP FundsTransfer, c=16 keep-alive", "baseline_value": round(d16, 1),
         "ratio": round(f16 / d16, 3), "target": "reported"},
        {"name": "transfer_p50_ms_c1", "value": round(f1, 3), "unit": "ms",
         "baseline": "direct SOAP FundsTransfer p50 (ms), c=1", "baseline_value": round(d1, 3),
         "ratio": round(f1 / d1, 3), "target": "reported"},
        {"name": "idempotency_added_p50_ms_c1", "value": round(f1 - p1, 3), "unit": "ms",
         "baseline": "facade without a store (backend none) p50 (ms), c=1", "baseline_value": round(p1, 3),
         "ratio": round(f1 / p1, 3), "target": "<= 2 ms"},
    ]


if __name__ == "__main__":
    args: list[Any] = [float(sys.argv[1])] if len(sys.argv) > 1 else []
    if len(sys.argv) > 2:
        args.append(int(sys.argv[2]))
    for row in run(*args):
        print(row)
    sys.exit(0)
