"""The ports' promises, written once and run against the SOAP adapter + the core (the in-process mock by
default, a bank's test core by ``COREBRIDGE_CONTRACT_*``) *and* against the hand-written fakes
(``tests/fakes/core.py``), so that the fakes the layers above test with behave like the real thing.

Each side names its test data through the ports themselves (a customer with two open accounts in one
currency, the poorer one the payee), so the tests hold for any core with such a customer. Tests that
post transfers use references unique to the run and need ``allow_writes``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest

from adapters.errors import ContractViolation, RecordNotFound, Rejected
from adapters.ports import AccountSource, CustomerSource, TransferGateway
from adapters.soap import SoapCore, SoapSettings
from canonical import Account, Balance, Customer, Money, Transaction, Transfer, TransferStatus
from mappings.engine import MappingRegistry
from tests.fakes.core import FakeCore

pytestmark = pytest.mark.contract

UNKNOWN_ACCOUNT = "999999999999"


@dataclass
class Side:
    name: str
    customers: CustomerSource
    accounts: AccountSource
    transfers: TransferGateway
    customer_id: str
    payer: Account  # open, same currency as payee, the richer of the two
    payee: Account
    foreign: Account | None  # an open account in another currency (for R005), if the core has one
    writes: bool


def pick(customers: CustomerSource, accounts: AccountSource, transfers: TransferGateway, name: str,
         customer_id: str, foreign_id: str | None, writes: bool) -> Side:
    listed = accounts.accounts_of(customer_id)
    by_ccy: dict[str, list[Account]] = {}
    for a in listed:
        if a.status == "open":
            by_ccy.setdefault(a.currency, []).append(a)
    pairs = [v for v in by_ccy.values() if len(v) >= 2]
    if not pairs:
        pytest.skip(f"customer {customer_id} has no two open accounts in one currency")
    pair = sorted(pairs[0], key=lambda a: accounts.balance(a.id).available.amount, reverse=True)[:2]
    foreign = accounts.account(foreign_id) if foreign_id else next(
        (a for a in listed if a.status == "open" and a.currency != pair[0].currency), None)
    return Side(name, customers, accounts, transfers, customer_id, pair[0], pair[1], foreign, writes)


def _mock_customer_with_pair(mock) -> tuple[str, str]:
    """A customer of the mock with two open accounts in one currency, and an open account in another."""
    row = mock.ledger.query(
        "SELECT CUST_NO, CURR_CD FROM ACCTMAST WHERE ACCT_STAT = 'A' GROUP BY CUST_NO, CURR_CD "
        "HAVING COUNT(*) >= 2 ORDER BY CUST_NO LIMIT 1")[0]
    other = mock.ledger.query("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD <> ? "
                              "ORDER BY ACCT_NO LIMIT 1", (row["CURR_CD"],))[0]
    return row["CUST_NO"].strip(), other["ACCT_NO"].strip()


@pytest.fixture(scope="module")
def soap_adapter(core):
    settings = SoapSettings(endpoint=core.soap_url, username=core.soap_user, password=core.soap_password,
                            connect_timeout=3, read_timeout=10)
    with SoapCore(settings, MappingRegistry.load()) as adapter:
        yield adapter


@pytest.fixture(params=["soap+core", "fake"])
def side(request) -> Side:
    if request.param == "fake":
        fake = FakeCore.demo()
        return pick(fake.customers, fake.accounts, fake.transfers, "fake", "C0000003", "158000000055", True)
    core, mock = request.getfixturevalue("core"), request.getfixturevalue("mock")
    adapter = request.getfixturevalue("soap_adapter")
    if mock is not None:
        customer_id, foreign_id = _mock_customer_with_pair(mock)
    else:
        customer_id, foreign_id = core.customer_id, None
    return pick(adapter, adapter, adapter, "soap", customer_id, foreign_id, core.allow_writes)


def new_ref() -> str:
    return "P" + uuid.uuid4().hex[:15].upper()


def needs_writes(side: Side) -> None:
    if not side.writes:
        pytest.skip("posting transfers is not allowed against this core (COREBRIDGE_CONTRACT_ALLOW_WRITES)")


def transfer(side: Side, amount: str | Decimal, *, ref: str | None = None, src: Account | None = None,
             dst: Account | str | None = None, memo: str | None = "PORT TEST", currency: str | None = None) -> Transfer:
    src = src or side.payer
    dst = dst or side.payee
    return Transfer(reference=ref or new_ref(), from_account=src.id,
                    to_account=dst if isinstance(dst, str) else dst.id,
                    amount=Money.of(Decimal(amount), currency or src.currency), memo=memo)


# -- reads ------------------------------------------------------------------------------------------

def test_every_port_is_implemented(side):
    assert isinstance(side.customers, CustomerSource)
    assert isinstance(side.accounts, AccountSource)
    assert isinstance(side.transfers, TransferGateway)


def test_customer_by_id(side):
    customer = side.customers.customer(side.customer_id)
    assert isinstance(customer, Customer) and customer.id == side.customer_id
    assert customer.last_name


@pytest.mark.parametrize("call", [
    lambda s: s.customers.customer("C9999999"),
    lambda s: s.customers.customer("C" * 11),  # longer than any customer number
    lambda s: s.customers.customer("   "),
    lambda s: s.accounts.accounts_of("C9999999"),
    lambda s: s.accounts.account(UNKNOWN_ACCOUNT),
    lambda s: s.accounts.account("1" * 13),
    lambda s: s.accounts.balance(UNKNOWN_ACCOUNT),
    lambda s: s.accounts.history(UNKNOWN_ACCOUNT),
], ids=["customer", "customer-too-long", "customer-blank", "accounts_of", "account", "account-too-long",
        "balance", "history"])
def test_unknown_or_impossible_ids_are_record_not_found(side, call):
    with pytest.raises(RecordNotFound) as err:
        call(side)
    assert err.value.outcome_unknown is False


def test_accounts_of_lists_the_customers_accounts_by_id(side):
    listed = side.accounts.accounts_of(side.customer_id)
    assert listed and all(isinstance(a, Account) and a.customer_id == side.customer_id for a in listed)
    assert [a.id for a in listed] == sorted(a.id for a in listed)
    assert {side.payer.id, side.payee.id} <= {a.id for a in listed}
    for a in listed:
        assert side.accounts.account(a.id) == a


def test_balance_belongs_to_the_account(side):
    for account in (side.payer, side.payee):
        balance = side.accounts.balance(account.id)
        assert isinstance(balance, Balance) and balance.account_id == account.id
        assert balance.ledger.currency == balance.available.currency == account.currency
        assert balance.available.amount <= balance.ledger.amount  # available = ledger - holds
        assert not balance.stale


def test_history_pages_newest_first_through_the_cursor(side):
    acct = side.payer.id
    first = side.accounts.history(acct, limit=2)
    assert len(first.items) == 2 and first.next_cursor
    second = side.accounts.history(acct, limit=2, cursor=first.next_cursor)
    assert len(second.items) == 2
    both = side.accounts.history(acct, limit=4)
    assert list(first.items + second.items) == list(both.items)
    assert len({t.id for t in both.items}) == 4
    assert all(isinstance(t, Transaction) and t.account_id == acct for t in both.items)
    stamps = [t.booked_at for t in both.items]
    assert stamps == sorted(stamps, reverse=True)


def test_history_ends_without_a_cursor(side):
    cursor, seen, pages = None, [], 0
    while True:
        page = side.accounts.history(side.payee.id, limit=500, cursor=cursor)
        seen.extend(t.id for t in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None or pages == 20:
            break
    assert cursor is None and len(seen) == len(set(seen))


def test_history_filters_on_the_booking_date(side):
    items = side.accounts.history(side.payer.id, limit=20).items
    day = items[-1].booked_at.date()
    page = side.accounts.history(side.payer.id, from_date=day, to_date=day, limit=500)
    assert page.items and all(t.booked_at.date() == day for t in page.items)
    assert {t.id for t in items if t.booked_at.date() == day} <= {t.id for t in page.items}
    assert side.accounts.history(side.payer.id, from_date=dt.date(1990, 1, 1), to_date=dt.date(1990, 1, 2)).items == ()


def test_history_refuses_foreign_cursors_and_bad_limits(side):
    cursor = side.accounts.history(side.payer.id, limit=1).next_cursor
    with pytest.raises(ValueError, match="cursor"):
        side.accounts.history(side.payee.id, limit=1, cursor=cursor)
    with pytest.raises(ValueError, match="cursor"):
        side.accounts.history(side.payer.id, cursor="not-a-cursor")
    for limit in (0, 501):
        with pytest.raises(ValueError, match="limit"):
            side.accounts.history(side.payer.id, limit=limit)


def test_inquire_without_attempts_is_empty(side):
    assert side.transfers.inquire(new_ref()) == []
    assert side.transfers.inquire("X" * 17) == []  # longer than any reference the core holds


# -- writes -----------------------------------------------------------------------------------------

def test_post_then_inquire_by_reference(side):
    needs_writes(side)
    before = side.accounts.balance(side.payer.id)
    sent = transfer(side, "1.25")
    posted = side.transfers.post(sent)
    assert posted.status is TransferStatus.POSTED and posted.id and posted.posted_at is not None
    assert posted.model_dump(include={"reference", "from_account", "to_account", "amount", "memo"}) == \
        sent.model_dump(include={"reference", "from_account", "to_account", "amount", "memo"})
    assert posted.channel == "mobile"  # the core's default channel
    assert side.transfers.inquire(sent.reference) == [posted]
    after = side.accounts.balance(side.payer.id)
    assert after.available.amount == before.available.amount - Decimal("1.25")
    [out] = side.accounts.history(side.payer.id, limit=1).items
    assert (out.reference, out.amount, out.counterparty, out.kind) == (
        sent.reference, -sent.amount, side.payee.id, "transfer_out")
    [inn] = side.accounts.history(side.payee.id, limit=1).items
    assert (inn.reference, inn.amount, inn.kind) == (sent.reference, sent.amount, "transfer_in")


def test_a_reused_reference_posts_twice(side):
    needs_writes(side)
    ref = new_ref()
    first = side.transfers.post(transfer(side, "1.00", ref=ref))
    second = side.transfers.post(transfer(side, "1.00", ref=ref))
    assert first.id != second.id
    attempts = side.transfers.inquire(ref)
    assert [a.id for a in attempts] == [first.id, second.id]
    assert all(a.status is TransferStatus.POSTED for a in attempts)


def test_insufficient_funds_is_rejected_and_logged(side):
    needs_writes(side)
    available = side.accounts.balance(side.payee.id).available.amount
    sent = transfer(side, available + 1, src=side.payee, dst=side.payer)
    with pytest.raises(Rejected) as err:
        side.transfers.post(sent)
    assert (err.value.reason_code, err.value.reason) == ("R006", "INSUFFICIENT FUNDS")
    assert err.value.outcome_unknown is False
    [attempt] = side.transfers.inquire(sent.reference)
    assert (attempt.status, attempt.reason_code, attempt.reason) == (TransferStatus.REJECTED, "R006",
                                                                     "INSUFFICIENT FUNDS")
    assert attempt.posted_at is None and attempt.amount == sent.amount
    assert side.accounts.balance(side.payee.id).available.amount == available


@pytest.mark.parametrize("case,code", [("same-account", "R009"), ("unknown-payee", "R002"),
                                       ("unknown-payer", "R001"), ("zero", "R008"), ("currency", "R005")])
def test_core_rejections_carry_their_reason_code(side, case, code):
    needs_writes(side)
    if case == "same-account":
        sent = transfer(side, "1.00", dst=side.payer)
    elif case == "unknown-payee":
        sent = transfer(side, "1.00", dst=UNKNOWN_ACCOUNT)
    elif case == "unknown-payer":
        sent = transfer(side, "1.00").model_copy(update={"from_account": UNKNOWN_ACCOUNT})
    elif case == "zero":
        sent = transfer(side, "0")
    else:
        if side.foreign is None:
            pytest.skip("no open account in another currency")
        sent = transfer(side, "1.00", dst=side.foreign)
    with pytest.raises(Rejected) as err:
        side.transfers.post(sent)
    assert err.value.reason_code == code
    assert [a.reason_code for a in side.transfers.inquire(sent.reference)] == [code]


def test_a_transfer_the_request_cannot_carry_is_refused_unsent(side):
    needs_writes(side)
    long_ref = new_ref() + "X"  # 17 characters: XFER-REF holds 16
    with pytest.raises(ContractViolation) as err:
        side.transfers.post(transfer(side, "1.00", ref=long_ref))
    assert err.value.outcome_unknown is False
    assert side.transfers.inquire(long_ref[:16]) == []
    with pytest.raises(ContractViolation):
        side.transfers.post(transfer(side, "1.00", memo="M" * 41))
