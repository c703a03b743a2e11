"""The seven operations: ledger rows in, mainframe-flavoured response bodies out.

Each operation takes the request's fields (already checked against the XSD) and returns the
response body element as XML text in the ``cb`` prefix. Values keep the DB's shape: CHAR
columns with their trailing blanks, dates as CYYMMDD, amounts as sign + 15 digits with two
implied decimals (see CoreBanking.xsd). Not found is a business result (0008/N001); a system
error raises :class:`SoapError` (a soap:Server fault with return code 0012).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from ..ledger.codes import RC_NOT_FOUND, RC_OK, RC_REJECTED, RC_WARNING, REASONS, RSN_NOT_FOUND
from ..ledger.posting import PostingEngine, TransferRequest
from ..ledger.store import Ledger
from .envelope import SERVER, SoapError, text

MAX_ROWS_DEFAULT = 50
MAX_COUNT = 999
NO_REASON = "    "
CONT_KEY_BLANK = " " * 21


# -- value formats ----------------------------------------------------------------------------

def amount(value: Decimal) -> str:
    """125.40 -> '+000000000012540' (PIC S9(13)V99 SIGN LEADING SEPARATE)."""
    cents = int(value.scaleb(2).to_integral_value())
    digits = f"{abs(cents):015d}"
    if len(digits) > 15:
        raise ValueError(f"amount {value} does not fit 13 integer digits")
    return ("-" if cents < 0 else "+") + digits


def parse_amount(value: str) -> Decimal:
    """'+000000000012540' -> Decimal('125.40') (the XSD has checked the shape)."""
    cents = Decimal(value[1:].strip())
    return (-cents if value[0] == "-" else cents).scaleb(-2)


def _date(v: int) -> str:
    return f"{v:07d}"


def _time(v: int) -> str:
    return f"{v:06d}"


def _n9(v: int) -> str:
    return f"{v:09d}"


def _n12(v: int) -> str:
    return f"{v:012d}"


_FORMATS: dict[str, Callable[[Any], str]] = {
    "T": lambda v: text(str(v)), "D": _date, "H": _time, "M": amount, "N9": _n9, "N12": _n12,
}


def _layout(spec: str) -> tuple[tuple[str, str, Callable[[Any], str]], ...]:
    """'CUST_NO:T BIRTH_DT:D' -> ((column, element name, formatter), ...)."""
    out = []
    for item in spec.split():
        column, kind = item.split(":")
        out.append((column, column.replace("_", "-"), _FORMATS[kind]))
    return tuple(out)


CUSTOMER = _layout("CUST_NO:T CUST_TYPE:T CUST_STAT:T LAST_NAME:T FIRST_NAME:T BIRTH_DT:D TAX_ID:T "
                   "EMAIL_ADDR:T PHONE_NO:T ADDR_LINE1:T CITY:T POST_CD:T CNTRY_CD:T BRANCH_CD:T "
                   "CREATE_DT:D")
ACCOUNT = _layout("ACCT_NO:T CUST_NO:T PROD_CD:T CURR_CD:T ACCT_STAT:T ACCT_TITLE:T LEDGER_BAL:M "
                  "AVAIL_BAL:M HOLD_AMT:M OPEN_DT:D CLOSE_DT:D LAST_TXN_DT:D LAST_SEQ:N9 BRANCH_CD:T")
BALANCE = _layout("ACCT_NO:T CURR_CD:T ACCT_STAT:T LEDGER_BAL:M AVAIL_BAL:M HOLD_AMT:M LAST_TXN_DT:D")
TRANSACTION = _layout("TXN_SEQ:N9 POST_DT:D POST_TM:H VALUE_DT:D TXN_CD:T DR_CR_IND:T TXN_AMT:M "
                      "RUN_BAL:M CURR_CD:T TXN_DESC:T TXN_REF:T CNTR_ACCT:T CHANNEL:T TXN_STAT:T")
TRANSFER = _layout("XFER_ID:N12 XFER_REF:T FROM_ACCT:T TO_ACCT:T XFER_AMT:M CURR_CD:T XFER_STAT:T "
                   "RTN_CD:T RSN_CD:T POST_DT:D POST_TM:H CHANNEL:T MEMO:T")


def _fields(layout: tuple[tuple[str, str, Callable[[Any], str]], ...], row: Mapping[str, Any]) -> str:
    return "".join(f"<cb:{el}>{fmt(row[col])}</cb:{el}>" for col, el, fmt in layout)


def _record(name: str, layout: tuple[tuple[str, str, Callable[[Any], str]], ...],
            row: Mapping[str, Any]) -> str:
    return f"<cb:{name}>{_fields(layout, row)}</cb:{name}>"


def return_block(rc: str, reason: str = NO_REASON, message: str = "OK") -> str:
    return (f"<cb:RETURN-BLOCK><cb:RETURN-CODE>{rc}</cb:RETURN-CODE>"
            f"<cb:REASON-CODE>{reason.ljust(4)}</cb:REASON-CODE>"
            f"<cb:MESSAGE>{text(message[:40].ljust(40))}</cb:MESSAGE></cb:RETURN-BLOCK>")


NOT_FOUND = return_block(RC_NOT_FOUND, RSN_NOT_FOUND, REASONS[RSN_NOT_FOUND])
FOUND = return_block(RC_OK)


# -- the operations -------------------------------------------------------------------------

class Operations:
    """The operations against one ledger; every method is synchronous (runs where it is called)."""

    def __init__(self, ledger: Ledger, engine: PostingEngine) -> None:
        self.ledger = ledger
        self.engine = engine

    def customer_inquiry(self, f: Mapping[str, str]) -> tuple[str, str]:
        row = self.ledger.customer(f["CUST-NO"])
        if row is None:
            return f"<cb:CustomerInquiryResponse>{NOT_FOUND}</cb:CustomerInquiryResponse>", RC_NOT_FOUND
        return (f"<cb:CustomerInquiryResponse>{FOUND}{_record('CUSTOMER', CUSTOMER, row)}"
                "</cb:CustomerInquiryResponse>", RC_OK)

    def account_list(self, f: Mapping[str, str]) -> tuple[str, str]:
        cust_no = f["CUST-NO"]
        rows = self.ledger.accounts_of(cust_no)
        if not rows and self.ledger.customer(cust_no) is None:
            return (f"<cb:AccountListResponse>{NOT_FOUND}<cb:ACCT-COUNT>000</cb:ACCT-COUNT>"
                    "</cb:AccountListResponse>", RC_NOT_FOUND)
        rc, block = RC_OK, FOUND
        if len(rows) > MAX_COUNT:
            rows = rows[:MAX_COUNT]
            rc, block = RC_WARNING, return_block(RC_WARNING, "W001", f"FIRST {MAX_COUNT} ACCOUNTS SHOWN")
        accounts = "".join(_record("ACCOUNT", ACCOUNT, r) for r in rows)
        return (f"<cb:AccountListResponse>{block}<cb:ACCT-COUNT>{len(rows):03d}</cb:ACCT-COUNT>"
                f"{accounts}</cb:AccountListResponse>", rc)

    def account_inquiry(self, f: Mapping[str, str]) -> tuple[str, str]:
        row = self.ledger.account(f["ACCT-NO"])
        if row is None:
            return f"<cb:AccountInquiryResponse>{NOT_FOUND}</cb:AccountInquiryResponse>", RC_NOT_FOUND
        return (f"<cb:AccountInquiryResponse>{FOUND}{_record('ACCOUNT', ACCOUNT, row)}"
                "</cb:AccountInquiryResponse>", RC_OK)

    def balance_inquiry(self, f: Mapping[str, str]) -> tuple[str, str]:
        row = self.ledger.account(f["ACCT-NO"])
        if row is None:
            return f"<cb:BalanceInquiryResponse>{NOT_FOUND}</cb:BalanceInquiryResponse>", RC_NOT_FOUND
        as_of = int(self.ledger.control("BUSDATE") or 0)
        return (f"<cb:BalanceInquiryResponse>{FOUND}<cb:BALANCE>{_fields(BALANCE, row)}"
                f"<cb:AS-OF-DT>{_date(as_of)}</cb:AS-OF-DT></cb:BALANCE></cb:BalanceInquiryResponse>",
                RC_OK)

    def transaction_history(self, f: Mapping[str, str]) -> tuple[str, str]:
        acct_no = f["ACCT-NO"]
        key12 = acct_no.ljust(12)
        max_rows = int(f.get("MAX-ROWS") or MAX_ROWS_DEFAULT)
        before: int | None = None
        cont = f.get("CONT-KEY") or ""
        if cont.strip():
            if len(cont) != 21 or not cont[12:].isdigit() or cont[:12] != key12:
                raise SoapError("CBE0006", f"CONT-KEY {cont!r} is not a continuation key of ACCT-NO "
                                           f"{acct_no!r} (expected the ACCT-NO padded to 12 and a "
                                           "9-digit TXN-SEQ, as sent in the previous page)",
                                path="/TransactionHistory/CONT-KEY")
            before = int(cont[12:])
        if self.ledger.account(acct_no) is None:
            return (f"<cb:TransactionHistoryResponse>{NOT_FOUND}<cb:ACCT-NO>{text(key12)}</cb:ACCT-NO>"
                    f"<cb:ROW-COUNT>000</cb:ROW-COUNT><cb:CONT-KEY>{CONT_KEY_BLANK}</cb:CONT-KEY>"
                    "</cb:TransactionHistoryResponse>", RC_NOT_FOUND)
        rows, more = self.ledger.history(acct_no, from_dt=int(f.get("FROM-DATE") or 0),
                                         to_dt=int(f.get("TO-DATE") or 9_999_999),
                                         limit=max_rows, before_seq=before)
        next_key = f"{key12}{rows[-1]['TXN_SEQ']:09d}" if more and rows else CONT_KEY_BLANK
        txns = "".join(_record("TXN", TRANSACTION, r) for r in rows)
        return (f"<cb:TransactionHistoryResponse>{FOUND}<cb:ACCT-NO>{text(key12)}</cb:ACCT-NO>"
                f"<cb:ROW-COUNT>{len(rows):03d}</cb:ROW-COUNT>{txns}"
                f"<cb:CONT-KEY>{text(next_key)}</cb:CONT-KEY></cb:TransactionHistoryResponse>", RC_OK)

    def funds_transfer(self, f: Mapping[str, str]) -> tuple[str, str]:
        req = TransferRequest(reference=f["XFER-REF"], from_acct=f["FROM-ACCT"], to_acct=f["TO-ACCT"],
                              amount=parse_amount(f["XFER-AMT"]), currency=f["CURR-CD"],
                              memo=f.get("MEMO") or "", channel=(f.get("CHANNEL") or "MOB"))
        result = self.engine.post(req)
        if result.return_code not in (RC_OK, RC_REJECTED) or result.xfer_id is None:
            raise SoapError("CBE0031", f"{result.message} (RETURN-CODE {result.return_code}): the "
                                       "transfer may or may not have been posted; ask "
                                       "TransferStatusInquiry before trying again",
                            faultcode=SERVER, return_code=result.return_code)
        if result.posted:
            block = return_block(RC_OK, NO_REASON, result.message)
            extra = (f"<cb:DR-TXN-SEQ>{_n9(result.debit_seq or 0)}</cb:DR-TXN-SEQ>"
                     f"<cb:CR-TXN-SEQ>{_n9(result.credit_seq or 0)}</cb:CR-TXN-SEQ>")
            avail = result.balances.get(req.from_acct.strip())
            if avail is not None:
                extra += f"<cb:FROM-AVAIL-BAL>{amount(avail)}</cb:FROM-AVAIL-BAL>"
        else:
            block = return_block(result.return_code, result.reason_code, result.message)
            extra = ""
        return (f"<cb:FundsTransferResponse>{block}<cb:XFER-ID>{_n12(result.xfer_id)}</cb:XFER-ID>"
                f"<cb:XFER-REF>{text(req.reference[:16].ljust(16))}</cb:XFER-REF>"
                f"<cb:XFER-STAT>{'P' if result.posted else 'R'}</cb:XFER-STAT>"
                f"<cb:POST-DT>{_date(result.post_dt)}</cb:POST-DT><cb:POST-TM>{_time(result.post_tm)}"
                f"</cb:POST-TM>{extra}</cb:FundsTransferResponse>", result.return_code)

    def transfer_status_inquiry(self, f: Mapping[str, str]) -> tuple[str, str]:
        rows = self.ledger.transfers_by_ref(f["XFER-REF"])
        if not rows:
            return (f"<cb:TransferStatusInquiryResponse>{NOT_FOUND}<cb:XFER-COUNT>000</cb:XFER-COUNT>"
                    "</cb:TransferStatusInquiryResponse>", RC_NOT_FOUND)
        rc, block = RC_OK, FOUND
        if len(rows) > MAX_COUNT:
            rows = rows[:MAX_COUNT]
            rc, block = RC_WARNING, return_block(RC_WARNING, "W001", f"FIRST {MAX_COUNT} ATTEMPTS SHOWN")
        attempts = "".join(_record("XFER", TRANSFER, r) for r in rows)
        return (f"<cb:TransferStatusInquiryResponse>{block}<cb:XFER-COUNT>{len(rows):03d}"
                f"</cb:XFER-COUNT>{attempts}</cb:TransferStatusInquiryResponse>", rc)


# operation name -> (method, writes?)
DISPATCH: dict[str, tuple[Callable[[Operations, Mapping[str, str]], tuple[str, str]], bool]] = {
    "CustomerInquiry": (Operations.customer_inquiry, False),
    "AccountList": (Operations.account_list, False),
    "AccountInquiry": (Operations.account_inquiry, False),
    "BalanceInquiry": (Operations.balance_inquiry, False),
    "TransactionHistory": (Operations.transaction_history, False),
    "FundsTransfer": (Operations.funds_transfer, True),
    "TransferStatusInquiry": (Operations.transfer_status_inquiry, False),
}
