"""Ownership: every object is checked against the customer the caller acts for.

A customer token's subject is its customer id; an admin token acts for the customer named in
``X-On-Behalf-Of``. An account belongs to the caller when its ``customer_id`` is that customer;
a transfer when its debit account does. Anything else is ``NotFound``, indistinguishable from an
object that does not exist.

Who owns an account is remembered for ``ownership_ttl`` seconds (bounded LRU) after the core last
said so, by a look-up or a customer's account list: an account does not change hands, and the
balance, history and transfer calls need only its owner, so they skip one core round trip per
request (:meth:`Access.owned`). :meth:`Access.account`, which returns the account itself, always
asks the core. Unknown accounts are never remembered: a new account is visible at once.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TypeVar

import anyio.to_thread

from adapters.errors import RecordNotFound
from adapters.ports import AccountSource
from api.auth import Caller
from canonical import Account, NotFound

__all__ = ["Access"]

log = logging.getLogger("corebridge.api.access")

T = TypeVar("T")


class Access:
    def __init__(self, accounts: AccountSource, *, timeout: float | None = None, ownership_ttl: float = 30.0,
                 max_remembered: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._accounts = accounts
        self._timeout = timeout
        self._ttl = ownership_ttl
        self._max = max_remembered
        self._clock = clock
        self._owners: OrderedDict[str, tuple[str, str, float]] = OrderedDict()  # id -> (owner, core's id, until)
        self._lock = threading.Lock()

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
        self._remember(account_id, account)
        return self._check(caller, account_id, account.customer_id, account)

    def owned(self, caller: Caller, account_id: str) -> str:
        """The core's id of the account if it belongs to the caller's customer, else ``NotFound``; from
        a recent look-up when there is one."""
        known = self._recall(account_id)
        if known is None:
            return self.account(caller, account_id).id
        owner, core_id = known
        return self._check(caller, account_id, owner, core_id)

    async def aowned(self, caller: Caller, account_id: str) -> str:
        """:meth:`owned` for the event loop: a remembered owner costs a dictionary lookup; otherwise the
        core is asked in a worker thread."""
        known = self._recall(account_id)
        if known is None:
            account = await anyio.to_thread.run_sync(functools.partial(self.account, caller, account_id))
            return account.id
        owner, core_id = known
        return self._check(caller, account_id, owner, core_id)

    def remember(self, accounts: Iterable[Account]) -> None:
        """Owners the core just listed (a customer's accounts)."""
        for account in accounts:
            self._remember(account.id, account)

    def _check(self, caller: Caller, account_id: str, owner: str, result: T) -> T:
        if owner != caller.customer_id:
            log.info("account %s refused: it does not belong to the customer the caller acts for", account_id)
            raise NotFound("account", account_id)
        return result

    def _remember(self, account_id: str, account: Account) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._owners[account_id] = (account.customer_id, account.id, self._clock() + self._ttl)
            self._owners.move_to_end(account_id)
            while len(self._owners) > self._max:
                self._owners.popitem(last=False)

    def _recall(self, account_id: str) -> tuple[str, str] | None:
        if self._ttl <= 0:
            return None
        with self._lock:
            entry = self._owners.get(account_id)
            if entry is None:
                return None
            if self._clock() >= entry[2]:
                del self._owners[account_id]
                return None
            return entry[0], entry[1]
