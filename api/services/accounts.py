"""Account use cases: one account, its balance, its transactions (cursor-paginated)."""

from __future__ import annotations

import datetime as dt

from adapters.ports import AccountSource
from api.auth import Caller
from api.cursors import CursorCodec
from api.schemas import TransactionPage
from api.services.access import Access
from canonical import Account, Balance

__all__ = ["AccountService"]


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
        account = self._access.account(caller, account_id)
        return self._accounts.balance(account.id, timeout=self._timeout)

    def transactions(self, caller: Caller, account_id: str, *, from_date: dt.date | None, to_date: dt.date | None,
                     limit: int, cursor: str | None) -> TransactionPage:
        """Newest first. ``cursor`` is ours (signed, bound to the account and filters); the adapter's
        own continuation token travels inside it."""
        account = self._access.account(caller, account_id)  # ownership first: a foreign account is a 404
        filters = {"from": from_date.isoformat() if from_date else None,
                   "to": to_date.isoformat() if to_date else None}
        adapter_cursor = (self._cursors.decode(cursor, account_id=account.id, filters=filters)
                          if cursor is not None else None)
        page = self._accounts.history(account.id, from_date=from_date, to_date=to_date, limit=limit,
                                      cursor=adapter_cursor, timeout=self._timeout)
        items = [t for t in page.items if t.account_id == account.id][:limit]
        next_cursor = self._cursors.encode(account.id, page.next_cursor, filters) if page.next_cursor else None
        return TransactionPage(items=items, next_cursor=next_cursor)
