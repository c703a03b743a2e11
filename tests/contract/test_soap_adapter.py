"""The SOAP adapter against the core: what only SOAP over HTTP can show.

The ports' behaviour (every operation, not found, paging, posting, rejections, reused references) is
in ``test_ports_soap.py``, run against this adapter *and* the fakes. Here: the mapping of the core's
records, the contract files, the per-call timeout, error translation for every injected fault
(``mock_only``: skipped against a real core), request ids, masking, the connection pool, and replies
that break the contract (from a canned-reply server on loopback).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import socket
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    ContractViolation,
    CoreError,
    RecordNotFound,
    Rejected,
)
from adapters.soap import DEFAULT_WSDL, MainframeFault, SoapCore, SoapSettings, request_id_var
from adapters.soap_errors import mask, scrub
from canonical import Money, Transfer, TransferStatus
from mappings.engine import MappingRegistry
from mock_mainframe.faults import FaultRule
from mock_mainframe.soap.envelope import reply as soap_reply

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]


# -- fixtures and helpers ------------------------------------------------------------------------------
def settings_for(core, **overrides) -> SoapSettings:
    values = dict(endpoint=core.soap_url, username=core.soap_user, password=core.soap_password,
                  connect_timeout=3, read_timeout=10)
    values.update(overrides)
    return SoapSettings(**values)


@pytest.fixture(scope="module")
def soap(core, registry):
    with SoapCore(settings_for(core), registry) as adapter:
        yield adapter


@pytest.fixture(scope="module")
def pair(core, mock, soap):
    """(payer, payee): two open accounts of one customer in one currency, the richer one first."""
    if mock is not None:
        row = mock.ledger.query("SELECT CUST_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' GROUP BY CUST_NO, CURR_CD "
                                "HAVING COUNT(*) >= 2 ORDER BY CUST_NO LIMIT 1")[0]
        customer_id = row["CUST_NO"].strip()
    else:
        customer_id = core.customer_id
    accounts = [a for a in soap.accounts_of(customer_id) if a.status == "open"]
    for a in accounts:
        same = [b for b in accounts if b.currency == a.currency]
        if len(same) >= 2:
            return tuple(sorted(same, key=lambda x: soap.balance(x.id).available.amount, reverse=True)[:2])
    pytest.skip(f"customer {customer_id} has no two open accounts in one currency")


def needs_writes(core) -> None:
    if not core.allow_writes:
        pytest.skip("posting transfers is not allowed against this core")


def ref() -> str:
    return "S" + uuid.uuid4().hex[:15].upper()


def xfer(pair, amount: str = "1.00", reference: str | None = None) -> Transfer:
    payer, payee = pair
    return Transfer(reference=reference or ref(), from_account=payer.id, to_account=payee.id,
                    amount=Money.of(Decimal(amount), payer.currency), memo="ADAPTER TEST")


def elapsed(fn) -> tuple[float, BaseException | None]:
    t0 = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - handed back to the test
        return time.perf_counter() - t0, exc
    return time.perf_counter() - t0, None


def balance_reply(*, rc: str = "0000", reason: str = "    ", currency: str = "EUR", rid: str | None = None,
                  ledger: str = "+000000000012540") -> bytes:
    block = (f"<cb:RETURN-BLOCK><cb:RETURN-CODE>{rc}</cb:RETURN-CODE><cb:REASON-CODE>{reason}</cb:REASON-CODE>"
             f"<cb:MESSAGE>{'OK'.ljust(40)}</cb:MESSAGE></cb:RETURN-BLOCK>")
    balance = ("<cb:BALANCE><cb:ACCT-NO>110000000543</cb:ACCT-NO>"
               f"<cb:CURR-CD>{currency}</cb:CURR-CD><cb:ACCT-STAT>A</cb:ACCT-STAT><cb:LEDGER-BAL>{ledger}</cb:LEDGER-BAL>"
               "<cb:AVAIL-BAL>+000000000012540</cb:AVAIL-BAL><cb:HOLD-AMT>+000000000000000</cb:HOLD-AMT>"
               "<cb:LAST-TXN-DT>1261127</cb:LAST-TXN-DT><cb:AS-OF-DT>1261127</cb:AS-OF-DT></cb:BALANCE>")
    return soap_reply(f"<cb:BalanceInquiryResponse>{block}{balance if rc == '0000' else ''}"
                      "</cb:BalanceInquiryResponse>", rid)


@contextlib.contextmanager
def full_backlog():
    """A listener whose accept queue is full: a TCP connect to it hangs until the client gives up."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/corebank/v1"
    finally:
        for c in fillers:
            c.close()
        srv.close()


