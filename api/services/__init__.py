"""Use cases of the facade: thin, synchronous (the ports block), and free of HTTP. The one exception is
the hot read, ``AccountService.abalance``: awaited on the event loop when the port has an ``abalance``
coroutine (the SOAP adapter's), in a worker thread otherwise.

Each service takes the :class:`~api.auth.Caller` and checks ownership before it returns anything:
an object of another customer is reported exactly like a missing one (``canonical.NotFound``),
so a caller cannot even learn that it exists. Errors are the adapters' (``adapters.errors``) and
the canonical ones; :mod:`api.problems` maps both to HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.cursors import CursorCodec
from api.gateways import Gateways
from api.services.access import Access
from api.services.accounts import AccountService
from api.services.customers import CustomerService
from api.services.exactly_once import ExactlyOnceService
from api.services.transfers import TransferService, new_reference

if TYPE_CHECKING:
    from api.store import Store, StoreSettings

__all__ = ["Access", "AccountService", "CustomerService", "ExactlyOnceService", "Services", "TransferService",
           "build_services", "new_reference"]


@dataclass(frozen=True, slots=True)
class Services:
    customers: CustomerService
    accounts: AccountService
    transfers: TransferService
    #: ``Idempotency-Key`` transfers over the store; None without a store (one posting path)
    exactly_once: ExactlyOnceService | None = None


def build_services(gateways: Gateways, cursors: CursorCodec, *, timeout: float | None = None,
                   store: Store | None = None, store_settings: StoreSettings | None = None) -> Services:
    access = Access(gateways.accounts, timeout=timeout)
    transfers = TransferService(gateways.transfers, access, timeout=timeout)
    exactly_once = None
    if store is not None:
        exactly_once = ExactlyOnceService(transfers, gateways.transfers, access, store, store_settings,
                                          timeout=timeout)
    return Services(
        customers=CustomerService(gateways.customers, gateways.accounts, access, timeout=timeout),
        accounts=AccountService(gateways.accounts, access, cursors, timeout=timeout),
        transfers=transfers,
        exactly_once=exactly_once,
    )
