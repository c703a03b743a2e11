"""The store's interface and the SQL both engines share.

One row per (principal, Idempotency-Key) *is* the transfer's intent: the key, the request's
fingerprint, the core reference the posting goes out under, its state, and the response to replay.

``PRIMARY KEY (principal, idem_key)`` is what makes a key exactly-once across threads and facade
instances: the first ``INSERT`` wins, every other request reads the winner's row. Who works on an
intent is a lease (``owner``, ``lease_until``) taken with one conditional ``UPDATE`` (compare and set),
so two instances never drive the same intent at once and a crashed one's lease simply expires.

States::

    PENDING --(about to call the core)--> SENT --> POSTED | REJECTED      (final)
                                            \\--> UNKNOWN --(inquiry)--> POSTED | REJECTED
    PENDING: the core has not been sent the request (safe to send under the same reference)
    SENT / UNKNOWN: it may have been; only an inquiry by reference decides
"""

from __future__ import annotations

import enum
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["FINAL_STATES", "Begin", "IdempotencyStore", "Intent", "IntentLog", "IntentState", "SqlStore",
           "Store", "StoredResponse"]


class IntentState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    POSTED = "posted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


FINAL_STATES = frozenset({IntentState.POSTED, IntentState.REJECTED})


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a replay sends back: status, the headers that matter, the body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Intent:
    principal: str
    key: str
    fingerprint: str
    reference: str
    state: IntentState
    transfer: str  # canonical Transfer JSON: what is (or was) posted; the outcome once known
    response: StoredResponse | None
    owner: str | None
    lease_until: float | None
    created_at: float
    updated_at: float
    expires_at: float

    def leased(self, now: float) -> bool:
        return self.owner is not None and self.lease_until is not None and self.lease_until > now


@dataclass(frozen=True, slots=True)
class Begin:
    intent: Intent
    created: bool  # True: this request inserted the intent (and holds its lease)


class IdempotencyStore(Protocol):
    """Idempotency keys, scoped by principal."""

    def get(self, principal: str, key: str) -> Intent | None: ...

    def begin(self, principal: str, key: str, *, fingerprint: str, reference: str, transfer: str, owner: str,
              now: float, lease_seconds: float, retention_seconds: float) -> Begin: ...

    def sweep(self, now: float) -> int:
        """Delete expired keys whose intent needs nothing more (final, or never sent); the count."""
        ...

    def close(self) -> None: ...


class IntentLog(Protocol):
    """The transfer intents behind the keys, by core reference."""

    def by_reference(self, reference: str) -> Intent | None: ...

    def claim(self, reference: str, owner: str, *, now: float, lease_seconds: float) -> bool:
        """Take the lease of a non-final intent whose lease is free or expired (compare and set)."""
        ...

    def update(self, reference: str, owner: str, *, state: IntentState, now: float, transfer: str | None = None,
               response: StoredResponse | None = None, release: bool = False) -> bool:
        """Move an intent the caller holds the lease of; False if the lease was lost."""
        ...

    def release(self, reference: str, owner: str) -> None: ...

    def due(self, *, now: float, stale_before: float, limit: int) -> list[Intent]:
        """Unleased intents to reconcile: UNKNOWN ones, and PENDING/SENT ones not updated since ``stale_before``."""
        ...


class Store(IdempotencyStore, IntentLog, Protocol):
    """Both: what :class:`~api.services.exactly_once.ExactlyOnceService` needs."""


_COLUMNS = ("principal, idem_key, fingerprint, reference, state, transfer, response_status, response_headers, "
            "response_body, owner, lease_until, created_at, updated_at, expires_at")

SCHEMA = """
CREATE TABLE IF NOT EXISTS cb_intents (
    principal        TEXT NOT NULL,
    idem_key         TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    reference        TEXT NOT NULL UNIQUE,
    state            TEXT NOT NULL,
    transfer         TEXT NOT NULL,
    response_status  INTEGER,
    response_headers TEXT,
    response_body    {blob},
    owner            TEXT,
    lease_until      {real},
    created_at       {real} NOT NULL,
    updated_at       {real} NOT NULL,
    expires_at       {real} NOT NULL,
    PRIMARY KEY (principal, idem_key)
);
CREATE INDEX IF NOT EXISTS cb_intents_state ON cb_intents (state, updated_at);
CREATE INDEX IF NOT EXISTS cb_intents_expiry ON cb_intents (expires_at);
CREATE INDEX IF NOT EXISTS cb_intents_created ON cb_intents (state, created_at)
"""


def _row_to_intent(row: Sequence[Any]) -> Intent:
    (principal, key, fingerprint, reference, state, transfer, status, headers, body, owner, lease_until,
     created_at, updated_at, expires_at) = row
    response = None
    if status is not None:
        response = StoredResponse(int(status), json.loads(headers or "{}"), bytes(body or b""))
    return Intent(principal, key, fingerprint, reference, IntentState(state), transfer, response, owner,
                  lease_until, created_at, updated_at, expires_at)


