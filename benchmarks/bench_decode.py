"""Decoding an end-of-day TXNHIST file: plain values and validated canonical objects, against two baselines.

The file: the real ``TXNHIST.cpy`` layout (cp037, RECFM=FB LRECL=200), one header, ``records``
detail records and one trailer with the control totals.  A detail has 17 fields (4 COMP-3, two of
them amounts with decimals; zoned dates, time and fee; text) and a REDEFINES area whose view
depends on the transaction code; the mapping reads 14 of them.  Content is deterministic (seeded)
and shaped like an end-of-day file: accounts in order with 1-12 movements each, a mix of nine
transaction codes (30% card purchases), EUR/USD/GBP/JPY, random times, amounts, balances and
descriptions.  The hand-written encoder is checked against ``RecordCodec.encode`` on the first
2,000 details.  Cached under ``benchmarks/data/`` (git-ignored); ``COREBRIDGE_BENCH_RECORDS``
scales it (default 1,000,000; e.g. 100000 for a quick run).

Each phase reads the whole file in a fresh child process (``python -m benchmarks.bench_decode
--child PHASE FILE``) so that its peak RSS (``ru_maxrss`` from ``os.wait4`` of that child) is its
own; setup (imports, the mapping registry, codecs) is not timed; the phases run interleaved,
``rounds`` times, and each reports its best pass:

* ``floor``: read the records (1 MiB chunks, 200-byte slices) and ``bytes.decode('cp037')`` each
  whole record; no field work.  Nothing that decodes fields can be faster.
* ``naive``: a straightforward hand-written per-field parser: slice each field, decode each text
  field, unpack packed decimals digit by digit in a loop, a ``Decimal`` per numeric field.
* ``plain``: ``read_records`` with a ``MultiLayoutCodec`` (header / detail / trailer; the detail
  codec is the mapping's, so REDEFINES views follow the mapping's ``views``) -> plain values.
* ``canonical_per_record``: as ``plain``, then ``CompiledMapping.read`` per detail record (the
  per-record API, for comparison).
* ``canonical``: the fused path: ``read_records`` with the mapping's ``record_codec()`` for the
  detail layout, which decodes only what the mapping reads and yields validated ``Transaction``
  objects (exactly ``read(codec.decode(record))``; failures become rejects).

Targets (issue 3): plain >= 300,000 records/s, canonical >= 150,000 records/s on one core, peak
RSS < 100 MB whatever the file size.  Benchmarks report; they never fail a build.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
COPYBOOK = ROOT / "mappings" / "copybooks" / "TXNHIST.cpy"
MAPPING = "batch.txnhist.detail"
LRECL = 200
CHUNK = (1 << 20) // 200 * 200  # whole records per read, like the framing
SEED = 20261127
DEFAULT_RECORDS = 1_000_000
FORMAT = 2  # bump when the generator changes: cached files of another format are rebuilt
PHASES = ("floor", "naive", "plain", "canonical_per_record", "canonical")
TARGET_PLAIN = 300_000
TARGET_CANONICAL = 150_000
TARGET_RSS_MB = 100

FLOOR = "floor: read + bytes.decode('cp037') of each whole record"
NAIVE = "naive per-field Python parser"


# -- the data file ----------------------------------------------------------------------------------
_CODES = (  # (code, channel, debit?, weight)
    ("SAL", "BAT", False, 4), ("DEP", "BRN", False, 6), ("POS", "POS", True, 30), ("ATM", "ATM", True, 10),
    ("TFO", "MOB", True, 14), ("TFI", "WEB", False, 10), ("FEE", "SYS", True, 6), ("INT", "SYS", False, 4),
    ("DDR", "BAT", True, 16),
)
_CURRENCIES = (("EUR", 2, 70), ("USD", 2, 20), ("GBP", 2, 7), ("JPY", 0, 3))
_DESCS = ("RENT NOVEMBER", "SALARY UMBRELLA PLC", "POS CARREFOUR", "ATM WITHDRAWAL", "TRANSFER TO SAVINGS",
          "DIRECT DEBIT ENERGY", "INTEREST", "ACCOUNT FEE", "CASH DEPOSIT", "POS AMAZON EU SARL")


def _packed(n: int, size: int, signed: bool) -> bytes:
    sign = ("d" if n < 0 else "c") if signed else "f"
    return bytes.fromhex(f"{abs(n):0{size * 2 - 1}d}{sign}")


def _zoned_signed(n: int, digits: int) -> bytes:
    text = f"{abs(n):0{digits}d}".encode("cp037")
    return text[:-1] + bytes([(0xD0 if n < 0 else 0xC0) | (text[-1] & 0x0F)])


def _text(s: str, width: int) -> bytes:
    return s.ljust(width)[:width].encode("cp037")


def _detail_values(rnd: random.Random, i: int, account: int, seq: int) -> dict:
    """The i-th detail record as the codec's dict (the generator's own view; checked against encode)."""
    code, channel, debit, _ = rnd.choices(_CODES, weights=[c[3] for c in _CODES])[0]
    currency, units, _ = rnd.choices(_CURRENCIES, weights=[c[2] for c in _CURRENCIES])[0]
    scale = Decimal(1).scaleb(-units)
    amount = Decimal(rnd.randrange(1, 250_000)) * scale
    if debit:
        amount = -amount
    balance = Decimal(rnd.randrange(-500_000, 50_000_000)) * scale
    values = {
        "TXD-REC-TYPE": "D",
        "TXD-ACCT-NO": f"{110000000000 + account:012d}",
        "TXD-TXN-SEQ": seq,
        "TXD-POST-DATE": 1261127,
        "TXD-POST-TIME": rnd.randrange(24) * 10000 + rnd.randrange(60) * 100 + rnd.randrange(60),
        "TXD-VALUE-DATE": 1261127 if rnd.random() < 0.9 else 1261128,
        "TXD-TXN-CODE": code,
        "TXD-DR-CR-IND": "D" if debit else "C",
        "TXD-TXN-AMT": amount.quantize(Decimal("0.01")),
        "TXD-RUN-BAL": balance.quantize(Decimal("0.01")),
        "TXD-CURR-CODE": currency,
        "TXD-DESC": f"{_DESCS[rnd.randrange(len(_DESCS))]} {rnd.randrange(10_000)}",
        "TXD-REF": f"{channel}-20261127-{i % 1000:03d}" if rnd.random() < 0.5 else "",
        "TXD-CHANNEL": channel,
        "TXD-STATUS": "P" if rnd.random() < 0.99 else "R",
        "TXD-FEE-AMT": amount.quantize(Decimal("0.01")) if code == "FEE" else Decimal("0.00"),
    }
    if code == "POS":
        values["TXD-CARD-INFO"] = {"TXD-CARD-MASKED": f"411000******{i % 10_000:04d}",
                                   "TXD-CARD-MCC": rnd.choice((5411, 5812, 5999, 4111))}
    elif code in ("TFO", "TFI"):
        values["TXD-CNTR-INFO"] = {"TXD-CNTR-ACCT": f"{159000000000 + rnd.randrange(10_000):012d}",
                                   "TXD-CNTR-BANK": "CBRGUS33"}
    else:
        values["TXD-CNTR-INFO"] = {"TXD-CNTR-ACCT": "", "TXD-CNTR-BANK": ""}
    return values


def _detail_bytes(v: dict) -> bytes:
    """Encode a detail dict by hand (fast); the generator checks it against ``RecordCodec.encode``."""
    if "TXD-CARD-INFO" in v:
        card = v["TXD-CARD-INFO"]
        area = _text(card["TXD-CARD-MASKED"], 16) + f"{card['TXD-CARD-MCC']:04d}".encode("cp037")
    else:
        cntr = v["TXD-CNTR-INFO"]
        area = _text(cntr["TXD-CNTR-ACCT"], 12) + _text(cntr["TXD-CNTR-BANK"], 8)
    cents = int(v["TXD-TXN-AMT"] * 100)
    return b"".join((
        _text(v["TXD-REC-TYPE"], 1), _text(v["TXD-ACCT-NO"], 12), _packed(v["TXD-TXN-SEQ"], 5, False),
        f"{v['TXD-POST-DATE']:07d}".encode("cp037"), f"{v['TXD-POST-TIME']:06d}".encode("cp037"),
        _packed(v["TXD-VALUE-DATE"], 4, False), _text(v["TXD-TXN-CODE"], 3), _text(v["TXD-DR-CR-IND"], 1),
        _packed(cents, 8, True), _packed(int(v["TXD-RUN-BAL"] * 100), 8, True), _text(v["TXD-CURR-CODE"], 3),
        _text(v["TXD-DESC"], 40), _text(v["TXD-REF"], 16), _text(v["TXD-CHANNEL"], 3), _text(v["TXD-STATUS"], 1),
        area, _zoned_signed(int(v["TXD-FEE-AMT"] * 100), 9), b"\x40" * 53,
    ))


def data_file(records: int) -> Path:
    """The cached file of *records* details (generated on first use, ~3 s per million)."""
    path = DATA / f"TXNHIST.bench.v{FORMAT}.{records}.dat"
    if path.exists() and path.stat().st_size == (records + 2) * LRECL:
        return path
    from mappings.copybook import RecordCodec, load_copybook

    book = load_copybook(COPYBOOK)
    header = RecordCodec(book.record("TXNHIST-HEADER"))
    trailer = RecordCodec(book.record("TXNHIST-TRAILER"))
    check_cntr = RecordCodec(book.record("TXNHIST-DETAIL"), redefines={"TXD-CNTR-INFO": "TXD-CNTR-INFO"})
    check_card = RecordCodec(book.record("TXNHIST-DETAIL"), redefines={"TXD-CNTR-INFO": "TXD-CARD-INFO"})
    rnd = random.Random(SEED)
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    debit = credit = Decimal(0)
    with open(tmp, "wb") as f:
        f.write(header.encode({"TXH-REC-TYPE": "H", "TXH-FILE-ID": "TXNHIST", "TXH-FILE-DATE": 1261127,
                               "TXH-SEQ-NO": 9827, "TXH-CREATE-DATE": 1261127, "TXH-CREATE-TIME": 220000,
                               "TXH-SOURCE-SYS": "COREBNK1"}))
        batch = []
        account = seq = left = 0
        for i in range(records):
            if not left:  # the next account with movements: 1 to 12 of them, in sequence order
                account += rnd.randrange(1, 4)
                left = rnd.randrange(1, 13)
                seq = rnd.randrange(1, 500)
            left -= 1
            seq += 1
            values = _detail_values(rnd, i, account, seq)
            raw = _detail_bytes(values)
            if i < 2000:  # the hand encoder must write exactly what the codec writes
                codec = check_card if "TXD-CARD-INFO" in values else check_cntr
                if raw != codec.encode(values):
                    raise AssertionError(f"hand-encoded detail {i} differs from RecordCodec.encode")
            amount = values["TXD-TXN-AMT"]
            if amount < 0:
                debit += amount
            else:
                credit += amount
            batch.append(raw)
            if len(batch) == 5000:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))
        f.write(trailer.encode({"TXT-REC-TYPE": "T", "TXT-REC-COUNT": records, "TXT-CTL-TOTAL": debit + credit,
                                "TXT-DEBIT-TOTAL": debit, "TXT-CREDIT-TOTAL": credit}))
    tmp.replace(path)
    return path


# -- the naive parser (the "what a developer writes without care" baseline) -------------------------
def _naive_packed(raw: bytes, scale: int) -> Decimal:
    digits = ""
    for byte in raw[:-1]:
        digits += str(byte >> 4) + str(byte & 0x0F)
    digits += str(raw[-1] >> 4)
    value = Decimal(digits)
    if raw[-1] & 0x0F == 0x0D:
        value = -value
    return value.scaleb(-scale)


def _naive_zoned(raw: bytes, scale: int) -> Decimal:
    digits = ""
    for byte in raw:
        digits += str(byte & 0x0F)
    value = Decimal(digits)
    if raw[-1] >> 4 == 0x0D:
        value = -value
    return value.scaleb(-scale)


def _naive_text(raw: bytes) -> str:
    return raw.decode("cp037").rstrip()


def naive_parse(rec: bytes) -> dict:
    kind = _naive_text(rec[0:1])
    if kind == "H":
        return {"TXH-REC-TYPE": kind, "TXH-FILE-ID": _naive_text(rec[1:9]),
                "TXH-FILE-DATE": _naive_zoned(rec[9:16], 0), "TXH-SEQ-NO": _naive_zoned(rec[16:22], 0),
                "TXH-CREATE-DATE": _naive_zoned(rec[22:29], 0), "TXH-CREATE-TIME": _naive_zoned(rec[29:35], 0),
                "TXH-SOURCE-SYS": _naive_text(rec[35:43])}
    if kind == "T":
        return {"TXT-REC-TYPE": kind, "TXT-REC-COUNT": _naive_zoned(rec[1:10], 0),
                "TXT-CTL-TOTAL": _naive_packed(rec[10:19], 2), "TXT-DEBIT-TOTAL": _naive_packed(rec[19:28], 2),
                "TXT-CREDIT-TOTAL": _naive_packed(rec[28:37], 2)}
    out = {
        "TXD-REC-TYPE": kind,
        "TXD-ACCT-NO": _naive_text(rec[1:13]),
        "TXD-TXN-SEQ": _naive_packed(rec[13:18], 0),
        "TXD-POST-DATE": _naive_zoned(rec[18:25], 0),
        "TXD-POST-TIME": _naive_zoned(rec[25:31], 0),
        "TXD-VALUE-DATE": _naive_packed(rec[31:35], 0),
        "TXD-TXN-CODE": _naive_text(rec[35:38]),
        "TXD-DR-CR-IND": _naive_text(rec[38:39]),
        "TXD-TXN-AMT": _naive_packed(rec[39:47], 2),
        "TXD-RUN-BAL": _naive_packed(rec[47:55], 2),
        "TXD-CURR-CODE": _naive_text(rec[55:58]),
        "TXD-DESC": _naive_text(rec[58:98]),
        "TXD-REF": _naive_text(rec[98:114]),
        "TXD-CHANNEL": _naive_text(rec[114:117]),
        "TXD-STATUS": _naive_text(rec[117:118]),
        "TXD-FEE-AMT": _naive_zoned(rec[138:147], 2),
    }
    if out["TXD-TXN-CODE"] == "POS":
        out["TXD-CARD-INFO"] = {"TXD-CARD-MASKED": _naive_text(rec[118:134]),
                                "TXD-CARD-MCC": _naive_zoned(rec[134:138], 0)}
    else:
        out["TXD-CNTR-INFO"] = {"TXD-CNTR-ACCT": _naive_text(rec[118:130]),
                                "TXD-CNTR-BANK": _naive_text(rec[130:138])}
    return out


# -- the phases (run in a child process each) -------------------------------------------------------
def _chunks(path: Path):
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _phase_floor(path: Path):
    def loop() -> tuple[int, int]:
        n = 0
        for chunk in _chunks(path):
            for start in range(0, len(chunk), LRECL):
                chunk[start:start + LRECL].decode("cp037")
                n += 1
        return n, 0

    return loop


def _phase_naive(path: Path):
    def loop() -> tuple[int, int]:
        n = 0
        for chunk in _chunks(path):
            for start in range(0, len(chunk), LRECL):
                naive_parse(chunk[start:start + LRECL])
                n += 1
        return n, 0

    return loop


def _layouts(detail_codec):
    from mappings.copybook import MultiLayoutCodec, RecordCodec, by_record_type, load_copybook

    book = load_copybook(COPYBOOK)
    codecs = {"TXNHIST-HEADER": RecordCodec(book.record("TXNHIST-HEADER")), "TXNHIST-DETAIL": detail_codec,
              "TXNHIST-TRAILER": RecordCodec(book.record("TXNHIST-TRAILER"))}
    selector = by_record_type(0, 1, {"H": "TXNHIST-HEADER", "D": "TXNHIST-DETAIL", "T": "TXNHIST-TRAILER"})
    return MultiLayoutCodec(codecs, selector)


def _mapping():
    from mappings.engine import MappingRegistry

    return MappingRegistry.load()[MAPPING]


def _reading(path: Path, codec, per_detail=None):
    from mappings.copybook import Reject, read_records

    def loop() -> tuple[int, int]:
        n = rejects = 0
        with open(path, "rb") as f:
            for item in read_records(f, codec, lrecl=LRECL):
                n += 1
                if type(item) is Reject:
                    rejects += 1
                elif per_detail is not None and item.layout == "TXNHIST-DETAIL":
                    per_detail(item.values)
        return n, rejects

    return loop


def _phase_plain(path: Path):
    return _reading(path, _layouts(_mapping().codec()))


def _phase_canonical_per_record(path: Path):
    mapping = _mapping()
    return _reading(path, _layouts(mapping.codec()), mapping.read)


def _phase_canonical(path: Path):
    return _reading(path, _layouts(_mapping().record_codec()))


def _child(phase: str, path: Path) -> None:
    import gc

    loop = globals()[f"_phase_{phase}"](path)  # setup (imports, mapping registry, codecs) is not timed
    gc.collect()
    t0 = time.perf_counter()
    n, rejects = loop()
    elapsed = time.perf_counter() - t0
    print(json.dumps({"phase": phase, "records": n, "rejects": rejects, "elapsed": elapsed}))


def _spawn(phase: str, path: Path) -> dict:
    """Run one phase in a child; its own peak RSS comes from wait4 (not the sum over children)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_decode", "--child", phase, str(path)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE)
    out = p.stdout.read()  # type: ignore[union-attr]
    p.stdout.close()  # type: ignore[union-attr]
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"phase {phase} failed with exit code {p.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    return result


