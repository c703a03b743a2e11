"""The resilient wrappers (one pipeline around any port) and routing with a stale balance fallback,
against small hand-written fakes of the ports (no patching of our own code)."""

from __future__ import annotations

import datetime as dt
import logging
import random
from decimal import Decimal

import pytest

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    ContractViolation,
    CoreError,
    RecordNotFound,
    Rejected,
)
from adapters.ports import AccountSource, CustomerSource, TransferGateway
from adapters.resilience import BreakerConfig, ManualClock, Pipeline, ResilienceConfig
from adapters.resilient import (
    ResilientAccountSource,
    ResilientCustomerSource,
    ResilientTransferGateway,
    ResilientTransferInquiry,
)
from adapters.routing import RoutedAccountSource, RoutedCustomerSource, RoutingSettings
from canonical import Account, Balance, Customer, Money, Page, Transaction, Transfer

ACCT = "110000000543"
BUSINESS_DATE = dt.date(2026, 11, 27)


# -- fakes --------------------------------------------------------------------------------------------
class FakeCore:
    """Every read port plus post/inquire. ``fail[operation]`` is a list of errors raised by the next
    calls of that operation (one each); ``calls`` and ``timeouts`` record what came in."""

    def __init__(self, name: str, *, as_of: dt.date = BUSINESS_DATE) -> None:
        self.name = name
        self.as_of = as_of
        self.fail: dict[str, list[BaseException]] = {}
        self.calls: list[tuple[str, tuple]] = []
        self.timeouts: list[float | None] = []

    def _enter(self, operation: str, args: tuple, timeout: float | None) -> None:
        self.calls.append((operation, args))
        self.timeouts.append(timeout)
        pending = self.fail.get(operation)
        if pending:
            raise pending.pop(0)

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def customer(self, customer_id, *, timeout=None):
        self._enter("customer", (customer_id,), timeout)
        return Customer(id=customer_id, type="personal", status="active", last_name=self.name.upper())

    def accounts_of(self, customer_id, *, timeout=None):
        self._enter("accounts_of", (customer_id,), timeout)
        return [self._account(ACCT, customer_id)]

    def account(self, account_id, *, timeout=None):
        self._enter("account", (account_id,), timeout)
        return self._account(account_id, "C0000001")

    def _account(self, account_id, customer_id):
        return Account(id=account_id, customer_id=customer_id, status="open", product="current", currency="EUR",
                       title=self.name, opened_on=dt.date(2020, 1, 1))

    def balance(self, account_id, *, timeout=None):
        self._enter("balance", (account_id,), timeout)
        amount = Money.of(Decimal("100.00") if self.name == "soap" else Decimal("99.00"), "EUR")
        return Balance(account_id=account_id, ledger=amount, available=amount, as_of=self.as_of)

    def history(self, account_id, *, from_date=None, to_date=None, limit=50, cursor=None, timeout=None):
        self._enter("history", (account_id, from_date, to_date, limit, cursor), timeout)
        start = int(cursor) if cursor else 10
        items = tuple(
            Transaction(id=f"{account_id}-{seq}", account_id=account_id,
                        booked_at=dt.datetime(2026, 11, 27, tzinfo=dt.UTC), value_date=BUSINESS_DATE,
                        amount=Money.of(Decimal("-1.00"), "EUR"), description=self.name)
            for seq in range(start - 1, max(start - 1 - limit, 0), -1))
        last = start - len(items)
        return Page[Transaction](items=items, next_cursor=str(last) if last > 1 else None)

    def post(self, transfer, *, timeout=None):
        self._enter("post", (transfer.reference,), timeout)
        return transfer.model_copy(update={"status": "posted", "id": "1"})

    def inquire(self, reference, *, timeout=None):
        self._enter("inquire", (reference,), timeout)
        return []


def pipeline(backend: str = "soap", clock: ManualClock | None = None, **overrides) -> Pipeline:
    cfg = {"max_attempts": 3, "attempt_timeout": 2.0, "total_deadline": 10.0, "backoff_base": 0.01,
           "breaker": BreakerConfig(sliding_window_size=4, minimum_number_of_calls=4, wait_duration_in_open=30.0)}
    cfg.update(overrides)
    return Pipeline(backend, ResilienceConfig(**cfg), operation_class="read", clock=clock or ManualClock(),
                    rng=random.Random(3))


