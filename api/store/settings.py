"""Settings of the facade's own store (idempotency keys and the transfer intent log).

A section model for :class:`api.settings.Settings` (``store: StoreSettings = StoreSettings()``,
environment ``COREBRIDGE_STORE__BACKEND`` etc.); :func:`api.store.build_store` turns it into a store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["StoreSettings"]

DAY = 86_400.0


class StoreSettings(BaseModel):
    """Where idempotency keys and transfer intents live, how long, and how often they are reconciled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["none", "sqlite", "postgres"] = Field(
        "sqlite", description="none: no Idempotency-Key support (one posting path); sqlite: one instance; "
                              "postgres: several facade instances sharing one store")
    sqlite_path: Path = Field(Path("var/corebridge-store.db"), description="the SQLite file (WAL mode)")
    sqlite_busy_timeout_ms: int = Field(5000, ge=0, description="how long a writer waits for the lock")
    postgres_dsn: SecretStr | None = Field(None, description="libpq DSN/URL of the shared store")
    postgres_connect_timeout: float = Field(5.0, gt=0)
    postgres_pool_size: int = Field(8, ge=1, description="store connections per facade instance at most")
    key_retention_seconds: float = Field(
        7 * DAY, ge=60, description="an Idempotency-Key (and its stored response) is kept at least this long "
                                    "(default 7 days); unresolved intents are kept until resolved")
    lease_seconds: float = Field(
        60.0, gt=0, description="a request working on a key holds it this long at most (same key meanwhile: "
                                "409); an expired lease lets a retry or the reconciler take over")
    stale_after_seconds: float = Field(
        30.0, gt=0, description="PENDING/SENT intents not updated for this long are reconciled by inquiry")
    resend_after_seconds: float = Field(
        30.0, ge=0, description="a posting whose answer was lost and that the core has not seen is sent again "
                                "(same reference) only this long after the loss: until then the original may "
                                "still be on its way (a slow network or proxy), and the core does not de-duplicate")
    reconcile_interval_seconds: float = Field(5.0, gt=0, description="how often the reconciler runs")
    sweep_interval_seconds: float = Field(300.0, gt=0, description="how often expired keys are deleted")
    reconcile_batch: int = Field(100, ge=1, description="intents resolved per reconciler run at most")
    end_of_day_fallback: bool = Field(
        False, description="when the core cannot be asked, the reconciler consults the end-of-day TXNHIST files "
                           "ingested into the batch store (batch.store; see api/services/eod_lookup.py)")
    end_of_day_after_seconds: float = Field(
        3600.0, ge=0, description="an intent is looked up in the end-of-day files only when at least this old")
