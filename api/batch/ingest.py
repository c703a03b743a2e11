"""Ingest end-of-day TXNHIST files into the batch store: one file, one transaction, all or nothing.

A file is known by name + SHA-256: ingesting it again is a no-op that says so. Within one database
transaction the file is claimed (see :mod:`api.batch.store`), every detail goes through the
``batch.txnhist.detail`` mapping and is inserted in batches; only when the trailer agrees (record
count, signed control total, debit and credit totals) is the transaction committed. A trailer that
disagrees, a truncated file, a missing header or trailer: the transaction is rolled back, the file
moves to the quarantine folder with a JSON report, and the store remembers it as quarantined.

Record-level problems (a bad packed decimal, a value the mapping refuses) follow the policy:
``reject-file`` (default: the file is quarantined) or ``load-good`` (the good records load, the bad
ones go to ``<name>.rejects.json`` with record number, offset, field and reason). Either way they
are counted in the report, never dropped silently.

Speed (issue 7): the file is read in segments of whole records; a big file's segments are decoded + mapped
two in three by a forked decoder process (:mod:`.pipeline`) while this process decodes the third and does
every insert, so decoding runs beside the inserts on a second core. The records are still judged here, one
by one in file order, so outcomes, errors and reject details do not depend on who decoded them. A decoder
that dies fails the file like a crash (:class:`~.pipeline.ChildDied`: rolled back, not quarantined).

A file under a name the store already holds with other content (another SHA-256) is ingested, and the
report says so (``changed``). Given the listing's size and mtime, the outcome remembers them (see
:meth:`TxnhistIngestor.known_listing`), so a later pull need not download the file to recognise it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from mappings.copybook import MultiLayoutCodec, Record, RecordCodec, Reject, by_record_type, load_copybook, read_records
from mappings.engine import MappingRegistry

from .pipeline import can_fork, in_child
from .store import BatchStore

__all__ = ["POLICIES", "FileReport", "TxnhistIngestor"]

POLICIES = ("reject-file", "load-good")
DETAIL_MAPPING = "batch.txnhist.detail"
HEADER, DETAIL, TRAILER = "TXNHIST-HEADER", "TXNHIST-DETAIL", "TXNHIST-TRAILER"
SEQUENCE_EPOCH = dt.date(2000, 1, 1)
BATCH_ROWS = 1000  # rows per executemany
# records decoded as one piece, here or in the decoder process: small, so a piece's objects stay in the CPU
# cache and the two processes hand over often (5,000: ~5% slower alone, ~10% with the decoder process)
SEGMENT_RECORDS = 500
# files from this size on are decoded partly in a forked decoder process, so decoding runs beside the inserts
# (see .pipeline); smaller ones are not worth the fork; None: never
PROCESS_MIN_BYTES: int | None = 4 << 20
CHILD_SEGMENTS = 2  # of every 3 segments, the decoder process decodes 2, this process 1 (and inserts them all)
ISO_CACHE = 100_000  # distinct timestamps kept per file (a day has 86,400 seconds)
ZERO = Decimal("0.00")


class _FileRejected(Exception):
    """The file fails as a whole: roll back, quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class FileReport:
    """What happened to one file; ``as_json`` is the quarantine report."""

    file_name: str
    sha256: str
    status: str = "pending"  # loaded | quarantined | already-ingested | claimed-elsewhere
    reason: str | None = None
    file_date: str | None = None
    seq_no: int | None = None
    sequence_note: str | None = None  # a gap, repeat or step back vs the last ingested file
    changed: str | None = None  # other content ingested before under this name
    records: int = 0  # details read (good + bad)
    loaded: int = 0  # new rows in the store
    duplicates: int = 0  # details whose transaction id the store already held
    rejects: int = 0  # bad details
    reject_details: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    control_total: str | None = None  # sum of the good details' signed amounts
    debit_total: str | None = None
    credit_total: str | None = None
    trailer: dict[str, Any] | None = None
    seconds: float = 0.0
    quarantine_path: str | None = None
    rejects_path: str | None = None

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> str:
        data = dataclasses.asdict(self)
        data["records_per_second"] = round(self.records_per_second, 1)
        return json.dumps(data, indent=2, default=str)