def transfer() -> Transfer:
    return Transfer(reference="MOB-1", from_account=ACCT, to_account="159000000016",
                    amount=Money.of(Decimal("9.99"), "EUR"))


READS = {
    "customer": lambda s: s.customer("C0000001"),
    "accounts_of": lambda s: s.accounts_of("C0000001"),
    "account": lambda s: s.account(ACCT),
    "balance": lambda s: s.balance(ACCT),
    "history": lambda s: s.history(ACCT, limit=3),
    "inquire": lambda s: s.inquire("MOB-1"),
}


def wrap(fake: FakeCore, p: Pipeline, operation: str):
    if operation == "customer":
        return ResilientCustomerSource(fake, p)
    if operation == "inquire":
        return ResilientTransferInquiry(fake, p)
    return ResilientAccountSource(fake, p)


# -- the resilient wrappers ---------------------------------------------------------------------------
def test_the_wrappers_implement_the_ports():
    p, fake = pipeline(), FakeCore("soap")
    assert isinstance(ResilientCustomerSource(fake, p), CustomerSource)
    assert isinstance(ResilientAccountSource(fake, p), AccountSource)
    assert isinstance(ResilientTransferGateway(fake, p), TransferGateway)


@pytest.mark.parametrize("operation", list(READS))
@pytest.mark.parametrize("error", [BackendTimeout, BackendUnavailable])
def test_reads_are_retried_on_transient_errors(operation, error):
    fake = FakeCore("soap")
    fake.fail[operation] = [error("first attempt lost")]
    p = pipeline()
    result = READS[operation](wrap(fake, p, operation))
    assert fake.count(operation) == 2
    assert result is not None
    snap = p.snapshot()
    assert (snap["calls"], snap["attempts"], snap["retries"]) == (1, 2, 1)


@pytest.mark.parametrize("error", [RecordNotFound("no such account"), Rejected(reason_code="R006"),
                                   BackendFault("fault"), ContractViolation("bad row")])
def test_reads_are_not_retried_on_answers(error):
    fake = FakeCore("soap")
    fake.fail["balance"] = [error]
    with pytest.raises(type(error)):
        ResilientAccountSource(fake, pipeline()).balance(ACCT)
    assert fake.count("balance") == 1


@pytest.mark.parametrize("error", [BackendTimeout("no answer", outcome_unknown=True),
                                   BackendUnavailable("reset after send", outcome_unknown=True)])
def test_post_is_never_resent(error):
    fake = FakeCore("soap")
    fake.fail["post"] = [error]
    gateway = ResilientTransferGateway(fake, pipeline())
    with pytest.raises(type(error)) as info:
        gateway.post(transfer())
    assert fake.count("post") == 1
    assert info.value.outcome_unknown and info.value.operation == "post" and info.value.backend == "soap"
    # the caller reconciles with inquire, which is a read and is retried
    fake.fail["inquire"] = [BackendTimeout()]
    assert gateway.inquire("MOB-1") == []
    assert fake.count("inquire") == 2


def test_post_and_inquire_can_run_under_different_pipelines():
    fake = FakeCore("soap")
    write, read = pipeline(), pipeline()
    gateway = ResilientTransferGateway(fake, write, inquire_pipeline=read)
    assert gateway.post(transfer()).status == "posted"
    gateway.inquire("MOB-1")
    gateway.inquire("MOB-1")
    assert (write.snapshot()["calls"], read.snapshot()["calls"]) == (1, 2)


def test_the_inner_port_gets_the_attempt_timeout_within_the_callers():
    fake = FakeCore("soap")
    source = ResilientAccountSource(fake, pipeline(attempt_timeout=2.0))
    source.balance(ACCT)
    source.balance(ACCT, timeout=0.5)
    assert fake.timeouts[0] == pytest.approx(2.0)
    assert fake.timeouts[1] == pytest.approx(0.5)