# -- the core's records, mapped ------------------------------------------------------------------------------

def test_every_read_maps_the_cores_records(soap, pair, mock):
    payer, payee = pair
    customer = soap.customer(payer.customer_id)
    assert customer.id == payer.customer_id
    assert {a.id for a in soap.accounts_of(customer.id)} >= {payer.id, payee.id}
    assert soap.account(payer.id) == payer
    balance = soap.balance(payer.id)
    page = soap.history(payer.id, limit=3)
    assert len(page.items) == 3 and page.items[0].running_balance == balance.ledger  # newest first
    if mock is not None:  # the ledger is the truth
        row = mock.ledger.account(payer.id)
        assert balance.ledger == Money.of(row["LEDGER_BAL"], row["CURR_CD"])
        assert balance.available == Money.of(row["AVAIL_BAL"], row["CURR_CD"])
        assert balance.as_of == mock.ledger.business_date()
        assert customer.last_name == mock.ledger.customer(customer.id)["LAST_NAME"].strip()
        assert page.items[0].id == f"{payer.id}-{row['LAST_SEQ']}"


def test_history_cursor_is_the_cores_cont_key(soap, pair):
    payer, _ = pair
    first = soap.history(payer.id, limit=2)
    last_seq = int(first.items[-1].id.rsplit("-", 1)[1])
    assert first.next_cursor == payer.id.ljust(12) + f"{last_seq:09d}"
    second = soap.history(payer.id, limit=2, cursor=first.next_cursor)
    assert int(second.items[0].id.rsplit("-", 1)[1]) < last_seq


def test_post_inquire_reuse_and_rejection(soap, pair, core, mock):
    needs_writes(core)
    payer, payee = pair
    sent = xfer(pair, "2.50")
    posted = soap.post(sent)
    assert posted.status is TransferStatus.POSTED and posted.amount == sent.amount
    again = soap.post(sent)  # the core does not de-duplicate
    assert [a.id for a in soap.inquire(sent.reference)] == [posted.id, again.id]
    if mock is not None:
        rows = mock.ledger.transfers_by_ref(sent.reference)
        assert [(r["XFER_STAT"], r["RTN_CD"]) for r in rows] == [("P", "0000"), ("P", "0000")]
    poor = soap.balance(payee.id).available.amount
    with pytest.raises(Rejected) as err:
        soap.post(Transfer(reference=ref(), from_account=payee.id, to_account=payer.id,
                           amount=Money.of(poor + 1, payee.currency)))
    assert err.value.reason_code == "R006" and not isinstance(err.value, BackendFault)


# -- the contract files ----------------------------------------------------------------------------------

def test_served_wsdl_and_xsd_equal_our_copies_except_the_address(core):
    """What the core serves is the contract our packaged copy claims (the copies equal the mock's
    published files byte for byte: tests/mappings/test_contracts.py)."""
    ours = DEFAULT_WSDL.read_bytes()
    served = requests.get(f"{core.soap_url}?wsdl", timeout=5)
    assert served.status_code == 200
    address = re.compile(rb'(<soap:address\s+location=")[^"]*(")')
    [location] = re.findall(rb'<soap:address\s+location="([^"]*)"', served.content)
    assert address.sub(lambda m: m.group(1) + location + m.group(2), ours) == served.content
    xsd = requests.get(urljoin(core.soap_url, "CoreBanking.xsd"), timeout=5)
    assert xsd.status_code == 200 and xsd.content == (DEFAULT_WSDL.parent / "CoreBanking.xsd").read_bytes()


