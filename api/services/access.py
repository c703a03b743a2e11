"""Ownership: every object is checked against the customer the caller acts for.

A customer token's subject is its customer id; an admin token acts for the customer named in
``X-On-Behalf-Of``. An account belongs to the caller when its ``customer_id`` is that customer;
a transfer when its debit account does. Anything else is ``NotFound``, indistinguishable from an
object that does not exist.
"""

from __future__ import annotations

import logging

from adapters.errors import RecordNotFound
from adapters.ports import AccountSource
from api.auth import Caller
from canonical import Account, NotFound

__all__ = ["Access"]

log = logging.getLogger("corebridge.api.access")


class Access:
    def __init__(self, accounts: AccountSource, *, timeout: float | None = None) -> None:
        self._accounts = accounts
        self._timeout = timeout

    def customer(self, caller: Caller, customer_id: str) -> str:
        """``customer_id`` if the caller acts for it, else ``NotFound`` (no core call is made)."""
        if customer_id != caller.customer_id:
            log.info("customer %s refused to caller acting for %s", customer_id, caller.customer_id)
            raise NotFound("customer", customer_id)
        return customer_id

    def account(self, caller: Caller, account_id: str) -> Account:
        """The account, fetched from the core, if it belongs to the caller's customer; else ``NotFound``."""
        try:
            account = self._accounts.account(account_id, timeout=self._timeout)
        except RecordNotFound:
            raise NotFound("account", account_id) from None
        if account.customer_id != caller.customer_id:
            log.info("account %s refused: it does not belong to the customer the caller acts for", account_id)
            raise NotFound("account", account_id)
        return account