def test_history_arguments_pass_through():
    fake = FakeCore("odbc")
    page = ResilientAccountSource(fake, pipeline("odbc")).history(
        ACCT, from_date=dt.date(2026, 1, 1), to_date=dt.date(2026, 2, 1), limit=2, cursor="7")
    assert fake.calls == [("history", (ACCT, dt.date(2026, 1, 1), dt.date(2026, 2, 1), 2, "7"))]
    assert [t.id for t in page.items] == [f"{ACCT}-6", f"{ACCT}-5"]


def test_failures_open_the_breaker_and_then_the_inner_port_is_not_called():
    fake = FakeCore("soap")
    fake.fail["balance"] = [BackendFault("0012")] * 4
    p = pipeline(max_attempts=1)
    source = ResilientAccountSource(fake, p)
    for _ in range(4):
        with pytest.raises(BackendFault):
            source.balance(ACCT)
    with pytest.raises(CircuitOpen) as info:
        source.balance(ACCT)
    assert fake.count("balance") == 4
    assert info.value.backend == "soap" and info.value.operation == "balance"
    assert source.snapshot()["breaker_state"] == "open"


# -- routing ------------------------------------------------------------------------------------------
ROUTES = {"customer": "soap", "accounts": "odbc", "account": "soap", "balance": "soap", "history": "odbc"}


def sources():
    return {"soap": FakeCore("soap"), "odbc": FakeCore("odbc", as_of=dt.date(2026, 11, 26))}


def test_each_operation_goes_where_the_routes_say():
    src = sources()
    routed = RoutedAccountSource(src, ROUTES)
    assert isinstance(routed, AccountSource)
    routed.accounts_of("C0000001")
    routed.account(ACCT)
    routed.balance(ACCT)
    routed.history(ACCT)
    assert [op for op, _ in src["soap"].calls] == ["account", "balance"]
    assert [op for op, _ in src["odbc"].calls] == ["accounts_of", "history"]
    customers = RoutedCustomerSource(src, ROUTES)
    assert customers.customer("C0000001").last_name == "SOAP"


def test_a_default_route_serves_unlisted_operations():
    src = sources()
    routed = RoutedAccountSource(src, {"default": "odbc", "balance": "soap"})
    routed.account(ACCT)
    routed.balance(ACCT)
    assert [op for op, _ in src["odbc"].calls] == ["account"]


def test_with_the_soap_breaker_open_the_balance_comes_stale_from_odbc(caplog):
    src = sources()
    soap_pipeline = pipeline("soap")
    soap_pipeline.breaker.transition_to_open()
    routed = RoutedAccountSource({"soap": ResilientAccountSource(src["soap"], soap_pipeline),
                                  "odbc": ResilientAccountSource(src["odbc"], pipeline("odbc"))},
                                 ROUTES, fallbacks={"balance": "odbc"})
    with caplog.at_level(logging.WARNING, logger="adapters.routing"):
        balance = routed.balance(ACCT)
    assert balance.stale is True
    assert balance.as_of == dt.date(2026, 11, 26)  # the fallback's own as_of
    assert balance.ledger.amount == Decimal("99.00")
    assert src["soap"].calls == []  # the open breaker refused without calling
    assert routed.snapshot()["fallbacks_served"] == {"odbc": 1}
    text = caplog.text
    assert "CircuitOpen" in text and "odbc" in text
    assert ACCT not in text and ACCT[-4:] not in text


@pytest.mark.parametrize("error", [CircuitOpen(retry_after=5.0), BackendUnavailable("refused"),
                                   BackendTimeout("no answer")])
def test_balance_falls_back_when_the_path_is_down(error):
    src = sources()
    src["soap"].fail["balance"] = [error]
    routed = RoutedAccountSource(src, ROUTES, fallbacks={"balance": "odbc"})
    balance = routed.balance(ACCT)
    assert balance.stale is True and balance.account_id == ACCT
    assert src["odbc"].count("balance") == 1


@pytest.mark.parametrize("error", [RecordNotFound("no such account"), Rejected(reason_code="R003"),
                                   BackendFault("fault"), ContractViolation("bad row")])
