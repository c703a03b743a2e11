"""Ports: what the facade needs from a core, named by need; adapters are named by technology.

Every port returns *canonical* objects: the adapter behind it applies the mapping files to the
legacy records it receives, so routing and fallback (``SoapAccountSource`` -> ``OdbcAccountSource``)
can swap sources without the caller seeing a legacy shape. Every method takes ``timeout``: the
resilience pipeline hands each attempt the time it may take (min(attempt timeout, time left)),
and the adapter must use it as its library-level timeout, because a thread cannot be cancelled.

Errors are only those of :mod:`adapters.errors`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from canonical import Account, Balance, Customer, Page, Transaction, Transfer


@runtime_checkable
class CustomerSource(Protocol):
    def customer(self, customer_id: str, *, timeout: float | None = None) -> Customer: ...


@runtime_checkable
class AccountSource(Protocol):
    def accounts_of(self, customer_id: str, *, timeout: float | None = None) -> list[Account]: ...

    def account(self, account_id: str, *, timeout: float | None = None) -> Account: ...

    def balance(self, account_id: str, *, timeout: float | None = None) -> Balance: ...

    def history(self, account_id: str, *, from_date: dt.date | None = None, to_date: dt.date | None = None,
                limit: int = 50, cursor: str | None = None,
                timeout: float | None = None) -> Page[Transaction]:
        """Newest first. ``cursor`` is the adapter's own continuation token (opaque to callers)."""
        ...


@runtime_checkable
class TransferGateway(Protocol):
    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        """Post once under ``transfer.reference``. Raises ``Rejected`` for a business rejection and an
        error with ``outcome_unknown=True`` when the request may have reached the core."""
        ...

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        """Every posting attempt the core holds under ``reference`` (the core does not de-duplicate)."""
        ...


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    modified: dt.datetime


@dataclass(frozen=True)
class FetchedFile:
    name: str
    path: Path
    size: int
    sha256: str


@runtime_checkable
class BatchDropbox(Protocol):
    def list(self, folder: str, pattern: str = "*", *, timeout: float | None = None) -> list[RemoteFile]: ...

    def fetch(self, folder: str, name: str, dest_dir: Path | None = None, *,
              timeout: float | None = None) -> FetchedFile:
        """Download to a temp file, then rename into ``dest_dir``; returns its SHA-256."""
        ...

    def upload(self, local: Path, folder: str, name: str, *, timeout: float | None = None) -> None:
        """Upload under a temp name, then rename, so the core never sees a partial file."""
        ...

    def close(self) -> None: ...
