"""The posting engine: a funds transfer is one debit and one credit in one DB transaction.

Checks run in a fixed order and a rejection carries a reason code. Every attempt, posted or
rejected, is written to XFERLOG under the caller's reference so that an inquiry by reference
can say whether and how it was posted. Like many real cores, this one does NOT de-duplicate a
reused reference: exactly-once is the facade's job.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .codes import CURRENCIES, RC_OK, RC_REJECTED, RC_SYSTEM, REASONS
from .legacy import db_money, pad, to_hhmmss
from .store import Ledger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransferRequest:
    reference: str
    from_acct: str
    to_acct: str
    amount: Decimal
    currency: str
    memo: str = ""
    channel: str = "MOB"


@dataclass(frozen=True)
class PostingResult:
    return_code: str
    reason_code: str = ""
    message: str = "POSTED"
    xfer_id: int | None = None
    post_dt: int = 0
    post_tm: int = 0
    debit_seq: int | None = None
    credit_seq: int | None = None
    balances: dict[str, Decimal] = field(default_factory=dict)

    @property
    def posted(self) -> bool:
        return self.return_code == RC_OK


class PostingEngine:
    """Posts transfers against a :class:`Ledger`. Thread-safe: the DB serialises writers."""

    def __init__(self, ledger: Ledger, clock: Any = None) -> None:
        self.ledger = ledger
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def post(self, req: TransferRequest) -> PostingResult:
        conn = self.ledger.connect()
        d = self.ledger.dialect
        try:
            conn.execute(d.begin)
            try:
                if d.serialize_writers:
                    conn.execute(d.serialize_writers)
                result = self._post_locked(conn, req)
                conn.execute("COMMIT")
                return result
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except Exception as exc:  # noqa: BLE001 - any DB failure is a mainframe 0012
            log.exception("posting %s failed with a system error", req.reference)
            return PostingResult(RC_SYSTEM, "", f"SYSTEM ERROR: {type(exc).__name__}")

    # The checks, in the order the core applies them.
    def _validate(self, req: TransferRequest, src: dict | None, dst: dict | None) -> str | None:
        ref = req.reference
        if not ref or not ref.strip() or len(ref) > 16 or not ref.isprintable():
            return "R010"
        try:
            amount = Decimal(req.amount)
        except (InvalidOperation, TypeError):
            return "R008"
        minor = CURRENCIES.get(req.currency)
        if not amount.is_finite() or amount <= 0 or amount >= Decimal("1E13"):
            return "R008"
        if minor is None:
            return "R005"
        if amount != amount.quantize(Decimal(1).scaleb(-minor)):
            return "R008"
        if req.from_acct.strip() == req.to_acct.strip():
            return "R009"
        if src is None:
            return "R001"
        if dst is None:
            return "R002"
        if src["ACCT_STAT"] != "A":
            return "R003"
        if dst["ACCT_STAT"] != "A":
            return "R004"
        if src["CURR_CD"] != req.currency or dst["CURR_CD"] != req.currency:
            return "R005"
        if amount > self.ledger.txn_limit:
            return "R007"
        if src["AVAIL_BAL"] < amount:
            return "R006"
        return None

    def _post_locked(self, conn: Any, req: TransferRequest) -> PostingResult:
        led = self.ledger
        now = self._clock()
        post_dt = int(led.control("BUSDATE") or 0)
        post_tm = to_hhmmss(now.time())
        accts: dict[str, dict] = {}
        for acct in sorted({req.from_acct.strip(), req.to_acct.strip()}):
            if len(acct) > 12:
                continue
            rows = led.query("SELECT * FROM ACCTMAST WHERE ACCT_NO = ?" + led.dialect.for_update,  # noqa: S608
                             (acct.ljust(12),), conn)
            if rows:
                accts[acct] = rows[0]
        src = accts.get(req.from_acct.strip())
        dst = accts.get(req.to_acct.strip())
        reason = self._validate(req, src, dst)
        xfer_id = int(led.query("SELECT COALESCE(MAX(XFER_ID), 0) AS XFER_ID FROM XFERLOG",
                                (), conn)[0]["XFER_ID"]) + 1
        ref16 = req.reference[:16].ljust(16)
        memo = req.memo[:40]
        log_row = [xfer_id, ref16, req.from_acct[:12].ljust(12), req.to_acct[:12].ljust(12),
                   db_money(_safe_amount(req.amount)), req.currency[:3].ljust(3)]
        insert_log = ("INSERT INTO XFERLOG (XFER_ID, XFER_REF, FROM_ACCT, TO_ACCT, XFER_AMT, CURR_CD,"
                      " XFER_STAT, RTN_CD, RSN_CD, POST_DT, POST_TM, CHANNEL, MEMO)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        if reason is not None:
            led.execute(insert_log, [*log_row, "R", RC_REJECTED, reason, post_dt, post_tm,
                                     pad(req.channel[:3], 3), pad(memo, 40)], conn)
            return PostingResult(RC_REJECTED, reason, REASONS[reason], xfer_id, post_dt, post_tm)
        assert src is not None and dst is not None
        amount = Decimal(req.amount).quantize(Decimal("0.01"))
        seqs: dict[str, int] = {}
        new_bal: dict[str, Decimal] = {}
        for acct, sign, code, other in ((src, -1, "TFO", dst), (dst, 1, "TFI", src)):
            ledger_bal = acct["LEDGER_BAL"] + sign * amount
            avail_bal = acct["AVAIL_BAL"] + sign * amount
            seq = acct["LAST_SEQ"] + 1
            acct_no = acct["ACCT_NO"]
            led.execute("UPDATE ACCTMAST SET LEDGER_BAL = ?, AVAIL_BAL = ?, LAST_SEQ = ?,"
                        " LAST_TXN_DT = ? WHERE ACCT_NO = ?",
                        (db_money(ledger_bal), db_money(avail_bal), seq, post_dt, acct_no), conn)
            desc = (req.memo or f"TRANSFER {'TO' if sign < 0 else 'FROM'} {other['ACCT_NO'][-4:]}")
            led.execute(
                "INSERT INTO TXNHIST (ACCT_NO, TXN_SEQ, POST_DT, POST_TM, VALUE_DT, TXN_CD,"
                " DR_CR_IND, TXN_AMT, RUN_BAL, CURR_CD, TXN_DESC, TXN_REF, CNTR_ACCT, CHANNEL,"
                " TXN_STAT) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (acct_no, seq, post_dt, post_tm, post_dt, code, "D" if sign < 0 else "C",
                 db_money(amount), db_money(ledger_bal), req.currency, pad(desc.upper()[:40], 40),
                 ref16, other["ACCT_NO"], pad(req.channel[:3], 3), "P"), conn)
            seqs[code] = seq
            new_bal[acct_no.strip()] = avail_bal
        led.execute(insert_log, [*log_row, "P", RC_OK, "    ", post_dt, post_tm,
                                 pad(req.channel[:3], 3), pad(memo, 40)], conn)
        return PostingResult(RC_OK, "", "POSTED", xfer_id, post_dt, post_tm,
                             seqs["TFO"], seqs["TFI"], new_bal)


def _safe_amount(value: Any) -> Decimal:
    """The amount as logged in XFERLOG even when it failed validation (clamped to the column)."""
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError):
        return Decimal("0.00")
    if not d.is_finite() or abs(d) >= Decimal("1E13"):
        return Decimal("0.00")
    return d.quantize(Decimal("0.01"))