def measure(records: int, rounds: int = 3, phases: tuple[str, ...] = PHASES) -> dict[str, dict]:
    """Best elapsed and peak RSS per phase; phases interleaved, each pass in a fresh child."""
    path = data_file(records)
    size = path.stat().st_size
    best: dict[str, dict] = {}
    for _ in range(rounds):
        for phase in phases:
            got = _spawn(phase, path)
            if got["records"] != records + 2:
                raise RuntimeError(f"phase {phase} read {got['records']} records, expected {records + 2}")
            if got["rejects"]:
                raise RuntimeError(f"phase {phase} rejected {got['rejects']} records")
            prev = best.get(phase)
            rss = max(got["rss_mb"], prev["rss_mb"]) if prev else got["rss_mb"]
            if prev is None or got["elapsed"] < prev["elapsed"]:
                best[phase] = got
            best[phase]["rss_mb"] = rss
    for got in best.values():
        got["records_per_s"] = got["records"] / got["elapsed"]
        got["mb_per_s"] = size / got["elapsed"] / 1e6
    return best


def _row(name: str, value: float, unit: str, baseline: str, base: float, target: str, digits: int = 0) -> dict:
    return {"name": name, "value": round(value, digits) if digits else round(value), "unit": unit,
            "baseline": baseline, "baseline_value": round(base, digits) if digits else round(base),
            "ratio": round(value / base, 2) if base else None, "target": target}


