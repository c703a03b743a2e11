"""The payment inbox: PAYIN files built here from the copybook (not with the mock's codec),
posted through the ledger, acknowledged in PAYACK files read back here by plain slicing."""

from __future__ import annotations

import os
import time
from decimal import Decimal

import pytest

from mock_mainframe.batch.payments import PaymentInbox
from mock_mainframe.config import MockConfig

BLANK = b"\x40"


# -- a tiny PAYIN writer and PAYACK reader, from PAYIN.cpy / PAYACK.cpy ----------------------------
def pack(amount: Decimal, digits: int = 15, scale: int = 2) -> bytes:
    n = int(amount.scaleb(scale))
    return bytes.fromhex(str(abs(n)).rjust(digits, "0") + ("d" if n < 0 else "c"))


def unpack(b: bytes) -> int:
    return int(b.hex()[:-1])


def x(value: str, n: int) -> bytes:
    assert len(value) <= n
    return value.ljust(n).encode("cp037")


def z(value: int, n: int) -> bytes:
    return str(value).rjust(n, "0").encode("cp037")


def rec(*parts: bytes, lrecl: int = 120) -> bytes:
    body = b"".join(parts)
    assert len(body) <= lrecl
    return body + BLANK * (lrecl - len(body))


def payin_header(seq: int = 1) -> bytes:
    return rec(x("H", 1), x("PAYIN", 8), z(1261126, 7), z(seq, 6), x("CBRIDGE", 8))


def payin_detail(ref: str, debit: str, credit: str, amount: Decimal | bytes, curr: str = "USD",
                 value_date: bytes = b"", rtype: str = "D", memo: str = "BATCH PAYMENT") -> bytes:
    amt = amount if isinstance(amount, bytes) else pack(amount)
    return rec(x(rtype, 1), x(ref, 16), x(debit, 12), x(credit, 12), amt, x(curr, 3),
               value_date or z(1261126, 7), x(memo, 40))


def payin_trailer(count: int, total: Decimal) -> bytes:
    return rec(x("T", 1), z(count, 9), pack(total, 17))


def payin_file(details: list[bytes], total: Decimal | None = None, count: int | None = None) -> bytes:
    if total is None:
        total = sum((Decimal(unpack(d[41:49])).scaleb(-2) * (-1 if d[48] & 0xF == 0xD else 1)
                     for d in details), Decimal("0.00"))
    return payin_header() + b"".join(details) + payin_trailer(
        len(details) if count is None else count, total)


def read_ack(data: bytes) -> dict:
    assert len(data) % 100 == 0
    recs = [data[i:i + 100] for i in range(0, len(data), 100)]
    t = lambda b: b.decode("cp037")  # noqa: E731
    h, tr = recs[0], recs[-1]
    return {
        "file_id": t(h[1:9]), "seq": int(t(h[16:22])), "in_file": t(h[22:52]).strip(),
        "status": t(h[52:53]), "reason": t(h[53:57]).strip(), "reason_text": t(h[57:97]).strip(),
        "details": [{"rec_no": int(t(r[1:8])), "ref": t(r[8:24]).strip(), "status": t(r[24:25]),
                     "rc": t(r[25:29]), "reason": t(r[29:33]).strip(), "text": t(r[33:73]).strip(),
                     "xfer_id": unpack(r[73:80])} for r in recs[1:-1]],
        "trailer": {"type": t(tr[0:1]), "count": int(t(tr[1:10])), "accepted": int(t(tr[10:19])),
                    "rejected": int(t(tr[19:28])), "total": Decimal(unpack(tr[28:37])).scaleb(-2)},
    }


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path) -> MockConfig:
    cfg = MockConfig(data_dir=tmp_path / "mock", sftp_port=0)
    cfg.inbox.mkdir(parents=True)
    cfg.outbox.mkdir(parents=True)
    return cfg


@pytest.fixture
def inbox(config, ledger, engine) -> PaymentInbox:
    box = PaymentInbox(config, ledger, engine, poll_interval=0.1)
    yield box
    box.stop()


