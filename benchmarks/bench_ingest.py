"""TXNHIST ingestion throughput: ``TxnhistIngestor.ingest`` into a SQLite (WAL) store, beside its baseline,
the same file only decoded and mapped (``read_records`` with the ingestor's codec, no database).

The file is built by the mock mainframe's own TXNHIST writer from synthetic ledger rows (200 000 details,
40 MB). Best of 3; each ingest goes to a fresh store, so every run inserts every row. The ratio says what
the all-or-nothing transaction, the claim and the inserts cost on top of decoding.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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


def _rows(n: int):
    for i in range(n):
        debit = i % 2 == 1
        yield {"ACCT_NO": f"{100000000000 + i % 5000:012d}", "TXN_SEQ": i + 1, "POST_DT": 1261127,
               "POST_TM": 100000 + (i // 60) % 60 * 100 + i % 60, "VALUE_DT": 1261127,
               "TXN_CD": "TFO" if debit else "DEP",
               "DR_CR_IND": "D" if debit else "C", "TXN_AMT": Decimal(i % 100000) / 100 + Decimal("0.01"),
               "RUN_BAL": Decimal("1000.00"), "CURR_CD": "USD", "TXN_DESC": f"BENCH {i}", "TXN_REF": "",
               "CHANNEL": "WEB", "TXN_STAT": "P", "CNTR_ACCT": "100000000001"}


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
    value = records / min(ours)
    baseline_value = records / min(base)
    return [{
        "name": "txnhist_ingest_records_s",
        "value": round(value),
        "unit": "records/s",
        "baseline": "decode + map only (no store)",
        "baseline_value": round(baseline_value),
        "ratio": round(value / baseline_value, 3),
        "target": "report (store cost on top of decoding)",
    }]


if __name__ == "__main__":
    for row in run():
        print(row)
    sys.exit(0)
