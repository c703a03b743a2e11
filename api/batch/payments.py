"""``batch push``: canonical transfers -> a PAYIN file in the core's inbox -> its PAYACK reconciled.

Order of events, so that a file is never uploaded twice under two names:

1. In one store transaction: refuse references the store already holds (in another file), take the
   next file sequence, record the file (``built``) and every payment (``pending``).
2. Write the file locally (header, details through the ``batch.payin.detail`` mapping, trailer
   with record count and control total), upload it (temp name, then rename, by the adapter),
   mark it ``uploaded``. A re-run with exactly the references of a file not yet acknowledged
   resumes that file under its own name instead of building a new one.
3. Poll the outbox for ``PAYACK.<same suffix>`` up to a timeout; each payment becomes ``posted``
   or ``rejected`` (with the core's reason); no ack in time: the file is ``ack_missing``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.errors import RecordNotFound, Rejected
from adapters.ports import BatchDropbox
from canonical import Money, Transfer
from mappings.copybook import RecordCodec, load_copybook
from mappings.engine import MappingApplyError, MappingRegistry

from .store import BatchStore, now

__all__ = ["DuplicateReferences", "PaymentPusher", "PushResult", "load_transfers"]

PAYIN_MAPPING = "batch.payin.detail"
PAYACK_MAPPING = "batch.payack.detail"
SENDER = "CBRIDGE"


class DuplicateReferences(ValueError):
    """References the store already holds in another payment file."""

    def __init__(self, references: list[str]) -> None:
        super().__init__(f"already sent (refused, never sent twice): {', '.join(sorted(references))}")
        self.references = references


@dataclass
class PushResult:
    file_name: str
    ack_name: str
    status: str  # uploaded | acked | ack_missing
    resumed: bool = False
    ack_status: str | None = None  # A accepted, R rejected whole
    ack_reason: str | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def posted(self) -> int:
        return sum(1 for p in self.payments if p["status"] == "posted")

    @property
    def rejected(self) -> int:
        return sum(1 for p in self.payments if p["status"] == "rejected")


def load_transfers(path: Path, *, default_value_date: dt.date | None = None) -> list[Transfer]:
    """A JSON list of {reference, from, to, amount (string), currency, memo?, value_date?}."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of transfers")
    out = []
    for i, item in enumerate(data):
        try:
            out.append(Transfer(
                reference=item["reference"], from_account=item.get("from") or item["from_account"],
                to_account=item.get("to") or item["to_account"],
                amount=Money(amount=Decimal(str(item["amount"])), currency=item["currency"]),
                memo=item.get("memo") or None,
                value_date=item.get("value_date") or default_value_date or dt.datetime.now(dt.UTC).date(),
                channel="batch"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: transfer {i}: {exc}") from None
    refs = [t.reference for t in out]
    if len(set(refs)) != len(refs):
        raise ValueError(f"{path}: a reference appears twice in the file")
    return out


def _cyymmdd(day: dt.date) -> int:
    return (day.year - 1900) // 100 * 1000000 + (day.year % 100) * 10000 + day.month * 100 + day.day


class PaymentPusher:
    def __init__(self, store: BatchStore, registry: MappingRegistry, dropbox: BatchDropbox, *, inbox: str,
                 outbox: str, work_dir: Path) -> None:
        self.store = store
        self.dropbox = dropbox
        self.inbox = inbox
        self.outbox = outbox
        self.work_dir = Path(work_dir)
        self.payin = registry[PAYIN_MAPPING]
        self.payack = registry[PAYACK_MAPPING]
        assert self.payin.binding.contract_file is not None and self.payack.binding.contract_file is not None
        payin_book = load_copybook(self.payin.binding.contract_file)
        ack_book = load_copybook(self.payack.binding.contract_file)
        self.pi = {n: RecordCodec(payin_book.record(n), codepage="cp037")
                   for n in ("PAYIN-HEADER", "PAYIN-DETAIL", "PAYIN-TRAILER")}
        self.pa = {n: RecordCodec(ack_book.record(n), codepage="cp037")
                   for n in ("PAYACK-HEADER", "PAYACK-DETAIL", "PAYACK-TRAILER")}

    # -- 1. record --------------------------------------------------------------------------------
    def _register(self, transfers: list[Transfer], day: dt.date) -> tuple[str, bool]:
        refs = [t.reference for t in transfers]
        with self.store.transaction():
            held = self.store.payments_by_reference(refs)
            files = {p["file_name"] for p in held}
            if held:
                if len(held) == len(refs) and len(files) == 1:
                    name = files.pop()
                    same = {p["reference"] for p in self.store.payments_of(name)} == set(refs)
                    row = self.store.payment_file(name)
                    if same and row is not None and row["status"] in ("built", "uploaded", "ack_missing"):
                        return name, True  # resume the same file under its own name
                raise DuplicateReferences([p["reference"] for p in held])
            seq = self.store.next_payment_seq()
            name = f"PAYIN.D{day:%y%m%d}.S{seq:06d}"
            total = sum((t.amount.amount for t in transfers), Decimal("0.00"))
            stamp = now()
            self.store.execute(
                "INSERT INTO payment_files (file_name, seq_no, status, detail_count, control_total, created_at, "
                "updated_at) VALUES (?, ?, 'built', ?, ?, ?, ?)", (name, seq, len(transfers), f"{total:f}", stamp,
                                                                   stamp))
            self.store.executemany(
                "INSERT INTO payments (reference, file_name, rec_no, from_account, to_account, amount, currency, "
                "memo, value_date, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                [(t.reference, name, i + 2, t.from_account, t.to_account, f"{t.amount.amount:f}", t.amount.currency,
                  t.memo, t.value_date.isoformat() if t.value_date else None, stamp)
                 for i, t in enumerate(transfers)])
        return name, False

    # -- 2. build + upload -----------------------------------------------------------------------
    def build_file(self, name: str, transfers: list[Transfer], day: dt.date) -> Path:
        seq = int(name.rsplit(".S", 1)[1])
        records = [self.pi["PAYIN-HEADER"].encode({
            "PIH-REC-TYPE": "H", "PIH-FILE-ID": "PAYIN", "PIH-FILE-DATE": _cyymmdd(day), "PIH-SEQ-NO": seq,
            "PIH-SENDER": SENDER}, fill_missing=True)]
        total = Decimal("0.00")
        for t in transfers:
            values = self.payin.write(t)
            total += values["PID-AMOUNT"]
            records.append(self.pi["PAYIN-DETAIL"].encode(values, fill_missing=True))
        records.append(self.pi["PAYIN-TRAILER"].encode({
            "PIT-REC-TYPE": "T", "PIT-REC-COUNT": len(transfers), "PIT-CTL-TOTAL": total}, fill_missing=True))
        out = self.work_dir / "outgoing"
        out.mkdir(parents=True, exist_ok=True)
        path = out / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(b"".join(records))
        tmp.replace(path)
        return path

    def push(self, transfers: list[Transfer], *, ack_timeout: float = 60.0, poll_interval: float = 0.5,
             day: dt.date | None = None) -> PushResult:
        if not transfers:
            raise ValueError("no transfers to push")
        day = day or dt.datetime.now(dt.UTC).date()
        name, resumed = self._register(transfers, day)
        row = self.store.payment_file(name)
        assert row is not None
        if resumed:
            by_ref = {t.reference: t for t in transfers}
            transfers = [by_ref[p["reference"]] for p in self.store.payments_of(name)]
        path = self.work_dir / "outgoing" / name
        if not path.exists():
            path = self.build_file(name, transfers, day)
        if row["status"] == "built":
            try:
                self.dropbox.upload(path, self.inbox, name)
            except Rejected as exc:  # the port's refusal to overwrite (adapters.sftp.RemoteFileExists)
                if exc.reason_code != "FILE_EXISTS":
                    raise
                # uploaded by the earlier run whose status update was lost: same name, same bytes
            with self.store.transaction():
                self.store.set_file_status(name, "uploaded")
        result = self.reconcile(name, timeout=ack_timeout, poll_interval=poll_interval)
        result.resumed = resumed
        return result

    # -- 3. the acknowledgment -------------------------------------------------------------------
    def reconcile(self, name: str, *, timeout: float = 60.0, poll_interval: float = 0.5) -> PushResult:
        ack = "PAYACK." + name[len("PAYIN."):]
        deadline = time.monotonic() + timeout
        while True:
            if any(f.name == ack for f in self.dropbox.list(self.outbox, ack)):
                break
            if time.monotonic() >= deadline:
                with self.store.transaction():
                    self.store.set_file_status(name, "ack_missing")
                return PushResult(name, ack, "ack_missing", payments=self.store.payments_of(name),
                                  ack_reason=f"no {ack} in {self.outbox} within {timeout:g} s")
            time.sleep(poll_interval)
        try:
            fetched = self.dropbox.fetch(self.outbox, ack, self.work_dir / "acks")
        except RecordNotFound:  # pragma: no cover - listed a moment ago
            raise
        return self._apply_ack(name, ack, fetched.path.read_bytes())

    def _apply_ack(self, name: str, ack: str, data: bytes) -> PushResult:
        lrecl = self.pa["PAYACK-HEADER"].size
        records = [data[i:i + lrecl] for i in range(0, len(data), lrecl)]
        header = self.pa["PAYACK-HEADER"].decode(records[0])
        details = [self.pa["PAYACK-DETAIL"].decode(r) for r in records[1:-1]]
        requests = self._requests(name)
        file_status = str(header["PAH-FILE-STATUS"]).strip()
        file_reason = " ".join(str(header[k]).strip() for k in ("PAH-FILE-RSN-CD", "PAH-FILE-RSN-TEXT")).strip()
        stamp = now()
        with self.store.transaction():
            for d in details:
                status, code, reason, core_id = self._verdict(d, requests.get(int(d["PAD-REC-NO"])))
                self.store.execute(
                    "UPDATE payments SET status = ?, reason_code = ?, reason = ?, core_id = ?, updated_at = ? "
                    "WHERE reference = ? AND file_name = ?",
                    (status, code, reason, core_id, stamp, str(d["PAD-TXN-REF"]).strip(), name))
            self.store.set_file_status(name, "acked", ack_status=file_status, ack_reason=file_reason or None)
        return PushResult(name, ack, "acked", ack_status=file_status, ack_reason=file_reason or None,
                          payments=self.store.payments_of(name))

    def _verdict(self, detail: dict[str, Any], request: dict[str, Any] | None) -> tuple[str, str | None,
                                                                                     str | None, str | None]:
        """The canonical outcome through the PAYACK mapping; the raw fields when it cannot map."""
        if request is not None:
            try:
                t = self.payack.read(detail, context={"request": request})
                return str(t.status), t.reason_code, t.reason, t.id
            except MappingApplyError:
                pass
        status = "posted" if str(detail["PAD-STATUS"]).strip() == "A" else "rejected"
        code = str(detail["PAD-RSN-CD"]).strip() or None
        reason = str(detail["PAD-RSN-TEXT"]).strip() or None
        xfer = int(detail["PAD-XFER-ID"] or 0)
        return status, code if status == "rejected" else None, reason if status == "rejected" else None, (
            str(xfer) if xfer else None)

    def _requests(self, name: str) -> dict[int, dict[str, Any]]:
        path = self.work_dir / "outgoing" / name
        if not path.exists():
            return {}
        data = path.read_bytes()
        lrecl = self.pi["PAYIN-DETAIL"].size
        out = {}
        for i in range(lrecl, len(data) - lrecl, lrecl):
            out[i // lrecl + 1] = self.pi["PAYIN-DETAIL"].decode(data[i:i + lrecl])
        return out