@pytest.fixture
def accounts(ledger) -> tuple[str, str, str]:
    rows = ledger.query("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'USD' "
                        "AND AVAIL_BAL > 100 ORDER BY ACCT_NO LIMIT 3")
    assert len(rows) == 3
    return tuple(r["ACCT_NO"].strip() for r in rows)


def balance(ledger, acct: str) -> Decimal:
    return ledger.account(acct)["LEDGER_BAL"]


def xfer_count(ledger) -> int:
    return len(ledger.query("SELECT XFER_ID FROM XFERLOG"))


# -- tests -----------------------------------------------------------------------------------------
def test_bad_records_are_rejected_one_by_one_and_good_ones_post(config, inbox, ledger, accounts):
    a, b, c = accounts
    before = {k: balance(ledger, k) for k in accounts}
    details = [
        payin_detail("GOOD-0001", a, b, Decimal("10.00")),
        payin_detail("BADPACKED", a, b, bytes.fromhex("000000000001a00c")),
        payin_detail("BADVALDATE", a, b, Decimal("1.00"), value_date=x("2611XX", 7)),
        payin_detail("BADTYPE", a, b, Decimal("1.00"), rtype="X"),
        payin_detail("NOACCOUNT", "999999999999", b, Decimal("1.00")),
        payin_detail("BADCURR", a, b, Decimal("1.00"), curr="XYZ"),
        payin_detail("GOOD-0002", b, c, Decimal("5.25")),
        payin_detail("TOOMUCH", c, a, Decimal("24000.00")),
    ]
    # the control total covers every amount that is valid packed decimal
    total = Decimal("10.00") + 4 * Decimal("1.00") + Decimal("5.25") + Decimal("24000.00")
    (config.inbox / "PAYIN.D261126.S000001").write_bytes(payin_file(details, total))

    [result] = inbox.scan(force=True)
    assert result.status == "A"
    ack = read_ack((config.outbox / "PAYACK.D261126.S000001").read_bytes())
    assert ack["file_id"] == "PAYACK  " and ack["status"] == "A" and ack["reason"] == ""
    assert ack["in_file"] == "PAYIN.D261126.S000001" and ack["seq"] == 1
    got = {d["ref"]: (d["status"], d["rc"], d["reason"]) for d in ack["details"]}
    assert got == {
        "GOOD-0001": ("A", "0000", ""),
        "BADPACKED": ("R", "0008", "V002"),
        "BADVALDATE": ("R", "0008", "V003"),
        "BADTYPE": ("R", "0008", "V001"),
        "NOACCOUNT": ("R", "0008", "R001"),
        "BADCURR": ("R", "0008", "V004"),
        "GOOD-0002": ("A", "0000", ""),
        "TOOMUCH": ("R", "0008", "R006" if before[c] < Decimal("24000") else "R007"),
    }
    assert [d["rec_no"] for d in ack["details"]] == list(range(2, 10))
    assert all(d["xfer_id"] > 0 for d in ack["details"] if d["status"] == "A")
    assert ack["trailer"] == {"type": "T", "count": 8, "accepted": 2, "rejected": 6,
                              "total": Decimal("15.25")}
    assert balance(ledger, a) == before[a] - Decimal("10.00")
    assert balance(ledger, b) == before[b] + Decimal("10.00") - Decimal("5.25")
    assert balance(ledger, c) == before[c] + Decimal("5.25")
    posted = ledger.transfers_by_ref("GOOD-0001")
    assert [(p["XFER_STAT"], p["CHANNEL"]) for p in posted] == [("P", "BAT")]
    assert (config.inbox / "processed" / "PAYIN.D261126.S000001").exists()
    assert not (config.inbox / "PAYIN.D261126.S000001").exists()


