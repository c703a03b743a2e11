"""``OdbcCore``: the core's DB2-style tables read over ODBC (pyodbc), as canonical objects.

Implements :class:`~adapters.ports.CustomerSource` and :class:`~adapters.ports.AccountSource`, plus
``inquire(reference)`` over the posting log: the ODBC face is a read replica, so it looks postings up
but never posts (:class:`TransferInquiry`).

* **Canonical out.** Every row goes through its mapping file (``mappings/odbc/*.yaml``:
  ``odbc.custmast``, ``odbc.acctmast``, ``odbc.acctmast_balance``, ``odbc.txnhist``,
  ``odbc.xferlog``), looked up in the registry per call so a reload takes effect at once. The
  drivers' value types differ (SQLite3 ODBC gives DECIMAL columns as ``str``, psqlODBC as
  ``Decimal``); the mappings take both, and never go through float.
* **Bound parameters only.** The SQL below is constant text with ``?`` markers. CHAR keys are padded
  to the column width when ``pad_keys`` is set (SQLite and DB2 compare CHAR exactly, blanks
  included; PostgreSQL's ``bpchar`` ignores trailing blanks, so padding is harmless there). Widths
  come from the DDL contract the mapping files are bound to.
* **History** is newest first with a keyset cursor: the cursor is the last ``TXN_SEQ`` served, the
  next page asks ``TXN_SEQ < cursor`` on the primary key ``(ACCT_NO, TXN_SEQ)``, so pages never
  overlap or skip rows even while postings arrive. Date filters are ``POST_DT`` bounds as CYYMMDD.
  One query per page with ``LIMIT page + 1`` (the extra row says whether there is a next page),
  read with ``fetchmany``.
* **Not found** is a business outcome (:class:`~adapters.errors.RecordNotFound`): an unknown
  customer, account or transfer reference; an account with no rows in the period is an empty page,
  and a customer without accounts an empty list (as on the SOAP face).
* **Connections** come from a bounded pool with a watchdog for timeouts
  (:mod:`adapters.odbc_pool`). ``timeout=`` (the resilience pipeline's attempt budget) caps the
  call: pool wait, connect and statement together never outlive ``min(query_timeout, timeout)``,
  except that a login timeout is whole seconds. A pooled connection found dead (the server
  restarted, a firewall dropped it) is replaced and the read tried once more on the new one.
* **Errors** are translated at one edge (:mod:`adapters.odbc_errors`); nothing of pyodbc's leaves.
  Logs carry at most the last four digits of an account number.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

import pyodbc

from adapters.errors import BackendTimeout, BackendUnavailable, RecordNotFound
from adapters.odbc_errors import BACKEND, CallState, translate
from adapters.odbc_pool import OdbcPool
from canonical import Account, Balance, Customer, Page, Transaction, Transfer

if TYPE_CHECKING:
    from mappings.engine import CompiledMapping

__all__ = [
    "HISTORY_CURSOR_MAX",
    "OdbcCore",
    "OdbcSettings",
    "TransferInquiry",
    "mask",
    "redact",
    "to_cyymmdd",
]

log = logging.getLogger("adapters.odbc")

T = TypeVar("T")
#: runs one statement with bound parameters on the call's connection and returns its cursor
Execute = Callable[[str, tuple[Any, ...]], Any]

# the mapping files, by name
M_CUSTOMER = "odbc.custmast"
M_ACCOUNT = "odbc.acctmast"
M_BALANCE = "odbc.acctmast_balance"
M_TRANSACTION = "odbc.txnhist"
M_TRANSFER = "odbc.xferlog"
MAPPINGS = (M_CUSTOMER, M_ACCOUNT, M_BALANCE, M_TRANSACTION, M_TRANSFER)

HISTORY_CURSOR_MAX = 999_999_999  # TXN_SEQ is DECIMAL(9,0)

# -- the SQL: constant text, bound parameters, every column named as the DDL contract names it --------
SQL_CUSTOMER = (
    "SELECT CUST_NO, CUST_TYPE, CUST_STAT, LAST_NAME, FIRST_NAME, BIRTH_DT, TAX_ID, EMAIL_ADDR, PHONE_NO,"
    " ADDR_LINE1, CITY, POST_CD, CNTRY_CD, BRANCH_CD, CREATE_DT FROM CUSTMAST WHERE CUST_NO = ?")
SQL_CUSTOMER_EXISTS = "SELECT CUST_NO FROM CUSTMAST WHERE CUST_NO = ?"
SQL_ACCOUNTS_OF = (
    "SELECT ACCT_NO, CUST_NO, PROD_CD, CURR_CD, ACCT_STAT, ACCT_TITLE, LEDGER_BAL, AVAIL_BAL, HOLD_AMT,"
    " OPEN_DT, CLOSE_DT, LAST_TXN_DT, LAST_SEQ, BRANCH_CD FROM ACCTMAST WHERE CUST_NO = ? ORDER BY ACCT_NO")
SQL_ACCOUNT = (
    "SELECT ACCT_NO, CUST_NO, PROD_CD, CURR_CD, ACCT_STAT, ACCT_TITLE, LEDGER_BAL, AVAIL_BAL, HOLD_AMT,"
    " OPEN_DT, CLOSE_DT, LAST_TXN_DT, LAST_SEQ, BRANCH_CD FROM ACCTMAST WHERE ACCT_NO = ?")
SQL_ACCOUNT_EXISTS = "SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_NO = ?"
# a balance is "as of" the core's business date (CTLREC BUSDATE; CTL_KEY is CHAR(8), padded here)
SQL_BALANCE = (
    "SELECT A.ACCT_NO, A.CURR_CD, A.LEDGER_BAL, A.AVAIL_BAL, A.HOLD_AMT, A.LAST_TXN_DT,"
    " C.CTL_VALUE AS AS_OF_DT FROM ACCTMAST A JOIN CTLREC C ON C.CTL_KEY = 'BUSDATE ' WHERE A.ACCT_NO = ?")
SQL_HISTORY = {
    # SQLite, PostgreSQL, DB2 for LUW 9.7+
    "limit": (
        "SELECT ACCT_NO, TXN_SEQ, POST_DT, POST_TM, VALUE_DT, TXN_CD, DR_CR_IND, TXN_AMT, RUN_BAL, CURR_CD,"
        " TXN_DESC, TXN_REF, CNTR_ACCT, CHANNEL, TXN_STAT FROM TXNHIST WHERE ACCT_NO = ? AND TXN_SEQ < ?"
        " AND POST_DT >= ? AND POST_DT <= ? ORDER BY TXN_SEQ DESC LIMIT ?"),
    # SQL:2008: DB2 for z/OS 12, PostgreSQL
    "fetch_first": (
        "SELECT ACCT_NO, TXN_SEQ, POST_DT, POST_TM, VALUE_DT, TXN_CD, DR_CR_IND, TXN_AMT, RUN_BAL, CURR_CD,"
        " TXN_DESC, TXN_REF, CNTR_ACCT, CHANNEL, TXN_STAT FROM TXNHIST WHERE ACCT_NO = ? AND TXN_SEQ < ?"
        " AND POST_DT >= ? AND POST_DT <= ? ORDER BY TXN_SEQ DESC FETCH FIRST ? ROWS ONLY"),
}
SQL_TRANSFERS = (
    "SELECT XFER_ID, XFER_REF, FROM_ACCT, TO_ACCT, XFER_AMT, CURR_CD, XFER_STAT, RTN_CD, RSN_CD, POST_DT,"
    " POST_TM, CHANNEL, MEMO FROM XFERLOG WHERE XFER_REF = ? ORDER BY XFER_ID")
#: every statement this adapter runs (a contract test checks their columns against the DDL)
STATEMENTS = (SQL_CUSTOMER, SQL_CUSTOMER_EXISTS, SQL_ACCOUNTS_OF, SQL_ACCOUNT, SQL_ACCOUNT_EXISTS, SQL_BALANCE,
              *SQL_HISTORY.values(), SQL_TRANSFERS)


@runtime_checkable
class TransferInquiry(Protocol):
    """The read half of :class:`~adapters.ports.TransferGateway`: look postings up, never post."""

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]: ...


_SECRET = re.compile(r"(?i)\b(pwd|password)=(\{(?:[^}]|\}\})*\}|[^;]*)")


def redact(connection_string: str) -> str:
    """The connection string with its password replaced by ``***`` (for logs and errors)."""
    return _SECRET.sub(lambda m: f"{m.group(1)}=***", connection_string)


def mask(value: str | None) -> str:
    """An account number (or any key) for a log line: at most its last four characters."""
    text = (value or "").strip()
    return "****" + text[-4:] if len(text) > 4 else "****"


def to_cyymmdd(d: dt.date) -> int:
    """2026-11-27 -> 1261127 (C = 0 for 19xx, 1 for 20xx)."""
    if not 1900 <= d.year <= 2899:
        raise ValueError(f"{d} cannot be written as CYYMMDD")
    return (d.year - 1900) * 10_000 + d.month * 100 + d.day


@dataclass(frozen=True, kw_only=True)
class OdbcSettings:
    """How to reach the core's tables. ``connection_string`` is left out of ``repr`` (it may carry a
    password); :func:`redact` shows it safely.

    * ``pool_size``: connections at most (one per concurrent call).
    * ``login_timeout``: seconds to log in (the ODBC attribute is whole seconds).
    * ``query_timeout``: the longest a call may take, pool wait and fetching included; ``timeout=``
      on a call lowers it for that call.
    * ``checkout_timeout``: the longest a call waits for a free connection before ``BulkheadFull``.
    * ``fetch_batch``: rows per ``fetchmany``.
    * ``pad_keys``: blank-pad CHAR keys to the column width (SQLite and DB2 CHAR semantics).
    * ``max_idle``: close an idle connection older than this instead of reusing it (None: never).
    * ``limit_syntax``: ``"limit"`` (``LIMIT ?``) or ``"fetch_first"`` (``FETCH FIRST ? ROWS ONLY``).
    * ``native_rows``: map rows with the mapping's C row program where the extension is built
      (:mod:`mappings.engine.native`: the same objects, about twice as fast); False: the generated Python.
    * ``statement_cache``: prepared statements kept per connection (:mod:`adapters.odbc_pool`); 0: a new
      cursor, prepared again, for every statement.
    """

    connection_string: str = field(repr=False)
    pool_size: int = 4
    login_timeout: float = 5.0
    query_timeout: float = 10.0
    checkout_timeout: float = 2.0
    fetch_batch: int = 1000
    pad_keys: bool = True
    max_idle: float | None = 300.0
    limit_syntax: Literal["limit", "fetch_first"] = "limit"
    native_rows: bool = True
    statement_cache: int = 16

    def __post_init__(self) -> None:
        compact = (self.connection_string or "").lower().replace(" ", "")
        if "driver=" not in compact and "dsn=" not in compact:
            raise ValueError("OdbcSettings.connection_string must name a DRIVER= or a DSN=")
        if self.pool_size < 1:
            raise ValueError("OdbcSettings.pool_size must be >= 1")
        if self.fetch_batch < 1:
            raise ValueError("OdbcSettings.fetch_batch must be >= 1")
        if self.statement_cache < 0:
            raise ValueError("OdbcSettings.statement_cache must be >= 0")
        for name in ("login_timeout", "query_timeout", "checkout_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"OdbcSettings.{name} must be > 0 seconds, got {getattr(self, name)!r}")
        if self.max_idle is not None and self.max_idle <= 0:
            raise ValueError("OdbcSettings.max_idle must be > 0 or None")
        if self.limit_syntax not in SQL_HISTORY:
            raise ValueError(f"OdbcSettings.limit_syntax must be one of {sorted(SQL_HISTORY)}")


class _Widths:
    """CHAR widths of the key columns, read from the DDL contract the mapping files are bound to."""

    def __init__(self, registry: Mapping[str, CompiledMapping]) -> None:
        def width(mapping: str, column: str) -> int:
            root = registry[mapping].binding.root
            info = root.fields.get(column) if root is not None else None
            if info is None or not info.width:
                raise ValueError(f"{mapping}: the DDL contract gives no CHAR width for {column}")
            return int(info.width)

        self.cust_no = width(M_CUSTOMER, "CUST_NO")
        self.acct_no = width(M_ACCOUNT, "ACCT_NO")
        self.xfer_ref = width(M_TRANSFER, "XFER_REF")


class OdbcCore:
    """The ODBC face of the core as ``CustomerSource`` + ``AccountSource`` + ``TransferInquiry``.

    Construction checks the settings and that the registry has the five mapping files; it does not
    connect (the first call does). Share one instance between threads; ``close()`` at shutdown.
    """

    backend = BACKEND

    def __init__(self, settings: OdbcSettings, registry: Mapping[str, CompiledMapping], *,
                 connect: Callable[..., Any] = pyodbc.connect) -> None:
        missing = [name for name in MAPPINGS if name not in registry]
        if missing:
            raise ValueError(f"the mapping registry lacks {', '.join(missing)}")
        self.settings = settings
        self.registry = registry
        self._widths = _Widths(registry)
        self._sql_history = SQL_HISTORY[settings.limit_syntax]
        self.pool = OdbcPool(settings.connection_string, size=settings.pool_size,
                             login_timeout=settings.login_timeout, query_timeout=settings.query_timeout,
                             checkout_timeout=settings.checkout_timeout, max_idle=settings.max_idle,
                             statement_cache=settings.statement_cache, connect=connect)

    def __repr__(self) -> str:
        return f"OdbcCore({redact(self.settings.connection_string)!r}, pool_size={self.settings.pool_size})"

    # -- CustomerSource ----------------------------------------------------------------------------
    def customer(self, customer_id: str, *, timeout: float | None = None) -> Customer:
        key = self._key(customer_id, self._widths.cust_no)
        row = self._run("customer", timeout, lambda execute: _one(execute, SQL_CUSTOMER, (key,)))
        if row is None:
            raise RecordNotFound("no such customer", backend=BACKEND, operation="customer")
        return self._map("customer", M_CUSTOMER, row)

    # -- AccountSource -----------------------------------------------------------------------------
    def accounts_of(self, customer_id: str, *, timeout: float | None = None) -> list[Account]:
        key = self._key(customer_id, self._widths.cust_no)

        def body(execute: Execute) -> _Rows | None:
            found = _all(execute, SQL_ACCOUNTS_OF, (key,), self.settings.fetch_batch)
            if not found.rows and _one(execute, SQL_CUSTOMER_EXISTS, (key,)) is None:
                return None
            return found

        found = self._run("accounts_of", timeout, body)
        if found is None:
            raise RecordNotFound("no such customer", backend=BACKEND, operation="accounts_of")
        return self._map_many("accounts_of", M_ACCOUNT, found)

    def account(self, account_id: str, *, timeout: float | None = None) -> Account:
        key = self._key(account_id, self._widths.acct_no)
        row = self._run("account", timeout, lambda execute: _one(execute, SQL_ACCOUNT, (key,)))
        if row is None:
            raise RecordNotFound(f"no account {mask(account_id)}", backend=BACKEND, operation="account")
        return self._map("account", M_ACCOUNT, row)

    def balance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        key = self._key(account_id, self._widths.acct_no)
        row = self._run("balance", timeout, lambda execute: _one(execute, SQL_BALANCE, (key,)))
        if row is None:
            raise RecordNotFound(f"no account {mask(account_id)}", backend=BACKEND, operation="balance")
        return self._map("balance", M_BALANCE, row)

    def history(self, account_id: str, *, from_date: dt.date | None = None, to_date: dt.date | None = None,
                limit: int = 50, cursor: str | None = None,
                timeout: float | None = None) -> Page[Transaction]:
        """Newest first, ``limit`` rows a page; ``cursor`` is the ``next_cursor`` of the page before."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        before = _parse_cursor(cursor)
        low = to_cyymmdd(from_date) if from_date is not None else 0
        high = to_cyymmdd(to_date) if to_date is not None else 9_999_999
        key = self._key(account_id, self._widths.acct_no)
        batch = min(self.settings.fetch_batch, limit + 1)

        def body(execute: Execute) -> _Rows | None:
            found = _all(execute, self._sql_history, (key, before, low, high, limit + 1), batch)
            if not found.rows and _one(execute, SQL_ACCOUNT_EXISTS, (key,)) is None:
                return None
            return found

        found = self._run("history", timeout, body)
        if found is None:
            raise RecordNotFound(f"no account {mask(account_id)}", backend=BACKEND, operation="history")
        rows = found.rows
        more = len(rows) > limit
        if more:
            del rows[limit:]
        items = self._map_many("history", M_TRANSACTION, found)
        next_cursor = str(int(rows[-1][found.columns.index("TXN_SEQ")])) if more else None
        return _history_page(tuple(items), next_cursor)

    # -- TransferInquiry ---------------------------------------------------------------------------
    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        """Every posting attempt under ``reference``, oldest first; none: ``RecordNotFound``."""
        key = self._key(reference, self._widths.xfer_ref)
        batch = self.settings.fetch_batch
        found = self._run("inquire", timeout, lambda execute: _all(execute, SQL_TRANSFERS, (key,), batch))
        if not found.rows:
            raise RecordNotFound("no posting under this reference", backend=BACKEND, operation="inquire")
        return self._map_many("inquire", M_TRANSFER, found)

    # -- lifecycle and state -----------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """The pool's numbers (connections open, idle, in use; opened, discarded, cancelled, ...)."""
        return self.pool.stats()

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> OdbcCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the edge ----------------------------------------------------------------------------------
    def _key(self, value: str, width: int) -> str:
        if not isinstance(value, str):
            raise TypeError(f"keys are text, not {type(value).__name__}")
        return value.ljust(width) if self.settings.pad_keys else value

    def _run(self, operation: str, timeout: float | None, body: Callable[[Execute], T]) -> T:
        """Run ``body(execute)`` on a pooled connection within the call's time; every error translated.
        ``execute(sql, params)`` runs a statement with bound parameters and returns its cursor (the
        pool's kept cursor for that SQL, already prepared, where there is one).

        A reused connection that turns out dead (connection lost) is replaced and ``body`` run once
        more on a newly opened one: every call here is a read.
        """
        budget = self.settings.query_timeout if timeout is None else min(self.settings.query_timeout, timeout)
        deadline = time.monotonic() + budget
        for attempt in (1, 2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BackendTimeout(f"no time left of {budget:.3f} s", backend=BACKEND, operation=operation)
            pc = self.pool.checkout(operation, remaining, fresh=attempt == 2)
            state = CallState(timeout=budget)
            reused = pc.reused
            try:
                with translate(operation, state):
                    self.pool.arm(pc, deadline)
                    ok = False
                    try:
                        result = body(partial(self.pool.execute, pc))
                        ok = True
                    finally:
                        self.pool.finish(pc, keep=ok)
                        self.pool.disarm(pc, state)
                    return result
            except BackendUnavailable as exc:
                if attempt == 1 and reused and state.broken and not state.timed_out:
                    log.warning("odbc %s: a pooled connection was dead (%s); retrying on a new one",
                                operation, type(exc.__cause__).__name__)
                    continue
                raise
            finally:
                self.pool.release(pc, broken=state.broken)
        raise AssertionError("unreachable")  # pragma: no cover

    def _map(self, operation: str, name: str, row: dict[str, Any]) -> Any:
        with translate(operation):
            return self.registry[name].read(row)

    def _map_many(self, operation: str, name: str, found: _Rows) -> list[Any]:
        with translate(operation):
            # the rows as the driver gave them, read by column position: no dict per row
            return self.registry[name].row_reader(found.columns, native=self.settings.native_rows)(found.rows)


_HISTORY_PAGE = Page[Transaction]
_JUST_TRANSACTION = frozenset({Transaction})


def _history_page(items: tuple[Any, ...], next_cursor: str | None) -> Page[Transaction]:
    """``Page[Transaction](items=..., next_cursor=...)``, without a second pydantic round over items the
    mapping has just built: pydantic keeps exact ``Transaction`` instances as they are, so for those
    (and a text or no cursor) the validated page and the constructed one are the same object."""
    if (next_cursor is None or type(next_cursor) is str) and _JUST_TRANSACTION.issuperset(map(type, items)):
        return _HISTORY_PAGE.model_construct(items=items, next_cursor=next_cursor)
    return _HISTORY_PAGE(items=items, next_cursor=next_cursor)


def _parse_cursor(cursor: str | None) -> int:
    if cursor is None:
        return HISTORY_CURSOR_MAX + 1
    if not (isinstance(cursor, str) and cursor.isascii() and cursor.isdigit()
            and 1 <= int(cursor) <= HISTORY_CURSOR_MAX + 1):
        raise ValueError("not a history cursor of this adapter")
    return int(cursor)


def _one(execute: Execute, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    cur = execute(sql, params)
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0].upper() for d in cur.description], row, strict=True))


class _Rows(NamedTuple):
    """A statement's column names and its rows as the driver gave them (``pyodbc.Row``)."""

    columns: list[str]
    rows: list[Any]


def _all(execute: Execute, sql: str, params: tuple[Any, ...], batch: int) -> _Rows:
    cur = execute(sql, params)
    cols = [d[0].upper() for d in cur.description]
    out: list[Any] = []
    fetch = cur.fetchmany
    while rows := fetch(batch):
        out.extend(rows)
    return _Rows(cols, out)