def _cyymmdd(value: int) -> str | None:
    if not value:
        return None
    century, rest = divmod(int(value), 1000000)
    yy, mmdd = divmod(rest, 10000)
    mm, dd = divmod(mmdd, 100)
    return dt.date(1900 + 100 * century + yy, mm, dd).isoformat()


def _mtime(modified: dt.datetime | None) -> str | None:
    """A listing's mtime as stored (ISO, UTC, seconds); None when the server gave none (the epoch)."""
    if modified is None or modified.timestamp() == 0:
        return None
    return modified.astimezone(dt.UTC).isoformat(timespec="seconds")


def _type_byte(reject: Reject) -> str:
    record = reject.record or b""
    return record[:1].decode("cp037") if record else ""


def _decode_segment(fd: int, codec: MultiLayoutCodec, start: int, end: int, name: str, sha256: str,
                    iso: dict[Any, str]) -> tuple[list[tuple[Any, ...]], Decimal, Decimal, Decimal]:
    """Bytes [start, end) of an open file (whole records) decoded + mapped: events in file order, and the details'
    sums.

    Events: ``("rows", record_no, rows)`` for a run of details (rows in TXN_COLUMNS order), ``("record",
    record_no, layout, values)`` for any other record, ``("reject", record_no, offset, type byte, reason,
    details)``. No judgement here (``TxnhistIngestor._load`` judges the events in order), no store: this also
    runs in the decoder process, on the same open file (``pread``: no shared offset), so both read the file whose
    SHA-256 was given even if its path is replaced meanwhile. ``iso`` caches booked_at / value_date -> ISO text.
    """
    base = start // codec.size  # read_records numbers from 1 in each segment
    events: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    add = rows.append
    first = 0
    total = debits = credits = ZERO
    data = os.pread(fd, end - start, start)
    for item in read_records(io.BytesIO(data), codec, framing="fixed", start_offset=start):
        if type(item) is Record and item.layout == DETAIL:
            # the hot path: one row per detail
            t = item.values
            money = t.amount
            amount = money.amount
            total += amount
            if amount < 0:
                debits += amount
            else:
                credits += amount
            rb = t.running_balance
            booked, valued = t.booked_at, t.value_date
            booked_iso = iso.get(booked)  # a day's file repeats them (isoformat ~2 us); the mapping gives UTC
            if booked_iso is None:
                booked_iso = iso[booked] = booked.isoformat()
            valued_iso = iso.get(valued)
            if valued_iso is None:
                valued_iso = iso[valued] = valued.isoformat()
            if not rows:
                first = base + item.record_no
            add((t.id, t.account_id, booked_iso, valued_iso, f"{amount:f}", money.currency, t.description,
                 t.reference, t.counterparty, t.channel, t.kind, str(t.status),
                 None if rb is None else f"{rb.amount:f}", name, sha256))
            continue
        if rows:
            events.append(("rows", first, rows))
            rows = []
            add = rows.append
        record_no = base + item.record_no
        if isinstance(item, Reject):
            events.append(("reject", record_no, item.offset, _type_byte(item), item.reason, {
                "record_no": record_no, "offset": item.offset, "field": item.field_path, "reason": item.reason,
                "kind": item.kind, "data_hex": item.data_hex}))
        else:
            events.append(("record", record_no, item.layout, item.values))
    if rows:
        events.append(("rows", first, rows))
    if len(iso) > ISO_CACHE:
        iso.clear()
    return events, total, debits, credits


def _decode_segments(fd: int, codec: MultiLayoutCodec, segments: list[tuple[int, int]], name: str,
                     sha256: str) -> Iterator[tuple[list[tuple[Any, ...]], Decimal, Decimal, Decimal]]:
    """The decoder process's share of a file: its segments, in order."""
    iso: dict[Any, str] = {}
    for start, end in segments:
        yield _decode_segment(fd, codec, start, end, name, sha256, iso)


