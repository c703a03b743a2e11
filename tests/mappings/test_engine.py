"""Applying compiled mappings: errors that name everything, writing, contexts, items, speed."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from decimal import Decimal

import pytest

from canonical import Money, Transaction, Transfer
from mappings.engine import MappingApplyError, MappingRegistry


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


SOAP_TXN = {"TXN-SEQ": "000000383", "POST-DT": "1261127", "POST-TM": "141300", "VALUE-DT": "1261127",
            "TXN-CD": "TFO", "DR-CR-IND": "D", "TXN-AMT": "+000000000000999", "RUN-BAL": "+000000008327681",
            "CURR-CD": "EUR", "TXN-DESC": "LUNCH" + " " * 35, "TXN-REF": "MOB-7" + " " * 11,
            "CNTR-ACCT": "159000000016", "CHANNEL": "WEB", "TXN-STAT": "P"}
RESPONSE = {"ACCT-NO": "110000000543", "TXN": [SOAP_TXN]}

BATCH_TXN = {"TXD-REC-TYPE": "D", "TXD-ACCT-NO": "110000000543", "TXD-TXN-SEQ": 382, "TXD-POST-DATE": 1261127,
             "TXD-POST-TIME": 135707, "TXD-VALUE-DATE": 1261127, "TXD-TXN-CODE": "TFO", "TXD-DR-CR-IND": "D",
             "TXD-TXN-AMT": Decimal("-125.40"), "TXD-RUN-BAL": Decimal("83286.80"), "TXD-CURR-CODE": "EUR",
             "TXD-DESC": "RENT NOVEMBER", "TXD-REF": "MOB-20261127-001", "TXD-CHANNEL": "MOB", "TXD-STATUS": "P",
             "TXD-CNTR-INFO": {"TXD-CNTR-ACCT": "159000000016", "TXD-CNTR-BANK": "CBRGUS33"},
             "TXD-FEE-AMT": Decimal("0.00")}


def test_read_returns_a_validated_canonical_object(registry):
    t = registry["soap.transaction_history"].read(SOAP_TXN, context={"response": RESPONSE})
    assert isinstance(t, Transaction) and t.amount == Money.of(Decimal("-9.99"), "EUR")
    assert t.booked_at == dt.datetime(2026, 11, 27, 14, 13, tzinfo=dt.UTC) and t.reference == "MOB-7"


def test_the_same_row_through_three_faces_gives_the_same_transaction(registry):
    soap = registry["soap.transaction_history"].read(
        dict(SOAP_TXN, **{"TXN-SEQ": "000000382", "POST-TM": "135707", "TXN-AMT": "+000000000012540",
                          "RUN-BAL": "+000000008328680", "TXN-DESC": "RENT NOVEMBER", "TXN-REF": "MOB-20261127-001",
                          "CHANNEL": "MOB"}), context={"response": RESPONSE})
    odbc_psql = registry["odbc.txnhist"].read({  # psqlODBC hands Decimal for every DECIMAL column
        "ACCT_NO": "110000000543", "TXN_SEQ": Decimal("382"), "POST_DT": Decimal("1261127"),
        "POST_TM": Decimal("135707"), "VALUE_DT": Decimal("1261127"), "TXN_CD": "TFO", "DR_CR_IND": "D",
        "TXN_AMT": Decimal("125.40"), "RUN_BAL": Decimal("83286.80"), "CURR_CD": "EUR",
        "TXN_DESC": "RENT NOVEMBER".ljust(40), "TXN_REF": "MOB-20261127-001", "CNTR_ACCT": "159000000016",
        "CHANNEL": "MOB", "TXN_STAT": "P"})
    batch = registry["batch.txnhist.detail"].read(BATCH_TXN)
    assert odbc_psql == batch
    assert soap.model_dump(exclude={"running_balance"}) == batch.model_dump(exclude={"running_balance"})


def test_apply_error_names_mapping_rule_field_and_value(registry):
    bad = dict(SOAP_TXN, **{"TXN-AMT": "+00000000000099X"})
    with pytest.raises(MappingApplyError) as err:
        registry["soap.transaction_history"].read(bad, context={"response": RESPONSE})
    e = err.value
    assert (e.mapping, e.rule, e.source, e.value) == ("soap.transaction_history", "TXN-AMT -> amount", "TXN-AMT",
                                                      "+00000000000099X")
    assert e.line > 0
    assert str(e).startswith(f"mapping soap.transaction_history, rule TXN-AMT -> amount (line {e.line}), "
                             "field TXN-AMT, value '+00000000000099X': implied_decimal:")


def test_missing_required_value(registry):
    with pytest.raises(MappingApplyError, match="rule VALUE-DT -> value_date .*required value is missing"):
        registry["soap.transaction_history"].read(dict(SOAP_TXN, **{"VALUE-DT": "0000000"}),
                                                  context={"response": RESPONSE})


def test_a_model_validation_error_is_reported_against_the_rule(registry):
    with pytest.raises(MappingApplyError) as err:
        registry["soap.account_inquiry"].read({"ACCT-NO": "1", "CUST-NO": "C1", "PROD-CD": "CHK1", "CURR-CD": "EURO",
                                               "ACCT-STAT": "A", "OPEN-DT": "1150224", "CLOSE-DT": "0000000"})
    assert err.value.rule == "CURR-CD -> currency" and err.value.value == "EURO"
    assert "Account.currency" in str(err.value)


def test_missing_context_is_explained(registry):
    with pytest.raises(MappingApplyError, match=r"pass context=\{'response': \.\.\.\}"):
        registry["soap.transaction_history"].read(SOAP_TXN)


def test_records_only_need_getitem():
    class Row(Mapping):  # e.g. a zeep CompoundValue or a DB row wrapper
        def __init__(self, d):
            self._d = d

        def __getitem__(self, k):
            return self._d[k]

        def __iter__(self):
            return iter(self._d)

        def __len__(self):
            return len(self._d)

    reg = MappingRegistry.load()
    t = reg["batch.txnhist.detail"].read(Row({**BATCH_TXN, "TXD-CNTR-INFO": Row(BATCH_TXN["TXD-CNTR-INFO"])}))
    assert t.counterparty == "159000000016"


def test_write_a_transfer_as_a_soap_request(registry):
    transfer = Transfer(reference="MOB-42", from_account="110000000543", to_account="159000000016",
                        amount=Money.of(Decimal("1500"), "JPY"), memo="GIFT", channel="web")
    request = registry["soap.funds_transfer.request"].write(transfer)
    assert request == {"XFER-REF": "MOB-42".ljust(16), "FROM-ACCT": "110000000543", "TO-ACCT": "159000000016",
                       "XFER-AMT": "+000000000150000", "CURR-CD": "JPY", "MEMO": "GIFT".ljust(40), "CHANNEL": "WEB"}
    bare = registry["soap.funds_transfer.request"].write(transfer.model_copy(update={"memo": None, "channel": None}))
    assert "MEMO" not in bare and "CHANNEL" not in bare


def test_write_refuses_what_the_core_cannot_hold(registry):
    too_long = Transfer(reference="R" * 17, from_account="1", to_account="2", amount=Money.of(1, "EUR"))
    with pytest.raises(MappingApplyError, match=r"rule XFER-REF -> reference .*longer than the field's 16"):
        registry["soap.funds_transfer.request"].write(too_long)
    huge = Transfer(reference="R", from_account="1", to_account="2", amount=Money.of(Decimal("1e13"), "EUR"))
    with pytest.raises(MappingApplyError, match="does not fit in 15 digits"):
        registry["soap.funds_transfer.request"].write(huge)
    no_date = Transfer(reference="R", from_account="1", to_account="2", amount=Money.of(1, "EUR"))
    with pytest.raises(MappingApplyError, match="value_date is empty but the legacy field PID-VALUE-DATE is required"):
        registry["batch.payin.detail"].write(no_date)
    with pytest.raises(MappingApplyError, match="read-only"):
        registry["soap.balance_inquiry"].write(no_date)


def test_write_a_payin_record_that_the_codec_encodes(registry):
    mapping = registry["batch.payin.detail"]
    transfer = Transfer(reference="PAY-9", from_account="102000000348", to_account="102000000355",
                        amount=Money.of(Decimal("10"), "USD"), value_date=dt.date(2026, 11, 28))
    record = mapping.write(transfer)
    assert record["PID-AMOUNT"] == Decimal("10.00") and record["PID-VALUE-DATE"] == 1261128
    codec = mapping.codec()
    data = codec.encode(record, fill_missing=True)
    assert len(data) == 120 and data[:1] == "D".encode("cp037")
    assert mapping.read(codec.decode(data)) == transfer.model_copy(update={"channel": "batch", "memo": None})


def test_items_map_a_repeated_group_with_the_parent_currency(registry):
    record = {"STMT-ACCT-NO": "1", "STMT-PERIOD-DATE": 1261127, "STMT-CURR-CODE": "JPY",
              "STMT-OPEN-BAL": Decimal("100.00"), "STMT-CLOSE-BAL": Decimal("90.00"), "STMT-LINE-COUNT": 1,
              "STMT-LINE": [{"STMT-LINE-DATE": 1261127, "STMT-LINE-DESC": "X", "STMT-LINE-AMT": Decimal("-10.00")}]}
    s = registry["batch.stmt.record"].read(record)
    assert s.lines[0].amount == Money.of(-10, "JPY") and s.closing_balance.amount == Decimal("90")
    record["STMT-LINE"][0]["STMT-LINE-AMT"] = Decimal("-10.50")
    with pytest.raises(MappingApplyError, match=r"\[0\] STMT-LINE-AMT -> amount: money: .* JPY allows"):
        registry["batch.stmt.record"].read(record)
    empty = dict(record, **{"STMT-LINE": [], "STMT-CLOSE-BAL": Decimal("100.00")})
    assert registry["batch.stmt.record"].read(empty).lines == ()


def test_copybook_views_decode_only_the_right_redefines(registry):
    mapping = registry["batch.txnhist.detail"]
    codec = mapping.codec()
    card = dict(BATCH_TXN, **{"TXD-TXN-CODE": "POS"})
    del card["TXD-CNTR-INFO"]
    card["TXD-CARD-INFO"] = {"TXD-CARD-MASKED": "411000******0543", "TXD-CARD-MCC": 5411}
    decoded = codec.decode(codec.encode(card))
    assert "TXD-CNTR-INFO" not in decoded and decoded["TXD-CARD-INFO"]["TXD-CARD-MCC"] == 5411
    assert mapping.read(decoded).counterparty is None
    decoded = codec.decode(codec.encode(BATCH_TXN))
    assert "TXD-CARD-INFO" not in decoded and mapping.read(decoded).counterparty == "159000000016"


def test_read_many_and_read_dict(registry):
    mapping = registry["batch.txnhist.detail"]
    assert len(mapping.read_many([BATCH_TXN] * 3)) == 3
    raw = mapping.read_dict(BATCH_TXN)
    assert raw["id"] == "110000000543-382" and isinstance(raw["amount"], Money)


def test_apply_throughput(registry, capsys):
    """Apply-only speed, TXNHIST detail dict (as the codec decodes it) -> validated Transaction.

    The number is printed (pytest -s); the assertion is a loose floor so that a slow CI machine
    does not fail, while an accidental 10x regression does.
    """
    mapping = registry["batch.txnhist.detail"]
    records = [dict(BATCH_TXN, **{"TXD-TXN-SEQ": i, "TXD-POST-TIME": 100000 + i % 60}) for i in range(20000)]
    mapping.read_many(records[:1000])  # warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for r in records:
            mapping.read(r)
        best = min(best, time.perf_counter() - start)
    rate = len(records) / best
    with capsys.disabled():
        print(f"\napply throughput (TXNHIST detail -> Transaction): {rate:,.0f} records/s "
              f"({best / len(records) * 1e6:.2f} us/record)")
    assert rate > 20_000


def test_items_and_split_on_write(tmp_path):
    """A `both` mapping of STMT: lines are written element by element; names are split and joined."""
    from pathlib import Path

    from mappings.engine import compile_file

    copybook = Path(__file__).resolve().parents[2] / "mappings" / "copybooks" / "STMT.cpy"
    path = tmp_path / "stmt.yaml"
    path.write_text(f"""\
