"""End-of-day files: TXNHIST.D<yymmdd> (FB 200) and STMT.D<yymmdd> (VB) in the SFTP outbox.

Layouts are in ``copybooks/TXNHIST.cpy`` and ``copybooks/STMT.cpy``. The bytes depend on the
ledger only (creation date and time come from the business date, the sequence number is the
day count since 2000-01-01), so the same ledger always gives the same files. Every calendar
day is a business day in this mock: the seed posts card transactions on weekends too, and a
day skipped here would be a day missing from every file.

Injected corruption (``FaultInjector.corruption()``, asked once per file written):
  ``bad_packed``  TXNHIST: the first detail's TXD-TXN-AMT gets an invalid digit nibble (X'A');
                  STMT: the first record's STMT-CLOSE-BAL does
  ``wrong_count`` TXNHIST: TXT-REC-COUNT is one too high;
                  STMT: the first record's STMT-LINE-COUNT is one too high (disagrees with RDW)
  ``wrong_total`` TXNHIST: TXT-CTL-TOTAL is 0.01 too high (debit/credit totals untouched);
                  STMT: the first record's STMT-CLOSE-BAL is 0.01 too high
  ``truncated``   the file ends halfway through its last record (TXNHIST: no complete trailer)
A corruption that needs a record the file does not have (a day without activity) changes
nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..ledger.legacy import to_cyymmdd
from .ebcdic import encode_halfword, representable
from .files import atomic_write
from .layouts import (
    RDW_LENGTH,
    STMT_FIXED,
    STMT_LINE,
    STMT_MAX_LINES,
    TXNHIST_DETAIL,
    TXNHIST_HEADER,
    TXNHIST_LRECL,
    TXNHIST_TRAILER,
)

log = logging.getLogger(__name__)

SEQUENCE_EPOCH = dt.date(2000, 1, 1)
SOURCE_SYSTEM = "COREBNK1"
OWN_BANK = "CBRGUS33"
EOD_TIME = 220000
ZERO = Decimal("0.00")

# Merchant category codes for the card view of a POS detail (the ledger keeps no card data,
# so the mock derives it from the description: deterministic, and plausible enough).
MCC_BY_MERCHANT = {
    "TESCO": 5411, "ALDI": 5411, "CARREFOUR": 5411, "LIDL": 5411, "MIGROS": 5411, "COOP": 5411,
    "EDEKA": 5411, "MONOPRIX": 5411, "SHELL": 5541, "BP CONNECT": 5541, "STARBUCKS": 5814,
    "UBER": 4121, "NETFLIX": 4899, "SPOTIFY": 4899, "IKEA": 5712, "APPLE": 5732, "BOOTS": 5912,
    "ZARA": 5651, "H&M": 5651, "DELIVEROO": 5812, "7-ELEVEN": 5499, "FAMILYMART": 5499,
    "LAWSON": 5499, "AMAZON": 5942,
}
DEFAULT_MCC = 5999


def txnhist_name(day: dt.date) -> str:
    return f"TXNHIST.D{day:%y%m%d}"


def stmt_name(day: dt.date) -> str:
    return f"STMT.D{day:%y%m%d}"


def file_sequence(day: dt.date) -> int:
    """The header sequence number: days since 2000-01-01 (strictly increasing per day)."""
    return (day - SEQUENCE_EPOCH).days


def signed_amount(row: dict[str, Any]) -> Decimal:
    """TXNHIST keeps TXN_AMT unsigned with a D/C indicator; the files carry the sign."""
    return -row["TXN_AMT"] if row["DR_CR_IND"] == "D" else row["TXN_AMT"]


def masked_card(acct_no: str) -> str:
    """A 16-character masked card number derived from the account (first 6, last 4 shown)."""
    digits = "".join(c for c in acct_no if c.isdigit()).rjust(12, "0")
    return f"4{digits[:5]}******{digits[-4:]}"


def merchant_mcc(description: str) -> int:
    text = description.upper()
    for name, mcc in MCC_BY_MERCHANT.items():
        if name in text:
            return mcc
    return DEFAULT_MCC


# -- TXNHIST ------------------------------------------------------------------------------
def txnhist_detail(row: dict[str, Any]) -> bytes:
    amount = signed_amount(row)
    values: dict[str, Any] = {
        "TXD-REC-TYPE": "D",
        "TXD-ACCT-NO": row["ACCT_NO"],
        "TXD-TXN-SEQ": row["TXN_SEQ"],
        "TXD-POST-DATE": row["POST_DT"],
        "TXD-POST-TIME": row["POST_TM"],
        "TXD-VALUE-DATE": row["VALUE_DT"],
        "TXD-TXN-CODE": row["TXN_CD"],
        "TXD-DR-CR-IND": row["DR_CR_IND"],
        "TXD-TXN-AMT": amount,
        "TXD-RUN-BAL": row["RUN_BAL"],
        "TXD-CURR-CODE": row["CURR_CD"],
        "TXD-DESC": representable(row["TXN_DESC"]),
        "TXD-REF": representable(row["TXN_REF"]),
        "TXD-CHANNEL": row["CHANNEL"],
        "TXD-STATUS": row["TXN_STAT"],
        "TXD-FEE-AMT": amount if row["TXN_CD"] == "FEE" else ZERO,
    }
    if row["TXN_CD"] == "POS":
        values["TXD-CARD-MASKED"] = masked_card(row["ACCT_NO"])
        values["TXD-CARD-MCC"] = merchant_mcc(row["TXN_DESC"])
        return TXNHIST_DETAIL.encode(values, variant="CARD")
    cntr = row["CNTR_ACCT"]
    values["TXD-CNTR-ACCT"] = cntr
    values["TXD-CNTR-BANK"] = OWN_BANK if cntr.strip() else ""
    return TXNHIST_DETAIL.encode(values, variant="CNTR")


def build_txnhist(rows: Iterable[dict[str, Any]], day: dt.date) -> bytes:
    date = to_cyymmdd(day)
    out = [TXNHIST_HEADER.encode({
        "TXH-REC-TYPE": "H", "TXH-FILE-ID": "TXNHIST", "TXH-FILE-DATE": date,
        "TXH-SEQ-NO": file_sequence(day), "TXH-CREATE-DATE": date, "TXH-CREATE-TIME": EOD_TIME,
        "TXH-SOURCE-SYS": SOURCE_SYSTEM,
    })]
    count, debits, credits = 0, ZERO, ZERO
    for row in rows:
        out.append(txnhist_detail(row))
        count += 1
        if row["DR_CR_IND"] == "D":
            debits -= row["TXN_AMT"]
        else:
            credits += row["TXN_AMT"]
    out.append(TXNHIST_TRAILER.encode({
        "TXT-REC-TYPE": "T", "TXT-REC-COUNT": count, "TXT-CTL-TOTAL": debits + credits,
        "TXT-DEBIT-TOTAL": debits, "TXT-CREDIT-TOTAL": credits,
    }))
    return b"".join(out)


def corrupt_txnhist(data: bytes, kind: str) -> bytes:
    buf = bytearray(data)
    n = len(buf) // TXNHIST_LRECL
    trailer = (n - 1) * TXNHIST_LRECL
    if kind == "bad_packed":
        if n < 3:
            return data
        amt = TXNHIST_LRECL + TXNHIST_DETAIL.field("TXD-TXN-AMT").offset
        buf[amt] = 0xA0 | (buf[amt] & 0x0F)
    elif kind in ("wrong_count", "wrong_total"):
        record = bytes(buf[trailer:])
        values = TXNHIST_TRAILER.decode(record)
        if kind == "wrong_count":
            values["TXT-REC-COUNT"] += 1
        else:
            values["TXT-CTL-TOTAL"] += Decimal("0.01")
        buf[trailer:] = TXNHIST_TRAILER.encode(values)
    elif kind == "truncated":
        del buf[trailer + TXNHIST_LRECL // 2:]
    else:
        raise ValueError(f"unknown corruption {kind!r}")
    return bytes(buf)


# -- STMT -----------------------------------------------------------------------------------
def _stmt_record(acct: str, date: int, curr: str, opening: Decimal,
                 rows: Sequence[dict[str, Any]]) -> tuple[bytes, Decimal]:
    closing = opening + sum((signed_amount(r) for r in rows), ZERO)
    body = [STMT_FIXED.encode({
        "STMT-ACCT-NO": acct, "STMT-PERIOD-DATE": date, "STMT-CURR-CODE": curr,
        "STMT-OPEN-BAL": opening, "STMT-CLOSE-BAL": closing, "STMT-LINE-COUNT": len(rows),
    })]
    for r in rows:
        body.append(STMT_LINE.encode({
            "STMT-LINE-DATE": r["VALUE_DT"], "STMT-LINE-DESC": representable(r["TXN_DESC"][:30]),
            "STMT-LINE-AMT": signed_amount(r),
        }))
    data = b"".join(body)
    return encode_halfword(RDW_LENGTH + len(data)) + b"\x00\x00" + data, closing


def build_stmt(rows: Iterable[dict[str, Any]], day: dt.date) -> bytes:
    """One VB record per account with activity (more than 200 lines: continuation records)."""
    date = to_cyymmdd(day)
    by_acct: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_acct.setdefault(row["ACCT_NO"], []).append(row)
    out = []
    for acct in sorted(by_acct):
        lines = by_acct[acct]
        balance = lines[0]["RUN_BAL"] - signed_amount(lines[0])
        for start in range(0, len(lines), STMT_MAX_LINES):
            chunk = lines[start:start + STMT_MAX_LINES]
            record, balance = _stmt_record(acct, date, chunk[0]["CURR_CD"], balance, chunk)
            out.append(record)
    return b"".join(out)


def _stmt_offsets(data: bytes) -> list[int]:
    offsets, pos = [], 0
    while pos + RDW_LENGTH <= len(data):
        offsets.append(pos)
        length = int.from_bytes(data[pos:pos + 2], "big")
        if length < RDW_LENGTH:
            break
        pos += length
    return offsets


def corrupt_stmt(data: bytes, kind: str) -> bytes:
    offsets = _stmt_offsets(data)
    if not offsets:
        return data
    buf = bytearray(data)
    fixed = offsets[0] + RDW_LENGTH
    if kind == "bad_packed":
        at = fixed + STMT_FIXED.field("STMT-CLOSE-BAL").offset
        buf[at] = 0xA0 | (buf[at] & 0x0F)
    elif kind in ("wrong_count", "wrong_total"):
        values = STMT_FIXED.decode(bytes(buf[fixed:fixed + STMT_FIXED.length]))
        if kind == "wrong_count":
            values["STMT-LINE-COUNT"] += 1
        else:
            values["STMT-CLOSE-BAL"] += Decimal("0.01")
        buf[fixed:fixed + STMT_FIXED.length] = STMT_FIXED.encode(values)
    elif kind == "truncated":
        last = offsets[-1]
        del buf[last + (len(buf) - last) // 2:]
    else:
        raise ValueError(f"unknown corruption {kind!r}")
    return bytes(buf)


# -- the writer -------------------------------------------------------------------------------
FILES = ((txnhist_name, build_txnhist, corrupt_txnhist), (stmt_name, build_stmt, corrupt_stmt))


class EodWriter:
    """Writes a business day's end-of-day files to the outbox and closes business days."""

    def __init__(self, config: Any, ledger: Any, faults: Any = None) -> None:
        self.config = config
        self.ledger = ledger
        self.faults = faults
        self._lock = threading.Lock()

    @property
    def outbox(self) -> Path:
        return Path(self.config.outbox)

    def paths_for(self, day: dt.date) -> list[Path]:
        return [self.outbox / name(day) for name, _, _ in FILES]

    def write_day(self, day: dt.date, *, force: bool = False) -> list[Path]:
        """TXNHIST and STMT for ``day``; a file already in the outbox is kept unless ``force``.

        Returns the day's file paths (kept or written), TXNHIST first.
        """
        with self._lock:
            paths: list[Path] = []
            rows: list[dict[str, Any]] | None = None
            for name, build, corrupt in FILES:
                path = self.outbox / name(day)
                paths.append(path)
                if path.exists() and not force:
                    continue
                if rows is None:
                    rows = list(self.ledger.transactions_on(to_cyymmdd(day)))
                data = build(rows, day)
                kind = self.faults.corruption() if self.faults is not None else None
                if kind:
                    log.warning("fault injection: %s written with corruption %r", path.name, kind)
                    data = corrupt(data, kind)
                atomic_write(path, data)
                log.info("end of day: wrote %s (%d bytes)", path.name, len(data))
            return paths

    def write_recent(self, days: int | None = None) -> list[Path]:
        """The files of the ``days`` business days before the ledger's business date."""
        n = self.config.outbox_days if days is None else days
        today = self.ledger.business_date()
        paths: list[Path] = []
        for back in range(n, 0, -1):
            paths += self.write_day(today - dt.timedelta(days=back))
        return paths

    def close_business_day(self) -> list[Path]:
        """Advance the date a day, then write the closed day's files (always afresh).

        In that order, so that a day's TXNHIST file is complete: advancing waits for the postings in
        flight, and every later posting carries the next date (a reconciler may read a reference's
        absence from the file as "not posted").
        """
        today = self.ledger.business_date()
        self.ledger.advance_business_date(today + dt.timedelta(days=1))
        paths = self.write_day(today, force=True)
        log.info("business day %s closed; business date is now %s", today,
                 today + dt.timedelta(days=1))
        return paths


__all__ = ["EodWriter", "build_stmt", "build_txnhist", "corrupt_stmt", "corrupt_txnhist",
           "file_sequence", "stmt_name", "txnhist_name"]