def test_client_is_built_from_the_local_wsdl_without_the_network(registry):
    endpoint = "http://127.0.0.1:9/corebank/v1"  # nothing listens there: building must not connect
    with SoapCore(SoapSettings(endpoint=endpoint, username="U", password="P"), registry) as adapter:
        assert adapter.service._binding_options["address"] == endpoint  # not the WSDL's soap:address
        assert adapter.client.settings.forbid_external and adapter.client.settings.strict
        with pytest.raises(BackendUnavailable) as err:
            adapter.balance("110000000543", timeout=1)
        assert err.value.outcome_unknown is False


def test_settings_hide_the_password_and_refuse_nonsense(core, registry):
    settings = settings_for(core, password="s3cret-pw")
    with SoapCore(settings, registry) as adapter:
        assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in repr(adapter)
    for bad in (dict(endpoint="ftp://x"), dict(read_timeout=0), dict(pool_size=0), dict(username=""),
                dict(wsdl_path=Path("/nonexistent.wsdl"))):
        with pytest.raises(ValueError):
            settings_for(core, **bad)
    with pytest.raises(ValueError, match="lacks"):
        SoapCore(settings, {})


# -- timeouts ------------------------------------------------------------------------------------------------

def test_the_call_timeout_bounds_each_call_independently(mock_only, core, registry):
    """zeep's Transport timeout is fixed at construction; ours comes from each call (two threads at once)."""
    mock_only.faults.set_rules([FaultRule(face="soap", operation="BalanceInquiry", latency_ms=700)])
    with SoapCore(settings_for(core, read_timeout=10), registry) as adapter:
        acct = mock_only.ledger.query("SELECT ACCT_NO FROM ACCTMAST LIMIT 1")[0]["ACCT_NO"].strip()
        results: dict[str, tuple[float, BaseException | None]] = {}
        threads = [threading.Thread(target=lambda n=n, t=t: results.__setitem__(
            n, elapsed(lambda: adapter.balance(acct, timeout=t)))) for n, t in (("short", 0.2), ("long", 3.0))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        took, err = results["short"]
        assert isinstance(err, BackendTimeout) and 0.15 < took < 0.45, (took, err)
        took, err = results["long"]
        assert err is None and 0.6 < took < 2.5, (took, err)
    with SoapCore(settings_for(core, read_timeout=0.25), registry) as adapter:  # no timeout=: the default
        took, err = elapsed(lambda: adapter.balance(acct))
        assert isinstance(err, BackendTimeout) and took < 0.5, (took, err)


def test_the_call_timeout_also_caps_the_connect(registry):
    with full_backlog() as url, SoapCore(SoapSettings(endpoint=url, username="U", password="P",
                                                      connect_timeout=5), registry) as adapter:
        took, err = elapsed(lambda: adapter.post(Transfer(reference="T1", from_account="1", to_account="2",
                                                          amount=Money.of(1, "EUR")), timeout=0.3))
        assert isinstance(err, BackendUnavailable) and "connect" in str(err) and took < 0.6, (took, err)
        assert err.outcome_unknown is False  # a transfer that never left is safe to send again


def test_hang_is_a_timeout_within_the_budget(mock_only, soap, pair):
    mock_only.faults.set_rules([FaultRule(face="soap", operation="*", error_rate=1.0, error="hang", hang_s=1.0)])
    took, err = elapsed(lambda: soap.balance(pair[0].id, timeout=0.3))
    assert isinstance(err, BackendTimeout) and took < 0.5 and err.outcome_unknown is False, (took, err)
    took, err = elapsed(lambda: soap.post(xfer(pair), timeout=0.3))
    assert isinstance(err, BackendTimeout) and took < 0.5 and err.outcome_unknown is True, (took, err)


# -- injected faults ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,error", [("fault", MainframeFault), ("http500", BackendFault),
                                        ("reset", BackendUnavailable)])