class SqlStore(ABC):
    """Both protocols over one table; subclasses supply the connection (one per thread) and placeholders."""

    placeholder = "?"

    def __init__(self) -> None:
        self._local = threading.local()

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, list[Sequence[Any]]]:
        """Run one autocommitted statement: (rowcount, fetched rows)."""

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _run(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, list[Sequence[Any]]]:
        return self._execute(self._sql(sql), params)

    # -- IdempotencyStore ------------------------------------------------------------------------
    def get(self, principal: str, key: str) -> Intent | None:
        _, rows = self._run(f"SELECT {_COLUMNS} FROM cb_intents WHERE principal = ? AND idem_key = ?",  # noqa: S608 - constant columns
                            (principal, key))
        return _row_to_intent(rows[0]) if rows else None

    def begin(self, principal: str, key: str, *, fingerprint: str, reference: str, transfer: str, owner: str,
              now: float, lease_seconds: float, retention_seconds: float) -> Begin:
        # an expired key that still lingers (the sweeper has not run) and needs nothing more is replaced
        self._run("DELETE FROM cb_intents WHERE principal = ? AND idem_key = ? AND expires_at < ? "
                  "AND state IN ('posted', 'rejected', 'pending') AND (lease_until IS NULL OR lease_until < ?)",
                  (principal, key, now, now))
        count, _ = self._run(
            f"INSERT INTO cb_intents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, ?, ?, ?) "  # noqa: S608
            "ON CONFLICT (principal, idem_key) DO NOTHING",
            (principal, key, fingerprint, reference, IntentState.PENDING.value, transfer, owner,
             now + lease_seconds, now, now, now + retention_seconds))
        intent = self.get(principal, key)
        if intent is None:  # inserted and swept at once: impossible unless retention < 0
            raise RuntimeError("idempotency key vanished")
        return Begin(intent, created=count == 1 and intent.reference == reference)

    def sweep(self, now: float) -> int:
        count, _ = self._run("DELETE FROM cb_intents WHERE expires_at < ? AND state IN ('posted', 'rejected', "
                             "'pending') AND (lease_until IS NULL OR lease_until < ?)", (now, now))
        return count

    # -- IntentLog -------------------------------------------------------------------------------
    def by_reference(self, reference: str) -> Intent | None:
        _, rows = self._run(f"SELECT {_COLUMNS} FROM cb_intents WHERE reference = ?", (reference,))  # noqa: S608
        return _row_to_intent(rows[0]) if rows else None

    def claim(self, reference: str, owner: str, *, now: float, lease_seconds: float) -> bool:
        count, _ = self._run(
            "UPDATE cb_intents SET owner = ?, lease_until = ? WHERE reference = ? "
            "AND state NOT IN ('posted', 'rejected') AND (owner IS NULL OR lease_until IS NULL OR lease_until < ?)",
            (owner, now + lease_seconds, reference, now))
        return count == 1

    def update(self, reference: str, owner: str, *, state: IntentState, now: float, transfer: str | None = None,
               response: StoredResponse | None = None, release: bool = False) -> bool:
        sets = ["state = ?", "updated_at = ?"]
        params: list[Any] = [state.value, now]
        if transfer is not None:
            sets.append("transfer = ?")
            params.append(transfer)
        if response is not None:
            sets += ["response_status = ?", "response_headers = ?", "response_body = ?"]
            params += [response.status, json.dumps(dict(response.headers), sort_keys=True), response.body]
        if release:
            sets += ["owner = NULL", "lease_until = NULL"]
        count, _ = self._run(f"UPDATE cb_intents SET {', '.join(sets)} WHERE reference = ? AND owner = ?",  # noqa: S608
                             (*params, reference, owner))
        return count == 1

    def release(self, reference: str, owner: str) -> None:
        self._run("UPDATE cb_intents SET owner = NULL, lease_until = NULL WHERE reference = ? AND owner = ?",
                  (reference, owner))

    def due(self, *, now: float, stale_before: float, limit: int) -> list[Intent]:
        _, rows = self._run(
            f"SELECT {_COLUMNS} FROM cb_intents WHERE (state = 'unknown' OR (state IN ('pending', 'sent') "  # noqa: S608
            "AND updated_at < ?)) AND (owner IS NULL OR lease_until IS NULL OR lease_until < ?) "
            "ORDER BY updated_at LIMIT ?", (stale_before, now, limit))
        return [_row_to_intent(r) for r in rows]

    def posted_after(self, created_after: float, limit: int) -> list[Intent]:
        """POSTED intents created after ``created_after``, oldest first (end-of-day witnesses)."""
        _, rows = self._run(f"SELECT {_COLUMNS} FROM cb_intents WHERE state = 'posted' AND created_at > ? "  # noqa: S608
                            "ORDER BY created_at LIMIT ?", (created_after, limit))
        return [_row_to_intent(r) for r in rows]

    def count(self) -> int:
        _, rows = self._run("SELECT COUNT(*) FROM cb_intents")
        return int(rows[0][0])
