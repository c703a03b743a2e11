"""TXNHIST ingestion throughput, end to end: ``batch pull`` (SFTP download from the mock's face + decode + map +
load into a SQLite (WAL) store) beside its baseline, the same file only decoded and mapped (``read_records`` with
the ingestor's own codec, in one process: the decode + map work the ingest does, no database, no download).

Two processes: a file this size is decoded + mapped two segments in three by the ingestor's forked decoder
process while the ingesting process decodes the rest and inserts (``api.batch.pipeline``), so the ingest uses
up to two cores where the baseline uses one. On a machine whose second core is busy the ratio drops.

The file is built by the mock mainframe's own TXNHIST writer: 1,000,000 details (200 MB), in the order the core
writes them (``Ledger.transactions_on``: account, then sequence), 5,000 accounts, one detail in ten carrying a
unique transfer reference (the partial ``reference`` index pays per referenced row; the seeded mock ledger has
none, transfers posted through the facade do). Each repeat pulls into a fresh
store, so every run inserts every row; best of the repeats. Rows:

* ``txnhist_ingest_records_s``: download + decode + map + load (``pull``), issue 7's figure: >= 0.5 of decode;
* ``txnhist_ingest_local_records_s``: the same pulls' ingest part alone (``FileReport.seconds``: a local file);
* ``txnhist_ingest_interleaved_records_s``: one ingest of a file whose details cycle through the accounts
  (every insert lands in another part of the account index): the store's worst case, reported;
* ``txnhist_ingest_peak_rss_mb``: one more pull (download + ingest) in a fresh child process
  (``python -m benchmarks.bench_ingest --child ...``): its own ``VmHWM`` from ``/proc/self/status`` (``ru_maxrss``
  would carry over the parent's RSS at fork, the 200 MB file image included) plus the peak private memory of the
  decoder process it forks (sampled every 20 ms from ``/proc/<pid>/smaps_rollup``; the pages it shares with the
  ingesting process are already in the first figure), beside the same figure after the child's setup
  (interpreter, imports, mapping registry, codecs). Target <= 150 MB.

The SFTP face runs in a child process (see ``bench_sftp``: sharing our GIL would slow the download for reasons
that are not the adapter's). ``--records`` scales the file.
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

import psutil

from adapters.sftp import SftpBatchDropbox, SftpSettings
from api.batch import PullDirs, TxnhistIngestor, open_store, pull
from benchmarks.bench_sftp import sftp_face_process
from mappings.copybook import read_records
from mappings.engine import MappingRegistry
from mock_mainframe.batch.eod import build_txnhist, txnhist_name
from mock_mainframe.config import MockConfig

RECORDS = 1_000_000
REPEATS = 3
ACCOUNTS = 5000
DAY = dt.date(2026, 11, 27)
ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5
TARGET_RSS_MB = 150


def _rows(n: int, *, interleaved: bool = False):
    """Ledger rows in the core's file order (account, sequence), or cycling through the accounts."""
    per_account = max(1, n // ACCOUNTS)
    for i in range(n):
        debit = i % 2 == 1
        account = i % ACCOUNTS if interleaved else i // per_account
        yield {"ACCT_NO": f"{100000000000 + account:012d}", "TXN_SEQ": i + 1, "POST_DT": 1261127,
               "POST_TM": 100000 + (i // 60) % 60 * 100 + i % 60, "VALUE_DT": 1261127,
               "TXN_CD": "TFO" if debit else "DEP",
               "DR_CR_IND": "D" if debit else "C", "TXN_AMT": Decimal(i % 100000) / 100 + Decimal("0.01"),
               "RUN_BAL": Decimal("1000.00"), "CURR_CD": "USD", "TXN_DESC": f"BENCH {i}",
               "TXN_REF": f"CB{i:014d}" if i % 10 == 3 else "", "CHANNEL": "WEB", "TXN_STAT": "P",
               "CNTR_ACCT": "100000000001"}


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


def _settings(cfg: MockConfig, port: int, known_hosts: Path, downloads: Path) -> SftpSettings:
    return SftpSettings(host=cfg.host, port=port, username=cfg.sftp_user, private_key_path=Path(cfg.client_key_path),
                        known_hosts_path=known_hosts, operation_timeout=120, download_dir=downloads)


def _pull_once(settings: SftpSettings, registry: MappingRegistry, work: Path,
               records: int | None) -> tuple[float, float]:
    """One ``pull`` into a fresh store (every record loaded, if ``records``); (end-to-end s, ingest-only s)."""
    dirs = PullDirs(work)
    with open_store(work / "store.db") as store, SftpBatchDropbox(settings) as box:
        ing = TxnhistIngestor(store, registry, quarantine_dir=dirs.quarantine, rejects_dir=dirs.rejects)
        t0 = time.perf_counter()
        reports = pull(box, ing, outbox=settings.outbox, dirs=dirs)
        elapsed = time.perf_counter() - t0
    if len(reports) != 1 or reports[0].status != "loaded" or records not in (None, reports[0].loaded):
        raise RuntimeError(f"the pull did not load the file: {[(r.status, r.reason) for r in reports]}")
    return elapsed, reports[0].seconds


def _private_mb(pid: int) -> float:
    """A process's private (unshared) resident memory in MB: what it adds to the pages it shares with us."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    except OSError:
        return 0.0
    return total / 1024


class _ChildMemory:
    """Samples the private memory of our child processes (the forked decoder) every 20 ms; keeps the peak."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, sum(_private_mb(c.pid) for c in psutil.Process(me).children()))

    def __enter__(self) -> _ChildMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _child(port: int, mock_dir: Path, known_hosts: Path, work: Path) -> None:
    """One pull in this fresh process; prints its timing and the RSS after setup (the parent reads the peak)."""
    import gc

    registry = MappingRegistry.load()
    settings = _settings(MockConfig(data_dir=mock_dir, sftp_port=port), port, known_hosts, work / "downloads")
    TxnhistIngestor(open_store(":memory:"), registry, quarantine_dir=work / "q").store.close()  # codecs built
    gc.collect()
    setup_rss = _peak_rss_mb()
    with _ChildMemory() as decoder:
        elapsed, _ = _pull_once(settings, registry, work, None)
    own = _peak_rss_mb()
    print(json.dumps({"elapsed": elapsed, "setup_rss_mb": setup_rss, "own_rss_mb": own,
                      "decoder_private_mb": decoder.peak_mb, "rss_mb": own + decoder.peak_mb}))


def _spawn(port: int, mock_dir: Path, known_hosts: Path, work: Path) -> dict:
    """Pull in a fresh child process, which reports its own peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_ingest", "--child", str(port), str(mock_dir),
                          str(known_hosts), str(work)], cwd=ROOT, env=env, stdout=subprocess.PIPE)
    out, _ = p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"ingest child failed with exit code {p.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1])


def _decode_once(path: Path, ing: TxnhistIngestor, records: int) -> float:
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        n = sum(1 for _ in read_records(f, ing.codec, framing="fixed"))
    elapsed = time.perf_counter() - t0
    if n != records + 2:
        raise RuntimeError(f"decoded {n} records, expected {records + 2}")
    return elapsed


def _interleaved_once(registry: MappingRegistry, work: Path, records: int) -> float:
    path = work / txnhist_name(DAY)
    data = build_txnhist(_rows(records, interleaved=True), DAY)
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    del data
    with open_store(work / "interleaved.db") as store:
        ing = TxnhistIngestor(store, registry, quarantine_dir=work / "q")
        t0 = time.perf_counter()
        report = ing.ingest(path, sha)
        elapsed = time.perf_counter() - t0
    if report.status != "loaded" or report.loaded != records:
        raise RuntimeError(f"interleaved ingest did not load the file: {report.status} {report.reason}")
    return elapsed


def run(records: int = RECORDS, repeats: int = REPEATS) -> list[dict]:
    registry = MappingRegistry.load()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        with sftp_face_process(work) as (cfg, port, known_hosts):
            remote = Path(cfg.outbox) / txnhist_name(DAY)
            remote.write_bytes(build_txnhist(_rows(records), DAY))
            settings = _settings(cfg, port, known_hosts, work / "downloads")
            probe = TxnhistIngestor(open_store(":memory:"), registry, quarantine_dir=work / "q")
            ours: list[float] = []
            local: list[float] = []
            base: list[float] = []
            for i in range(repeats):  # alternate, so drift on a busy machine hits both alike
                e2e, ingest_only = _pull_once(settings, registry, work / f"run{i}", records)
                ours.append(e2e)
                local.append(ingest_only)
                base.append(_decode_once(remote, probe, records))
            probe.store.close()
            child_result = _spawn(port, work / "mock", known_hosts, work / "child")
            print(f"peak RSS: ingest process {child_result['own_rss_mb']:.1f} MB + decoder process private "
                  f"{child_result['decoder_private_mb']:.1f} MB", file=sys.stderr)
            interleaved = _interleaved_once(registry, work, records)
    baseline_value = records / min(base)

    def row(name: str, seconds: float, target: str) -> dict:
        value = records / seconds
        return {"name": name, "value": round(value), "unit": "records/s",
                "baseline": "decode + map only (no store, 1 process)", "baseline_value": round(baseline_value),
                "ratio": round(value / baseline_value, 3), "target": target}

    return [
        row("txnhist_ingest_records_s", min(ours),
            f">= {TARGET_RATIO} of decode (download + decode + map + load; 2 processes: + decoder)"),
        row("txnhist_ingest_local_records_s", min(local), "report (the same pulls without the download)"),
        row("txnhist_ingest_interleaved_records_s", interleaved, "report (accounts interleaved: worst case)"),
        {"name": "txnhist_ingest_peak_rss_mb", "value": round(child_result["rss_mb"], 1), "unit": "MB",
         "baseline": "child after setup (interpreter + imports + registry)",
         "baseline_value": round(child_result["setup_rss_mb"], 1),
         "ratio": round(child_result["rss_mb"] / child_result["setup_rss_mb"], 2) if child_result["setup_rss_mb"]
         else None,
         "target": f"<= {TARGET_RSS_MB} MB (download + ingest: its peak RSS + the decoder's peak private)"},
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_ingest")
    p.add_argument("--child", nargs=4, metavar=("PORT", "MOCK_DIR", "KNOWN_HOSTS", "WORK"), help=argparse.SUPPRESS)
    p.add_argument("--records", type=int, default=RECORDS)
    p.add_argument("--repeats", type=int, default=REPEATS)
    args = p.parse_args(argv)
    if args.child:
        _child(int(args.child[0]), *(Path(a) for a in args.child[1:]))
        return 0
    for row in run(args.records, args.repeats):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
