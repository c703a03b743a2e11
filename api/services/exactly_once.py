"""Exactly-once transfers with ``Idempotency-Key`` (IETF draft "The Idempotency-Key HTTP Header Field").

The key is scoped by the customer the caller acts for (``Caller.customer_id``: a customer's own
subject, or the customer an admin acts for), so one customer's key never reveals another's transfer.

Before the core is called, the intent is recorded (:mod:`api.store`) with the core reference the
posting goes out under. A retry with the same key reuses that intent and reference, so no retry can
create a second posting under a new reference. The first request to insert the key holds its lease;
the same key meanwhile is 409; the same key with another body is 422; once the outcome is final the
stored response is replayed byte for byte.

An answer lost after the request was sent (``outcome_unknown``) is never blindly resent: the core is
asked by reference. Posted -> 201; rejected -> 422; nothing found (the core has not seen it *yet*) ->
202 now, and sent again under the *same* reference only ``resend_after_seconds`` after the loss, when
a delayed original can no longer arrive (the chaos test at full scale caught double postings when the
resend was immediate: a delayed request reached the core after the inquiry); the core cannot be
asked -> 202 with the transfer in status ``unknown`` and ``Location: /v1/transfers/{reference}``.
The 202 is then the key's stored response until the intent is resolved (by a retry with the key,
or by :mod:`api.reconciler`); after that a replay returns the *final* outcome (201 or 422), as the draft allows.
When the core cannot be asked for an intent older than ``end_of_day_after_seconds``, the reconciler
consults the core's end-of-day files (:mod:`api.services.eod_lookup`, attached by the composition root).

A definite failure (the request never left: connection refused, circuit open) stores nothing: the
intent goes back to PENDING and a retry with the key sends it under the same reference.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from adapters.errors import CoreError, RecordNotFound
from adapters.errors import Rejected as CoreRejected
from adapters.ports import TransferGateway
from api.auth import Caller
from api.problems import REJECTED, problem_body
from api.schemas import TransferRequest
from api.services.access import Access
from api.services.eod_lookup import EndOfDayPass, EndOfDayPostings, PostedIntents, Verdict
from api.services.transfers import TransferService, new_reference
from api.store import FINAL_STATES, Intent, IntentState, Store, StoredResponse
from api.store.settings import StoreSettings
from canonical import NotFound, Transfer, TransferStatus

__all__ = ["ExactlyOnceService", "IdempotencyError", "KeyInFlight", "KeyRequired", "KeyReused", "Reply",
           "fingerprint"]

log = logging.getLogger("corebridge.api.exactly_once")

MAX_SENDS = 2  # per drive: the first send, and one more after an inquiry found nothing


class IdempotencyError(Exception):
    """A request the key's state refuses (the route maps each to a problem)."""


class KeyRequired(IdempotencyError):
    """400: ``POST /v1/transfers`` without ``Idempotency-Key``."""


class KeyReused(IdempotencyError):
    """422: the key was first used with another request body."""


class KeyInFlight(IdempotencyError):
    """409: the first request with this key is still being processed."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    replayed: bool = False
    transfer: Transfer | None = field(default=None, compare=False)


def fingerprint(request: TransferRequest) -> str:
    """SHA-256 of the body's canonical JSON (sorted keys, no whitespace)."""
    data = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


class _Nothing:
    """The core answered the inquiry and holds nothing under the reference."""


NOTHING = _Nothing()