name: t.stmt
version: 1
source:
  kind: copybook
  contract: {{copybook: {copybook}, record: STMT-RECORD}}
target: Statement
direction: both
fields:
  - {{to: account_id, from: STMT-ACCT-NO, transforms: [trim]}}
  - {{to: period, from: STMT-PERIOD-DATE, transforms: [date]}}
  - {{to: opening_balance, from: STMT-OPEN-BAL, transforms: [{{money: STMT-CURR-CODE}}]}}
  - {{to: closing_balance, from: STMT-CLOSE-BAL, transforms: [{{money: STMT-CURR-CODE}}]}}
  - to: lines
    from: STMT-LINE
    items:
      - {{to: value_date, from: STMT-LINE-DATE, transforms: [date]}}
      - {{to: description, from: STMT-LINE-DESC, transforms: [trim]}}
      - {{to: amount, from: STMT-LINE-AMT, transforms: [{{money: {{currency_code: EUR}}}}]}}
examples:
  - name: two lines
    input:
      STMT-ACCT-NO: "1"
      STMT-PERIOD-DATE: 1261127
      STMT-CURR-CODE: EUR
      STMT-OPEN-BAL: "10.00"
      STMT-CLOSE-BAL: "7.50"
      STMT-LINE-COUNT: 2
      STMT-LINE:
        - {{STMT-LINE-DATE: 1261127, STMT-LINE-DESC: A, STMT-LINE-AMT: "-3.00"}}
        - {{STMT-LINE-DATE: 1261126, STMT-LINE-DESC: B, STMT-LINE-AMT: "0.50"}}
    output:
      account_id: "1"
      period: "2026-11-27"
      opening_balance: {{amount: "10.00", currency: EUR}}
      closing_balance: {{amount: "7.50", currency: EUR}}
      lines:
        - {{value_date: "2026-11-27", description: A, amount: {{amount: "-3.00", currency: EUR}}}}
        - {{value_date: "2026-11-26", description: B, amount: {{amount: "0.50", currency: EUR}}}}
    written:
      STMT-ACCT-NO: "1           "
      STMT-PERIOD-DATE: 1261127
      STMT-OPEN-BAL: "10.00"
      STMT-CURR-CODE: EUR
      STMT-CLOSE-BAL: "7.50"
      STMT-LINE:
        - {{STMT-LINE-DATE: 1261127, STMT-LINE-DESC: "A                             ", STMT-LINE-AMT: "-3.00"}}
        - {{STMT-LINE-DATE: 1261126, STMT-LINE-DESC: "B                             ", STMT-LINE-AMT: "0.50"}}
