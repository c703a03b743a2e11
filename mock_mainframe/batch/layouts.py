"""The batch record layouts in Python, kept in step with ``mock_mainframe/copybooks/*.cpy``.

The copybooks are the published contract; these tables are what the mock's writer and reader
use. ``tests/mock/test_batch_copybooks.py`` parses the .cpy files and checks every field's name,
offset and length against these tables, so the two cannot drift apart silently.
"""

from __future__ import annotations

from .ebcdic import Layout, Redefines, filler, halfword, packed, x, zoned

# -- TXNHIST.cpy: end-of-day transaction history (RECFM=FB, LRECL=200) --------------------------
TXNHIST_LRECL = 200

TXNHIST_HEADER = Layout("TXNHIST-HEADER", TXNHIST_LRECL, [
    x("TXH-REC-TYPE", 1),
    x("TXH-FILE-ID", 8),
    zoned("TXH-FILE-DATE", 7),
    zoned("TXH-SEQ-NO", 6),
    zoned("TXH-CREATE-DATE", 7),
    zoned("TXH-CREATE-TIME", 6),
    x("TXH-SOURCE-SYS", 8),
    filler(157),
])

TXNHIST_DETAIL = Layout("TXNHIST-DETAIL", TXNHIST_LRECL, [
    x("TXD-REC-TYPE", 1),
    x("TXD-ACCT-NO", 12),
    packed("TXD-TXN-SEQ", 9),
    zoned("TXD-POST-DATE", 7),
    zoned("TXD-POST-TIME", 6),
    packed("TXD-VALUE-DATE", 7),
    x("TXD-TXN-CODE", 3),
    x("TXD-DR-CR-IND", 1),
    packed("TXD-TXN-AMT", 15, 2, signed=True),
    packed("TXD-RUN-BAL", 15, 2, signed=True),
    x("TXD-CURR-CODE", 3),
    x("TXD-DESC", 40),
    x("TXD-REF", 16),
    x("TXD-CHANNEL", 3),
    x("TXD-STATUS", 1),
    x("TXD-CNTR-ACCT", 12, variant="CNTR"),
    x("TXD-CNTR-BANK", 8, variant="CNTR"),
    Redefines("TXD-CNTR-ACCT"),
    x("TXD-CARD-MASKED", 16, variant="CARD"),
    zoned("TXD-CARD-MCC", 4, variant="CARD"),
    zoned("TXD-FEE-AMT", 9, 2, signed=True),
    filler(53),
])

TXNHIST_TRAILER = Layout("TXNHIST-TRAILER", TXNHIST_LRECL, [
    x("TXT-REC-TYPE", 1),
    zoned("TXT-REC-COUNT", 9),
    packed("TXT-CTL-TOTAL", 17, 2, signed=True),
    packed("TXT-DEBIT-TOTAL", 17, 2, signed=True),
    packed("TXT-CREDIT-TOTAL", 17, 2, signed=True),
    filler(163),
])

# -- STMT.cpy: daily statement (RECFM=VB; each record = 4-byte RDW + fixed part + lines) -------
RDW_LENGTH = 4
STMT_MAX_LINES = 200

STMT_FIXED = Layout("STMT-RECORD", 40, [
    x("STMT-ACCT-NO", 12),
    zoned("STMT-PERIOD-DATE", 7),
    x("STMT-CURR-CODE", 3),
    packed("STMT-OPEN-BAL", 15, 2, signed=True),
    packed("STMT-CLOSE-BAL", 15, 2, signed=True),
    halfword("STMT-LINE-COUNT"),
])

STMT_LINE = Layout("STMT-LINE", 44, [
    zoned("STMT-LINE-DATE", 7),
    x("STMT-LINE-DESC", 30),
    packed("STMT-LINE-AMT", 13, 2, signed=True),
])

STMT_MAX_RECORD = STMT_FIXED.length + STMT_MAX_LINES * STMT_LINE.length  # 8840 bytes of data
STMT_LRECL = RDW_LENGTH + STMT_MAX_RECORD  # 8844: a VB LRECL counts the RDW

# -- PAYIN.cpy: payment batch uploaded by the bank's side (RECFM=FB, LRECL=120) ----------------
PAYIN_LRECL = 120

PAYIN_HEADER = Layout("PAYIN-HEADER", PAYIN_LRECL, [
    x("PIH-REC-TYPE", 1),
    x("PIH-FILE-ID", 8),
    zoned("PIH-FILE-DATE", 7),
    zoned("PIH-SEQ-NO", 6),
    x("PIH-SENDER", 8),
    filler(90),
])

PAYIN_DETAIL = Layout("PAYIN-DETAIL", PAYIN_LRECL, [
    x("PID-REC-TYPE", 1),
    x("PID-TXN-REF", 16),
    x("PID-DEBIT-ACCT", 12),
    x("PID-CREDIT-ACCT", 12),
    packed("PID-AMOUNT", 15, 2, signed=True),
    x("PID-CURR-CODE", 3),
    zoned("PID-VALUE-DATE", 7),
    x("PID-MEMO", 40),
    filler(21),
])

PAYIN_TRAILER = Layout("PAYIN-TRAILER", PAYIN_LRECL, [
    x("PIT-REC-TYPE", 1),
    zoned("PIT-REC-COUNT", 9),
    packed("PIT-CTL-TOTAL", 17, 2, signed=True),
    filler(101),
])

# -- PAYACK.cpy: acknowledgment written to the outbox (RECFM=FB, LRECL=100) ---------------------
PAYACK_LRECL = 100

PAYACK_HEADER = Layout("PAYACK-HEADER", PAYACK_LRECL, [
    x("PAH-REC-TYPE", 1),
    x("PAH-FILE-ID", 8),
    zoned("PAH-FILE-DATE", 7),
    zoned("PAH-SEQ-NO", 6),
    x("PAH-IN-FILE", 30),
    x("PAH-FILE-STATUS", 1),
    x("PAH-FILE-RSN-CD", 4),
    x("PAH-FILE-RSN-TEXT", 40),
    filler(3),
])

PAYACK_DETAIL = Layout("PAYACK-DETAIL", PAYACK_LRECL, [
    x("PAD-REC-TYPE", 1),
    zoned("PAD-REC-NO", 7),
    x("PAD-TXN-REF", 16),
    x("PAD-STATUS", 1),
    x("PAD-RTN-CD", 4),
    x("PAD-RSN-CD", 4),
    x("PAD-RSN-TEXT", 40),
    packed("PAD-XFER-ID", 12),
    filler(20),
])

PAYACK_TRAILER = Layout("PAYACK-TRAILER", PAYACK_LRECL, [
    x("PAT-REC-TYPE", 1),
    zoned("PAT-REC-COUNT", 9),
    zoned("PAT-ACCEPT-CNT", 9),
    zoned("PAT-REJECT-CNT", 9),
    packed("PAT-ACCEPT-TOTAL", 17, 2, signed=True),
    filler(63),
])

# Which layouts each copybook declares, in copybook order (the copybook test walks this).
COPYBOOKS: dict[str, tuple[Layout, ...]] = {
    "TXNHIST.cpy": (TXNHIST_HEADER, TXNHIST_DETAIL, TXNHIST_TRAILER),
    "STMT.cpy": (STMT_FIXED, STMT_LINE),
    "PAYIN.cpy": (PAYIN_HEADER, PAYIN_DETAIL, PAYIN_TRAILER),
    "PAYACK.cpy": (PAYACK_HEADER, PAYACK_DETAIL, PAYACK_TRAILER),
}
