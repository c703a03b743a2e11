"""Batch integration over the core's SFTP dropbox (issue 7).

* :mod:`.store`     the read model: transactions, ingested files, claims, payment files (SQLite / PostgreSQL)
* :mod:`.ingest`    one TXNHIST file -> the store, all or nothing, quarantine with a JSON report
* :mod:`.pull`      list + download + ingest every new TXNHIST file of the outbox
* :mod:`.payments`  transfers -> PAYIN upload -> PAYACK reconciliation
* :mod:`.report`    rich summary tables for the CLI (``corebridge batch``, :mod:`api.cli_batch`)
"""

from __future__ import annotations

from .ingest import POLICIES, FileReport, TxnhistIngestor
from .payments import DuplicateReferences, PaymentPusher, PushResult, load_transfers
from .pull import PullDirs, pull
from .store import BatchStore, open_store

__all__ = [
    "POLICIES",
    "BatchStore",
    "DuplicateReferences",
    "FileReport",
    "PaymentPusher",
    "PullDirs",
    "PushResult",
    "TxnhistIngestor",
    "load_transfers",
    "open_store",
    "pull",
]