""")
    from mappings.engine import check_file

    assert check_file(path) == []  # the example runs: read, write (`written`), codec encode, read back
    mapping = compile_file(path)
    record = mapping.write(mapping.read(mapping.spec.examples[0].input))
    assert len(record["STMT-LINE"]) == 2

    names = tmp_path / "names.yaml"
    names.write_text(f"""\
name: t.names
version: 1
source:
  kind: odbc
  contract: {{ddl: {copybook.parent.parent / 'ddl' / 'ledger.sql'}, table: CUSTMAST}}
target: Customer
direction: both
fields:
  - {{to: id, from: CUST_NO, transforms: [trim]}}
  - {{to: type, constant: personal}}
  - {{to: status, constant: active}}
  - {{to: last_name, from: ACCT_TITLE_X, transforms: [{{split: {{sep: ",", index: 0}}}}]}}
examples: []
""")
    problems = [str(d) for d in check_file(names)]
    assert any("has no field 'ACCT_TITLE_X'" in p for p in problems)
    names.write_text(names.read_text().replace("ACCT_TITLE_X", "LAST_NAME").replace(
        "examples: []", """\
  - {to: first_name, from: LAST_NAME, transforms: [{split: {sep: ",", index: 1}}]}
examples:
  - name: one field holds both names
    input: {CUST_NO: C1, LAST_NAME: "JONES, ANN"}
    output: {id: C1, type: personal, status: active, last_name: JONES, first_name: ANN, birth_date: null,
             email: null, phone: null, address: null, branch: null, created_on: null}
    written: {CUST_NO: "C1        ", LAST_NAME: "JONES,ANN"}"""))
    assert check_file(names) == []
