"""What the facade needs from the composition root: the three ports and two probes.

``api/bootstrap.py`` builds one :class:`Gateways` from the settings (protocol adapters wrapped in
their resilience pipelines and routing/fallback); tests build one from in-memory fakes. The app
never constructs a client itself.

``health()`` returns one row per (backend, operation class) in the shape of
:meth:`adapters.resilience.ResilienceRegistry.snapshot` (at least ``backend`` and
``breaker_state``; ``operation_class``, ``retries``, ``calls``, ``in_flight``... when known).
``/readyz`` and the breaker/retry gauges of ``/metrics`` read it. ``pools()`` gives each pooled
backend's connection-pool numbers (:meth:`adapters.odbc.OdbcCore.stats`), for the pool metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.ports import AccountSource, CustomerSource, TransferGateway

__all__ = ["Gateways", "HealthRow"]

HealthRow = Mapping[str, Any]


def _no_health() -> list[HealthRow]:
    return []


def _nothing_to_close() -> None:
    return None


def _loaded() -> bool:
    return True


def _no_pools() -> dict[str, Mapping[str, int]]:
    return {}


async def _nothing_to_aclose() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Gateways:
    customers: CustomerSource
    accounts: AccountSource
    transfers: TransferGateway
    #: per backend and operation class: breaker state etc. (``ResilienceRegistry.snapshot``)
    health: Callable[[], Iterable[HealthRow]] = field(default=_no_health)
    #: releases clients, pools and sessions; the app calls it once at shutdown
    close: Callable[[], None] = field(default=_nothing_to_close)
    #: releases event-loop resources (aiohttp sessions); the app awaits it at shutdown, before ``close``
    aclose: Callable[[], Awaitable[None]] = field(default=_nothing_to_aclose)
    #: True once the mapping files are loaded (``/readyz`` is 503 until then)
    mappings_loaded: Callable[[], bool] = field(default=_loaded)
    #: backend -> its connection pool's numbers (``OdbcCore.stats()``), read at scrape time
    pools: Callable[[], Mapping[str, Mapping[str, int]]] = field(default=_no_pools)
