"""The payment inbox: PAYIN files in, postings, PAYACK acknowledgments out.

Layouts and rules are in ``copybooks/PAYIN.cpy`` and ``copybooks/PAYACK.cpy``. In short:

* Only complete files are read: a name starting with ``.`` or ending ``.tmp``/``.part``/
  ``.filepart`` is an upload in progress. A file is taken when the SFTP face reports its rename
  (or the close of a direct upload) and, as a fallback, by a poll every 0.5 s once its size and
  modification time held still between two polls. Files the SFTP face still has open for
  writing are never taken.
* The whole file is checked first (header, trailer, record count, control total). Any problem
  rejects the file: nothing posts, the input moves to ``inbox/rejected/``, the ack says why
  (status R and a file reason F001..F006), as a real core does on a trailer mismatch.
* Otherwise the input is first moved to ``inbox/processed/`` (claimed: from then on a restart
  cannot post it again), then each detail is validated (V001..V004) and posted through the
  posting engine on channel BAT; a bad detail is rejected on its own and the others still post.
* The ack ``PAYACK.<suffix>`` is written to the outbox atomically (temp name, then rename).
* A name already in ``inbox/processed/`` is a duplicate: not posted again, moved to
  ``inbox/rejected/``, and the first ack stays.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..ledger.codes import CURRENCIES, RC_OK, RC_REJECTED
from ..ledger.legacy import from_cyymmdd, to_cyymmdd
from ..ledger.posting import TransferRequest
from .ebcdic import DataError, decode_text, representable
from .files import atomic_write, is_complete_name, unique_path
from .layouts import (
    PAYACK_DETAIL,
    PAYACK_HEADER,
    PAYACK_TRAILER,
    PAYIN_DETAIL,
    PAYIN_HEADER,
    PAYIN_LRECL,
    PAYIN_TRAILER,
)
from .watcher import PollingWatcher

log = logging.getLogger(__name__)

CHANNEL = "BAT"
FILE_REASONS = {
    "F001": "MISSING OR INVALID HEADER RECORD",
    "F002": "MISSING TRAILER RECORD",
    "F003": "TRAILER RECORD COUNT MISMATCH",
    "F004": "TRAILER CONTROL TOTAL MISMATCH",
    "F005": f"FILE LENGTH NOT A MULTIPLE OF LRECL {PAYIN_LRECL}",
    "F006": "MISPLACED HEADER OR TRAILER RECORD",
}
RECORD_REASONS = {
    "V001": "INVALID RECORD TYPE",
    "V002": "INVALID PACKED DECIMAL IN AMOUNT",
    "V003": "INVALID VALUE DATE",
    "V004": "INVALID CURRENCY CODE",
}


def ack_name(input_name: str) -> str:
    """PAYIN.<suffix> -> PAYACK.<suffix>; any other name N -> PAYACK.N."""
    suffix = input_name[len("PAYIN."):] if input_name.upper().startswith("PAYIN.") else input_name
    return f"PAYACK.{suffix}"


@dataclass
class AckRecord:
    rec_no: int
    reference: str
    status: str  # A accepted (posted), R rejected
    return_code: str
    reason_code: str = ""
    reason_text: str = ""
    xfer_id: int = 0
    amount: Decimal | None = None


@dataclass
class AckResult:
    input_name: str
    status: str  # A file taken, R file rejected, D duplicate (no ack written)
    reason_code: str = ""
    reason_text: str = ""
    ack_path: Path | None = None
    moved_to: Path | None = None
    records: list[AckRecord] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.records if r.status == "A")

    @property
    def rejected(self) -> int:
        return sum(1 for r in self.records if r.status != "A")


@dataclass
class _Parsed:
    seq_no: int = 0
    reason: str | None = None  # a file-level reason: the file is rejected whole
    details: list[tuple[int, bytes]] = field(default_factory=list)  # (record number, bytes)


def _decode_amount(record: bytes) -> Decimal | None:
    try:
        return PAYIN_DETAIL.field("PID-AMOUNT").decode(record[PAYIN_DETAIL.slice("PID-AMOUNT")])
    except DataError:
        return None


def parse_payin(data: bytes) -> _Parsed:
    """Split and check the file's structure; no posting, no side effects."""
    parsed = _Parsed()
    usable = len(data) - len(data) % PAYIN_LRECL
    records = [data[i:i + PAYIN_LRECL] for i in range(0, usable, PAYIN_LRECL)]
    types = [decode_text(r[:1]) for r in records]
    if records and types[0] == "H":
        try:
            parsed.seq_no = PAYIN_HEADER.decode(records[0])["PIH-SEQ-NO"]
        except DataError:
            parsed.seq_no = 0
    start = 1 if types[:1] == ["H"] else 0
    end = len(records) - 1 if len(records) > start and types[-1] == "T" else len(records)
    parsed.details = [(i + 1, records[i]) for i in range(start, end)]

    if len(data) % PAYIN_LRECL:
        parsed.reason = "F005"
    elif not records or types[0] != "H" or not _header_ok(records[0]):
        parsed.reason = "F001"
    elif len(records) < 2 or types[-1] != "T":
        parsed.reason = "F002"
    elif any(t in ("H", "T") for t in types[1:-1]):
        parsed.reason = "F006"
    else:
        parsed.reason = _trailer_reason(records[-1], parsed.details)
    return parsed


