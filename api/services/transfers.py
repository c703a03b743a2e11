"""Transfer use cases: post one transfer, look one up by reference.

Without a store, one posting path: each POST gets a fresh reference and is posted once. When the
core's answer is lost (``outcome_unknown``), the problem carries the reference so the client can
look the posting up instead of sending it again. With a store, ``POST /v1/transfers`` goes through
:mod:`api.services.exactly_once` (``Idempotency-Key``, the intent log, inquiry on unknown outcomes).
"""

from __future__ import annotations

import logging
import secrets

from adapters.errors import CoreError
from adapters.ports import TransferGateway
from api.auth import Caller
from api.schemas import TransferRequest
from api.services.access import Access
from canonical import NotFound, Rejected, Transfer, TransferStatus

__all__ = ["TransferService", "new_reference"]

log = logging.getLogger("corebridge.api.transfers")

#: the core's XFER-REF holds 16 characters
REFERENCE_LENGTH = 16


def new_reference() -> str:
    """``CB`` + 14 upper-case hex digits: unique, printable, and within the core's 16 characters."""
    return "CB" + secrets.token_hex(7).upper()


class TransferService:
    def __init__(self, transfers: TransferGateway, access: Access, *, timeout: float | None = None) -> None:
        self._transfers = transfers
        self._access = access
        self._timeout = timeout

    def post(self, caller: Caller, request: TransferRequest) -> Transfer:
        self._access.owned(caller, request.from_account)  # a foreign debit account is a 404
        transfer = Transfer(reference=new_reference(), from_account=request.from_account,
                            to_account=request.to_account, amount=request.money, memo=request.memo)
        try:
            result = self._transfers.post(transfer, timeout=self._timeout)
        except CoreError as exc:
            exc.reference = transfer.reference  # type: ignore[attr-defined]  # for the problem body
            if exc.outcome_unknown:
                log.warning("transfer %s: outcome unknown (%s)", transfer.reference, type(exc).__name__)
            raise
        if result.status is TransferStatus.REJECTED:
            raise Rejected(result.reason_code or "unknown", result.reason, reference=transfer.reference)
        return result

    def get(self, caller: Caller, reference: str) -> Transfer:
        """The caller's posting under ``reference``: the posted attempt if any, else the latest."""
        attempts = self._transfers.inquire(reference, timeout=self._timeout)
        owned: dict[str, bool] = {}
        mine = []
        for attempt in attempts:  # references are the callers' own: another customer may reuse one
            if attempt.from_account not in owned:
                try:
                    self._access.owned(caller, attempt.from_account)
                    owned[attempt.from_account] = True
                except NotFound:
                    owned[attempt.from_account] = False
            if owned[attempt.from_account]:
                mine.append(attempt)
        if not mine:
            raise NotFound("transfer", reference)
        posted = [t for t in mine if t.status is TransferStatus.POSTED]
        return posted[-1] if posted else mine[-1]