def test_injected_faults_are_translated(mock_only, soap, pair, kind, error):
    mock_only.faults.set_rules([FaultRule(face="soap", operation="*", error_rate=1.0, error=kind)])
    with pytest.raises(error) as read_err:
        soap.balance(pair[0].id)
    assert read_err.value.outcome_unknown is False
    sent = xfer(pair)
    with pytest.raises(error) as write_err:
        soap.post(sent)
    assert write_err.value.outcome_unknown is True  # the request had left: reconcile, never resend blindly
    if kind == "fault":
        assert (write_err.value.error_code, write_err.value.return_code) == ("CBE0030", "0012")
    for exc in (read_err.value, write_err.value):
        assert isinstance(exc, CoreError) and exc.backend == "soap"
    mock_only.faults.clear()
    assert soap.inquire(sent.reference) == []  # these faults strike before the core posts


def test_outage_is_unavailable_and_nothing_was_sent(mock_only, soap, pair):
    mock_only.faults.outage("soap", 10)
    try:
        with pytest.raises(BackendUnavailable) as err:
            soap.balance(pair[0].id)
        assert err.value.outcome_unknown is False
        sent = xfer(pair)
        with pytest.raises(BackendUnavailable) as err:
            soap.post(sent)
        assert err.value.outcome_unknown is False  # refused at connect: it never left
    finally:
        mock_only.faults.end_outage("soap")
    assert soap.balance(pair[0].id).account_id == pair[0].id  # reconnects by itself
    assert soap.inquire(sent.reference) == []


def test_commit_then_drop_is_outcome_unknown_and_posted(mock_only, soap, pair):
    mock_only.faults.set_rules([FaultRule(face="soap", operation="FundsTransfer", drop_response_rate=1.0)])
    sent = xfer(pair, "3.00")
    with pytest.raises(CoreError) as err:
        soap.post(sent)
    assert isinstance(err.value, BackendUnavailable) and err.value.outcome_unknown is True
    mock_only.faults.clear()
    [attempt] = soap.inquire(sent.reference)  # reconciliation finds the posting
    assert attempt.status is TransferStatus.POSTED and attempt.amount == sent.amount
    assert [r["XFER_STAT"] for r in mock_only.ledger.transfers_by_ref(sent.reference)] == ["P"]


def test_wrong_password_is_a_client_fault(mock_only, core, registry, pair):
    with SoapCore(settings_for(core, password="wrong"), registry) as adapter:
        with pytest.raises(MainframeFault) as err:
            adapter.balance(pair[0].id)
        assert (err.value.error_code, err.value.return_code) == ("CBE0011", "0008")
        with pytest.raises(MainframeFault) as err:
            adapter.post(xfer(pair))
        assert err.value.outcome_unknown is False  # refused before execution (RETURN-CODE 0008)


# -- request ids, masking, the pool ---------------------------------------------------------------------------

def test_request_id_reaches_the_core_and_comes_back(mock_only, soap, pair, caplog):
    caplog.set_level(logging.INFO, logger="mock_mainframe.soap")
    rid = f"req-{uuid.uuid4().hex}"

    def call():
        request_id_var.set(rid)
        return soap.balance(pair[0].id)

    contextvars.copy_context().run(call)  # the echo matched, or the call would have raised
    assert any(f"rid={rid}" in r.getMessage() for r in caplog.records if r.name == "mock_mainframe.soap")
    assert request_id_var.get() is None
    caplog.clear()

    def unsendable():
        request_id_var.set("x" * 65)  # cb:REQUEST-ID holds 1..64 printable characters: not sent, no fault
        return soap.balance(pair[0].id)

    contextvars.copy_context().run(unsendable)
    assert any("rid=None" in r.getMessage() for r in caplog.records if r.name == "mock_mainframe.soap")
    caplog.clear()
    theirs: contextvars.ContextVar[str | None] = contextvars.ContextVar("the_facades_own", default=None)
    with SoapCore(soap.settings, MappingRegistry.load(), request_id=theirs.get) as adapter:

        def facade():
            theirs.set("facade-7")
            return adapter.balance(pair[0].id)

        contextvars.copy_context().run(facade)
    assert any("rid=facade-7" in r.getMessage() for r in caplog.records if r.name == "mock_mainframe.soap")