def test_balance_never_falls_back_on_an_answer(error):
    src = sources()
    src["soap"].fail["balance"] = [error]
    routed = RoutedAccountSource(src, ROUTES, fallbacks={"balance": "odbc"})
    with pytest.raises(type(error)):
        routed.balance(ACCT)
    assert src["odbc"].calls == []


def test_without_a_fallback_the_error_stands():
    src = sources()
    src["soap"].fail["balance"] = [CircuitOpen(retry_after=5.0)]
    with pytest.raises(CircuitOpen):
        RoutedAccountSource(src, ROUTES).balance(ACCT)


def test_when_the_fallback_fails_too_the_primarys_error_is_raised():
    src = sources()
    src["soap"].fail["balance"] = [CircuitOpen(retry_after=5.0)]
    src["odbc"].fail["balance"] = [BackendUnavailable("replica down")]
    with pytest.raises(CircuitOpen):
        RoutedAccountSource(src, ROUTES, fallbacks={"balance": "odbc"}).balance(ACCT)


def test_a_healthy_primary_is_never_stale():
    src = sources()
    balance = RoutedAccountSource(src, ROUTES, fallbacks={"balance": "odbc"}).balance(ACCT)
    assert balance.stale is False and src["odbc"].calls == []


def test_the_fallback_gets_only_the_time_left():
    src = sources()
    src["soap"].fail["balance"] = [BackendTimeout()]
    RoutedAccountSource(src, ROUTES, fallbacks={"balance": "odbc"}).balance(ACCT, timeout=3.0)
    assert src["soap"].timeouts == [3.0]
    assert 0 < src["odbc"].timeouts[0] <= 3.0


def test_history_cursors_stay_with_the_source_that_issued_them():
    src = sources()
    first = RoutedAccountSource(src, ROUTES).history(ACCT, limit=3)
    assert first.next_cursor == "odbc:7"
    # the routes change between two pages: the cursor still goes back to odbc
    rerouted = RoutedAccountSource(src, {**ROUTES, "history": "soap"})
    second = rerouted.history(ACCT, limit=3, cursor=first.next_cursor)
    assert [t.id for t in second.items] == [f"{ACCT}-6", f"{ACCT}-5", f"{ACCT}-4"]
    assert src["soap"].count("history") == 0
    assert src["odbc"].calls[-1] == ("history", (ACCT, None, None, 3, "7"))
    with pytest.raises(ValueError, match="cursor"):
        rerouted.history(ACCT, cursor="7")
    with pytest.raises(ValueError, match="cursor"):
        rerouted.history(ACCT, cursor="nosuch:7")


def test_the_last_history_page_has_no_cursor():
    src = sources()
    page = RoutedAccountSource(src, ROUTES).history(ACCT, limit=50)
    assert page.next_cursor is None and len(page.items) == 9


@pytest.mark.parametrize("routes,fallbacks,message", [
    ({**ROUTES, "transfers": "soap"}, {}, "unknown operations"),
    (ROUTES, {"history": "soap"}, "only balance may fall back"),
    (ROUTES, {"balance": "soap"}, "is its primary"),
    ({"balance": "soap"}, {}, "no route for 'accounts'"),
    ({**ROUTES, "balance": "db2"}, {}, "not a source"),
    (ROUTES, {"balance": "db2"}, "not a source"),
])
def test_bad_routing_settings_are_refused(routes, fallbacks, message):
    with pytest.raises(ValueError, match=message):
        RoutedAccountSource(sources(), routes, fallbacks=fallbacks)


def test_source_names_cannot_contain_the_cursor_separator():
    with pytest.raises(ValueError, match="':'"):
        RoutedAccountSource({"soap": FakeCore("soap"), "odbc:replica": FakeCore("odbc")},
                            {"default": "soap", "history": "odbc:replica"})


def test_routing_settings_are_a_value():
    settings = RoutingSettings(routes=ROUTES, fallbacks={"balance": "odbc"})
    routed = RoutedAccountSource(sources(), settings)
    assert routed.settings is settings
    assert settings.source_for("history") == "odbc"
    assert isinstance(CircuitOpen(retry_after=1.0), CoreError)