class TxnhistIngestor:
    """Reads TXNHIST files with the copybook codec + the detail mapping and loads them into a store.

    ``on_batch(records_so_far, bytes_so_far)`` is called after every inserted batch (progress bars,
    and tests that inject a crash mid-file).
    """

    def __init__(self, store: BatchStore, registry: MappingRegistry, *, policy: str = "reject-file",
                 quarantine_dir: Path, rejects_dir: Path | None = None, owner: str | None = None,
                 on_batch: Callable[[int, int], None] | None = None, decoder_process: bool = True) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.store = store
        self.policy = policy
        self.quarantine_dir = Path(quarantine_dir)
        self.rejects_dir = Path(rejects_dir) if rejects_dir is not None else self.quarantine_dir.parent / "rejects"
        self.owner = owner or f"{os.uname().nodename}:{os.getpid()}"
        self.on_batch = on_batch
        self.decoder_process = decoder_process  # big files: decode partly in a forked process (see _decoded)
        mapping = registry[DETAIL_MAPPING]
        contract_file = mapping.binding.contract_file
        assert contract_file is not None
        book = load_copybook(contract_file)
        codepage = mapping.spec.source.contract.get("codepage", "cp037")
        self.codec = MultiLayoutCodec(
            {HEADER: RecordCodec(book.record(HEADER), codepage=codepage),
             DETAIL: mapping.record_codec(),
             TRAILER: RecordCodec(book.record(TRAILER), codepage=codepage)},
            by_record_type(0, 1, {"H": HEADER, "D": DETAIL, "T": TRAILER}, codepage=codepage),
        )

    # -- one file --------------------------------------------------------------------------------
    def known_listing(self, name: str, size: int, modified: dt.datetime | None) -> FileReport | None:
        """An ``already-ingested`` report if a listing entry (name, size, mtime) names a file the store holds.

        Matches the size and mtime recorded when that file was ingested or quarantined (an mtime the server
        did not give matches any); a file of another size or mtime is not known here, so it gets downloaded
        and its SHA-256 decides.
        """
        known = self.store.known_remote(name, size, _mtime(modified))
        if known is None:
            return None
        return FileReport(file_name=name, sha256=known["sha256"], status="already-ingested",
                          reason=f"already {known['status']} at {known['ingested_at']} (same name, size and mtime): "
                                 "not downloaded")

    def ingest(self, path: Path, sha256: str, name: str | None = None, *, size: int | None = None,
               modified: dt.datetime | None = None) -> FileReport:
        """Load one file; ``size`` and ``modified`` (the listing's) are remembered with the outcome."""
        name = name or path.name
        report = FileReport(file_name=name, sha256=sha256)
        listing = None if size is None else (size, _mtime(modified))
        started = time.perf_counter()
        known = self.store.known_file(name, sha256)
        if known is not None:
            report.status = "already-ingested"
            report.reason = f"already {known['status']} at {known['ingested_at']}: nothing to do"
            if listing is not None:
                self.store.remember_remote(name, sha256, *listing)
            return report
        others = [v for v in self.store.versions_of(name) if v["sha256"] != sha256]
        if others:
            last = others[-1]
            report.changed = (f"changed: {name} was {last['status']} before with SHA-256 {last['sha256'][:16]}... "
                              f"({len(others)} earlier version(s)); this content differs")
        try:
            with self.store.transaction():
                if not self.store.claim(name, sha256, self.owner):
                    report.status = "claimed-elsewhere"
                    report.reason = "another instance has ingested or is ingesting this file"
                    return report
                self._load(path, name, sha256, report)
                report.status = "loaded"
                report.seconds = time.perf_counter() - started
                if report.reject_details:
                    report.rejects_path = str(self.rejects_dir / f"{name}.rejects.json")
                self._record(report, listing)
        except _FileRejected as exc:
            report.status = "quarantined"
            report.reason = exc.reason
            report.loaded = 0
            report.seconds = time.perf_counter() - started
            self._quarantine(path, report, listing)
            return report
        if report.reject_details:
            self._write_rejects(report)
        return report

    def _record(self, report: FileReport, listing: tuple[int, str | None] | None) -> None:
        if listing is not None:
            self.store.remember_remote(report.file_name, report.sha256, *listing)
        self.store.record_file(
            name=report.file_name, sha256=report.sha256, status=report.status, file_date=report.file_date,
            seq_no=report.seq_no, records=report.records, rejects=report.rejects, duplicates=report.duplicates,
            control_total=report.control_total, reason=report.reason, report=report.as_json())

    def _load(self, path: Path, name: str, sha256: str, report: FileReport) -> None:
        """Judge the file's records one by one in file order, whoever decoded them."""
        header: dict[str, Any] | None = None
        trailer: dict[str, Any] | None = None
        pending: list[tuple[Any, ...]] = []
        batch = BATCH_ROWS  # read per file: tests shrink it to get several batches
        details = 0  # good details; report.records also counts the bad ones
        total = debits = credits = ZERO
        # one open file for both processes: the one whose SHA-256 we were given, even if the path is replaced
        with open(path, "rb") as f, self._decoded(f.fileno(), name, sha256) as segments:
            size = os.fstat(f.fileno()).st_size
            for end, events, seg_total, seg_debits, seg_credits in segments:
                total += seg_total
                debits += seg_debits
                credits += seg_credits
                for event in events:
                    kind, record_no = event[0], event[1]
                    if trailer is not None:
                        raise _FileRejected(f"record {record_no} follows the trailer")
                    if kind == "rows":
                        if header is None:
                            raise _FileRejected("missing header record")
                        rows = event[2]
                        while rows:  # batches of exactly `batch` rows, as if the rows came one by one
                            take = batch - len(pending)
                            pending += rows[:take]
                            details += min(take, len(rows))
                            rows = rows[take:]
                            if len(pending) >= batch:
                                report.records = details + report.rejects
                                self._flush(pending, report, end)
                    elif kind == "reject":
                        _, record_no, offset, type_byte, reason, detail = event
                        if reason.startswith("truncated"):
                            raise _FileRejected(f"truncated file: {reason} (record {record_no}, offset {offset})")
                        if type_byte != "D" or header is None:
                            what = "header" if type_byte == "H" else "trailer" if type_byte == "T" else "record"
                            raise _FileRejected(f"bad {what} at record {record_no}: {reason}")
                        report.rejects += 1
                        report.reject_details.append(detail)
                    elif event[2] == HEADER:
                        if header is not None or record_no != 1:
                            raise _FileRejected(f"misplaced header at record {record_no}")
                        header = event[3]
                        self._check_header(header, report)
                    elif event[2] == TRAILER:
                        trailer = event[3]
                    else:
                        raise _FileRejected("missing header record")
        report.records = details + report.rejects
        if header is None:
            raise _FileRejected("empty file or missing header record")
        if trailer is None:
            raise _FileRejected("missing trailer record (truncated file?)")
        self._flush(pending, report, size)
        report.control_total, report.debit_total, report.credit_total = f"{total:f}", f"{debits:f}", f"{credits:f}"
        report.trailer = {k: (f"{v:f}" if isinstance(v, Decimal) else v) for k, v in trailer.items()}
        self._check_trailer(trailer, report, total, debits, credits)

    @contextlib.contextmanager
    def _decoded(self, fd: int, name: str, sha256: str) -> Iterator[Iterator[tuple[Any, ...]]]:
        """(segment end, events, total, debits, credits) per segment, in file order; a big file's segments two in
        three from the decoder process (gone when the block ends), the others decoded here meanwhile."""
        size = os.fstat(fd).st_size
        step = SEGMENT_RECORDS * self.codec.size
        segments = [(start, min(start + step, size)) for start in range(0, size, step)]
        share = CHILD_SEGMENTS + 1
        use_child = (self.decoder_process and PROCESS_MIN_BYTES is not None and size >= PROCESS_MIN_BYTES
                     and can_fork() and len(segments) > 1)
        theirs = [seg for k, seg in enumerate(segments) if k % share] if use_child else []

        def merged(remote: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
            iso: dict[Any, str] = {}
            for k, (start, end) in enumerate(segments):
                got = next(remote) if use_child and k % share else _decode_segment(
                    fd, self.codec, start, end, name, sha256, iso)
                yield (end, *got)

        if not use_child:
            yield merged(iter(()))
            return
        with in_child(_decode_segments, fd, self.codec, theirs, name, sha256, name="txnhist-decoder") as remote:
            yield merged(remote)

    def _flush(self, rows: list[tuple[Any, ...]], report: FileReport, position: int) -> None:
        if rows:
            new = self.store.insert_transactions(rows)
            report.loaded += new
            report.duplicates += len(rows) - new
            rows.clear()
        if self.on_batch is not None:
            self.on_batch(report.records, position)

    def _check_header(self, header: dict[str, Any], report: FileReport) -> None:
        if str(header.get("TXH-FILE-ID", "")).strip() != "TXNHIST":
            raise _FileRejected(f"header file id {header.get('TXH-FILE-ID')!r} is not TXNHIST")
        try:
            report.file_date = _cyymmdd(header["TXH-FILE-DATE"])
        except ValueError as exc:
            raise _FileRejected(f"header file date {header['TXH-FILE-DATE']!r} is not a date: {exc}") from None
        report.seq_no = seq = int(header["TXH-SEQ-NO"])
        last = self.store.last_sequence("TXNHIST.")
        if last is None:
            return
        if seq == last:
            report.sequence_note = f"repeat: sequence {seq} was already ingested"
        elif seq < last:
            report.sequence_note = f"out of order: sequence {seq} after {last}"
        elif seq > last + 1:
            report.sequence_note = f"gap: sequence {seq} after {last} ({seq - last - 1} missing)"

    def _check_trailer(self, trailer: dict[str, Any], report: FileReport, total: Decimal, debits: Decimal,
                       credits: Decimal) -> None:
        count = int(trailer["TXT-REC-COUNT"])
        if count != report.records:
            raise _FileRejected(f"trailer record count {count} but the file holds {report.records} details")
        if report.rejects:
            if self.policy == "reject-file":
                first = report.reject_details[0]
                raise _FileRejected(f"{report.rejects} bad record(s) under policy reject-file; first: record "
                                    f"{first['record_no']} field {first['field']}: {first['reason']}")
            # load-good: the bad records' amounts are unknown, so the control total cannot balance;
            # the difference is what the rejected records must have carried, and the report says so
            implied = trailer["TXT-CTL-TOTAL"] - total
            report.reason = (f"loaded {report.records - report.rejects} good records; {report.rejects} rejected "
                             f"(policy load-good); control total unverifiable, rejects imply {implied:f}")
            return
        checks = (("control total", "TXT-CTL-TOTAL", total), ("debit total", "TXT-DEBIT-TOTAL", debits),
                  ("credit total", "TXT-CREDIT-TOTAL", credits))
        for label, fld, ours in checks:
            if trailer[fld] != ours:
                raise _FileRejected(f"trailer {label} {trailer[fld]:f} but the details sum to {ours:f}")

    # -- outcomes --------------------------------------------------------------------------------
    def _quarantine(self, path: Path, report: FileReport, listing: tuple[int, str | None] | None) -> None:
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_dir / report.file_name
        if target.exists():
            target = self.quarantine_dir / f"{report.file_name}.{report.sha256[:12]}"
        if path.exists():
            shutil.move(str(path), target)
        report.quarantine_path = str(target)
        report_path = target.with_name(target.name + ".report.json")
        report_path.write_text(report.as_json())
        with self.store.transaction():
            self.store.execute("DELETE FROM claims WHERE file_name = ? AND sha256 = ?",
                               (report.file_name, report.sha256))
            if self.store.known_file(report.file_name, report.sha256) is None:
                self._record(report, listing)

    def _write_rejects(self, report: FileReport) -> None:
        self.rejects_dir.mkdir(parents=True, exist_ok=True)
        target = Path(report.rejects_path or self.rejects_dir / f"{report.file_name}.rejects.json")
        target.write_text(json.dumps({"file_name": report.file_name, "sha256": report.sha256,
                                      "rejects": report.reject_details}, indent=2))
