"""Which backend serves which read, and the stale fallback for balances.

A bank rarely gets every inquiry from one face of its core: balances and account details may come
from the online SOAP service, long histories from the ODBC read replica. :class:`RoutingSettings`
says which named source serves each operation::

    RoutingSettings(routes={"customer": "soap", "accounts": "odbc", "account": "soap",
                            "balance": "soap", "history": "odbc"},
                    fallbacks={"balance": "odbc"})

(``"default"`` names the source for every operation not listed.) The sources are the resilient
wrappers of :mod:`adapters.resilient`, so each already retries and has its own breaker.

**Fallback (balance only).** When the primary source fails in a way that says nothing about the
request (``CircuitOpen``, ``BackendUnavailable``, ``BackendTimeout``) and a fallback is configured,
the balance comes from the fallback, marked ``stale=True`` with the fallback's own ``as_of``: the
replica may lag the online core, and the client must be able to say so. It never falls back on a
business answer (``RecordNotFound``, ``Rejected``): the core has spoken. If the fallback fails too,
the primary's error is raised (it is the one the route was for), even when the fallback says "not
found": a replica may lag behind the online core (an account opened a moment ago), so its "not
found" is not trusted while the primary is down. Only balances fall back: accounts
carry no staleness mark, and a history cursor belongs to the source that issued it.

``abalance`` is the same routing and fallback for the event loop: each source's ``abalance`` when it
has one (the resilient wrappers do), else its ``balance`` in a worker thread.

**History cursors** are tagged with the source that issued them (``odbc:374``), so a client paging
through history keeps its source even if the routes change between two pages.

Logs name operations and sources, never account numbers.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from adapters.errors import BackendTimeout, BackendUnavailable, CircuitOpen, CoreError

if TYPE_CHECKING:
    from adapters.ports import AccountSource, CustomerSource
    from canonical import Account, Balance, Customer, Page, Transaction

__all__ = [
    "FALLBACK_ON",
    "OPERATIONS",
    "RoutedAccountSource",
    "RoutedCustomerSource",
    "RoutingSettings",
]

log = logging.getLogger("adapters.routing")

OPERATIONS = ("customer", "accounts", "account", "balance", "history")
FALLBACK_OPERATIONS = ("balance",)
#: errors that say "the path to this source is down", not "no such record"
FALLBACK_ON: tuple[type[CoreError], ...] = (CircuitOpen, BackendUnavailable, BackendTimeout)
DEFAULT = "default"


@dataclass(frozen=True)
class RoutingSettings:
    routes: Mapping[str, str]
    fallbacks: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.routes) - {*OPERATIONS, DEFAULT})
        if unknown:
            raise ValueError(f"routes name unknown operations {unknown}; known: {', '.join(OPERATIONS)}, {DEFAULT}")
        bad = sorted(set(self.fallbacks) - set(FALLBACK_OPERATIONS))
        if bad:
            raise ValueError(f"only {', '.join(FALLBACK_OPERATIONS)} may fall back, not {bad}")
        for op, fb in self.fallbacks.items():
            if fb == self.source_for(op):
                raise ValueError(f"the fallback for {op} is its primary source {fb!r}")
        object.__setattr__(self, "routes", dict(self.routes))
        object.__setattr__(self, "fallbacks", dict(self.fallbacks))

    def source_for(self, operation: str) -> str:
        try:
            return self.routes[operation] if operation in self.routes else self.routes[DEFAULT]
        except KeyError:
            raise ValueError(f"no route for {operation!r} and no {DEFAULT!r} route") from None

    def check(self, sources: Mapping[str, Any], operations: tuple[str, ...]) -> None:
        """Every route and fallback of ``operations`` names one of ``sources``."""
        for op in operations:
            names = [self.source_for(op)] + ([self.fallbacks[op]] if op in self.fallbacks else [])
            for name in names:
                if name not in sources:
                    raise ValueError(f"{op} is routed to {name!r}, which is not a source ({', '.join(sources)})")


def _settings(routes: RoutingSettings | Mapping[str, str], fallbacks: Mapping[str, str] | None) -> RoutingSettings:
    if isinstance(routes, RoutingSettings):
        if fallbacks:
            raise ValueError("give fallbacks in the RoutingSettings")
        return routes
    return RoutingSettings(routes=routes, fallbacks=fallbacks or {})


async def _abalance(source: Any, account_id: str, timeout: float | None) -> Balance:
    native = getattr(source, "abalance", None)
    if native is not None:
        return await native(account_id, timeout=timeout)
    return await anyio.to_thread.run_sync(functools.partial(source.balance, account_id, timeout=timeout))


class RoutedCustomerSource:
    """A :class:`~adapters.ports.CustomerSource` served by the source ``routes["customer"]`` names."""

    def __init__(self, sources: Mapping[str, CustomerSource], routes: RoutingSettings | Mapping[str, str]) -> None:
        self.settings = _settings(routes, None)
        self.settings.check(sources, ("customer",))
        self._source = sources[self.settings.source_for("customer")]

    def customer(self, customer_id: str, *, timeout: float | None = None) -> Customer:
        return self._source.customer(customer_id, timeout=timeout)


class RoutedAccountSource:
    """An :class:`~adapters.ports.AccountSource` whose operations are served by the named sources."""

    def __init__(self, sources: Mapping[str, AccountSource], routes: RoutingSettings | Mapping[str, str],
                 fallbacks: Mapping[str, str] | None = None) -> None:
        self.settings = _settings(routes, fallbacks)
        self.settings.check(sources, ("accounts", "account", "balance", "history"))
        if any(":" in name for name in sources):
            raise ValueError("source names must not contain ':' (it separates a history cursor's source)")
        self.sources = dict(sources)
        self._lock = threading.Lock()
        self._fallbacks_served: dict[str, int] = {}

    def _primary(self, operation: str) -> AccountSource:
        return self.sources[self.settings.source_for(operation)]

    def accounts_of(self, customer_id: str, *, timeout: float | None = None) -> list[Account]:
        return self._primary("accounts").accounts_of(customer_id, timeout=timeout)

    def account(self, account_id: str, *, timeout: float | None = None) -> Account:
        return self._primary("account").account(account_id, timeout=timeout)

    def balance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        primary = self.settings.source_for("balance")
        started = time.monotonic()
        try:
            return self.sources[primary].balance(account_id, timeout=timeout)
        except FALLBACK_ON as exc:
            fallback, left = self._fallback_for(exc, started, timeout)
            try:
                stale = self.sources[fallback].balance(account_id, timeout=left)
            except CoreError as fb_exc:
                raise self._both_failed(primary, exc, fallback, fb_exc) from None
            return self._served_stale(primary, exc, fallback, stale)

    async def abalance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        primary = self.settings.source_for("balance")
        started = time.monotonic()
        try:
            return await _abalance(self.sources[primary], account_id, timeout)
        except FALLBACK_ON as exc:
            fallback, left = self._fallback_for(exc, started, timeout)
            try:
                stale = await _abalance(self.sources[fallback], account_id, left)
            except CoreError as fb_exc:
                raise self._both_failed(primary, exc, fallback, fb_exc) from None
            return self._served_stale(primary, exc, fallback, stale)

    def _fallback_for(self, exc: CoreError, started: float, timeout: float | None) -> tuple[str, float | None]:
        """The fallback source and the time left for it; re-raises ``exc`` when there is neither."""
        fallback = self.settings.fallbacks.get("balance")
        if fallback is None:
            raise exc
        left = None if timeout is None else timeout - (time.monotonic() - started)
        if left is not None and left <= 0:
            raise exc
        return fallback, left

    @staticmethod
    def _both_failed(primary: str, exc: CoreError, fallback: str, fb_exc: CoreError) -> CoreError:
        log.warning("balance: %s failed (%s) and so did the fallback %s (%s)", primary,
                    type(exc).__name__, fallback, type(fb_exc).__name__)
        return exc

    def _served_stale(self, primary: str, exc: CoreError, fallback: str, stale: Balance) -> Balance:
        with self._lock:
            self._fallbacks_served[fallback] = self._fallbacks_served.get(fallback, 0) + 1
        log.warning("balance: %s failed (%s); served stale from %s", primary, type(exc).__name__, fallback)
        return stale.model_copy(update={"stale": True})

    def history(self, account_id: str, *, from_date: dt.date | None = None, to_date: dt.date | None = None,
                limit: int = 50, cursor: str | None = None, timeout: float | None = None) -> Page[Transaction]:
        if cursor is None:
            name, inner_cursor = self.settings.source_for("history"), None
        else:
            name, sep, inner_cursor = cursor.partition(":")
            if not sep or name not in self.sources:
                raise ValueError("not a history cursor of this service")
        page = self.sources[name].history(account_id, from_date=from_date, to_date=to_date, limit=limit,
                                          cursor=inner_cursor, timeout=timeout)
        if page.next_cursor is None:
            return page
        return page.model_copy(update={"next_cursor": f"{name}:{page.next_cursor}"})

    async def aclose(self) -> None:
        """Close the sources' event-loop resources (those that have any)."""
        for source in self.sources.values():
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    def snapshot(self) -> dict[str, Any]:
        """Routes, fallbacks, and how many balances each fallback has served."""
        with self._lock:
            served = dict(self._fallbacks_served)
        return {"routes": dict(self.settings.routes), "fallbacks": dict(self.settings.fallbacks),
                "fallbacks_served": served}