def _header_ok(record: bytes) -> bool:
    try:
        values = PAYIN_HEADER.decode(record)
    except DataError:
        return False
    return values["PIH-FILE-ID"].strip() == "PAYIN"


def _trailer_reason(trailer: bytes, details: list[tuple[int, bytes]]) -> str | None:
    try:
        values = PAYIN_TRAILER.decode(trailer)
    except DataError:
        return "F003"
    if values["PIT-REC-COUNT"] != len(details):
        return "F003"
    total = sum((a for _, r in details if (a := _decode_amount(r)) is not None), Decimal("0.00"))
    if values["PIT-CTL-TOTAL"] != total:
        return "F004"
    return None


def _validate(record: bytes) -> tuple[str | None, dict[str, Any]]:
    """A V-reason for a detail that cannot be posted, else None and its decoded fields."""
    if decode_text(record[:1]) != "D":
        return "V001", {}
    values: dict[str, Any] = {}
    for f in PAYIN_DETAIL.fields:
        if f.is_filler:
            continue
        try:
            values[f.name] = f.decode(record[f.offset:f.offset + f.length])
        except DataError:
            return ("V002" if f.name == "PID-AMOUNT" else "V003"), values
    try:
        if from_cyymmdd(values["PID-VALUE-DATE"]) is None:
            return "V003", values
    except ValueError:
        return "V003", values
    if values["PID-CURR-CODE"] not in CURRENCIES:
        return "V004", values
    return None, values


