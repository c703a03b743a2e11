"""Use cases of the facade: thin, synchronous (the ports block), and free of HTTP.

Each service takes the :class:`~api.auth.Caller` and checks ownership before it returns anything:
an object of another customer is reported exactly like a missing one (``canonical.NotFound``),
so a caller cannot even learn that it exists. Errors are the adapters' (``adapters.errors``) and
the canonical ones; :mod:`api.problems` maps both to HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.cursors import CursorCodec
from api.gateways import Gateways
from api.services.access import Access
from api.services.accounts import AccountService
from api.services.customers import CustomerService
from api.services.transfers import TransferService, new_reference

__all__ = ["Access", "AccountService", "CustomerService", "Services", "TransferService", "build_services",
           "new_reference"]


@dataclass(frozen=True, slots=True)
class Services:
    customers: CustomerService
    accounts: AccountService
    transfers: TransferService


def build_services(gateways: Gateways, cursors: CursorCodec, *, timeout: float | None = None) -> Services:
    access = Access(gateways.accounts, timeout=timeout)
    return Services(
        customers=CustomerService(gateways.customers, gateways.accounts, access, timeout=timeout),
        accounts=AccountService(gateways.accounts, access, cursors, timeout=timeout),
        transfers=TransferService(gateways.transfers, access, timeout=timeout),
    )