def test_a_reply_echoing_another_request_id_is_refused(canned):
    server, adapter = canned
    server.reply = lambda body: (200, "text/xml", balance_reply(rid="someone-else"))

    def call():
        request_id_var.set("mine")
        return adapter.balance("110000000543")

    with pytest.raises(ContractViolation, match="another request"):
        contextvars.copy_context().run(call)
    assert re.search(rb"<(\w+:)?REQUEST-ID[^>]*>mine</", server.posts[-1])
    assert adapter.balance("110000000543").ledger == Money.of("125.40", "EUR")  # no id sent: no check


def test_logs_and_errors_never_show_full_account_numbers_or_names(mock_only, soap, pair, caplog):
    caplog.set_level(logging.DEBUG)
    payer, _ = pair
    customer = soap.customer(payer.customer_id)
    errors = []
    soap.balance(payer.id)
    soap.history(payer.id, limit=2)
    for call in (lambda: soap.balance("999999999999"), lambda: soap.account("123456789012")):
        with pytest.raises(RecordNotFound) as err:
            call()
        errors.append(err.value)
    mock_only.faults.set_rules([FaultRule(face="soap", operation="*", error_rate=1.0, error="fault")])
    with pytest.raises(MainframeFault) as err:
        soap.balance(payer.id)
    errors.append(err.value)
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mock_mainframe")]
    assert any(mask(payer.id) in m for m in ours)  # the adapter does log its calls, masked
    for secret in (payer.id, "999999999999", "123456789012", customer.last_name, soap.settings.password):
        assert not any(secret in m for m in ours), secret
        assert not any(secret in str(e) for e in errors), secret
    assert scrub("account '110000000543' of JONES") == "account <12 chars> of JONES"
    assert scrub("ACCT-NO 110000000543") == "ACCT-NO ********0543"


def test_one_keep_alive_connection_serves_sequential_calls(core, registry, pair, caplog):
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    with SoapCore(settings_for(core, pool_size=8), registry) as adapter:
        for _ in range(5):
            adapter.balance(pair[0].id)
        manager = adapter.session.get_adapter(core.soap_url).poolmanager
        [pool] = [manager.pools[key] for key in manager.pools.keys()]
        assert pool.num_connections == 1 and pool.pool.maxsize == 8
        threads = [threading.Thread(target=lambda: [adapter.balance(pair[0].id) for _ in range(5)])
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert pool.num_connections <= 8
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


# -- replies that break the contract ----------------------------------------------------------------------

def test_an_unexpected_return_code_is_a_contract_violation(canned):
    server, adapter = canned
    server.reply = lambda body: (200, "text/xml", balance_reply(rc="0012", reason="S001"))
    with pytest.raises(ContractViolation, match="RETURN-CODE '0012'"):
        adapter.balance("110000000543")


def test_a_reply_about_another_record_is_a_contract_violation(canned):
    server, adapter = canned
    server.reply = lambda body: (200, "text/xml", balance_reply())  # always account 110000000543
    assert adapter.balance("110000000543").account_id == "110000000543"
    with pytest.raises(ContractViolation, match=r"asked for \*+0016, the reply is about \*+0543"):
        adapter.balance("159000000016")


def test_a_record_the_mapping_refuses_is_a_contract_violation(canned):
    server, adapter = canned
    server.reply = lambda body: (200, "text/xml", balance_reply(currency="ZZZ"))
    with pytest.raises(ContractViolation, match="mapping soap.balance_inquiry") as err:
        adapter.balance("110000000543")
    assert err.value.__cause__ is None and "110000000543" not in str(err.value)


@pytest.mark.parametrize("status,body,error", [
    (200, b"<html>maintenance</html>", ContractViolation),
    (200, b"not xml at all", ContractViolation),
    (503, b"Service Unavailable", BackendUnavailable),
    (504, b"Gateway Timeout", BackendTimeout),
    (404, b"no such path", BackendFault),
])
def test_http_answers_that_are_not_soap(canned, status, body, error):
    server, adapter = canned
    server.reply = lambda _: (status, "text/plain", body)
    with pytest.raises(error):
        adapter.balance("110000000543")
    with pytest.raises(error) as err:
        adapter.post(Transfer(reference="T1", from_account="110000000543", to_account="159000000016",
                              amount=Money.of(1, "EUR")))
    assert err.value.outcome_unknown is (status >= 500 or status == 200)
