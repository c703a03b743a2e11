"""The facade's own store: Idempotency-Key records and the transfer intent log (one table).

SQLite by default (one instance; WAL), PostgreSQL when several facade instances share keys.
:func:`build_store` makes one from :class:`~api.store.settings.StoreSettings`.
"""

from __future__ import annotations

from api.store.base import FINAL_STATES, Begin, IdempotencyStore, Intent, IntentLog, IntentState, Store, StoredResponse
from api.store.settings import StoreSettings

__all__ = ["FINAL_STATES", "Begin", "IdempotencyStore", "Intent", "IntentLog", "IntentState", "Store", "StoreSettings",
           "StoredResponse", "build_store"]


def build_store(settings: StoreSettings) -> Store | None:
    """The store the settings name (``None`` for ``backend = "none"``); it implements both protocols."""
    if settings.backend == "none":
        return None
    if settings.backend == "sqlite":
        from api.store.sqlite import SqliteStore

        return SqliteStore(settings.sqlite_path, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    from api.store.postgres import PostgresStore

    if settings.postgres_dsn is None:
        raise ValueError("store.postgres_dsn is required when store.backend is 'postgres'")
    return PostgresStore(settings.postgres_dsn.get_secret_value(), pool_size=settings.postgres_pool_size,
                         connect_timeout=settings.postgres_connect_timeout)
