"""The mapping engine's fast path gives exactly what its closures give: generated read functions,
``read_stream``, the fused ``record_codec`` (bytes -> canonical object) and the model plan that
builds canonical objects without a pydantic round."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from canonical import Transaction, TransactionStatus
from mappings.copybook import (
    MultiLayoutCodec,
    Record,
    RecordCodec,
    RecordDecodeError,
    Reject,
    by_record_type,
    load_copybook,
    read_records,
)
from mappings.engine import MappingApplyError, MappingRegistry, compile_file
from mappings.engine.errors import MappedRecordError
from mappings.engine.examples import _through_codec, coerce_record
from tests.mappings.sameness import assert_same, outcome

COPYBOOKS = Path(__file__).resolve().parents[2] / "mappings" / "copybooks"


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.fixture(scope="module")
def txnhist(registry):
    return registry["batch.txnhist.detail"]


def reference(mapping, record, context=None):
    """read() through the closures and pydantic only (what the fast path must reproduce)."""
    out = mapping.read_dict(record, context)
    try:
        return mapping._validate(out)
    except ValidationError as exc:
        raise mapping._validation_error(exc, record, context) from None


def example_inputs(mapping):
    for ex in mapping.spec.examples:
        record, context = ex.input, ex.context
        if mapping.source_kind == "copybook":
            record = _through_codec(mapping, record, "input")
            if isinstance(context, dict):
                context = {k: coerce_record(v, mapping.binding.contexts[k].fields)
                           if k in mapping.binding.contexts else v for k, v in context.items()}
        yield ex, record, context


# -- generated read functions ------------------------------------------------------------------------

def test_every_mapping_has_a_generated_read_function(registry):
    for name in registry:
        assert registry[name].fast_source is not None, name


def test_examples_read_the_same_through_the_generated_function(registry):
    checked = 0
    for name in registry:
        mapping = registry[name]
        for ex, record, context in example_inputs(mapping):
            want = outcome(reference, mapping, record, context)
            assert_same(outcome(mapping.read, record, context), want)
            if ex.error is None:  # valid: the generated function answers by itself, no fallback
                assert_same(mapping._fast_read(record, context), want)
            checked += 1
    assert checked > 30


def test_the_generated_function_builds_the_model_itself(txnhist):
    assert "_b_new(_b_model)" in txnhist.fast_source  # canonical.builder's plan, not a pydantic round
    ex, record, _ = next(example_inputs(txnhist))
    got = txnhist._fast_read(record, None)
    assert got.status is TransactionStatus.POSTED and type(got.__pydantic_fields_set__) is set


# a TXNHIST-DETAIL dict as the codec decodes it; each field is now and then something that goes wrong
def mostly(good, odd):
    return st.integers(0, 24).flatmap(lambda i: odd if i == 13 else good)  # 0 and 24: boundaries hypothesis likes


TEXT = st.sampled_from(["", " ", "  X ", "110000000543", "A" * 70, "\u00a0", "x\ty", None, 5])
AMOUNT = st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**6, max_value=10**6)
RECORD = st.fixed_dictionaries({
    "TXD-ACCT-NO": mostly(st.from_regex(r"1[0-9]{11}", fullmatch=True), TEXT),
    "TXD-TXN-SEQ": mostly(st.integers(0, 10**9), st.sampled_from([None, -5, "12", "x", Decimal("3")])),
    "TXD-POST-DATE": mostly(st.sampled_from([1261127, 1240229, 991231]),
                            st.sampled_from([0, 2261127, 1261340, 1260229, "1261127", None, 1.5])),
    "TXD-POST-TIME": mostly(st.integers(0, 235959).filter(lambda t: t % 10000 < 6000 and t % 100 < 60),
                            st.sampled_from([None, -1, 246000, 126000, "135707", "", "99"])),
    "TXD-VALUE-DATE": mostly(st.sampled_from([1261127, 1261128]), st.sampled_from([0, None, "x", 1261340])),
    "TXD-TXN-CODE": mostly(st.sampled_from(["TFO", "POS", "SAL", " ATM"]), st.sampled_from(["XYZ", "", None, 5])),
    "TXD-TXN-AMT": mostly(AMOUNT, st.sampled_from([Decimal("1.005"), Decimal("-0.00"), "12.50", 7, None, 1.5,
                                                   Decimal("1E+20"), Decimal("12.5")])),
    "TXD-RUN-BAL": mostly(AMOUNT, st.sampled_from([None, "x", Decimal("0.001")])),
    "TXD-CURR-CODE": mostly(st.sampled_from(["EUR", "USD", "JPY"]), st.sampled_from([" USD", "eur", "XXX", "", None])),
    "TXD-DESC": mostly(st.text(max_size=40), TEXT),
    "TXD-REF": mostly(st.sampled_from(["", "MOB-1", " R "]), TEXT),
    "TXD-CHANNEL": mostly(st.sampled_from(["MOB", "POS", "BAT"]), st.sampled_from(["???", None, ""])),
    "TXD-STATUS": mostly(st.sampled_from(["P", "R"]), st.sampled_from(["X", None, ""])),
    "TXD-CNTR-INFO": mostly(st.fixed_dictionaries({"TXD-CNTR-ACCT": st.sampled_from(["", "159000000016"])}),
                            st.one_of(st.none(), st.just("flat"), st.fixed_dictionaries({"TXD-CNTR-ACCT": TEXT}))),
})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=RECORD, drop=st.sets(st.sampled_from(["TXD-REF", "TXD-RUN-BAL", "TXD-TXN-CODE", "TXD-DESC"])))
def test_generated_read_is_the_closures_on_any_record(txnhist, record, drop):
    record = {k: v for k, v in record.items() if k not in drop}
    assert_same(outcome(txnhist.read, record), outcome(reference, txnhist, record))
    assert_same(outcome(txnhist.read, MappingProxyType(record)), outcome(reference, txnhist, record))


def test_model_checks_that_fail_hand_the_record_to_pydantic(tmp_path):
    """Values the plan's checks refuse (a code that is no Code, a too long text, amounts in two
    currencies for the model validator): the generated function gives up, read reports as before."""
    path = tmp_path / "t.yaml"
    path.write_text(f"""\
