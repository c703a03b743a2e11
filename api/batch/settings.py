"""Settings of the facade's batch side: the read model, the scheduled pull, and how history uses it.

A section model for :class:`api.settings.Settings` (``batch: BatchSettings``, environment
``COREBRIDGE_BATCH__STORE``, ``COREBRIDGE_BATCH__HISTORY_MODE``, ``COREBRIDGE_BATCH__SCHEDULE_INTERVAL_SECONDS``
...). SFTP itself is configured under ``backends.sftp``.

``history_mode`` says where ``GET /v1/accounts/{id}/transactions`` reads from:

* ``core`` (default): the routed core source only; the read model is not read.
* ``replace``: the batch store only (the end-of-day files loaded by ``batch pull`` / the scheduler).
* ``merge``: the store's rows and the core's, de-duplicated by transaction id, newest first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["HISTORY_MODES", "BatchSettings"]

HISTORY_MODES = ("core", "replace", "merge")


class BatchSettings(BaseModel):
    """The batch store (read model), the pull scheduler inside ``corebridge serve``, the history mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: SecretStr = Field(SecretStr("var/batch/batch.db"),
                             description="SQLite path or postgresql:// DSN of the batch store (read model)")
    work_dir: Path = Field(Path("var/batch"), description="incoming, archive, quarantine, rejects folders")
    policy: Literal["reject-file", "load-good"] = Field(
        "reject-file", description="record-level problems in a TXNHIST file: quarantine it, or load the good records")
    pattern: str = Field("TXNHIST.D*", description="outbox files the scheduled pull ingests")
    schedule_interval_seconds: float = Field(
        0.0, ge=0, description="run pull + ingest every this many seconds inside `corebridge serve`; 0: off")
    decoder_process: bool = Field(
        True, description="decode big TXNHIST files (4 MiB and more) partly in a forked decoder process, beside "
                          "the inserts on a second core; false: all in the ingesting process")
    history_mode: Literal["core", "replace", "merge"] = Field(
        "core", description="transactions endpoint: core (the routed source only), replace (the batch store "
                            "only) or merge (both, de-duplicated by transaction id)")

    @property
    def store_target(self) -> str:
        return self.store.get_secret_value()

    @property
    def uses_store(self) -> bool:
        """True when the facade needs the store (history from it, or a scheduled pull into it)."""
        return self.history_mode != "core" or self.schedule_interval_seconds > 0
