"""SOAP adapter throughput: ``SoapCore.balance`` (zeep + RETURN-BLOCK check + mapping to a canonical
``Balance``) against a raw HTTP POST of the same pre-built envelope + an lxml parse, same server, same run.

The mock's SOAP face runs in a child process (seeded ledger, 40 customers) so that it does not share
the adapter's GIL; both clients call it from one thread over one keep-alive connection, in alternating
rounds so that drift on a busy machine hits both alike; each figure is the median of the rounds. The
baseline is what any SOAP client must pay at least (HTTP round trip, server work, parsing the reply); the
difference per call is what the adapter costs: zeep's serialise + parse (FIELD-NOTES: ~170 us), the
WS-Security header, ``serialize_object``, the mapping and pydantic validation. Targets: at least half the
raw rate (FIELD-NOTES measured zeep at ~630/s against ~1,150/s raw: 0.55), at most 800 us per call over raw.

``python -m benchmarks.bench_soap [calls per round] [rounds]``
"""

from __future__ import annotations

import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from lxml import etree
from zeep.wsdl.utils import etree_to_string

from adapters.soap import BINDING_QNAME, SoapCore, SoapSettings
from mappings.engine import MappingRegistry

CALLS = 1000
ROUNDS = 5
WARMUP = 200
CB = "urn:corebank:mainframe:v1"


def _serve(data_dir: str, conn) -> None:
    """Child process: a seeded ledger and the mock's SOAP face, until the parent says stop."""
    logging.disable(logging.INFO)  # the face logs every request at INFO
    from mock_mainframe.config import MockConfig
    from mock_mainframe.faults import FaultInjector
    from mock_mainframe.ledger.posting import PostingEngine
    from mock_mainframe.ledger.seed import seed_sqlite
    from mock_mainframe.ledger.store import Ledger
    from mock_mainframe.soap import SoapFace

    path = Path(data_dir) / "ledger.db"
    seed_sqlite(path, seed=7, customers=40)
    ledger = Ledger(path)
    cfg = MockConfig(data_dir=Path(data_dir), soap_port=0)
    face = SoapFace(cfg, ledger, PostingEngine(ledger), FaultInjector()).start()
    try:
        acct = ledger.query("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' ORDER BY ACCT_NO LIMIT 1")[0]
        conn.send((face.url, cfg.soap_user, cfg.soap_password, acct["ACCT_NO"].strip()))
        conn.recv()
    finally:
        face.stop()
        ledger.close()


def _raw_client(adapter: SoapCore, url: str, acct: str):
    """A requests.Session posting the envelope zeep would send (WS-Security included), parsed by lxml."""
    envelope, headers = adapter.service._binding._create("BalanceInquiry", (), {"ACCT-NO": acct},
                                                         client=adapter.client)
    body = etree_to_string(envelope)
    headers = dict(headers)
    session = requests.Session()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    code_path = f".//{{{CB}}}RETURN-CODE"

    def call() -> None:
        response = session.post(url, data=body, headers=headers, timeout=5)
        root = etree.fromstring(response.content, parser)
        if root.findtext(code_path) != "0000":
            raise RuntimeError("raw BalanceInquiry did not answer 0000")

    return call, session


def _rate(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return calls / (time.perf_counter() - t0)


def run(calls: int = CALLS, rounds: int = ROUNDS) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-soap-") as tmp:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        server = ctx.Process(target=_serve, args=(tmp, child), daemon=True)
        server.start()
        try:
            if not parent.poll(60):
                raise RuntimeError("the mock SOAP face did not start")
            url, user, password, acct = parent.recv()
            settings = SoapSettings(endpoint=url, username=user, password=password, pool_size=4)
            with SoapCore(settings, MappingRegistry.load()) as adapter:
                assert adapter.service._binding_options["address"] == url and BINDING_QNAME
                raw, session = _raw_client(adapter, url, acct)

                def ours() -> None:
                    adapter.balance(acct, timeout=5)

                for fn in (ours, raw):
                    for _ in range(WARMUP):
                        fn()
                adapter_rates: list[float] = []
                raw_rates: list[float] = []
                for _ in range(rounds):
                    adapter_rates.append(_rate(ours, calls))
                    raw_rates.append(_rate(raw, calls))
                session.close()
        finally:
            parent.send("stop")
            server.join(15)
            if server.is_alive():
                server.kill()
    value = statistics.median(adapter_rates)
    baseline = statistics.median(raw_rates)
    overhead_us = (1 / value - 1 / baseline) * 1e6
    raw_us = 1e6 / baseline
    return [
        {
            "name": "soap_adapter_calls_per_s",
            "value": round(value, 1),
            "unit": "calls/s",
            "baseline": "raw POST of the same envelope + lxml parse (keep-alive)",
            "baseline_value": round(baseline, 1),
            "ratio": round(value / baseline, 3),
            "target": ">= 0.5x raw",
        },
        {
            "name": "soap_adapter_overhead_per_call",
            "value": round(overhead_us, 1),
            "unit": "us",
            "baseline": "raw call (us)",
            "baseline_value": round(raw_us, 1),
            "ratio": round(overhead_us / raw_us, 3),
            "target": "<= 800 us",
        },
    ]


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for row in run(*args):
        print(row)
    sys.exit(0)
