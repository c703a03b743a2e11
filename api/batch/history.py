"""Transaction history served from the batch read model, alone or merged with a core source.

* :class:`StoreHistorySource` pages the ``transactions`` table of a :class:`~api.batch.store.BatchStore`
  newest first (``booked_at`` then ``id``, both descending) with a keyset cursor, filtering on the
  booking date like the core's adapters do (``POST_DT``).
* :class:`MergedHistory` merges it with another source's history (the routed core source, e.g. the
  ODBC replica): a core row whose transaction id the store already holds is skipped, so every
  transaction is served once; the rest are merged newest first. Its cursor carries the store's
  keyset position and the other source's page cursor plus how many rows of that page were used.
* :class:`BatchHistoryAccountSource` is an :class:`~adapters.ports.AccountSource` that delegates
  everything to the routed source except ``history`` (see ``batch.history_mode`` in
  :mod:`api.batch.settings`).

Cursors are ``store:...`` / ``merged:...`` (base64url JSON): a cursor of another mode is refused
with ``ValueError`` ("not a history cursor of this service"), like a foreign routed cursor.
Rows carry ISO ``booked_at`` strings written by the ingestor (one offset, so text order is time order).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from canonical import Money, Page, Transaction

from .store import BatchStore

if TYPE_CHECKING:
    from adapters.ports import AccountSource
    from canonical import Account, Balance

__all__ = ["BatchHistoryAccountSource", "MergedHistory", "StoreHistorySource", "row_to_transaction"]

STORE_PREFIX = "store:"
MERGED_PREFIX = "merged:"
FOREIGN = "not a history cursor of this service"


def _encode(prefix: str, value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(prefix: str, cursor: str) -> Any:
    if not cursor.startswith(prefix):
        raise ValueError(FOREIGN)
    body = cursor[len(prefix):]
    try:
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError):
        raise ValueError(FOREIGN) from None


def row_to_transaction(row: dict[str, Any]) -> Transaction:
    """A ``transactions`` row of the store as the canonical transaction."""
    currency = row["currency"]
    rb = row.get("running_balance")
    return Transaction(
        id=row["id"], account_id=row["account_id"], booked_at=row["booked_at"], value_date=row["value_date"],
        amount=Money(amount=Decimal(row["amount"]), currency=currency), description=row["description"] or "",
        reference=row["reference"], counterparty=row["counterparty"], channel=row["channel"], kind=row["kind"],
        status=row["status"],
        running_balance=None if rb is None else Money(amount=Decimal(rb), currency=currency))


def _sort_key(t: Transaction) -> tuple[dt.datetime, str]:
    return (t.booked_at, t.id)


class StoreHistorySource:
    """``history`` over the batch store: newest first, keyset cursor, booking-date filters."""

    def __init__(self, store: BatchStore) -> None:
        self.store = store

    def rows(self, account_id: str, *, from_date: dt.date | None, to_date: dt.date | None,
             after: tuple[str, str] | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` rows older than ``after`` (``(booked_at, id)``), newest first."""
        sql = "SELECT * FROM transactions WHERE account_id = ?"
        params: list[Any] = [account_id]
        if from_date is not None:
            sql += " AND substr(booked_at, 1, 10) >= ?"
            params.append(from_date.isoformat())
        if to_date is not None:
            sql += " AND substr(booked_at, 1, 10) <= ?"
            params.append(to_date.isoformat())
        if after is not None:
            sql += " AND (booked_at < ? OR (booked_at = ? AND id < ?))"
            params += [after[0], after[0], after[1]]
        sql += " ORDER BY booked_at DESC, id DESC LIMIT ?"
        params.append(limit)
        with self.store._lock:  # one connection: no interleaving with an ingest on another thread
            return self.store.query(sql, params)

    def held(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` the store holds."""
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        with self.store._lock:
            rows = self.store.query(f"SELECT id FROM transactions WHERE id IN ({marks})", ids)  # noqa: S608
        return {r["id"] for r in rows}

    def history(self, account_id: str, *, from_date: dt.date | None = None, to_date: dt.date | None = None,
                limit: int = 50, cursor: str | None = None, timeout: float | None = None) -> Page[Transaction]:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        after = None
        if cursor is not None:
            value = _decode(STORE_PREFIX, cursor)
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
                raise ValueError(FOREIGN)
            after = (value[0], value[1])
        found = self.rows(account_id, from_date=from_date, to_date=to_date, after=after, limit=limit + 1)
        more = len(found) > limit
        found = found[:limit]
        items = tuple(row_to_transaction(r) for r in found)
        next_cursor = _encode(STORE_PREFIX, [found[-1]["booked_at"], found[-1]["id"]]) if more else None
        return Page[Transaction](items=items, next_cursor=next_cursor)


class _OtherStream:
    """The other source's rows one at a time, skipping those the store holds; resumable by (page cursor, used)."""

    def __init__(self, source: AccountSource, store: StoreHistorySource, account_id: str, *, page_cursor: str | None,
                 used: int, done: bool, kw: dict[str, Any]) -> None:
        self.source, self.store, self.account_id, self.kw = source, store, account_id, kw
        self.page_cursor, self.used, self.done = page_cursor, used, done
        self._page: tuple[Transaction, ...] | None = None
        self._next: str | None = None
        self._held: set[str] = set()

    def _load(self) -> None:
        page = self.source.history(self.account_id, cursor=self.page_cursor, **self.kw)
        self._page, self._next = page.items, page.next_cursor
        self._held = self.store.held([t.id for t in page.items])

    def peek(self) -> Transaction | None:
        while not self.done:
            if self._page is None:
                self._load()
            assert self._page is not None
            while self.used < len(self._page):
                t = self._page[self.used]
                if t.id not in self._held and t.account_id == self.account_id:
                    return t
                self.used += 1
            if self._next is None:
                self.done = True
            else:
                self.page_cursor, self.used, self._page = self._next, 0, None
        return None

    def take(self) -> None:
        self.used += 1


class MergedHistory:
    """The store's history merged with ``other``'s, de-duplicated by transaction id, newest first."""

    def __init__(self, store: StoreHistorySource, other: AccountSource) -> None:
        self.store = store
        self.other = other

    def history(self, account_id: str, *, from_date: dt.date | None = None, to_date: dt.date | None = None,
                limit: int = 50, cursor: str | None = None, timeout: float | None = None) -> Page[Transaction]:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        state: dict[str, Any] = {"s": None, "sd": False, "o": None, "n": 0, "od": False}
        if cursor is not None:
            value = _decode(MERGED_PREFIX, cursor)
            if not isinstance(value, dict) or set(value) != set(state):
                raise ValueError(FOREIGN)
            state = value
        kw = {"from_date": from_date, "to_date": to_date, "limit": limit, "timeout": timeout}
        other = _OtherStream(self.other, self.store, account_id, page_cursor=state["o"], used=int(state["n"]),
                             done=bool(state["od"]), kw=kw)
        after = (str(state["s"][0]), str(state["s"][1])) if state["s"] else None
        store_rows = ([] if state["sd"] else
                      self.store.rows(account_id, from_date=from_date, to_date=to_date, after=after, limit=limit + 1))
        mine: Iterator[dict[str, Any]] = iter(store_rows)
        head = next(mine, None)
        items: list[Transaction] = []
        last_store: list[str] | None = state["s"]
        while len(items) < limit:
            theirs = other.peek()
            ours = row_to_transaction(head) if head is not None else None
            if ours is None and theirs is None:
                break
            if theirs is None or (ours is not None and _sort_key(ours) >= _sort_key(theirs)):
                assert ours is not None and head is not None
                items.append(ours)
                last_store = [head["booked_at"], head["id"]]
                head = next(mine, None)
            else:
                items.append(theirs)
                other.take()
        # fetched limit + 1, used at most limit: no head left means the store has no more rows
        store_done = bool(state["sd"]) or head is None
        if store_done and other.peek() is None:
            return Page[Transaction](items=tuple(items), next_cursor=None)
        next_state = {"s": last_store, "sd": store_done, "o": other.page_cursor, "n": other.used, "od": other.done}
        return Page[Transaction](items=tuple(items), next_cursor=_encode(MERGED_PREFIX, next_state))


class BatchHistoryAccountSource:
    """The routed account source with ``history`` served by the read model (``replace``) or both (``merge``)."""

    def __init__(self, inner: AccountSource, store: BatchStore, mode: str) -> None:
        if mode not in ("replace", "merge"):
            raise ValueError(f"history mode must be replace or merge, not {mode!r}")
        self.inner = inner
        self.mode = mode
        self.store_history = StoreHistorySource(store)
        self._history: StoreHistorySource | MergedHistory = (
            self.store_history if mode == "replace" else MergedHistory(self.store_history, inner))

    def __getattr__(self, name: str) -> Any:  # snapshot() etc. of the routed source
        return getattr(self.inner, name)

    def accounts_of(self, customer_id: str, *, timeout: float | None = None) -> list[Account]:
        return self.inner.accounts_of(customer_id, timeout=timeout)

    def account(self, account_id: str, *, timeout: float | None = None) -> Account:
        return self.inner.account(account_id, timeout=timeout)

    def balance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        return self.inner.balance(account_id, timeout=timeout)

    def history(self, account_id: str, *, from_date: dt.date | None = None, to_date: dt.date | None = None,
                limit: int = 50, cursor: str | None = None, timeout: float | None = None) -> Page[Transaction]:
        return self._history.history(account_id, from_date=from_date, to_date=to_date, limit=limit, cursor=cursor,
                                     timeout=timeout)
