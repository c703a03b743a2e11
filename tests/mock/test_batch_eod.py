"""End-of-day files, read back with a tiny decoder written here from the copybooks alone
(plain slicing, cp037 and a 10-line COMP-3 unpacker): nothing from ``mock_mainframe.batch`` is
used to read them, so a bug shared by the writer and its own codec cannot hide."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import pytest

from mock_mainframe.batch.eod import EodWriter
from mock_mainframe.config import MockConfig
from mock_mainframe.faults import FaultRule
from mock_mainframe.ledger.legacy import to_cyymmdd
from mock_mainframe.ledger.posting import TransferRequest
from mock_mainframe.ledger.store import Ledger

LRECL = 200


# -- the tiny independent decoder -------------------------------------------------------------
def unpack(b: bytes, scale: int = 0) -> Decimal:
    """COMP-3: two decimal digits a byte, the last nibble the sign (C/F +, D -)."""
    nibbles = b.hex()
    digits, sign = nibbles[:-1], nibbles[-1]
    if not digits.isdigit() or sign not in "cdf":
        raise ValueError(f"bad packed decimal {nibbles}")
    n = int(digits)
    return Decimal(-n if sign == "d" else n).scaleb(-scale)


def unzone(b: bytes, scale: int = 0) -> Decimal:
    """Zoned DISPLAY, the sign overpunched in the zone of the last byte (D = negative)."""
    if any(x >> 4 != 0xF for x in b[:-1]) or any(x & 0xF > 9 for x in b):
        raise ValueError(f"bad zoned decimal {b.hex()}")
    n = int("".join(str(x & 0xF) for x in b))
    return Decimal(-n if b[-1] >> 4 == 0xD else n).scaleb(-scale)


def text(b: bytes) -> str:
    return b.decode("cp037")


def records(data: bytes) -> list[bytes]:
    assert len(data) % LRECL == 0
    return [data[i:i + LRECL] for i in range(0, len(data), LRECL)]


def header(r: bytes) -> dict:
    return {"type": text(r[0:1]), "file_id": text(r[1:9]), "date": int(text(r[9:16])),
            "seq": int(text(r[16:22])), "create_date": int(text(r[22:29])),
            "create_time": int(text(r[29:35])), "source": text(r[35:43]), "filler": r[43:]}


def detail(r: bytes) -> dict:
    return {"type": text(r[0:1]), "ACCT_NO": text(r[1:13]), "TXN_SEQ": int(unpack(r[13:18])),
            "POST_DT": int(text(r[18:25])), "POST_TM": int(text(r[25:31])),
            "VALUE_DT": int(unpack(r[31:35])), "TXN_CD": text(r[35:38]), "DR_CR_IND": text(r[38:39]),
            "amount": unpack(r[39:47], 2), "RUN_BAL": unpack(r[47:55], 2), "CURR_CD": text(r[55:58]),
            "TXN_DESC": text(r[58:98]), "TXN_REF": text(r[98:114]), "CHANNEL": text(r[114:117]),
            "TXN_STAT": text(r[117:118]), "cntr": r[118:138], "fee": unzone(r[138:147], 2),
            "filler": r[147:]}


def trailer(r: bytes) -> dict:
    return {"type": text(r[0:1]), "count": int(text(r[1:10])), "ctl": unpack(r[10:19], 2),
            "debits": unpack(r[19:28], 2), "credits": unpack(r[28:37], 2), "filler": r[37:]}


def stmt_records(data: bytes) -> list[dict]:
    out, pos = [], 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 2], "big")
        assert data[pos + 2:pos + 4] == b"\x00\x00", "RDW bytes 3-4 must be zero"
        r = data[pos + 4:pos + length]
        count = int.from_bytes(r[38:40], "big", signed=True)
        assert length == 4 + 40 + 44 * count, "RDW length disagrees with STMT-LINE-COUNT"
        lines = [r[40 + 44 * i:40 + 44 * (i + 1)] for i in range(count)]
        out.append({"acct": text(r[0:12]), "date": int(text(r[12:19])), "curr": text(r[19:22]),
                    "open": unpack(r[22:30], 2), "close": unpack(r[30:38], 2), "count": count,
                    "lines": [(int(text(ln[0:7])), text(ln[7:37]), unpack(ln[37:44], 2))
                              for ln in lines]})
        pos += length
    assert pos == len(data)
    return out


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path) -> MockConfig:
    return MockConfig(data_dir=tmp_path / "mock", sftp_port=0)


@pytest.fixture
def writer(config, ledger, faults) -> EodWriter:
    return EodWriter(config, ledger, faults)


@pytest.fixture
def day(ledger) -> dt.date:
    d = ledger.business_date() - dt.timedelta(days=1)
    assert len(list(ledger.transactions_on(to_cyymmdd(d)))) > 5, "the seeded day has activity"
    return d


def signed(row: dict) -> Decimal:
    return -row["TXN_AMT"] if row["DR_CR_IND"] == "D" else row["TXN_AMT"]


# -- TXNHIST ---------------------------------------------------------------------------------------
def test_txnhist_header_and_trailer_match_the_details(writer, day):
    path = writer.write_day(day)[0]
    assert path.name == f"TXNHIST.D{day:%y%m%d}"
    recs = records(path.read_bytes())
    h, t = header(recs[0]), trailer(recs[-1])
    details = [detail(r) for r in recs[1:-1]]
    assert h["type"] == "H" and h["file_id"] == "TXNHIST " and h["source"] == "COREBNK1"
    assert h["date"] == h["create_date"] == to_cyymmdd(day) and h["create_time"] == 220000
    assert h["seq"] == (day - dt.date(2000, 1, 1)).days
    assert t["type"] == "T" and all(d["type"] == "D" for d in details)
    assert t["count"] == len(details)
    debits = sum(d["amount"] for d in details if d["DR_CR_IND"] == "D")
    credits = sum(d["amount"] for d in details if d["DR_CR_IND"] == "C")
    assert t["debits"] == debits < 0 < credits == t["credits"]
    assert t["ctl"] == sum(d["amount"] for d in details) == debits + credits


def test_txnhist_details_equal_the_ledger_rows(writer, ledger, day):
    recs = records(writer.write_day(day)[0].read_bytes())
    rows = list(ledger.transactions_on(to_cyymmdd(day)))
    details = [detail(r) for r in recs[1:-1]]
    assert len(details) == len(rows)
    for d, row in zip(details, rows, strict=True):
        for key in ("ACCT_NO", "TXN_SEQ", "POST_DT", "POST_TM", "VALUE_DT", "TXN_CD", "DR_CR_IND",
                    "RUN_BAL", "CURR_CD", "TXN_DESC", "TXN_REF", "CHANNEL", "TXN_STAT"):
            assert d[key] == row[key], (key, row)
        assert d["amount"] == signed(row)
        assert (d["amount"] < 0) == (row["DR_CR_IND"] == "D")
        assert d["fee"] == (signed(row) if row["TXN_CD"] == "FEE" else 0)
        if row["TXN_CD"] == "POS":  # the CARD-INFO view of the REDEFINES
            masked, mcc = text(d["cntr"][:16]), text(d["cntr"][16:])
            assert masked[6:12] == "******" and masked[12:] == row["ACCT_NO"].strip()[-4:]
            assert mcc.isdigit()
        else:
            assert text(d["cntr"][:12]) == row["CNTR_ACCT"]
            assert text(d["cntr"][12:]) == ("CBRGUS33" if row["CNTR_ACCT"].strip() else " " * 8)
    assert any(row["TXN_CD"] == "POS" for row in rows), "the day exercises the card view"


def test_txnhist_is_valid_cp037(writer, day):
    data = writer.write_day(day)[0].read_bytes()
    recs = records(data)
    x_fields = [(1, 13), (35, 39), (55, 58), (58, 98), (98, 114), (114, 118)]
    for r in recs[1:-1]:
        for a, b in x_fields:
            value = text(r[a:b])
            assert value.isprintable(), value
            assert value.encode("cp037") == r[a:b]  # text round-trips byte for byte
        assert detail(r)["filler"] == b"\x40" * 53, "FILLER is EBCDIC blanks"
    assert header(recs[0])["filler"] == b"\x40" * 157
    assert trailer(recs[-1])["filler"] == b"\x40" * 163
    assert b"\n" not in data and header(recs[0])["file_id"] == "TXNHIST "


def test_transfers_posted_today_appear_at_close_of_day(writer, ledger, engine):
    usd = ledger.query("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'USD' "
                       "ORDER BY AVAIL_BAL DESC LIMIT 2")
    a, b = (r["ACCT_NO"].strip() for r in usd)
    res = engine.post(TransferRequest("EODTEST000000001", a, b, Decimal("12.34"), "USD", "EOD TEST"))
    assert res.posted
    today = ledger.business_date()
    paths = writer.close_business_day()
    assert [p.name for p in paths] == [f"TXNHIST.D{today:%y%m%d}", f"STMT.D{today:%y%m%d}"]
    assert ledger.business_date() == today + dt.timedelta(days=1)
    mine = [detail(r) for r in records(paths[0].read_bytes())[1:-1]
            if text(r[98:114]) == "EODTEST000000001"]
    assert sorted((d["TXN_CD"], d["amount"]) for d in mine) == [("TFI", Decimal("12.34")),
                                                              ("TFO", Decimal("-12.34"))]
    tfo = next(d for d in mine if d["TXN_CD"] == "TFO")
    assert text(tfo["cntr"]) == b.ljust(12) + "CBRGUS33" and tfo["CHANNEL"] == "MOB"


# -- STMT ------------------------------------------------------------------------------------------
def test_stmt_rdw_and_odo_decode_and_balance(writer, ledger, day):
    stmts = stmt_records(writer.write_day(day)[1].read_bytes())
    rows = list(ledger.transactions_on(to_cyymmdd(day)))
    by_acct: dict[str, list] = {}
    for row in rows:
        by_acct.setdefault(row["ACCT_NO"], []).append(row)
    assert [s["acct"] for s in stmts] == sorted(by_acct)
    for s in stmts:
        acct_rows = by_acct[s["acct"]]
        assert s["date"] == to_cyymmdd(day) and s["curr"] == acct_rows[0]["CURR_CD"]
        assert s["count"] == len(acct_rows)
        assert s["lines"] == [(r["VALUE_DT"], r["TXN_DESC"][:30], signed(r)) for r in acct_rows]
        assert s["close"] == acct_rows[-1]["RUN_BAL"]
        assert s["open"] + sum(amount for _, _, amount in s["lines"]) == s["close"]


# -- files, determinism, day handling --------------------------------------------------------------
def test_same_ledger_gives_the_same_bytes(seeded_template, tmp_path, faults, day):
    outputs = []
    for n in (1, 2):
        path = tmp_path / f"ledger{n}.db"
        shutil.copyfile(seeded_template, path)
        led = Ledger(path)
        try:
            cfg = MockConfig(data_dir=tmp_path / f"mock{n}")
            files = EodWriter(cfg, led, faults).write_recent(3)
            outputs.append([(p.name, p.read_bytes()) for p in files])
        finally:
            led.close()
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 6


def test_write_day_keeps_existing_files_unless_forced(writer, config, day):
    first = writer.write_day(day)
    assert sorted(p.name for p in config.outbox.iterdir()) == sorted(p.name for p in first)
    first[0].write_bytes(b"SENTINEL")
    writer.write_day(day)
    assert first[0].read_bytes() == b"SENTINEL"
    writer.write_day(day, force=True)
    assert first[0].read_bytes()[:1] == "H".encode("cp037")
    assert not [p for p in config.outbox.iterdir() if p.name.startswith(".")], "no temp files left"


def test_write_recent_writes_the_days_before_the_business_date(writer, ledger):
    today = ledger.business_date()
    names = [p.name for p in writer.write_recent(3)]
    expect = []
    for back in (3, 2, 1):
        d = today - dt.timedelta(days=back)
        expect += [f"TXNHIST.D{d:%y%m%d}", f"STMT.D{d:%y%m%d}"]
    assert names == expect


# -- injected corruption ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bad_packed", "wrong_count", "wrong_total", "truncated"])
def test_txnhist_corruption(writer, faults, ledger, day, kind):
    faults.add_rule(FaultRule(face="batch", corrupt=kind, remaining=1))
    txnhist, stmt = writer.write_day(day)
    data = txnhist.read_bytes()
    stmt_records(stmt.read_bytes())  # the rule was used up by the first file: STMT is clean
    n_rows = len(list(ledger.transactions_on(to_cyymmdd(day))))
    if kind == "truncated":
        assert len(data) % LRECL == LRECL // 2, "the file ends halfway through a record"
        assert len(data) == (n_rows + 1) * LRECL + LRECL // 2
        with pytest.raises(AssertionError):
            records(data)
        return
    recs = records(data)
    t = trailer(recs[-1])
    if kind == "bad_packed":
        with pytest.raises(ValueError, match="bad packed"):
            detail(recs[1])
        assert recs[1][39] >> 4 == 0xA
        for r in recs[2:-1]:
            detail(r)  # only the first detail is damaged
        return
    details = [detail(r) for r in recs[1:-1]]
    total = sum(d["amount"] for d in details)
    if kind == "wrong_count":
        assert t["count"] == len(details) + 1 and t["ctl"] == total
    else:
        assert t["count"] == len(details) and t["ctl"] == total + Decimal("0.01")
        assert t["debits"] + t["credits"] == total


@pytest.mark.parametrize("kind", ["bad_packed", "wrong_count", "wrong_total", "truncated"])
def test_stmt_corruption(writer, faults, day, kind):
    faults.add_rule(FaultRule(face="batch", corrupt=kind, remaining=2))  # TXNHIST, then STMT
    data = writer.write_day(day)[1].read_bytes()
    if kind == "truncated":
        with pytest.raises((AssertionError, ValueError)):
            stmt_records(data)
        clean = EodWriter(writer.config, writer.ledger).write_day(day, force=True)[1].read_bytes()
        assert clean.startswith(data) and len(clean) > len(data)
        return
    if kind == "wrong_count":
        with pytest.raises(AssertionError, match="RDW length disagrees"):
            stmt_records(data)
        return
    if kind == "bad_packed":
        with pytest.raises(ValueError, match="bad packed"):
            stmt_records(data)
        return
    first = stmt_records(data)[0]
    assert first["open"] + sum(a for _, _, a in first["lines"]) == first["close"] - Decimal("0.01")