name: t.plan
version: 1
source:
  kind: copybook
  contract: {{copybook: {COPYBOOKS / "TXNHIST.cpy"}, record: TXNHIST-DETAIL}}
target: Transaction
direction: read
fields:
  - {{to: id, from: TXD-ACCT-NO, transforms: [trim]}}
  - {{to: account_id, from: TXD-ACCT-NO, transforms: [trim]}}
  - to: booked_at
    from: TXD-POST-DATE
    transforms: [{{datetime: {{time_field: TXD-POST-TIME}}}}]
  - {{to: value_date, from: TXD-VALUE-DATE, transforms: [date]}}
  - {{to: amount, from: TXD-TXN-AMT, transforms: [{{money: TXD-CURR-CODE}}]}}
  - {{to: running_balance, from: TXD-RUN-BAL, optional: true, transforms: [{{money: {{currency_code: USD}}}}]}}
  - {{to: description, from: TXD-DESC, optional: true, transforms: [trim, {{case: lower}}]}}
  - to: channel
    from: TXD-CHANNEL
    optional: true
    transforms: [{{code: {{map: {{MOB: mobile, BAD: Not A Code}}}}}}]
""")
    mapping = compile_file(path)
    good = {"TXD-ACCT-NO": "1", "TXD-POST-DATE": 1261127, "TXD-POST-TIME": 10101, "TXD-VALUE-DATE": 1261127,
            "TXD-TXN-AMT": Decimal("1.00"), "TXD-CURR-CODE": "USD", "TXD-DESC": "HELLO", "TXD-CHANNEL": "MOB"}
    assert_same(mapping._fast_read(good, None), reference(mapping, good))
    for bad in ({"TXD-CHANNEL": "BAD"}, {"TXD-DESC": "X" * 300}, {"TXD-CURR-CODE": "EUR"},
                {"TXD-RUN-BAL": None, "TXD-CURR-CODE": "EUR"}, {"TXD-ACCT-NO": "   "}):
        record = {**good, "TXD-RUN-BAL": Decimal("2.00"), **bad}
        want = outcome(reference, mapping, record)
        if isinstance(want, tuple):
            with pytest.raises(Exception):  # noqa: B017 - any: read() then asks the closures
                mapping._fast_read(record, None)
        assert_same(outcome(mapping.read, record), want)
    assert "amounts in different currencies" in str(outcome(mapping.read, {**good, "TXD-CURR-CODE": "EUR",
                                                                          "TXD-RUN-BAL": Decimal("2.00")}))


# -- read_stream -------------------------------------------------------------------------------------

def stream_records(txnhist):
    ok = [record for ex, record, _ in example_inputs(txnhist) if ex.error is None]
    bad = [record for ex, record, _ in example_inputs(txnhist) if ex.error is not None]
    return [ok[0], bad[0], ok[1], {**ok[2], "TXD-CURR-CODE": "XXX"}, MappingProxyType(ok[2]), ok[0]]


def test_read_stream_is_read_per_record_rejects_included(txnhist):
    records = stream_records(txnhist)
    got = list(txnhist.read_stream(records, errors="yield"))
    assert len(got) == len(records)
    for item, record in zip(got, records, strict=True):
        want = outcome(reference, txnhist, record)
        if isinstance(want, tuple):
            assert isinstance(item, MappingApplyError) and (type(item).__name__, str(item)) == want
        else:
            assert_same(item, want)
    stream = txnhist.read_stream(records)
    assert_same(next(stream), reference(txnhist, records[0]))
    with pytest.raises(MappingApplyError, match="unknown code 'XYZ'"):
        next(stream)
    assert txnhist.read_many(records[:1] + records[2:3]) == [reference(txnhist, records[0]),
                                                             reference(txnhist, records[2])]
    with pytest.raises(ValueError, match="errors must be"):
        txnhist.read_stream(records, errors="skip")


def detail_bytes(txnhist) -> list[bytes]:
    codec = txnhist.codec()
    out = []
    for ex in txnhist.spec.examples:
        fields = txnhist.binding.root.fields
        values = coerce_record(ex.input, fields)
        out.append(codec.encode(values, fill_missing=True))
    raw = out[0]
    out.append(raw[:55] + "XXX".encode("cp037") + raw[58:])  # unknown currency: the mapping refuses
    out.append(raw[:39] + bytes.fromhex("000000000012540A") + raw[47:])  # bad sign nibble: the codec refuses
    out.append(raw[:138] + bytes.fromhex("F0F0F0F0F0F0F0F0FA") + raw[147:])  # bad TXD-FEE-AMT, a field not mapped
    out.append(raw[:55] + "JPY".encode("cp037") + raw[58:])  # -125.40 JPY: refused by Money
    whole = raw[:39] + bytes.fromhex("000000000012500D") + raw[47:55] + "JPY".encode("cp037") + raw[58:]
    out.append(whole[:47] + bytes.fromhex("000000000010000C") + whole[55:])  # -125.00 JPY, balance 100.00
    return out


def test_record_codec_decodes_bytes_exactly_like_decode_then_read(txnhist):
    codec = txnhist.codec()
    fused = txnhist.record_codec()
    assert fused.has_fast_path and fused.name == "TXNHIST-DETAIL" and fused.size == 200
    for raw in detail_bytes(txnhist):
        want = outcome(lambda r: txnhist.read(codec.decode(r)), raw)
        got = outcome(fused.decode, raw)
        if isinstance(want, tuple) and want[0] == "MappingApplyError":
            assert got[0] == "MappedRecordError" and want[1] in got[1]
        else:
            assert_same(got, want)
        if not isinstance(want, tuple):  # the fused function answers by itself
            assert_same(fused._fast(raw), want)
            assert_same(fused._fast(b"\x40" * 7 + raw + b"\x40", 7), want)
    # the whole stream API takes bytes too, and reports like read(codec.decode(raw))
    raws = detail_bytes(txnhist)
    items = list(txnhist.read_stream(raws, errors="yield"))
    for item, raw in zip(items, raws, strict=True):
        want = outcome(lambda r: txnhist.read(codec.decode(r)), raw)
        assert_same(outcome(lambda i: (_ for _ in ()).throw(i) if isinstance(i, Exception) else i, item), want)
    # a record shorter than the layout goes the slow way and says so
    with pytest.raises(RecordDecodeError, match="too short"):
        fused.decode(raws[0][:150])


def test_record_codec_in_read_records_turns_refusals_into_rejects(txnhist):
    book = load_copybook(COPYBOOKS / "TXNHIST.cpy")
    header = RecordCodec(book.record("TXNHIST-HEADER"))
    codecs = {"TXNHIST-HEADER": header, "TXNHIST-DETAIL": txnhist.record_codec(),
              "TXNHIST-TRAILER": RecordCodec(book.record("TXNHIST-TRAILER"))}
    selector = by_record_type(0, 1, {"H": "TXNHIST-HEADER", "D": "TXNHIST-DETAIL", "T": "TXNHIST-TRAILER"})
    raws = detail_bytes(txnhist)
    head = header.encode({"TXH-REC-TYPE": "H"}, fill_missing=True)
    data = head + b"".join(raws)
    items = list(read_records(io.BytesIO(data), MultiLayoutCodec(codecs, selector), lrecl=200))
    assert isinstance(items[0], Record) and items[0].layout == "TXNHIST-HEADER"
    codec = txnhist.codec()
    for item, raw in zip(items[1:], raws, strict=True):
        want = outcome(lambda r: txnhist.read(codec.decode(r)), raw)
        if not isinstance(want, tuple):
            assert isinstance(item, Record) and item.layout == "TXNHIST-DETAIL"
            assert_same(item.values, want)
        elif want[0] == "MappingApplyError":
            assert isinstance(item, Reject) and item.kind == "mapping" and item.record == raw
            assert item.reason.endswith(want[1])
        else:
            assert isinstance(item, Reject) and item.kind == "decode" and item.record == raw
    # the reject points at the failing rule's source field (the amount, whose currency is unknown)
    currency = next(i for i in items if isinstance(i, Reject) and "unknown currency" in i.reason)
    assert currency.field_path == "TXNHIST-DETAIL.TXD-TXN-AMT" and currency.record_offset == 39
    assert currency.offset == 200 + 4 * 200 + 39 and currency.data_hex == "00 00 00 00 00 12 54 0D"
    error = currency.to_error()
    assert isinstance(error, RecordDecodeError) and error.field_path == "TXNHIST-DETAIL.TXD-TXN-AMT"
    # alone, as a single-layout codec
    alone = list(read_records(io.BytesIO(b"".join(raws)), txnhist.record_codec()))
    assert [type(i).__name__ for i in alone] == [type(i).__name__ for i in items[1:]]


def test_mapped_record_error_keeps_the_mapping_error(txnhist):
    raw = detail_bytes(txnhist)[4]  # XXX currency
    with pytest.raises(MappedRecordError) as info:
        txnhist.record_codec().decode(raw)
    err = info.value
    assert isinstance(err.mapping_error, MappingApplyError) and err.reject_kind == "mapping"
    located = err.located(record_no=3, record_start=400)
    assert located.mapping_error is err.mapping_error and located.file_offset == 439


def test_fast_path_handles_every_transaction_shape(txnhist):
    """Card transactions (the other REDEFINES view), JPY amounts, a reversed status, no reference."""
    codec = txnhist.codec()
    base = coerce_record(txnhist.spec.examples[1].input, txnhist.binding.root.fields)  # the POS one
    fused = txnhist.record_codec()
    for change in ({}, {"TXD-STATUS": "R"}, {"TXD-CURR-CODE": "JPY", "TXD-TXN-AMT": Decimal("-41.00"),
                                             "TXD-RUN-BAL": Decimal("79489.00")}, {"TXD-REF": "R-1"}):
        raw = codec.encode({**base, **change}, fill_missing=True)
        want = txnhist.read(codec.decode(raw))
        got = fused._fast(raw)
        assert_same(got, want)
        assert isinstance(got, Transaction) and got.counterparty is None
        assert got.booked_at == dt.datetime(2026, 11, 27, 8, 53, 47, tzinfo=dt.UTC)
