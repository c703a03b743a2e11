"""Account use cases: one account, its balance, its transactions (cursor-paginated)."""

from __future__ import annotations

import datetime as dt
import functools

import anyio.to_thread

from adapters.ports import AccountSource
from api.auth import Caller
from api.cursors import CursorCodec
from api.schemas import TransactionPage
from api.services.access import Access
from canonical import Account, Balance

__all__ = ["CORE_FIRST_DAY", "CORE_LAST_DAY", "AccountService"]

#: the core writes dates as CYYMMDD (C = 0 for 19xx, 1 for 20xx): it holds nothing outside these days, and
#: its adapters cannot even write a filter date beyond them, so the service clamps the filter to them
CORE_FIRST_DAY = dt.date(1900, 1, 1)
CORE_LAST_DAY = dt.date(2099, 12, 31)


class AccountService:
    def __init__(self, accounts: AccountSource, access: Access, cursors: CursorCodec, *,
                 timeout: float | None = None) -> None:
        self._accounts = accounts
        self._access = access
        self._cursors = cursors
        self._timeout = timeout

    def get(self, caller: Caller, account_id: str) -> Account:
        return self._access.account(caller, account_id)

    def balance(self, caller: Caller, account_id: str) -> Balance:
        return self._accounts.balance(self._access.owned(caller, account_id), timeout=self._timeout)

    async def abalance(self, caller: Caller, account_id: str) -> Balance:
        """:meth:`balance` on the event loop: the port's ``abalance`` when it has one (no thread hop)."""
        core_id = await self._access.aowned(caller, account_id)
        native = getattr(self._accounts, "abalance", None)
        if native is not None:
            return await native(core_id, timeout=self._timeout)
        return await anyio.to_thread.run_sync(functools.partial(self._accounts.balance, core_id,
                                                                timeout=self._timeout))

    def transactions(self, caller: Caller, account_id: str, *, from_date: dt.date | None, to_date: dt.date | None,
                     limit: int, cursor: str | None) -> TransactionPage:
        """Newest first. ``cursor`` is ours (signed, bound to the account and filters); the adapter's
        own continuation token travels inside it."""
        core_id = self._access.owned(caller, account_id)  # ownership first: a foreign account is a 404
        filters = {"from": from_date.isoformat() if from_date else None,
                   "to": to_date.isoformat() if to_date else None}
        adapter_cursor = (self._cursors.decode(cursor, account_id=core_id, filters=filters)
                          if cursor is not None else None)
        if (from_date is not None and from_date > CORE_LAST_DAY) or (to_date is not None and to_date < CORE_FIRST_DAY):
            return TransactionPage(items=[], next_cursor=None)  # a range the core holds nothing in
        page = self._accounts.history(core_id, from_date=_clamp(from_date), to_date=_clamp(to_date), limit=limit,
                                      cursor=adapter_cursor, timeout=self._timeout)
        items = [t for t in page.items if t.account_id == core_id][:limit]
        next_cursor = self._cursors.encode(core_id, page.next_cursor, filters) if page.next_cursor else None
        return TransactionPage(items=items, next_cursor=next_cursor)


def _clamp(day: dt.date | None) -> dt.date | None:
    """``day`` within the core's calendar; the same rows match (there are none outside it)."""
    if day is None:
        return None
    return min(max(day, CORE_FIRST_DAY), CORE_LAST_DAY)
