"""In-memory fakes of the core's ports: ``FakeCustomerSource``, ``FakeAccountSource``, ``FakeTransferGateway``.

They share one :class:`FakeCore` (customers, accounts with balances, transaction history, the transfer
log) holding canonical objects, and keep the real SOAP adapter's promises;
``tests/contract/test_ports_soap.py`` runs the same port tests against both, so they cannot drift apart:

* unknown ids are ``RecordNotFound``; so are ids no core record can have (empty, longer than the
  core's keys: customer 10, account 12 characters);
* ``accounts_of`` lists by account id; ``balance`` is as of the core's business date;
* ``history`` is newest first, ``limit`` 1..500 rows a page, filtered on the booking date; its cursor is
  the core's CONT-KEY (account id padded to 12 + the 9-digit sequence of the last row sent), present
  only when more rows remain; another account's cursor is a ``ValueError``;
* ``post`` applies the core's checks in the core's order (R010, R008, R005, R009, R001..R004, R005,
  R007, R006), logs every attempt under its reference and raises ``Rejected`` for a rejection; a
  posting books a debit and a credit (``transfer_out`` / ``transfer_in``) with running balances.
  References are **not** de-duplicated. A transfer the core's request format cannot carry (reference
  over 16, account over 12, memo over 40 characters) is ``ContractViolation``, nothing logged;
* ``inquire`` returns every attempt under a reference, oldest first; ``[]`` when there is none.

``fail_next(operation, error)`` makes the next call of a port method raise ``error`` (for tests of the
layers above: retries, breakers, reconciliation after ``outcome_unknown``). :meth:`FakeCore.demo`
builds a small core with the shapes the port tests need.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from decimal import Decimal

from adapters.errors import ContractViolation, CoreError, RecordNotFound, Rejected
from canonical import (
    Account,
    AccountStatus,
    Address,
    Balance,
    Customer,
    Money,
    Page,
    Transaction,
    Transfer,
    TransferStatus,
)

__all__ = ["FakeCore", "FakeCustomerSource", "FakeAccountSource", "FakeTransferGateway", "REASONS"]

BACKEND = "fake"
CUST_NO_WIDTH, ACCT_NO_WIDTH, XFER_REF_WIDTH, MEMO_WIDTH = 10, 12, 16, 40
MAX_ROWS = 500
CURRENCIES = {"USD", "EUR", "GBP", "CHF", "JPY"}  # what the core carries
REASONS = {
    "R001": "DEBIT ACCOUNT NOT FOUND",
    "R002": "CREDIT ACCOUNT NOT FOUND",
    "R003": "DEBIT ACCOUNT NOT OPEN",
    "R004": "CREDIT ACCOUNT NOT OPEN",
    "R005": "CURRENCY MISMATCH",
    "R006": "INSUFFICIENT FUNDS",
    "R007": "TRANSACTION LIMIT EXCEEDED",
    "R008": "INVALID AMOUNT",
    "R009": "SAME DEBIT AND CREDIT ACCOUNT",
    "R010": "INVALID TRANSACTION REFERENCE",
}
_CONT_KEY = re.compile(r"(?P<acct>.{12})(?P<seq>\d{9})")


def _key(value: str, width: int) -> str | None:
    if not isinstance(value, str):
        raise TypeError(f"expected a str key, got {type(value).__name__}")
    key = value.strip()
    return key if key and len(key) <= width and key.isprintable() else None


class FakeCore:
    """The fake core's state, shared by the three port fakes (``.customers``, ``.accounts``, ``.transfers``).

    One lock guards everything: safe to share between threads.
    """

    def __init__(self, *, business_date: dt.date = dt.date(2026, 11, 27), txn_limit: Decimal = Decimal("25000.00"),
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.business_date = business_date
        self.txn_limit = txn_limit
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.RLock()
        self._customers: dict[str, Customer] = {}
        self._accounts: dict[str, Account] = {}
        self._ledger: dict[str, Decimal] = {}
        self._hold: dict[str, Decimal] = {}
        self._history: dict[str, list[tuple[int, Transaction]]] = {}  # oldest first
        self._attempts: list[Transfer] = []
        self._failures: dict[str, list[CoreError]] = {}
        self.calls: list[tuple[str, str]] = []  # (port method, key) in call order
        self.customers = FakeCustomerSource(self)
        self.accounts = FakeAccountSource(self)
        self.transfers = FakeTransferGateway(self)

    # -- the core's side (for tests) -----------------------------------------------------------
    def add_customer(self, customer: Customer) -> Customer:
        with self._lock:
            self._customers[customer.id] = customer
        return customer

    def add_account(self, account: Account, *, ledger: Decimal | str = "0", hold: Decimal | str = "0") -> Account:
        with self._lock:
            if account.customer_id not in self._customers:
                raise ValueError(f"no customer {account.customer_id} for account {account.id}")
            self._accounts[account.id] = account
            self._ledger[account.id] = Money.of(Decimal(ledger), account.currency).amount
            self._hold[account.id] = Money.of(Decimal(hold), account.currency).amount
            self._history.setdefault(account.id, [])
        return account

    def book(self, account_id: str, amount: Decimal | str, *, at: dt.datetime, description: str = "",
             kind: str | None = None, channel: str | None = None, reference: str | None = None,
             counterparty: str | None = None) -> Transaction:
        """Book a signed amount on an account (its balance moves) and return the history row."""
        with self._lock:
            account = self._accounts[account_id]
            money = Money.of(Decimal(amount), account.currency)
            self._ledger[account_id] += money.amount
            rows = self._history[account_id]
            seq = (rows[-1][0] if rows else 0) + 1
            txn = Transaction(id=f"{account_id}-{seq}", account_id=account_id, booked_at=at, value_date=at.date(),
                              amount=money, description=description, reference=reference,
                              counterparty=counterparty, channel=channel, kind=kind,
                              running_balance=Money.of(self._ledger[account_id], account.currency))
            rows.append((seq, txn))
            return txn

    def fail_next(self, operation: str, error: CoreError) -> None:
        """The next call of port method ``operation`` (``balance``, ``post``, ...) raises ``error``."""
        with self._lock:
            self._failures.setdefault(operation, []).append(error)

    def attempts(self, reference: str | None = None) -> list[Transfer]:
        """The transfer log (every attempt), optionally for one reference."""
        with self._lock:
            return [t for t in self._attempts if reference is None or t.reference == reference]

    # -- shared by the port fakes ----------------------------------------------------------------
    def _enter(self, operation: str, key: str) -> None:
        self.calls.append((operation, key))
        queued = self._failures.get(operation)
        if queued:
            raise queued.pop(0)

    def _account(self, operation: str, account_id: str) -> Account:
        key = _key(account_id, ACCT_NO_WIDTH)
        account = self._accounts.get(key) if key is not None else None
        if account is None:
            raise RecordNotFound(f"no account {account_id[-4:]}", backend=BACKEND, operation=operation)
        return account

    def _now(self) -> dt.datetime:
        """The core stamps postings with its business date and the wall-clock time (UTC, whole seconds)."""
        t = self._clock().astimezone(dt.UTC).time().replace(microsecond=0)
        return dt.datetime.combine(self.business_date, t, tzinfo=dt.UTC)

    # -- a small core with the shapes the port tests need ---------------------------------------
    @classmethod
    def demo(cls) -> FakeCore:
        """Customer ``C0000003`` with two open USD accounts (plenty of history on the first) and a closed
        one; customer ``C0000004`` with a EUR account; a customer ``C0000009`` without accounts."""
        core = cls()
        addr = Address(line1="86 PARK AVE", city="CHICAGO", postal_code="60601", country="US")
        core.add_customer(Customer(id="C0000003", type="personal", status="active", last_name="WILLIAMS",
                                   first_name="SUSAN", birth_date=dt.date(1955, 6, 24), address=addr,
                                   email="susan.williams3@example.com", branch="1220",
                                   created_on=dt.date(2013, 10, 19)))
        core.add_customer(Customer(id="C0000004", type="business", status="active", last_name="VANDELAY IND",
                                   address=Address(line1="1 MAIN ST", city="ZURICH", country="CH")))
        core.add_customer(Customer(id="C0000009", type="personal", status="active", last_name="NOBODY",
                                   first_name="NO"))
        opened = dt.date(2019, 5, 18)
        core.add_account(Account(id="122000000036", customer_id="C0000003", status="open", product="current",
                                 currency="USD", title="SUSAN CHK1", opened_on=opened, branch="1220"),
                         ledger="60000.00")
        core.add_account(Account(id="122000000043", customer_id="C0000003", status="open", product="savings",
                                 currency="USD", title="SUSAN SAV1", opened_on=opened, branch="1220"),
                         ledger="3700.00", hold="50.00")
        core.add_account(Account(id="122000000050", customer_id="C0000003", status=AccountStatus.CLOSED,
                                 product="savings", currency="USD", opened_on=opened,
                                 closed_on=dt.date(2024, 1, 31)))
        core.add_account(Account(id="158000000055", customer_id="C0000004", status="open",
                                 product="business_current", currency="EUR", opened_on=opened), ledger="9000.00")
        start = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
        for i in range(12):
            at = start + dt.timedelta(days=2 * i, hours=i)
            if i % 3 == 0:
                core.book("122000000036", "2500.00", at=at, description="SALARY ACME", kind="salary", channel="batch")
            else:
                core.book("122000000036", f"-{10 + i}.99", at=at, description=f"POS SHOP {i}",
                          kind="card_purchase", channel="card")
        core.book("122000000043", "12.00", at=start, description="INTEREST", kind="interest", channel="system")
        return core


class FakeCustomerSource:
    """:class:`~adapters.ports.CustomerSource` over a :class:`FakeCore`."""

    def __init__(self, core: FakeCore) -> None:
        self._core = core

    def customer(self, customer_id: str, *, timeout: float | None = None) -> Customer:
        core = self._core
        with core._lock:
            core._enter("customer", customer_id)
            key = _key(customer_id, CUST_NO_WIDTH)
            found = core._customers.get(key) if key is not None else None
            if found is None:
                raise RecordNotFound("no such customer", backend=BACKEND, operation="customer")
            return found


class FakeAccountSource:
    """:class:`~adapters.ports.AccountSource` over a :class:`FakeCore`."""

    def __init__(self, core: FakeCore) -> None:
        self._core = core

    def accounts_of(self, customer_id: str, *, timeout: float | None = None) -> list[Account]:
        core = self._core
        with core._lock:
            core._enter("accounts_of", customer_id)
            key = _key(customer_id, CUST_NO_WIDTH)
            if key is None or key not in core._customers:
                raise RecordNotFound("no such customer", backend=BACKEND, operation="accounts_of")
            return sorted((a for a in core._accounts.values() if a.customer_id == key), key=lambda a: a.id)

    def account(self, account_id: str, *, timeout: float | None = None) -> Account:
        core = self._core
        with core._lock:
            core._enter("account", account_id)
            return core._account("account", account_id)

    def balance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        core = self._core
        with core._lock:
            core._enter("balance", account_id)
            account = core._account("balance", account_id)
            ledger = core._ledger[account.id]
            return Balance(account_id=account.id, ledger=Money.of(ledger, account.currency),
                           available=Money.of(ledger - core._hold[account.id], account.currency),
                           as_of=core.business_date)

    def history(self, account_id: str, *, from_date: dt.date | None = None, to_date: dt.date | None = None,
                limit: int = 50, cursor: str | None = None, timeout: float | None = None) -> Page[Transaction]:
        core = self._core
        with core._lock:
            core._enter("history", account_id)
            if not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
                raise ValueError(f"limit must be 1..{MAX_ROWS}, got {limit!r}")
            for day in (from_date, to_date):
                if day is not None and not 1900 <= day.year <= 2099:
                    raise ValueError(f"the core's dates cover 1900-2099, not {day.isoformat()}")
            key = _key(account_id, ACCT_NO_WIDTH)
            before = 10**10
            if cursor is not None:
                m = _CONT_KEY.fullmatch(cursor) if isinstance(cursor, str) else None
                if m is None or key is None or m.group("acct").rstrip() != key:
                    raise ValueError("cursor is not a continuation of this account's history")
                before = int(m.group("seq"))
            account = core._account("history", account_id)
            rows = [(seq, t) for seq, t in reversed(core._history[account.id])
                    if seq < before and (from_date is None or t.booked_at.date() >= from_date)
                    and (to_date is None or t.booked_at.date() <= to_date)]
            page = rows[:limit]
            more = len(rows) > limit
            next_cursor = f"{account.id.ljust(ACCT_NO_WIDTH)}{page[-1][0]:09d}" if more and page else None
            return Page[Transaction](items=tuple(t for _, t in page), next_cursor=next_cursor)


class FakeTransferGateway:
    """:class:`~adapters.ports.TransferGateway` over a :class:`FakeCore`."""

    def __init__(self, core: FakeCore) -> None:
        self._core = core

    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        core = self._core
        with core._lock:
            core._enter("post", transfer.reference)
            self._check_request(transfer)
            reason = self._validate(transfer)
            xfer_id = str(len(core._attempts) + 1)
            memo = (transfer.memo or "").strip() or None
            channel = transfer.channel or "mobile"
            base = dict(reference=transfer.reference.strip(), id=xfer_id, from_account=transfer.from_account.strip(),
                        to_account=transfer.to_account.strip(), amount=transfer.amount, memo=memo, channel=channel)
            if reason is not None:
                core._attempts.append(Transfer(**base, status=TransferStatus.REJECTED, reason_code=reason,
                                               reason=REASONS[reason]))
                raise Rejected(f"transfer {transfer.reference} rejected", reason_code=reason, reason=REASONS[reason],
                               backend=BACKEND, operation="post")
            now = core._now()
            src, dst = base["from_account"], base["to_account"]
            for acct, other, sign, kind, word in ((src, dst, -1, "transfer_out", "TO"),
                                                  (dst, src, 1, "transfer_in", "FROM")):
                text = (memo or f"TRANSFER {word} {other[-4:]}").upper()[:MEMO_WIDTH].strip()
                core.book(acct, sign * transfer.amount.amount, at=now, description=text, kind=kind,
                          channel=channel, reference=base["reference"], counterparty=other)
            posted = Transfer(**base, status=TransferStatus.POSTED, posted_at=now)
            core._attempts.append(posted)
            return posted

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        core = self._core
        with core._lock:
            core._enter("inquire", reference)
            key = _key(reference, XFER_REF_WIDTH)
            if key is None:
                return []
            return [t for t in core._attempts if t.reference == key]

    # the request format (mapping write): what cannot be sent at all
    @staticmethod
    def _check_request(t: Transfer) -> None:
        for name, value, width in (("reference", t.reference, XFER_REF_WIDTH),
                                   ("from_account", t.from_account, ACCT_NO_WIDTH),
                                   ("to_account", t.to_account, ACCT_NO_WIDTH), ("memo", t.memo or "", MEMO_WIDTH)):
            if len(value.strip()) > width:
                raise ContractViolation(f"{name} is longer than the core's {width} characters",
                                        backend=BACKEND, operation="post")
        if abs(t.amount.amount) >= Decimal("1E13"):
            raise ContractViolation("amount exceeds the core's 13 integer digits", backend=BACKEND, operation="post")

    # the core's checks, in the core's order
    def _validate(self, t: Transfer) -> str | None:
        core = self._core
        ref = t.reference.strip()
        if not ref or not ref.isprintable():
            return "R010"
        amount = t.amount.amount
        if amount <= 0:
            return "R008"
        if t.amount.currency not in CURRENCIES:
            return "R005"
        src_id, dst_id = t.from_account.strip(), t.to_account.strip()
        if src_id == dst_id:
            return "R009"
        src, dst = core._accounts.get(src_id), core._accounts.get(dst_id)
        if src is None:
            return "R001"
        if dst is None:
            return "R002"
        if src.status is not AccountStatus.OPEN:
            return "R003"
        if dst.status is not AccountStatus.OPEN:
            return "R004"
        if src.currency != t.amount.currency or dst.currency != t.amount.currency:
            return "R005"
        if amount > core.txn_limit:
            return "R007"
        if core._ledger[src_id] - core._hold[src_id] < amount:
            return "R006"
        return None
