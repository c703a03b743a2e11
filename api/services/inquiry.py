"""A transfer gateway whose look-ups fall back to a second face of the core.

The issue's "ask the core by reference": TransferStatusInquiry over SOAP, or the ODBC history
(XFERLOG). Postings always go to the primary; an inquiry the primary cannot answer (an outage, an open
breaker: any error but "not found") is asked of the fallback, so the reconciler falls back to the
end-of-day files only when both faces are out. The fallback's "not found" is trusted like SOAP's: the
ODBC face reads the core's own XFERLOG table, not a lagging copy (a lagging replica must not be wired here).
"""

from __future__ import annotations

import logging

from adapters.errors import CoreError, RecordNotFound
from adapters.odbc import TransferInquiry
from adapters.ports import TransferGateway
from canonical import Transfer

__all__ = ["FallbackInquiryGateway"]

log = logging.getLogger("corebridge.api.inquiry")


class FallbackInquiryGateway:
    """A ``TransferGateway``: ``post`` on ``primary``; ``inquire`` on ``primary``, else on ``fallback``."""

    def __init__(self, primary: TransferGateway, fallback: TransferInquiry) -> None:
        self.primary = primary
        self.fallback = fallback

    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        return self.primary.post(transfer, timeout=timeout)

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        try:
            return self.primary.inquire(reference, timeout=timeout)
        except RecordNotFound:
            raise
        except CoreError as exc:
            log.info("transfer %s: inquiry on the primary failed (%s); asking the fallback", reference,
                     type(exc).__name__)
        return self.fallback.inquire(reference, timeout=timeout)
