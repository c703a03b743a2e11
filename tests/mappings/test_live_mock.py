"""The mapping files against the live mock mainframe: every face, every record the seed produces.

The examples in the mapping files were captured from these faces; this module keeps them honest:
it starts the mock's SOAP face and calls it with zeep (the adapters' SOAP library), reads every
ledger row through pyodbc + the SQLite3 ODBC driver, and decodes the end-of-day files and a
payment acknowledgment with mappings.copybook, then maps all of it.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

from canonical import Account, Balance, Customer, Money, Statement, Transaction, Transfer, TransferStatus
from mappings.copybook import MultiLayoutCodec, RecordCodec, Reject, by_record_type, load_copybook, read_records
from mappings.engine import MappingRegistry
from mock_mainframe.config import MockConfig
from mock_mainframe.faults import FaultInjector
from mock_mainframe.ledger.posting import PostingEngine
from mock_mainframe.ledger.seed import seed_sqlite
from mock_mainframe.ledger.store import Ledger
from tests.support import require

COPYBOOKS = Path(__file__).resolve().parents[2] / "mappings" / "copybooks"


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "ledger.db"
    seed_sqlite(path, seed=7, customers=40)
    led = Ledger(path)
    yield led
    led.close()


@pytest.fixture(scope="module")
def soap(ledger):
    zeep = pytest.importorskip("zeep")
    from zeep.helpers import serialize_object
    from zeep.wsse.username import UsernameToken

    from mock_mainframe.soap import BINDING_QNAME, WSDL_PATH, SoapFace

    face = SoapFace(MockConfig(host="127.0.0.1", soap_port=0), ledger, PostingEngine(ledger),
                    FaultInjector(seed=42)).start()
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
    client = zeep.Client(wsdl=str(WSDL_PATH), settings=settings,
                         wsse=UsernameToken(MockConfig.soap_user, MockConfig.soap_password))
    service = client.create_service(BINDING_QNAME, face.url)

    def call(operation: str, **fields):
        return serialize_object(getattr(service, operation)(**fields), dict)

    yield call
    face.stop()


def rows(ledger, sql, *args):
    return ledger.query(sql, args)


def test_soap_reads(registry, soap, ledger):
    acct = rows(ledger, "SELECT * FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'JPY' ORDER BY ACCT_NO")[0]
    acct_no, cust_no = acct["ACCT_NO"].strip(), acct["CUST_NO"].strip()

    customer = registry["soap.customer_inquiry"].read(soap("CustomerInquiry", **{"CUST-NO": cust_no})["CUSTOMER"])
    assert isinstance(customer, Customer) and customer.id == cust_no

    listing = soap("AccountList", **{"CUST-NO": cust_no})
    accounts = [registry["soap.account_list"].read(a) for a in listing["ACCOUNT"]]
    assert acct_no in {a.id for a in accounts} and all(isinstance(a, Account) for a in accounts)

    account = registry["soap.account_inquiry"].read(soap("AccountInquiry", **{"ACCT-NO": acct_no})["ACCOUNT"])
    assert account.currency == "JPY" and account.customer_id == cust_no

    balance = registry["soap.balance_inquiry"].read(soap("BalanceInquiry", **{"ACCT-NO": acct_no})["BALANCE"])
    assert isinstance(balance, Balance) and balance.as_of == ledger.business_date()
    assert balance.ledger == Money.of(acct["LEDGER_BAL"], "JPY")

    history = soap("TransactionHistory", **{"ACCT-NO": acct_no, "MAX-ROWS": 50})
    txns = registry["soap.transaction_history"].read_many(history["TXN"], context={"response": history})
    assert len(txns) == 50 and all(t.account_id == acct_no and t.amount.currency == "JPY" for t in txns)
    assert txns[0].running_balance == balance.ledger  # newest first


def test_soap_transfer_round_trip(registry, soap, ledger):
    eur = rows(ledger, "SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'EUR' "
                       "ORDER BY AVAIL_BAL DESC")
    transfer = Transfer(reference="LIVE-1", from_account=eur[0]["ACCT_NO"].strip(),
                        to_account=eur[1]["ACCT_NO"].strip(), amount=Money.of(Decimal("12.34"), "EUR"),
                        memo="LIVE TEST", channel="web")
    request = registry["soap.funds_transfer.request"].write(transfer)
    response = soap("FundsTransfer", **request)
    outcome = registry["soap.funds_transfer.response"].read(response, context={"request": request})
    assert outcome.status is TransferStatus.POSTED and outcome.id and outcome.posted_at is not None
    assert outcome.model_dump(include={"reference", "from_account", "to_account", "amount", "memo", "channel"}) == \
        transfer.model_dump(include={"reference", "from_account", "to_account", "amount", "memo", "channel"})

    status = soap("TransferStatusInquiry", **{"XFER-REF": "LIVE-1"})
    [attempt] = [registry["soap.transfer_status"].read(x) for x in status["XFER"]]
    assert attempt == outcome

    rejected = transfer.model_copy(update={"reference": "LIVE-2", "to_account": transfer.from_account})
    request = registry["soap.funds_transfer.request"].write(rejected)
    outcome = registry["soap.funds_transfer.response"].read(soap("FundsTransfer", **request),
                                                            context={"request": request})
    assert (outcome.status, outcome.reason_code) == (TransferStatus.REJECTED, "R009") and outcome.reason

    history = soap("TransactionHistory", **{"ACCT-NO": transfer.from_account, "MAX-ROWS": 1})
    [txn] = registry["soap.transaction_history"].read_many(history["TXN"], context={"response": history})
    assert (txn.reference, txn.counterparty, txn.kind, txn.amount) == ("LIVE-1", transfer.to_account,
                                                                        "transfer_out", -transfer.amount)


def test_every_ledger_row_maps_through_odbc(registry, ledger):
    pyodbc = pytest.importorskip("pyodbc", reason="missing: pyodbc (needs libodbc2)")
    from mock_mainframe.odbc import sqlite_connection_string

    require("SQLite3" in pyodbc.drivers(), "the SQLite3 ODBC driver (libsqliteodbc)")
    conn = pyodbc.connect(sqlite_connection_string(ledger.path))
    try:
        cur = conn.cursor()

        def fetch(sql):
            cur.execute(sql)
            cols = [d[0].upper() for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

        counts = {}
        for table, name, model in (("CUSTMAST", "odbc.custmast", Customer), ("ACCTMAST", "odbc.acctmast", Account),
                                   ("TXNHIST", "odbc.txnhist", Transaction), ("XFERLOG", "odbc.xferlog", Transfer)):
            objs = registry[name].read_many(fetch(f"SELECT * FROM {table}"))
            assert all(isinstance(o, model) for o in objs)
            counts[table] = len(objs)
        assert counts["CUSTMAST"] == 40 and counts["TXNHIST"] > 1000
        spec = registry["odbc.acctmast_balance"].spec.source.contract
        cur.execute(spec["query"], rows(ledger, "SELECT ACCT_NO FROM ACCTMAST")[0]["ACCT_NO"])
        cols = [d[0].upper() for d in cur.description]
        [balance] = [registry["odbc.acctmast_balance"].read(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]
        assert balance.as_of == ledger.business_date()
    finally:
        conn.close()


def test_end_of_day_files_map_record_by_record(registry, ledger, tmp_path):
    from mock_mainframe.batch.eod import EodWriter

    config = MockConfig(data_dir=tmp_path / "mock")
    config.outbox.mkdir(parents=True)
    day = ledger.business_date() - dt.timedelta(days=1)
    txnhist_path, stmt_path = EodWriter(config, ledger).write_day(day)

    detail = registry["batch.txnhist.detail"]
    book = load_copybook(COPYBOOKS / "TXNHIST.cpy")
    codecs = {"TXNHIST-HEADER": RecordCodec(book.record("TXNHIST-HEADER")), "TXNHIST-DETAIL": detail.codec(),
              "TXNHIST-TRAILER": RecordCodec(book.record("TXNHIST-TRAILER"))}
    selector = by_record_type(0, 1, {"H": "TXNHIST-HEADER", "D": "TXNHIST-DETAIL", "T": "TXNHIST-TRAILER"})
    txns, trailer = [], None
    with open(txnhist_path, "rb") as f:
        for item in read_records(f, MultiLayoutCodec(codecs, selector), framing="fixed", lrecl=200):
            assert not isinstance(item, Reject), item
            if item.layout == "TXNHIST-DETAIL":
                txns.append(detail.read(item.values))
            elif item.layout == "TXNHIST-TRAILER":
                trailer = item.values
    assert txns and trailer["TXT-REC-COUNT"] == len(txns)
    assert sum(t.amount.amount for t in txns) == trailer["TXT-CTL-TOTAL"]
    assert all(t.booked_at.date() == day for t in txns)
    assert {t.kind for t in txns} >= {"card_purchase"}
    assert all(t.counterparty is None for t in txns if t.kind == "card_purchase")

    stmt = registry["batch.stmt.record"]
    with open(stmt_path, "rb") as f:
        statements = [stmt.read(item.values) for item in read_records(f, stmt.codec(), framing="rdw")]
    assert statements and all(isinstance(s, Statement) and s.period == day for s in statements)
    assert sum(len(s.lines) for s in statements) == len(txns)


def test_payment_batch_written_posted_and_acknowledged(registry, ledger, tmp_path):
    from mock_mainframe.batch.payments import PaymentInbox

    config = MockConfig(data_dir=tmp_path / "mock")
    config.inbox.mkdir(parents=True)
    config.outbox.mkdir(parents=True)
    usd = [r["ACCT_NO"].strip() for r in rows(ledger, "SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND "
                                                      "CURR_CD = 'USD' AND AVAIL_BAL > 100 ORDER BY ACCT_NO")[:2]]
    value_date = ledger.business_date()
    transfers = [
        Transfer(reference="BATCH-1", from_account=usd[0], to_account=usd[1], amount=Money.of(Decimal("10"), "USD"),
                 memo="INVOICE 1", value_date=value_date),
        Transfer(reference="BATCH-2", from_account=usd[1], to_account="999999999999",
                 amount=Money.of(Decimal("5.25"), "USD"), value_date=value_date),
    ]
    payin = registry["batch.payin.detail"]
    details = [payin.write(t) for t in transfers]
    book = load_copybook(COPYBOOKS / "PAYIN.cpy")
    header = RecordCodec(book.record("PAYIN-HEADER")).encode(
        {"PIH-REC-TYPE": "H", "PIH-FILE-ID": "PAYIN", "PIH-FILE-DATE": 1261127, "PIH-SEQ-NO": 1,
         "PIH-SENDER": "CBRIDGE"}, fill_missing=True)
    trailer = RecordCodec(book.record("PAYIN-TRAILER")).encode(
        {"PIT-REC-TYPE": "T", "PIT-REC-COUNT": 2, "PIT-CTL-TOTAL": sum(d["PID-AMOUNT"] for d in details)},
        fill_missing=True)
    codec = payin.codec()
    data = header + b"".join(codec.encode(d, fill_missing=True) for d in details) + trailer
    (config.inbox / "PAYIN.D261127.S000001").write_bytes(data)
    PaymentInbox(config, ledger, PostingEngine(ledger)).scan(force=True)

    ack = registry["batch.payack.detail"]
    ack_book = load_copybook(COPYBOOKS / "PAYACK.cpy")
    codecs = {"PAYACK-HEADER": RecordCodec(ack_book.record("PAYACK-HEADER")), "PAYACK-DETAIL": ack.codec(),
              "PAYACK-TRAILER": RecordCodec(ack_book.record("PAYACK-TRAILER"))}
    selector = by_record_type(0, 1, {"H": "PAYACK-HEADER", "D": "PAYACK-DETAIL", "T": "PAYACK-TRAILER"})
    raw = (config.outbox / "PAYACK.D261127.S000001").read_bytes()
    outcomes = []
    for item in read_records(io.BytesIO(raw), MultiLayoutCodec(codecs, selector), framing="fixed", lrecl=100):
        assert not isinstance(item, Reject), item
        if item.layout == "PAYACK-DETAIL":
            sent = details[item.values["PAD-REC-NO"] - 2]  # the input header is record 1
            outcomes.append(ack.read(item.values, context={"request": sent}))
    assert [(o.reference, o.status, o.reason_code) for o in outcomes] == [
        ("BATCH-1", TransferStatus.POSTED, None), ("BATCH-2", TransferStatus.REJECTED, "R002")]
    assert outcomes[0].amount == transfers[0].amount and outcomes[0].id