class ExactlyOnceService:
    def __init__(self, transfers: TransferService, gateway: TransferGateway, access: Access, store: Store,
                 settings: StoreSettings | None = None, *, timeout: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._transfers = transfers
        self._gateway = gateway
        self._access = access
        self.store = store
        self.settings = settings or StoreSettings()
        self._timeout = timeout
        self._clock = clock
        self.end_of_day: EndOfDayPostings | None = None

    def use_end_of_day(self, postings: EndOfDayPostings | None) -> None:
        """The reconciler's last resort (None: off); the store must also answer ``posted_after``."""
        if postings is not None and not hasattr(self.store, "posted_after"):
            raise TypeError(f"{type(self.store).__name__} cannot list posted intents (posted_after)")
        self.end_of_day = postings

    # -- POST ------------------------------------------------------------------------------------
    def post(self, caller: Caller, request: TransferRequest, key: str | None) -> Reply:
        if not key:
            raise KeyRequired("Idempotency-Key is required")
        scope = caller.customer_id
        fp = fingerprint(request)
        owner = uuid.uuid4().hex
        now = self._clock()
        intent = self.store.get(scope, key)
        if intent is None or intent.expires_at < now:
            self._access.account(caller, request.from_account)  # a foreign debit account is a 404
            transfer = Transfer(reference=new_reference(), from_account=request.from_account,
                                to_account=request.to_account, amount=request.money, memo=request.memo)
            begin = self.store.begin(scope, key, fingerprint=fp, reference=transfer.reference,
                                     transfer=transfer.model_dump_json(), owner=owner, now=now,
                                     lease_seconds=self.settings.lease_seconds,
                                     retention_seconds=self.settings.key_retention_seconds)
            intent = begin.intent
            if begin.created:
                return self._drive(intent, owner)
        return self._existing(intent, fp, owner)

    def _existing(self, intent: Intent, fp: str, owner: str) -> Reply:
        if intent.fingerprint != fp:
            raise KeyReused("this Idempotency-Key was used with another request body")
        if intent.state in FINAL_STATES and intent.response is not None:
            return _replay(intent.response)
        now = self._clock()
        if intent.leased(now) or not self.store.claim(intent.reference, owner, now=now,
                                                      lease_seconds=self.settings.lease_seconds):
            again = self.store.by_reference(intent.reference)
            if again is not None and again.state in FINAL_STATES and again.response is not None:
                return _replay(again.response)
            raise KeyInFlight("a request with this Idempotency-Key is still being processed")
        current = self.store.by_reference(intent.reference) or intent
        try:
            reply = self._drive(current, owner)
        except CoreError:
            if current.response is not None:  # the client was told 202 already: tell it again
                return _replay(current.response)
            raise
        if current.response is not None and reply.body == current.response.body:
            return _replay(current.response)
        return reply

    # -- driving an intent to an outcome (the lease is held) ---------------------------------------
    def _drive(self, intent: Intent, owner: str, eod: EndOfDayPass | None = None) -> Reply:
        transfer = Transfer.model_validate_json(intent.transfer)
        ref = intent.reference
        try:
            if intent.state in (IntentState.SENT, IntentState.UNKNOWN):
                found = self._ask(ref)
                if found is None and eod is not None:
                    found = self._ask_end_of_day(eod, intent, transfer)
                if found is None:
                    return self._unknown(transfer, owner)
                if isinstance(found, Transfer):
                    return self._final(transfer, found, owner)
                if self._clock() - intent.updated_at < self.settings.resend_after_seconds:
                    return self._still_unknown(intent, transfer, owner)  # the original may still arrive
            for _ in range(MAX_SENDS):
                if not self.store.update(ref, owner, state=IntentState.SENT, now=self._clock()):
                    raise KeyInFlight("the intent's lease was lost")
                try:
                    result = self._gateway.post(transfer, timeout=self._timeout)
                except CoreRejected as exc:
                    return self._final(transfer, transfer.model_copy(update={
                        "status": TransferStatus.REJECTED, "reason_code": exc.reason_code,
                        "reason": exc.reason or None}), owner)
                except CoreError as exc:
                    if not exc.outcome_unknown:  # it never left: a retry may send it under the same reference
                        back = IntentState.UNKNOWN if intent.response is not None else IntentState.PENDING
                        self.store.update(ref, owner, state=back, now=self._clock(), release=True)
                        exc.reference = ref  # type: ignore[attr-defined]  # for the problem body
                        raise
                    log.warning("transfer %s: outcome unknown (%s); asking the core", ref, type(exc).__name__)
                    found = self._ask(ref)
                    if found is None:
                        return self._unknown(transfer, owner)
                    if isinstance(found, Transfer):
                        return self._final(transfer, found, owner)
                    if self.settings.resend_after_seconds > 0:
                        # the core has not seen it YET: the lost request may still be on its way, so it is
                        # sent again only later (a retry or the reconciler, after resend_after_seconds)
                        return self._unknown(transfer, owner)
                    log.info("transfer %s: the core never saw it; sending again under the same reference", ref)
                    continue
                return self._final(transfer, result, owner)
            return self._unknown(transfer, owner)
        finally:
            self.store.release(ref, owner)  # a no-op once released with the outcome

    def _ask(self, reference: str) -> Transfer | _Nothing | None:
        """The core's answer by reference: the posting, ``NOTHING``, or ``None`` when it cannot say now."""
        try:
            attempts = self._gateway.inquire(reference, timeout=self._timeout)
        except RecordNotFound:
            return NOTHING
        except CoreError as exc:
            log.warning("transfer %s: inquiry failed (%s)", reference, type(exc).__name__)
            return None
        posted = [a for a in attempts if a.status is TransferStatus.POSTED]
        if posted:
            return posted[-1]
        if not attempts:
            return NOTHING
        last = attempts[-1]
        return last if last.status is TransferStatus.REJECTED else None

    def _ask_end_of_day(self, eod: EndOfDayPass, intent: Intent, transfer: Transfer) -> Transfer | _Nothing | None:
        """The end-of-day files' answer, in the shape of :meth:`_ask`'s."""
        answer = eod.answer(intent, transfer)
        if answer.verdict is Verdict.POSTED:
            log.info("transfer %s: posted on %s according to the end-of-day files", intent.reference,
                     answer.business_date)
            return transfer.model_copy(update={"status": TransferStatus.POSTED, "value_date": answer.business_date})
        if answer.verdict is Verdict.NOT_POSTED:
            log.info("transfer %s: not in the end-of-day files that cover its sending", intent.reference)
            return NOTHING
        return None

    def _final(self, sent: Transfer, outcome: Transfer, owner: str) -> Reply:
        ref = sent.reference
        if outcome.status is TransferStatus.REJECTED:
            code = outcome.reason_code or "unknown"
            body = problem_body(REJECTED, f"The core rejected the request ({code}).", reason_code=code,
                                reason=outcome.reason, reference=ref)
            response = StoredResponse(422, {"content-type": "application/problem+json"},
                                      json.dumps(body, separators=(",", ":"), default=str).encode())
            state = IntentState.REJECTED
        else:
            response = StoredResponse(201, {"content-type": "application/json", "location": f"/v1/transfers/{ref}"},
                                      outcome.model_dump_json().encode())
            state = IntentState.POSTED
        if not self.store.update(ref, owner, state=state, now=self._clock(), transfer=outcome.model_dump_json(),
                                 response=response, release=True):
            log.warning("transfer %s: outcome %s known but the lease was lost", ref, state)
        return Reply(response.status, response.headers, response.body, transfer=outcome)

    def _unknown(self, sent: Transfer, owner: str) -> Reply:
        ref = sent.reference
        pending = sent.model_copy(update={"status": TransferStatus.UNKNOWN})
        retry = str(max(1, math.ceil(self.settings.reconcile_interval_seconds)))
        response = StoredResponse(202, {"content-type": "application/json", "location": f"/v1/transfers/{ref}",
                                        "retry-after": retry}, pending.model_dump_json().encode())
        self.store.update(ref, owner, state=IntentState.UNKNOWN, now=self._clock(), response=response, release=True)
        return Reply(response.status, response.headers, response.body, transfer=pending)

    def _still_unknown(self, intent: Intent, sent: Transfer, owner: str) -> Reply:
        """UNKNOWN stays UNKNOWN without touching ``updated_at`` (the clock of the resend delay)."""
        if intent.state is IntentState.UNKNOWN and intent.response is not None:
            self.store.release(intent.reference, owner)
            r = intent.response
            pending = sent.model_copy(update={"status": TransferStatus.UNKNOWN})
            return Reply(r.status, r.headers, r.body, transfer=pending)
        return self._unknown(sent, owner)

    # -- GET -------------------------------------------------------------------------------------
    def get(self, caller: Caller, reference: str) -> Transfer:
        """The intent log first (final outcomes need no core call), then the core."""
        intent = self.store.by_reference(reference)
        if intent is None or intent.principal != caller.customer_id:
            return self._transfers.get(caller, reference)
        logged = Transfer.model_validate_json(intent.transfer)
        if intent.state in FINAL_STATES:
            return logged
        try:
            return self._transfers.get(caller, reference)
        except (NotFound, CoreError):
            status = TransferStatus.PENDING if intent.state is IntentState.PENDING else TransferStatus.UNKNOWN
            return logged.model_copy(update={"status": status})

    # -- background work (api.reconciler) ----------------------------------------------------------
    def reconcile(self) -> int:
        """Resolve UNKNOWN intents and stale PENDING/SENT ones by inquiry; the number made final."""
        now = self._clock()
        owner = "reconciler-" + uuid.uuid4().hex
        resolved = 0
        due = self.store.due(now=now, stale_before=now - self.settings.stale_after_seconds,
                             limit=self.settings.reconcile_batch)
        eod = self._end_of_day_pass(due, now)
        for intent in due:
            if not self.store.claim(intent.reference, owner, now=self._clock(),
                                    lease_seconds=self.settings.lease_seconds):
                continue
            current = self.store.by_reference(intent.reference)
            if current is None:
                continue
            try:
                if current.state is IntentState.PENDING and current.response is None:
                    self._settle_pending(current, owner)  # never sent; the client was told nothing final
                else:
                    self._drive(current, owner, eod)
            except (CoreError, IdempotencyError) as exc:
                log.info("transfer %s: still unresolved (%s)", intent.reference, type(exc).__name__)
            except Exception:  # noqa: BLE001 - one bad intent must not stop the others
                log.exception("transfer %s: reconciliation failed", intent.reference)
            finally:
                self.store.release(intent.reference, owner)
            after = self.store.by_reference(intent.reference)
            if after is not None and after.state in FINAL_STATES:
                resolved += 1
        return resolved

    def _end_of_day_pass(self, due: list[Intent], now: float) -> EndOfDayPass | None:
        """This pass's end-of-day view over the sent intents old enough for it (queried on first need)."""
        if self.end_of_day is None:
            return None
        old = [i for i in due if i.state in (IntentState.SENT, IntentState.UNKNOWN)
               and now - i.created_at >= self.settings.end_of_day_after_seconds]
        if not old:
            return None
        intents: PostedIntents = self.store  # type: ignore[assignment]  # checked by use_end_of_day
        return EndOfDayPass(self.end_of_day, intents, old, resend_after_seconds=self.settings.resend_after_seconds)

    def _settle_pending(self, intent: Intent, owner: str) -> None:
        transfer = Transfer.model_validate_json(intent.transfer)
        found = self._ask(intent.reference)
        if isinstance(found, Transfer):
            self._final(transfer, found, owner)
        else:  # not sent (or cannot tell): a retry with the key sends it; look again later
            self.store.update(intent.reference, owner, state=IntentState.PENDING, now=self._clock(), release=True)

    def sweep(self) -> int:
        """Delete expired keys (kept ``key_retention_seconds``; unresolved intents stay until resolved)."""
        return self.store.sweep(self._clock())


def _replay(response: StoredResponse) -> Reply:
    return Reply(response.status, {**response.headers, "idempotent-replayed": "true"}, response.body,
                 replayed=True)
