"""TXNHIST ingestion throughput: ``TxnhistIngestor.ingest`` into a SQLite (WAL) store, beside its baseline,
the same file only decoded and mapped (``read_records`` with the ingestor's codec, no database).

The file is built by the mock mainframe's own TXNHIST writer from synthetic ledger rows (200 000 details,
40 MB). Best of 3; each ingest goes to a fresh store, so every run inserts every row. The ratio says what
the all-or-nothing transaction, the claim and the inserts cost on top of decoding; issue 7's target is an
ingest at >= 0.5 of the decode speed.

Peak RSS: one more ingest of the same file into a fresh store runs in a fresh child process
(``python -m benchmarks.bench_ingest --child FILE SHA256 STORE``); its peak RSS is the child's own
``VmHWM`` (``/proc/self/status``: the high-water mark of the child's address space; ``ru_maxrss`` would
carry over the parent's RSS at fork, 40 MB of file image included), beside the same figure after the
child's setup (interpreter, imports, mapping registry, codecs). Target <= 150 MB for a 1,000,000-record file;
``--records`` scales the file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from api.batch import TxnhistIngestor, open_store
from mappings.copybook import read_records
from mappings.engine import MappingRegistry
from mock_mainframe.batch.eod import build_txnhist

RECORDS = 200_000
REPEATS = 3
DAY = dt.date(2026, 11, 27)
ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5
TARGET_RSS_MB = 150


def _rows(n: int):
    for i in range(n):
        debit = i % 2 == 1
        yield {"ACCT_NO": f"{100000000000 + i % 5000:012d}", "TXN_SEQ": i + 1, "POST_DT": 1261127,
               "POST_TM": 100000 + (i // 60) % 60 * 100 + i % 60, "VALUE_DT": 1261127,
               "TXN_CD": "TFO" if debit else "DEP",
               "DR_CR_IND": "D" if debit else "C", "TXN_AMT": Decimal(i % 100000) / 100 + Decimal("0.01"),
               "RUN_BAL": Decimal("1000.00"), "CURR_CD": "USD", "TXN_DESC": f"BENCH {i}", "TXN_REF": "",
               "CHANNEL": "WEB", "TXN_STAT": "P", "CNTR_ACCT": "100000000001"}


def _peak_rss_mb() -> float:
    """This process's peak RSS in MB: VmHWM of its own address space (Linux), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _child(path: Path, sha: str, store_path: Path) -> None:
    """One ingest in this fresh process; prints its timing and the RSS after setup (the parent reads the peak)."""
    import gc

    registry = MappingRegistry.load()
    with open_store(store_path) as store:
        ing = TxnhistIngestor(store, registry, quarantine_dir=store_path.parent / "q-child")
        gc.collect()
        setup_rss = _peak_rss_mb()
        t0 = time.perf_counter()
        report = ing.ingest(path, sha)
        elapsed = time.perf_counter() - t0
    print(json.dumps({"status": report.status, "loaded": report.loaded, "elapsed": elapsed,
                      "setup_rss_mb": setup_rss, "rss_mb": _peak_rss_mb()}))


def _spawn(path: Path, sha: str, store_path: Path) -> dict:
    """Ingest in a fresh child process, which reports its own peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_ingest", "--child", str(path), sha,
                          str(store_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE)
    out, _ = p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"ingest child failed with exit code {p.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1])


def run(records: int = RECORDS, repeats: int = REPEATS) -> list[dict]:
    registry = MappingRegistry.load()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        data = build_txnhist(_rows(records), DAY)
        path = work / f"TXNHIST.D{DAY:%y%m%d}"
        path.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        ours: list[float] = []
        base: list[float] = []
        for i in range(repeats):
            with open_store(work / f"store{i}.db") as store:
                ing = TxnhistIngestor(store, registry, quarantine_dir=work / "q")
                t0 = time.perf_counter()
                report = ing.ingest(path, sha)
                ours.append(time.perf_counter() - t0)
                if report.status != "loaded" or report.loaded != records:
                    raise RuntimeError(f"ingest did not load the file: {report.status} {report.reason}")
            t0 = time.perf_counter()
            with open(path, "rb") as f:
                n = sum(1 for _ in read_records(f, ing.codec))
            base.append(time.perf_counter() - t0)
            if n != records + 2:
                raise RuntimeError(f"decoded {n} records, expected {records + 2}")
        del data
        child = _spawn(path, sha, work / "store-child.db")
        if child["status"] != "loaded" or child["loaded"] != records:
            raise RuntimeError(f"child ingest did not load the file: {child['status']}")
    value = records / min(ours)
    baseline_value = records / min(base)
    return [{
        "name": "txnhist_ingest_records_s",
        "value": round(value),
        "unit": "records/s",
        "baseline": "decode + map only (no store)",
        "baseline_value": round(baseline_value),
        "ratio": round(value / baseline_value, 3),
        "target": f">= {TARGET_RATIO} of decode",
    }, {
        "name": "txnhist_ingest_peak_rss_mb",
        "value": round(child["rss_mb"], 1),
        "unit": "MB",
        "baseline": "child after setup (interpreter + imports + registry)",
        "baseline_value": round(child["setup_rss_mb"], 1),
        "ratio": round(child["rss_mb"] / child["setup_rss_mb"], 2) if child["setup_rss_mb"] else None,
        "target": f"<= {TARGET_RSS_MB} MB (1,000,000 records)",
    }]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_ingest")
    p.add_argument("--child", nargs=3, metavar=("FILE", "SHA256", "STORE"), help=argparse.SUPPRESS)
    p.add_argument("--records", type=int, default=RECORDS)
    p.add_argument("--repeats", type=int, default=REPEATS)
    args = p.parse_args(argv)
    if args.child:
        _child(Path(args.child[0]), args.child[1], Path(args.child[2]))
        return 0
    for row in run(args.records, args.repeats):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
