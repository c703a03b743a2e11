"""The end-of-day files as the last resort of the reconciler: was an UNKNOWN transfer posted?

Used only when the core cannot be asked (SOAP and ODBC inquiries both fail) for an intent older than
``end_of_day_after_seconds``. The core's TXNHIST files, ingested by ``batch pull`` into the batch read
model (:mod:`api.batch.store`), carry both legs of every posting under its reference:

* both legs found (debit on the source, credit on the destination, the amount and currency of the intent)
  -> **posted**; anything else under the reference (one leg, another amount, twice the legs) is
  **reported loudly** (an error log) and decides nothing.
* absent -> **not posted**, but only when the files are known to cover every business day the request
  could have reached the core on. The core's business date is its own (the mock's never follows the
  wall clock), so a wall-clock send time cannot be mapped to a date by arithmetic. Two facts bound it:

  - *lower*: a TXNHIST file ingested before the intent was created belongs to a day closed before the
    first send (the core writes a day's file only once the day is closed), so the posting's day is later;
  - *upper*: a posting of ours (a POSTED intent) *created* after the last moment the request could still
    arrive (``updated_at + resend_after_seconds``, the service's own rule) found in day D's file proves
    the core's business date was still <= D after that moment (business dates never go back).

  Every day between the two must be loaded. "Not posted" is then handled like an inquiry's "not found"
  (sent again under the same reference, when the core takes postings again).

Look-ups are batched per reconciler pass (``reference IN (...)`` chunks that need no index).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from api.store import Intent
from canonical import Transfer

__all__ = ["BatchStorePostings", "EndOfDayPass", "EndOfDayPostings", "EodFile", "Leg", "PostedIntents", "Verdict"]

log = logging.getLogger("corebridge.api.eod_lookup")

CHUNK = 500  # references per IN (...): well under SQLite's 32766 host parameters and PostgreSQL's 65535
WITNESSES = 20  # our postings fetched per intent as upper-bound witnesses (the earliest after its deadline)


@dataclass(frozen=True, slots=True)
class EodFile:
    """A loaded TXNHIST file: its business day and when it was ingested (UTC, whole seconds)."""

    business_date: dt.date
    file_name: str
    ingested_at: dt.datetime

    def ingested_before(self, when: float) -> bool:
        # ingested_at is truncated to the second: the true time is < ingested_at + 1 s
        return self.ingested_at.timestamp() + 1.0 <= when


@dataclass(frozen=True, slots=True)
class Leg:
    """One TXNHIST detail under a reference (amount signed: negative for the debit)."""

    reference: str
    account_id: str
    amount: Decimal
    currency: str
    business_date: dt.date


class EndOfDayPostings(Protocol):
    """What the end-of-day fallback reads from the batch read model."""

    def files(self) -> list[EodFile]:
        """Every loaded TXNHIST file."""
        ...

    def legs(self, references: Sequence[str]) -> list[Leg]:
        """The details of loaded files under any of ``references``."""
        ...

    def close(self) -> None: ...


class PostedIntents(Protocol):
    """Our own postings with their wall-clock creation time (the upper-bound witnesses)."""

    def posted_after(self, created_after: float, limit: int) -> list[Intent]: ...


class BatchStorePostings:
    """:class:`EndOfDayPostings` over a :class:`~api.batch.store.BatchStore` of its own.

    Its own connection, not the pull's: a query on a connection inside an ingest transaction would see
    a half-loaded file; on its own connection it sees committed files only (loaded all or nothing).
    """

    def __init__(self, store: Any, *, chunk: int = CHUNK) -> None:
        self.store = store
        self.chunk = chunk
        self._lock = threading.Lock()

    def files(self) -> list[EodFile]:
        with self._lock:
            rows = self.store.query("SELECT file_name, file_date, ingested_at FROM ingested_files "
                                    "WHERE status = 'loaded' AND substr(file_name, 1, 8) = 'TXNHIST.' "
                                    "AND file_date IS NOT NULL")
        return [EodFile(dt.date.fromisoformat(r["file_date"]), r["file_name"], _utc(r["ingested_at"])) for r in rows]

    def legs(self, references: Sequence[str]) -> list[Leg]:
        unique = sorted(set(references))
        out: list[Leg] = []
        for start in range(0, len(unique), self.chunk):
            part = unique[start:start + self.chunk]
            marks = ", ".join("?" for _ in part)
            sql = ("SELECT t.reference, t.account_id, t.amount, t.currency, f.file_date FROM transactions t "  # noqa: S608 - only ? placeholders
                   "JOIN ingested_files f ON f.file_name = t.file_name AND f.sha256 = t.file_sha256 "
                   f"WHERE f.status = 'loaded' AND t.reference IN ({marks})")
            with self._lock:
                rows = self.store.query(sql, tuple(part))
            out += [Leg(r["reference"].strip(), r["account_id"].strip(), Decimal(r["amount"]), r["currency"],
                        dt.date.fromisoformat(r["file_date"])) for r in rows]
        return out

    def close(self) -> None:
        self.store.close()


def _utc(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class Verdict(enum.Enum):
    POSTED = "posted"
    NOT_POSTED = "not_posted"
    UNDECIDED = "undecided"  # the files cannot tell (yet), or they contradict the intent (logged)


@dataclass(frozen=True, slots=True)
class Answer:
    verdict: Verdict
    business_date: dt.date | None = None


class EndOfDayPass:
    """The end-of-day view for one reconciler pass: one batched look-up, on first need, for ``candidates``."""

    def __init__(self, postings: EndOfDayPostings, intents: PostedIntents, candidates: Iterable[Intent], *,
                 resend_after_seconds: float, witnesses: int = WITNESSES) -> None:
        self.postings, self.intents = postings, intents
        self.candidates = {i.reference: i for i in candidates}
        self.resend_after = resend_after_seconds
        self.witness_limit = witnesses
        self._loaded = False
        self._files: list[EodFile] = []
        self._legs: dict[str, list[Leg]] = {}
        self._witnesses: list[Intent] = []

    def _arrival_deadline(self, intent: Intent) -> float:
        """The last moment the request can still reach the core (the service's resend rule)."""
        return intent.updated_at + self.resend_after

    def _load(self) -> None:
        """All of it or nothing (a failed query leaves the pass undecided for every intent, never half-informed)."""
        self._loaded = True
        if not self.candidates:
            return
        files = self.postings.files()
        if not files:
            return
        witnesses: dict[str, Intent] = {}
        for deadline in sorted({self._arrival_deadline(i) for i in self.candidates.values()}):
            witnesses.update((w.reference, w) for w in self.intents.posted_after(deadline, self.witness_limit))
        legs: dict[str, list[Leg]] = {}
        for leg in self.postings.legs([*self.candidates, *witnesses]):
            legs.setdefault(leg.reference, []).append(leg)
        self._files, self._witnesses, self._legs = files, list(witnesses.values()), legs

    def answer(self, intent: Intent, transfer: Transfer) -> Answer:
        if intent.reference not in self.candidates:
            return Answer(Verdict.UNDECIDED)
        if not self._loaded:
            self._load()
        legs = self._legs.get(intent.reference, [])
        if legs:
            return self._matched(transfer, legs)
        if self._covered(intent):
            return Answer(Verdict.NOT_POSTED)
        return Answer(Verdict.UNDECIDED)

    def _matched(self, transfer: Transfer, legs: list[Leg]) -> Answer:
        amount, ccy = transfer.amount.amount, transfer.amount.currency
        want = sorted([(transfer.from_account, -amount, ccy), (transfer.to_account, amount, ccy)])
        got = sorted((leg.account_id, leg.amount, leg.currency) for leg in legs)
        if got == want:
            return Answer(Verdict.POSTED, legs[0].business_date)
        log.error("transfer %s: the end-of-day files hold %d leg(s) under this reference that do not match the "
                  "intent (%s %s from ...%s to ...%s): %s; left UNKNOWN for an operator", transfer.reference,
                  len(legs), amount, ccy, transfer.from_account[-4:], transfer.to_account[-4:],
                  [(f"...{leg.account_id[-4:]}", str(leg.amount), leg.currency, str(leg.business_date))
                   for leg in legs])
        return Answer(Verdict.UNDECIDED)

    def _covered(self, intent: Intent) -> bool:
        """True when every business day the request could have been posted on has a loaded file."""
        closed = [f.business_date for f in self._files if f.ingested_before(intent.created_at)]
        if not closed:
            return False
        after = max(closed)  # the first send came after this day was closed
        deadline = self._arrival_deadline(intent)
        witness_days = [leg.business_date for w in self._witnesses if w.created_at > deadline
                        for leg in self._legs.get(w.reference, [])]
        if not witness_days:
            return False
        until = min(witness_days)  # the core's date was still <= until after the deadline
        loaded = {f.business_date for f in self._files}
        day = after + dt.timedelta(days=1)
        while day <= until:
            if day not in loaded:
                return False
            day += dt.timedelta(days=1)
        return until > after