def run(records: int | None = None, rounds: int = 3) -> list[dict]:
    if records is None:
        records = int(os.environ.get("COREBRIDGE_BENCH_RECORDS", DEFAULT_RECORDS))
    r = measure(records, rounds)
    for phase, got in r.items():
        print(f"  {phase:22s} {got['records_per_s']:>10,.0f} records/s  {got['mb_per_s']:7.1f} MB/s  "
              f"peak RSS {got['rss_mb']:6.1f} MB  ({got['elapsed']:.2f} s best of {rounds})")
    floor, naive, plain = r["floor"], r["naive"], r["plain"]
    canon, per_record = r["canonical"], r["canonical_per_record"]
    plain_t = f">= {TARGET_PLAIN:,} records/s"
    canon_t = f">= {TARGET_CANONICAL:,} records/s"
    rss = max(plain["rss_mb"], canon["rss_mb"], per_record["rss_mb"])
    return [
        _row("decode_plain_records_per_s", plain["records_per_s"], "records/s", FLOOR, floor["records_per_s"],
             plain_t),
        _row("decode_plain_vs_naive", plain["records_per_s"], "records/s", NAIVE, naive["records_per_s"], plain_t),
        _row("decode_plain_mb_per_s", plain["mb_per_s"], "MB/s", FLOOR, floor["mb_per_s"], "report", 1),
        _row("decode_canonical_records_per_s", canon["records_per_s"], "records/s", FLOOR, floor["records_per_s"],
             canon_t),
        _row("decode_canonical_vs_naive", canon["records_per_s"], "records/s", NAIVE, naive["records_per_s"],
             canon_t),
        _row("decode_canonical_vs_per_record_read", canon["records_per_s"], "records/s",
             "read_records + CompiledMapping.read per record", per_record["records_per_s"], canon_t),
        _row("decode_canonical_mb_per_s", canon["mb_per_s"], "MB/s", FLOOR, floor["mb_per_s"], "report", 1),
        _row("decode_peak_rss_mb", rss, "MB", "floor phase (interpreter + imports)", floor["rss_mb"],
             f"< {TARGET_RSS_MB} MB", 1),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_decode")
    p.add_argument("--child", nargs=2, metavar=("PHASE", "FILE"), help=argparse.SUPPRESS)
    p.add_argument("--records", type=int, default=None)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return 0
    for row in run(args.records, args.rounds):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
