"""The ledger's seed data and posting rules, on a real SQLite ledger (no mocks)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from mock_mainframe.ledger.codes import CURRENCIES, RC_OK, RC_REJECTED, RC_SYSTEM, REASONS
from mock_mainframe.ledger.legacy import from_cyymmdd, to_cyymmdd
from mock_mainframe.ledger.posting import PostingEngine, TransferRequest
from mock_mainframe.ledger.seed import DEFAULT_BUSINESS_DATE, HISTORY_DAYS, seed_sqlite
from mock_mainframe.ledger.store import TABLES, Ledger, ddl_text

CHAR_COL = re.compile(r"^\s*(\w+)\s+CHAR\((\d+)\)", re.M)


def char_widths() -> dict[str, dict[str, int]]:
    """CHAR(n) widths per table, read straight from the published DDL text."""
    out: dict[str, dict[str, int]] = {}
    for m in re.finditer(r"CREATE TABLE (\w+) \((.*?)\n\);", ddl_text(), re.S):
        out[m.group(1)] = {c: int(n) for c, n in CHAR_COL.findall(m.group(2))}
    return out


def find(ledger: Ledger, where: str, params: tuple = ()) -> dict:
    rows = ledger.query(f"SELECT * FROM ACCTMAST WHERE {where} ORDER BY ACCT_NO", params)
    assert rows, f"the seeded ledger has no account with {where}"
    return rows[0]


def active_pair(ledger: Ledger, currency: str = "USD", min_avail: Decimal = Decimal("1000")):
    rows = [r for r in ledger.query("SELECT * FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = ? "
                                    "ORDER BY ACCT_NO", (currency,)) if r["AVAIL_BAL"] >= min_avail]
    assert len(rows) >= 2, f"need two funded active {currency} accounts"
    return rows[0], rows[1]


def req(ref: str, src: dict | str, dst: dict | str, amount, currency: str | None = None,
        **kw) -> TransferRequest:
    s = src if isinstance(src, str) else src["ACCT_NO"].strip()
    d = dst if isinstance(dst, str) else dst["ACCT_NO"].strip()
    cur = currency or (src["CURR_CD"] if isinstance(src, dict) else "USD")
    return TransferRequest(ref, s, d, amount, cur, **kw)


def snapshot(ledger: Ledger) -> tuple:
    accts = ledger.query("SELECT * FROM ACCTMAST ORDER BY ACCT_NO")
    n_txn = ledger.query("SELECT COUNT(*) AS TXN_SEQ FROM TXNHIST")[0]["TXN_SEQ"]
    return accts, n_txn


def xferlog_count(ledger: Ledger) -> int:
    return ledger.query("SELECT COUNT(*) AS XFER_ID FROM XFERLOG")[0]["XFER_ID"]


# -- seed: determinism -------------------------------------------------------------------------
def test_same_seed_gives_byte_identical_files(tmp_path):
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    seed_sqlite(a, seed=11, customers=15)
    seed_sqlite(b, seed=11, customers=15)
    seed_sqlite(c, seed=12, customers=15)
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)}
    assert digest[a] == digest[b]
    assert digest[a] != digest[c]

    def dump(p: Path) -> list[str]:
        conn = sqlite3.connect(p)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    assert dump(a) == dump(b)
    assert dump(a) != dump(c)
    assert not list(tmp_path.glob("*.seeding")), "the temp file is renamed into place"


def test_different_business_date_or_size_differs(tmp_path):
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    seed_sqlite(a, seed=11, customers=10)
    seed_sqlite(b, seed=11, customers=11)
    seed_sqlite(c, seed=11, customers=10, business_date=dt.date(2025, 3, 31))
    assert len({p.read_bytes() for p in (a, b, c)}) == 3


# -- seed: shape -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded_rows(seeded_template) -> dict[str, list[dict]]:
    led = Ledger(seeded_template)
    try:
        return {t: led.query(f"SELECT * FROM {t}") for t in TABLES}  # noqa: S608
    finally:
        led.close()


def test_seed_customers_have_one_to_four_accounts_in_several_currencies(seeded_rows):
    per_cust = defaultdict(list)
    for a in seeded_rows["ACCTMAST"]:
        per_cust[a["CUST_NO"]].append(a)
    ctl = {r["CTL_KEY"].strip(): r["CTL_VALUE"].strip() for r in seeded_rows["CTLREC"]}
    assert len(seeded_rows["CUSTMAST"]) == int(ctl["CUSTS"]) > 0
    assert set(per_cust) == {c["CUST_NO"] for c in seeded_rows["CUSTMAST"]}
    assert all(1 <= len(v) <= 4 for v in per_cust.values())
    assert {len(v) for v in per_cust.values()} >= {1, 2, 3}
    currencies = {a["CURR_CD"] for a in seeded_rows["ACCTMAST"]}
    assert len(currencies) >= 4 and currencies <= set(CURRENCIES)
    assert {a["ACCT_STAT"] for a in seeded_rows["ACCTMAST"]} >= {"A", "C"}
    assert len({a["ACCT_NO"] for a in seeded_rows["ACCTMAST"]}) == len(seeded_rows["ACCTMAST"])


def test_seed_history_spans_two_years_ending_at_the_business_date(seeded_rows):
    bdate = DEFAULT_BUSINESS_DATE
    ctl = {r["CTL_KEY"].strip(): r["CTL_VALUE"].strip() for r in seeded_rows["CTLREC"]}
    assert ctl["BUSDATE"] == str(to_cyymmdd(bdate))
    post_dates = [from_cyymmdd(t["POST_DT"]) for t in seeded_rows["TXNHIST"]]
    assert max(post_dates) == bdate
    assert min(post_dates) >= bdate - dt.timedelta(days=HISTORY_DAYS)
    assert min(post_dates) <= bdate - dt.timedelta(days=HISTORY_DAYS - 31)
    assert all(from_cyymmdd(t["VALUE_DT"]) <= from_cyymmdd(t["POST_DT"]) for t in seeded_rows["TXNHIST"])


def test_seed_jpy_amounts_are_whole(seeded_rows):
    jpy_txn = [t for t in seeded_rows["TXNHIST"] if t["CURR_CD"] == "JPY"]
    jpy_acct = [a for a in seeded_rows["ACCTMAST"] if a["CURR_CD"] == "JPY"]
    assert jpy_txn and jpy_acct
    for t in jpy_txn:
        assert t["TXN_AMT"] == t["TXN_AMT"].to_integral_value()
        assert t["RUN_BAL"] == t["RUN_BAL"].to_integral_value()
    for a in jpy_acct:
        for col in ("LEDGER_BAL", "AVAIL_BAL", "HOLD_AMT"):
            assert a[col] == a[col].to_integral_value()


def test_seed_char_values_are_padded_to_the_ddl_widths(seeded_template, seeded_rows):
    widths = char_widths()
    assert set(widths) == set(TABLES)
    conn = sqlite3.connect(seeded_template)
    try:
        for table, cols in widths.items():
            for col, width in cols.items():
                bad = conn.execute(  # noqa: S608 - names from the DDL
                    f"SELECT COUNT(*) FROM {table} WHERE LENGTH({col}) != ? OR TYPEOF({col}) != 'text'",
                    (width,)).fetchone()[0]
                assert bad == 0, f"{table}.{col} not stored as CHAR({width})"
    finally:
        conn.close()
    # and some values really carry trailing blanks (not all columns are full)
    assert any(c["LAST_NAME"].endswith(" ") for c in seeded_rows["CUSTMAST"])
    assert all(len(t["TXN_DESC"]) == 40 for t in seeded_rows["TXNHIST"])


def test_seed_available_is_ledger_minus_hold(seeded_rows):
    accts = seeded_rows["ACCTMAST"]
    for a in accts:
        assert a["AVAIL_BAL"] == a["LEDGER_BAL"] - a["HOLD_AMT"]
        assert a["HOLD_AMT"] >= 0 and a["AVAIL_BAL"] >= 0
    assert any(a["HOLD_AMT"] > 0 for a in accts)
    for a in accts:
        if a["ACCT_STAT"] == "C":
            assert a["LEDGER_BAL"] == 0 and a["CLOSE_DT"] != 0
        else:
            assert a["CLOSE_DT"] == 0


def test_seed_running_balances_are_consistent_per_account(seeded_rows):
    by_acct = defaultdict(list)
    for t in seeded_rows["TXNHIST"]:
        by_acct[t["ACCT_NO"]].append(t)
    hist_start = DEFAULT_BUSINESS_DATE - dt.timedelta(days=HISTORY_DAYS)
    for a in seeded_rows["ACCTMAST"]:
        rows = sorted(by_acct.get(a["ACCT_NO"], []), key=lambda t: t["TXN_SEQ"])
        assert [t["TXN_SEQ"] for t in rows] == list(range(1, len(rows) + 1))
        assert a["LAST_SEQ"] == len(rows)
        if not rows:
            assert a["LEDGER_BAL"] == 0 and a["LAST_TXN_DT"] == 0
            continue
        signed = [t["TXN_AMT"] if t["DR_CR_IND"] == "C" else -t["TXN_AMT"] for t in rows]
        assert all(t["DR_CR_IND"] in "CD" and t["TXN_AMT"] > 0 for t in rows)
        for prev, cur, amt in zip(rows, rows[1:], signed[1:], strict=False):
            assert cur["RUN_BAL"] == prev["RUN_BAL"] + amt, (a["ACCT_NO"], cur["TXN_SEQ"])
        opening = rows[0]["RUN_BAL"] - signed[0]
        assert opening >= 0
        if from_cyymmdd(a["OPEN_DT"]) >= hist_start:
            assert opening == 0, "an account opened inside the history window starts at zero"
        assert all(t["RUN_BAL"] >= 0 for t in rows)
        assert rows[-1]["RUN_BAL"] == a["LEDGER_BAL"]
        assert rows[-1]["POST_DT"] == a["LAST_TXN_DT"]
        assert all(t["CURR_CD"] == a["CURR_CD"] for t in rows)


# -- posting: the happy path --------------------------------------------------------------------
def test_a_posting_writes_two_txnhist_rows_and_one_xferlog_row(ledger, engine):
    src, dst = active_pair(ledger)
    before_src, before_dst = ledger.account(src["ACCT_NO"]), ledger.account(dst["ACCT_NO"])
    n_log = xferlog_count(ledger)
    r = engine.post(req("REF-OK-1", src, dst, Decimal("123.45"), memo="rent november"))
    assert (r.return_code, r.reason_code, r.message) == (RC_OK, "", "POSTED")
    assert r.posted and r.xfer_id == n_log + 1
    after_src, after_dst = ledger.account(src["ACCT_NO"]), ledger.account(dst["ACCT_NO"])
    assert after_src["LEDGER_BAL"] == before_src["LEDGER_BAL"] - Decimal("123.45")
    assert after_src["AVAIL_BAL"] == before_src["AVAIL_BAL"] - Decimal("123.45")
    assert after_dst["LEDGER_BAL"] == before_dst["LEDGER_BAL"] + Decimal("123.45")
    assert after_src["LAST_SEQ"] == before_src["LAST_SEQ"] + 1 == r.debit_seq
    assert after_dst["LAST_SEQ"] == before_dst["LAST_SEQ"] + 1 == r.credit_seq
    assert after_src["LAST_TXN_DT"] == r.post_dt == to_cyymmdd(ledger.business_date())
    assert r.balances == {src["ACCT_NO"].strip(): after_src["AVAIL_BAL"],
                          dst["ACCT_NO"].strip(): after_dst["AVAIL_BAL"]}

    txns = ledger.query("SELECT * FROM TXNHIST WHERE TXN_REF = ? ORDER BY DR_CR_IND DESC",
                        ("REF-OK-1".ljust(16),))
    assert len(txns) == 2
    debit, credit = txns
    assert (debit["ACCT_NO"], debit["DR_CR_IND"], debit["TXN_CD"]) == (src["ACCT_NO"], "D", "TFO")
    assert (credit["ACCT_NO"], credit["DR_CR_IND"], credit["TXN_CD"]) == (dst["ACCT_NO"], "C", "TFI")
    assert debit["CNTR_ACCT"] == dst["ACCT_NO"] and credit["CNTR_ACCT"] == src["ACCT_NO"]
    assert debit["RUN_BAL"] == after_src["LEDGER_BAL"] and credit["RUN_BAL"] == after_dst["LEDGER_BAL"]
    assert debit["TXN_AMT"] == credit["TXN_AMT"] == Decimal("123.45")
    assert debit["TXN_DESC"] == "RENT NOVEMBER".ljust(40)
    assert debit["TXN_SEQ"] == r.debit_seq and credit["TXN_SEQ"] == r.credit_seq
    assert debit["CHANNEL"] == "MOB" and debit["TXN_STAT"] == "P"

    logs = ledger.transfers_by_ref("REF-OK-1")
    assert len(logs) == 1 and xferlog_count(ledger) == n_log + 1
    log = logs[0]
    assert (log["XFER_STAT"], log["RTN_CD"], log["RSN_CD"]) == ("P", RC_OK, "    ")
    assert log["XFER_AMT"] == Decimal("123.45") and log["XFER_ID"] == r.xfer_id
    assert log["FROM_ACCT"] == src["ACCT_NO"] and log["TO_ACCT"] == dst["ACCT_NO"]
    assert log["MEMO"] == "rent november".ljust(40)


def test_jpy_whole_amount_posts(ledger, engine):
    src, dst = active_pair(ledger, "JPY", min_avail=Decimal("5000"))
    r = engine.post(req("JPY-OK", src, dst, Decimal("1500")))
    assert r.return_code == RC_OK
    assert ledger.account(dst["ACCT_NO"])["LEDGER_BAL"] == dst["LEDGER_BAL"] + 1500


def test_a_reused_reference_posts_twice(ledger, engine):
    src, dst = active_pair(ledger)
    r1 = engine.post(req("DUP-REF", src, dst, Decimal("10.00")))
    r2 = engine.post(req("DUP-REF", src, dst, Decimal("10.00")))
    assert r1.return_code == r2.return_code == RC_OK
    assert r2.xfer_id == r1.xfer_id + 1
    assert ledger.account(src["ACCT_NO"])["LEDGER_BAL"] == src["LEDGER_BAL"] - Decimal("20.00")
    logs = ledger.transfers_by_ref("DUP-REF")
    assert [(x["XFER_ID"], x["XFER_STAT"]) for x in logs] == [(r1.xfer_id, "P"), (r2.xfer_id, "P")]
    assert len(ledger.query("SELECT * FROM TXNHIST WHERE TXN_REF = ?", ("DUP-REF".ljust(16),))) == 4


# -- posting: each reason code ------------------------------------------------------------------
def reject_cases(ledger: Ledger) -> dict[str, list[TransferRequest]]:
    src, dst = active_pair(ledger)
    eur, _ = active_pair(ledger, "EUR")
    jpy_a, jpy_b = active_pair(ledger, "JPY")
    dormant = find(ledger, "ACCT_STAT = 'D'")
    frozen = find(ledger, "ACCT_STAT = 'F'")
    closed = find(ledger, "ACCT_STAT = 'C'")
    poor = find(ledger, "ACCT_STAT = 'A' AND CURR_CD = 'USD' AND AVAIL_BAL < 20000")
    held = find(ledger, "ACCT_STAT = 'A' AND HOLD_AMT > 0 AND AVAIL_BAL < 24000"
                        " AND CURR_CD IN ('USD','EUR','GBP','CHF')")
    held_peer = find(ledger, "ACCT_STAT = 'A' AND CURR_CD = ? AND ACCT_NO != ?",
                     (held["CURR_CD"], held["ACCT_NO"]))
    return {
        "R001": [req("R001", "999999999999", dst, Decimal("1.00"), "USD"),
                 req("R001b", "1" * 13, dst, Decimal("1.00"), "USD")],  # too long to exist
        "R002": [req("R002", src, "000000000000", Decimal("1.00"))],
        "R003": [req("R003d", dormant, dst, Decimal("1.00")), req("R003f", frozen, dst, Decimal("1.00")),
                 req("R003c", closed, dst, Decimal("1.00"))],
        "R004": [req("R004d", src, dormant, Decimal("1.00"), "USD"),
                 req("R004f", src, frozen, Decimal("1.00"), "USD"),
                 req("R004c", src, closed, Decimal("1.00"), "USD")],
        "R005": [req("R005a", src, eur, Decimal("1.00"), "USD"),  # credit account in EUR
                 req("R005b", src, dst, Decimal("1.00"), "EUR"),  # both USD, request in EUR
                 req("R005c", src, dst, Decimal("1.00"), "XXX")],  # unknown currency
        "R006": [req("R006", poor, dst if poor["ACCT_NO"] != dst["ACCT_NO"] else src,
                     poor["AVAIL_BAL"] + Decimal("0.01")),
                 # the hold counts: more than available, less than the ledger balance
                 req("R006h", held, held_peer, held["AVAIL_BAL"] + Decimal("0.01"))],
        "R007": [req("R007", src, dst, Decimal("25000.01"))],
        "R008": [req("R008z", src, dst, Decimal("0")), req("R008n", src, dst, Decimal("-5.00")),
                 req("R008d", src, dst, Decimal("1.005")),
                 req("R008j", jpy_a, jpy_b, Decimal("100.50")),
                 req("R008nan", src, dst, Decimal("NaN")), req("R008big", src, dst, Decimal("1E13")),
                 req("R008s", src, dst, "twelve")],  # not a number at all (as off the wire)
        "R009": [req("R009", src, src, Decimal("1.00")),
                 req("R009b", src, src["ACCT_NO"].strip() + " ", Decimal("1.00"))],
        "R010": [req("", src, dst, Decimal("1.00")), req("   ", src, dst, Decimal("1.00")),
                 req("X" * 17, src, dst, Decimal("1.00")), req("BAD\tREF", src, dst, Decimal("1.00"))],
    }


def test_every_reason_code_has_a_triggering_request():
    assert {f"R{n:03d}" for n in range(1, 11)} <= set(REASONS)


@pytest.mark.parametrize("reason", [f"R{n:03d}" for n in range(1, 11)])
def test_rejection_reason_codes(ledger, engine, reason):
    for request in reject_cases(ledger)[reason]:
        before = snapshot(ledger)
        n_log = xferlog_count(ledger)
        r = engine.post(request)
        assert (r.return_code, r.reason_code) == (RC_REJECTED, reason), request
        assert r.message == REASONS[reason] and not r.posted
        assert snapshot(ledger) == before, "a rejection changes no balance and writes no TXNHIST"
        assert xferlog_count(ledger) == n_log + 1
        log = ledger.query("SELECT * FROM XFERLOG WHERE XFER_ID = ?", (r.xfer_id,))[0]
        assert (log["XFER_STAT"], log["RTN_CD"], log["RSN_CD"]) == ("R", RC_REJECTED, reason)
        assert log["XFER_REF"] == request.reference[:16].ljust(16)
        if reason != "R010":
            assert [x["XFER_ID"] for x in ledger.transfers_by_ref(request.reference)][-1] == r.xfer_id


def test_checks_run_in_the_documented_order(ledger, engine):
    src, dst = active_pair(ledger)
    closed = find(ledger, "ACCT_STAT = 'C'")
    # a bad reference wins over everything; a bad amount over missing accounts; ...
    assert engine.post(req("", "NOPE", "NOPE2", Decimal("-1"), "XXX")).reason_code == "R010"
    assert engine.post(req("O1", "NOPE", "NOPE2", Decimal("-1"), "USD")).reason_code == "R008"
    assert engine.post(req("O2", "NOPE", "NOPE", Decimal("1"), "USD")).reason_code == "R009"
    assert engine.post(req("O3", "NOPE", "NOPE2", Decimal("1"), "USD")).reason_code == "R001"
    assert engine.post(req("O4", closed, "NOPE2", Decimal("1"), "USD")).reason_code == "R002"
    # ... the limit is checked before the funds
    assert engine.post(req("O5", src, dst, src["AVAIL_BAL"] + 30000)).reason_code == "R007"


# -- system errors -------------------------------------------------------------------------------
def test_system_error_when_a_table_is_gone(ledger, engine):
    src, dst = active_pair(ledger)
    ledger.execute("DROP TABLE XFERLOG")
    before = snapshot(ledger)
    r = engine.post(req("SYS-1", src, dst, Decimal("5.00")))
    assert (r.return_code, r.reason_code) == (RC_SYSTEM, "")
    assert r.message.startswith("SYSTEM ERROR") and not r.posted
    assert snapshot(ledger) == before, "the transaction was rolled back"


def test_system_error_when_the_database_is_read_only(ledger, engine):
    """As root, chmod cannot make the file unwritable; query_only does it for the connection."""
    src, dst = active_pair(ledger)
    conn = ledger.connect()
    conn.execute("PRAGMA query_only = ON")
    before = snapshot(ledger)
    r = engine.post(req("SYS-2", src, dst, Decimal("5.00")))
    assert r.return_code == RC_SYSTEM
    assert snapshot(ledger) == before
    conn.execute("PRAGMA query_only = OFF")
    # the engine's connection is usable again: nothing was left half-open
    assert engine.post(req("SYS-3", src, dst, Decimal("5.00"))).return_code == RC_OK


def test_system_error_when_the_file_is_locked_by_another_writer(ledger):
    """A writer holding the lock past the busy timeout is a 0012 too (the DB said no)."""
    src, dst = active_pair(ledger)
    impatient = Ledger(ledger.path)
    try:
        conn = impatient.connect()
        conn.execute("PRAGMA busy_timeout = 50")
        blocker = sqlite3.connect(ledger.path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            r = PostingEngine(impatient).post(req("SYS-4", src, dst, Decimal("5.00")))
            assert r.return_code == RC_SYSTEM and "OperationalError" in r.message
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    finally:
        impatient.close()
    assert ledger.transfers_by_ref("SYS-4") == []


def test_memo_that_grows_when_upper_cased_still_fits_txn_desc(ledger, engine):
    """'ß'.upper() is 'SS': cutting before upper-casing overflowed CHAR(40) into a 0012."""
    src, dst = active_pair(ledger)
    r = engine.post(req("MEMO-SZ", src, dst, Decimal("1.00"), memo="Straße " * 6))
    assert r.return_code == RC_OK, r.message
    debit = ledger.query("SELECT * FROM TXNHIST WHERE ACCT_NO = ? AND TXN_SEQ = ?",
                         (src["ACCT_NO"], r.debit_seq))[0]
    assert debit["TXN_DESC"] == ("STRASSE " * 6)[:40]
    assert ledger.transfers_by_ref("MEMO-SZ")[0]["MEMO"] == ("Straße " * 6)[:40]