class PaymentInbox:
    """Processes complete PAYIN files from the inbox; optional watcher thread (start/stop)."""

    def __init__(self, config: Any, ledger: Any, engine: Any, faults: Any = None, *,
                 poll_interval: float = 0.5) -> None:
        self.config = config
        self.ledger = ledger
        self.engine = engine
        self.faults = faults
        self.inbox = Path(config.inbox)
        self.outbox = Path(config.outbox)
        self.processed_dir = self.inbox / "processed"
        self.rejected_dir = self.inbox / "rejected"
        self._lock = threading.RLock()  # one file at a time, whoever asks
        self._state = threading.Lock()
        self._held: dict[Path, int] = {}
        self._ready: set[Path] = set()
        self._seen: dict[Path, tuple[int, int]] = {}
        self.results: list[AckResult] = []
        self.watcher = PollingWatcher(self.scan, poll_interval, name="payment-inbox")

    # -- lifecycle --------------------------------------------------------------------------
    def ensure_dirs(self) -> None:
        for d in (self.inbox, self.processed_dir, self.rejected_dir, self.outbox):
            d.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.ensure_dirs()
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()

    # -- signals from the SFTP face -------------------------------------------------------------
    def hold(self, path: Path) -> None:
        """``path`` is open for writing: never take it, whatever its name."""
        with self._state:
            self._held[path] = self._held.get(path, 0) + 1

    def release(self, path: Path) -> None:
        with self._state:
            n = self._held.get(path, 0) - 1
            if n > 0:
                self._held[path] = n
            else:
                self._held.pop(path, None)

    def notify(self, path: Path | None = None) -> None:
        """A file is complete (renamed or closed under its final name): take it now."""
        if path is not None:
            with self._state:
                self._ready.add(path)
        self.watcher.kick()

    # -- processing ---------------------------------------------------------------------------
    def pending(self, *, force: bool = False) -> list[Path]:
        """Complete files to take now: notified ones, stable ones, or all of them (``force``)."""
        if not self.inbox.is_dir():
            return []
        out = []
        with self._state:
            seen, self._seen = self._seen, {}
            for entry in sorted(os.scandir(self.inbox), key=lambda e: e.name):
                if not entry.is_file(follow_symlinks=False) or not is_complete_name(entry.name):
                    continue
                path = Path(entry.path)
                if path in self._held:
                    continue
                st = entry.stat(follow_symlinks=False)
                sig = (st.st_size, st.st_mtime_ns)
                self._seen[path] = sig
                if force or path in self._ready or seen.get(path) == sig:
                    out.append(path)
            self._ready.intersection_update(self._seen)
        return out

    def scan(self, *, force: bool = False) -> list[AckResult]:
        """One pass over the inbox (the watcher calls this); returns what was processed."""
        results = []
        for path in self.pending(force=force):
            try:
                result = self.process_file(path)
            except FileNotFoundError:
                continue  # taken meanwhile, or removed by the uploader
            if result is not None:
                results.append(result)
        return results

    def process_file(self, path: Path) -> AckResult | None:
        with self._lock:
            if not path.exists():
                return None
            with self._state:
                self._ready.discard(path)
                self._seen.pop(path, None)
            self.ensure_dirs()
            name = path.name
            if (self.processed_dir / name).exists():
                moved = unique_path(self.rejected_dir / name)
                os.replace(path, moved)
                log.warning("payment file %s is a duplicate of a processed file: moved to %s, "
                            "not posted", name, moved)
                result = AckResult(name, "D", moved_to=moved)
                self.results.append(result)
                return result
            data = path.read_bytes()
            parsed = parse_payin(data)
            if parsed.reason is not None:
                result = self._reject_file(path, parsed)
            else:
                moved = self.processed_dir / name
                os.replace(path, moved)  # claim it before posting: never posted twice
                result = AckResult(name, "A", moved_to=moved)
                result.records = [self._post(rec_no, record) for rec_no, record in parsed.details]
            result.ack_path = self._write_ack(result, parsed.seq_no)
            log.info("payment file %s: status %s%s, %d accepted, %d rejected, ack %s", name,
                     result.status, f" ({result.reason_code})" if result.reason_code else "",
                     result.accepted, result.rejected, result.ack_path.name)
            self.results.append(result)
            return result

    def _reject_file(self, path: Path, parsed: _Parsed) -> AckResult:
        assert parsed.reason is not None
        text = FILE_REASONS[parsed.reason]
        moved = unique_path(self.rejected_dir / path.name)
        os.replace(path, moved)
        result = AckResult(path.name, "R", parsed.reason, text, moved_to=moved)
        for rec_no, record in parsed.details:
            result.records.append(AckRecord(rec_no, _reference(record), "R", RC_REJECTED,
                                            parsed.reason, text))
        return result

    def _post(self, rec_no: int, record: bytes) -> AckRecord:
        reference = _reference(record)
        reason, values = _validate(record)
        if reason is not None:
            return AckRecord(rec_no, reference, "R", RC_REJECTED, reason, RECORD_REASONS[reason])
        amount = values["PID-AMOUNT"]
        res = self.engine.post(TransferRequest(
            reference=values["PID-TXN-REF"].rstrip(),
            from_acct=values["PID-DEBIT-ACCT"].strip(),
            to_acct=values["PID-CREDIT-ACCT"].strip(),
            amount=amount,
            currency=values["PID-CURR-CODE"],
            memo=values["PID-MEMO"].rstrip(),
            channel=CHANNEL,
        ))
        status = "A" if res.return_code == RC_OK else "R"
        return AckRecord(rec_no, reference, status, res.return_code, res.reason_code,
                         res.message, res.xfer_id or 0, amount if status == "A" else None)

    def _write_ack(self, result: AckResult, seq_no: int) -> Path:
        try:
            date = to_cyymmdd(self.ledger.business_date())
        except RuntimeError:
            date = to_cyymmdd(dt.date.today())
        out = [PAYACK_HEADER.encode({
            "PAH-REC-TYPE": "H", "PAH-FILE-ID": "PAYACK", "PAH-FILE-DATE": date,
            "PAH-SEQ-NO": seq_no % 1_000_000, "PAH-IN-FILE": representable(result.input_name[:30]),
            "PAH-FILE-STATUS": result.status, "PAH-FILE-RSN-CD": result.reason_code,
            "PAH-FILE-RSN-TEXT": result.reason_text[:40],
        })]
        total = Decimal("0.00")
        for r in result.records:
            out.append(PAYACK_DETAIL.encode({
                "PAD-REC-TYPE": "D", "PAD-REC-NO": r.rec_no, "PAD-TXN-REF": r.reference,
                "PAD-STATUS": r.status, "PAD-RTN-CD": r.return_code, "PAD-RSN-CD": r.reason_code,
                "PAD-RSN-TEXT": representable(r.reason_text[:40]), "PAD-XFER-ID": r.xfer_id,
            }))
            if r.status == "A" and r.amount is not None:
                total += r.amount
        out.append(PAYACK_TRAILER.encode({
            "PAT-REC-TYPE": "T", "PAT-REC-COUNT": len(result.records),
            "PAT-ACCEPT-CNT": result.accepted, "PAT-REJECT-CNT": result.rejected,
            "PAT-ACCEPT-TOTAL": total,
        }))
        return atomic_write(self.outbox / ack_name(result.input_name), b"".join(out))


def _reference(record: bytes) -> str:
    return decode_text(record[PAYIN_DETAIL.slice("PID-TXN-REF")])


__all__ = ["AckRecord", "AckResult", "FILE_REASONS", "PaymentInbox", "RECORD_REASONS", "ack_name",
           "parse_payin"]
