"""Customer use cases: the caller's own customer record and its accounts."""

from __future__ import annotations

from adapters.ports import AccountSource, CustomerSource
from api.auth import Caller
from api.services.access import Access
from canonical import Account, Customer

__all__ = ["CustomerService"]


class CustomerService:
    def __init__(self, customers: CustomerSource, accounts: AccountSource, access: Access, *,
                 timeout: float | None = None) -> None:
        self._customers = customers
        self._accounts = accounts
        self._access = access
        self._timeout = timeout

    def get(self, caller: Caller, customer_id: str) -> Customer:
        self._access.customer(caller, customer_id)
        return self._customers.customer(customer_id, timeout=self._timeout)

    def accounts(self, caller: Caller, customer_id: str) -> list[Account]:
        self._access.customer(caller, customer_id)
        accounts = self._accounts.accounts_of(customer_id, timeout=self._timeout)
        self._access.remember(accounts)
        # defence in depth: never list an account the core attributes to someone else
        return [a for a in accounts if a.customer_id == customer_id]