@pytest.mark.parametrize("defect,reason", [
    ("count", "F003"), ("total", "F004"), ("no_trailer", "F002"), ("no_header", "F001"),
    ("length", "F005"), ("misplaced", "F006"),
])
def test_file_level_defects_reject_the_whole_file(config, inbox, ledger, accounts, defect, reason):
    a, b, _ = accounts
    before = (balance(ledger, a), balance(ledger, b), xfer_count(ledger))
    details = [payin_detail(f"REF{i:04d}", a, b, Decimal("1.00")) for i in range(3)]
    data = {
        "count": lambda: payin_file(details, count=4),
        "total": lambda: payin_file(details, total=Decimal("3.01")),
        "no_trailer": lambda: payin_header() + b"".join(details),
        "no_header": lambda: b"".join(details) + payin_trailer(3, Decimal("3.00")),
        "length": lambda: payin_file(details)[:-7],
        "misplaced": lambda: payin_file([details[0], payin_header(), *details[1:]]),
    }[defect]()
    (config.inbox / "PAYIN.BAD").write_bytes(data)
    [result] = inbox.scan(force=True)
    assert result.status == "R" and result.reason_code == reason
    ack = read_ack((config.outbox / "PAYACK.BAD").read_bytes())
    assert ack["status"] == "R" and ack["reason"] == reason and ack["reason_text"]
    assert ack["details"], "every payment record is listed"
    assert all(d["status"] == "R" and d["reason"] == reason for d in ack["details"])
    assert ack["trailer"]["accepted"] == 0 and ack["trailer"]["total"] == 0
    assert (balance(ledger, a), balance(ledger, b), xfer_count(ledger)) == before, "nothing posted"
    assert (config.inbox / "rejected" / "PAYIN.BAD").exists()
    assert not (config.inbox / "processed" / "PAYIN.BAD").exists()


def test_incomplete_names_are_never_taken(config, inbox, ledger, accounts):
    a, b, _ = accounts
    data = payin_file([payin_detail("TMP1", a, b, Decimal("1.00"))])
    names = [".PAYIN.X", "PAYIN.X.tmp", "PAYIN.X.part", "PAYIN.X.filepart", "PAYIN.X.TMP"]
    for name in names:
        (config.inbox / name).write_bytes(data)
    assert inbox.scan(force=True) == []
    assert sorted(p.name for p in config.inbox.iterdir() if p.is_file()) == sorted(names)
    assert not list(config.outbox.iterdir())


def test_held_file_waits_for_release(config, inbox, accounts):
    a, b, _ = accounts
    path = config.inbox / "PAYIN.HELD"
    path.write_bytes(payin_file([payin_detail("HELD1", a, b, Decimal("1.00"))]))
    inbox.hold(path)
    assert inbox.scan(force=True) == []
    inbox.release(path)
    assert [r.status for r in inbox.scan(force=True)] == ["A"]


def test_watcher_polls_for_files_that_arrive_without_notice(config, inbox, accounts):
    a, b, _ = accounts
    inbox.start()
    tmp = config.inbox / ".upload.tmp"
    tmp.write_bytes(payin_file([payin_detail("POLL1", a, b, Decimal("2.00"))]))
    os.replace(tmp, config.inbox / "PAYIN.POLL")  # e.g. a local copy: no SFTP rename to hear
    ack = config.outbox / "PAYACK.POLL"
    deadline = time.monotonic() + 10
    while not ack.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_ack(ack.read_bytes())["trailer"]["accepted"] == 1


def test_restart_does_not_post_again_and_duplicates_are_refused(config, ledger, engine, accounts):
    a, b, _ = accounts
    data = payin_file([payin_detail("ONCE0001", a, b, Decimal("3.00"))])
    (config.inbox / "PAYIN.ONCE").write_bytes(data)
    first = PaymentInbox(config, ledger, engine)
    assert [r.status for r in first.scan(force=True)] == ["A"]
    ack_bytes = (config.outbox / "PAYACK.ONCE").read_bytes()

    restarted = PaymentInbox(config, ledger, engine)  # a new process over the same folders
    assert restarted.scan(force=True) == []
    (config.inbox / "PAYIN.ONCE").write_bytes(data)  # the sender uploads the same file again
    [dup] = restarted.scan(force=True)
    assert dup.status == "D" and dup.moved_to.parent.name == "rejected"
    assert len(ledger.transfers_by_ref("ONCE0001")) == 1, "posted exactly once"
    assert (config.outbox / "PAYACK.ONCE").read_bytes() == ack_bytes, "the first ack stays"
