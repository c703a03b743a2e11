"""The mock mainframe's SOAP face over real HTTP on loopback.

Two independent witnesses check the contract: ``xmlschema`` (not lxml, which the server uses)
validates request and response bodies against CoreBanking.xsd, and a strict zeep client built
from the WSDL *file* (the SOAP library the adapters use) calls every operation.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import threading
import time
from decimal import Decimal
from xml.sax.saxutils import escape

import pytest
import requests
import xmlschema
import zeep
import zeep.exceptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from mock_mainframe.config import MockConfig
from mock_mainframe.faults import FaultRule
from mock_mainframe.soap import BINDING_QNAME, WSDL_PATH, XSD_PATH, SoapFace
from mock_mainframe.soap.operations import amount

CB = "urn:corebank:mainframe:v1"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
USER, PASSWORD = MockConfig.soap_user, MockConfig.soap_password
ZEEP_SETTINGS = dict(strict=True, forbid_dtd=True, forbid_entities=True)
RESET_ERRORS = (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError,
                ConnectionAbortedError)


# -- fixtures and helpers --------------------------------------------------------------------

@pytest.fixture
def face(ledger, engine, faults):
    f = SoapFace(MockConfig(host="127.0.0.1", soap_port=0), ledger, engine, faults).start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def xsd() -> xmlschema.XMLSchema:
    """The schema the WSDL file imports, found through its relative schemaLocation."""
    wsdl = etree.parse(str(WSDL_PATH))
    (location,) = wsdl.xpath("//xsd:import/@schemaLocation",
                             namespaces={"xsd": "http://www.w3.org/2001/XMLSchema"})
    path = WSDL_PATH.parent / location
    assert path == XSD_PATH
    return xmlschema.XMLSchema(str(path))


@pytest.fixture(scope="module")
def accts(seeded_template):
    """Accounts of the seeded ledger the tests need (seed 7, 40 customers)."""
    from mock_mainframe.ledger.store import Ledger

    led = Ledger(seeded_template)
    try:
        rows = led.query("SELECT * FROM ACCTMAST ORDER BY ACCT_NO")
        active = [r for r in rows if r["ACCT_STAT"] == "A"]
        by_ccy: dict[str, list[dict]] = {}
        for r in active:
            by_ccy.setdefault(r["CURR_CD"], []).append(r)
        rich = sorted(by_ccy["EUR"], key=lambda r: r["AVAIL_BAL"], reverse=True)
        usd = by_ccy["USD"][0]
        closed = next(r for r in rows if r["ACCT_STAT"] == "C")
        busiest = led.query("SELECT ACCT_NO, COUNT(*) AS N FROM TXNHIST GROUP BY ACCT_NO "
                            "ORDER BY N DESC LIMIT 1")[0]["ACCT_NO"]
        assert rich[-1]["AVAIL_BAL"] < Decimal("24000.00")
        return {"from": rich[0]["ACCT_NO"], "to": rich[1]["ACCT_NO"], "poor": rich[-1]["ACCT_NO"],
                "usd": usd["ACCT_NO"],
                "jpy": by_ccy["JPY"][0]["ACCT_NO"], "closed": closed["ACCT_NO"],
                "cust": rich[0]["CUST_NO"].strip(), "busiest": busiest}
    finally:
        led.close()


def envelope(op: str, fields: dict[str, str], *, user: str | None = USER, password: str | None = PASSWORD,
             ptype: str | None = PROFILE + "#PasswordText", security: bool = True,
             request_id: str | None = None, extra_header: str = "", ns: str = CB) -> bytes:
    head = []
    if security:
        parts = []
        if user is not None:
            parts.append(f"<wsse:Username>{escape(user)}</wsse:Username>")
        if password is not None:
            type_attr = f' Type="{ptype}"' if ptype else ""
            parts.append(f"<wsse:Password{type_attr}>{escape(password)}</wsse:Password>")
        head.append(f'<wsse:Security xmlns:wsse="{WSSE}"><wsse:UsernameToken>{"".join(parts)}'
                    "</wsse:UsernameToken></wsse:Security>")
    if request_id is not None:
        head.append(f"<cb:REQUEST-ID>{escape(request_id)}</cb:REQUEST-ID>")
    head.append(extra_header)
    body = "".join(f"<cb:{k}>{escape(v)}</cb:{k}>" for k, v in fields.items())
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP}" xmlns:cb="{ns}">'
            f'<soap:Header>{"".join(head)}</soap:Header><soap:Body><cb:{op}>{body}</cb:{op}></soap:Body>'
            "</soap:Envelope>").encode()


def call(face: SoapFace, body: bytes | None, *, ctype: str | None = "text/xml; charset=utf-8",
         method: str = "POST", target: str | None = None, timeout: float = 5,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", face.port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if ctype is not None:
            hdrs["Content-Type"] = ctype
        conn.request(method, target or face.path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def body_of(data: bytes) -> tuple[etree._Element | None, etree._Element]:
    """(soap:Header or None, the Body's one element)."""
    root = etree.fromstring(data)
    assert root.tag == f"{{{SOAP}}}Envelope"
    header = root.find(f"{{{SOAP}}}Header")
    body = root.find(f"{{{SOAP}}}Body")
    assert body is not None and len(body) == 1
    return header, body[0]


def ok_payload(face: SoapFace, op: str, fields: dict[str, str], xsd, **kw) -> etree._Element:
    """POST a request (validated with xmlschema first), check HTTP 200, validate the reply."""
    request = envelope(op, fields, **kw)
    xsd.validate(body_of(request)[1])
    status, headers, data = call(face, request)
    assert status == 200, data
    assert headers["content-type"].startswith("text/xml")
    payload = body_of(data)[1]
    assert payload.tag == f"{{{CB}}}{op}Response"
    xsd.validate(payload)
    return payload


def v(el: etree._Element, path: str) -> str | None:
    """Text of a cb: path like 'BALANCE/AVAIL-BAL' (whitespace kept)."""
    found = el.find("/".join(f"{{{CB}}}{p}" for p in path.split("/")))
    return None if found is None else (found.text or "")


def fault_of(data: bytes, xsd=None) -> dict[str, str | None]:
    header, fault = body_of(data)
    assert fault.tag == f"{{{SOAP}}}Fault", data
    err = fault.find(f"detail/{{{CB}}}MAINFRAME-ERROR")
    assert err is not None, data
    if xsd is not None:
        xsd.validate(err)
    return {"faultcode": fault.findtext("faultcode"), "faultstring": fault.findtext("faultstring"),
            "code": v(err, "ERROR-CODE"), "rc": v(err, "RETURN-CODE"), "path": v(err, "ERROR-PATH"),
            "rid": v(err, "REQUEST-ID"),
            "header_rid": None if header is None else header.findtext(f"{{{CB}}}REQUEST-ID")}


def zeep_client(history: HistoryPlugin | None = None, *, password: str = PASSWORD,
                timeout: float | None = None) -> zeep.Client:
    transport = Transport(operation_timeout=timeout) if timeout else None
    kwargs = {"transport": transport} if transport else {}
    return zeep.Client(wsdl=str(WSDL_PATH), settings=zeep.Settings(**ZEEP_SETTINGS),
                       wsse=UsernameToken(USER, password), plugins=[history] if history else [],
                       **kwargs)


def balance(face: SoapFace, acct: str, xsd) -> Decimal:
    p = ok_payload(face, "BalanceInquiry", {"ACCT-NO": acct}, xsd)
    raw = v(p, "BALANCE/AVAIL-BAL")
    return (Decimal(raw[1:]) * (-1 if raw[0] == "-" else 1)).scaleb(-2)


def still_serving(face: SoapFace, acct: str, xsd) -> None:
    p = ok_payload(face, "BalanceInquiry", {"ACCT-NO": acct}, xsd)
    assert v(p, "RETURN-BLOCK/RETURN-CODE") == "0000"


def xfer(ref: str, src: str, dst: str, amt: str, ccy: str = "EUR", memo: str = "TEST") -> dict[str, str]:
    return {"XFER-REF": ref, "FROM-ACCT": src, "TO-ACCT": dst, "XFER-AMT": amt, "CURR-CD": ccy,
            "MEMO": memo}


# -- the contract: every operation, both validators ------------------------------------------

def test_every_operation_request_and_response_match_the_xsd(face, xsd, accts, ledger):
    cases = [
        ("CustomerInquiry", {"CUST-NO": accts["cust"]}, "0000"),
        ("CustomerInquiry", {"CUST-NO": "C9999999"}, "0008"),
        ("AccountList", {"CUST-NO": accts["cust"]}, "0000"),
        ("AccountList", {"CUST-NO": "NOBODY"}, "0008"),
        ("AccountInquiry", {"ACCT-NO": accts["from"]}, "0000"),
        ("AccountInquiry", {"ACCT-NO": accts["closed"]}, "0000"),
        ("AccountInquiry", {"ACCT-NO": "999999999999"}, "0008"),
        ("BalanceInquiry", {"ACCT-NO": accts["jpy"]}, "0000"),
        ("BalanceInquiry", {"ACCT-NO": "999999999999"}, "0008"),
        ("TransactionHistory", {"ACCT-NO": accts["from"], "FROM-DATE": "1260101", "TO-DATE": "1261127",
                                "MAX-ROWS": "5"}, "0000"),
        ("TransactionHistory", {"ACCT-NO": "999999999999"}, "0008"),
        ("FundsTransfer", xfer("CONTRACT-1", accts["from"], accts["to"], "+000000000012540"), "0000"),
        ("FundsTransfer", xfer("CONTRACT-2", accts["from"], accts["usd"], "+000000000000100"), "0008"),
        ("TransferStatusInquiry", {"XFER-REF": "CONTRACT-1"}, "0000"),
        ("TransferStatusInquiry", {"XFER-REF": "NEVER-USED"}, "0008"),
    ]
    for op, fields, rc in cases:
        payload = ok_payload(face, op, fields, xsd)
        assert v(payload, "RETURN-BLOCK/RETURN-CODE") == rc, (op, fields)
        reason = v(payload, "RETURN-BLOCK/REASON-CODE")
        assert len(reason) == 4 and len(v(payload, "RETURN-BLOCK/MESSAGE")) == 40
        if rc == "0000":
            assert reason == "    "


def test_not_found_is_a_business_result_not_a_fault(face, xsd):
    for op, field in (("CustomerInquiry", "CUST-NO"), ("AccountList", "CUST-NO"),
                      ("AccountInquiry", "ACCT-NO"), ("BalanceInquiry", "ACCT-NO"),
                      ("TransactionHistory", "ACCT-NO"), ("TransferStatusInquiry", "XFER-REF")):
        p = ok_payload(face, op, {field: "X0"}, xsd)
        assert (v(p, "RETURN-BLOCK/RETURN-CODE"), v(p, "RETURN-BLOCK/REASON-CODE")) == ("0008", "N001")
        assert v(p, "RETURN-BLOCK/MESSAGE").rstrip() == "RECORD NOT FOUND"


def test_zeep_client_from_the_wsdl_file_calls_every_operation(face, xsd, accts, ledger):
    history = HistoryPlugin()
    client = zeep_client(history)
    svc = client.create_service(BINDING_QNAME, face.url)

    def checked(result):
        for envelope_el in (history.last_sent["envelope"], history.last_received["envelope"]):
            xsd.validate(envelope_el.find(f"{{{SOAP}}}Body")[0])
        return result

    cust = checked(svc.CustomerInquiry(**{"CUST-NO": accts["cust"]}))
    assert cust["RETURN-BLOCK"]["RETURN-CODE"] == "0000"
    assert cust["CUSTOMER"]["CUST-NO"] == accts["cust"].ljust(10)
    assert len(cust["CUSTOMER"]["LAST-NAME"]) == 30 and cust["CUSTOMER"]["LAST-NAME"].endswith(" ")

    listing = checked(svc.AccountList(**{"CUST-NO": accts["cust"]}))
    assert int(listing["ACCT-COUNT"]) == len(listing["ACCOUNT"]) >= 1
    assert accts["from"] in [a["ACCT-NO"] for a in listing["ACCOUNT"]]

    acct = checked(svc.AccountInquiry(**{"ACCT-NO": accts["from"]}))
    row = ledger.account(accts["from"])
    assert acct["ACCOUNT"]["LEDGER-BAL"] == amount(row["LEDGER_BAL"])
    assert acct["ACCOUNT"]["CLOSE-DT"] == "0000000"

    bal = checked(svc.BalanceInquiry(**{"ACCT-NO": accts["from"]}))
    assert bal["BALANCE"]["AVAIL-BAL"] == amount(row["AVAIL_BAL"])
    assert bal["BALANCE"]["AS-OF-DT"] == "1261127"

    hist = checked(svc.TransactionHistory(**{"ACCT-NO": accts["from"], "MAX-ROWS": 3}))
    assert hist["ROW-COUNT"] == "003" and len(hist["TXN"]) == 3
    assert hist["CONT-KEY"] == accts["from"] + hist["TXN"][-1]["TXN-SEQ"]

    posted = checked(svc.FundsTransfer(**{"XFER-REF": "ZEEP-1", "FROM-ACCT": accts["from"],
                                          "TO-ACCT": accts["to"], "XFER-AMT": "+000000000001000",
                                          "CURR-CD": "EUR", "MEMO": "ZEEP TEST"}))
    assert posted["RETURN-BLOCK"]["RETURN-CODE"] == "0000" and posted["XFER-STAT"] == "P"
    assert posted["FROM-AVAIL-BAL"] == amount(row["AVAIL_BAL"] - Decimal("10.00"))

    status = checked(svc.TransferStatusInquiry(**{"XFER-REF": "ZEEP-1"}))
    assert status["XFER-COUNT"] == "001"
    assert status["XFER"][0]["XFER-ID"] == posted["XFER-ID"]
    assert status["XFER"][0]["RTN-CD"] == "0000" and status["XFER"][0]["RSN-CD"] == "    "


def test_zeep_client_from_the_served_wsdl_reaches_the_endpoint(face, xsd, accts):
    client = zeep.Client(wsdl=face.wsdl_url, settings=zeep.Settings(**ZEEP_SETTINGS),
                         wsse=UsernameToken(USER, PASSWORD))
    result = client.service.BalanceInquiry(**{"ACCT-NO": accts["from"]})  # served soap:address
    assert result["RETURN-BLOCK"]["RETURN-CODE"] == "0000"


def test_served_wsdl_equals_the_file_except_the_address(face):
    status, headers, served = call(face, None, method="GET", target=f"{face.path}?wsdl", ctype=None)
    assert status == 200 and headers["content-type"].startswith("text/xml")
    original = WSDL_PATH.read_bytes()
    assert served != original
    expected = re.sub(rb'(<soap:address location=")[^"]*"', b"\\g<1>" + face.url.encode() + b'"', original)
    assert served == expected
    ns = {"soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
    assert etree.fromstring(served).xpath("//soap:address/@location", namespaces=ns) == [face.url]
    assert call(face, None, method="GET", target=f"{face.path}?WSDL", ctype=None)[2] == served
    # the XSD where the WSDL's relative schemaLocation resolves, and at ?xsd=
    for target in ("/corebank/CoreBanking.xsd", f"{face.path}?xsd=CoreBanking.xsd"):
        status, _, data = call(face, None, method="GET", target=target, ctype=None)
        assert status == 200 and data == XSD_PATH.read_bytes()
    status, _, data = call(face, None, method="GET", target=f"{face.path}?xsd=other.xsd", ctype=None)
    assert status == 404 and fault_of(data)["code"] == "CBE0007"


# -- value formats ---------------------------------------------------------------------------

def test_amounts_dates_and_fixed_width_text(face, xsd, accts, ledger):
    p = ok_payload(face, "AccountInquiry", {"ACCT-NO": accts["jpy"]}, xsd)
    row = ledger.account(accts["jpy"])
    assert re.fullmatch(r"[+-]\d{15}", v(p, "ACCOUNT/LEDGER-BAL"))
    assert v(p, "ACCOUNT/LEDGER-BAL") == amount(row["LEDGER_BAL"])
    assert v(p, "ACCOUNT/LEDGER-BAL").endswith("00")  # JPY still carries two implied decimals
    assert v(p, "ACCOUNT/ACCT-TITLE") == row["ACCT_TITLE"] and len(row["ACCT_TITLE"]) == 30
    assert v(p, "ACCOUNT/OPEN-DT") == f"{row['OPEN_DT']:07d}"
    assert amount(Decimal("125.40")) == "+000000000012540"
    assert amount(Decimal("-5.99")) == "-000000000000599"
    c = ok_payload(face, "CustomerInquiry", {"CUST-NO": accts["cust"]}, xsd)
    assert re.fullmatch(r"[01]\d{6}", v(c, "CUSTOMER/BIRTH-DT"))
    assert v(c, "CUSTOMER/CUST-NO") == accts["cust"].ljust(10)


def test_transaction_history_pages_with_the_continuation_key(face, xsd, accts, ledger):
    acct = accts["busiest"]
    expected = [r["TXN_SEQ"] for r in ledger.query(
        "SELECT TXN_SEQ FROM TXNHIST WHERE ACCT_NO = ? ORDER BY TXN_SEQ DESC", (acct,))]
    seen: list[int] = []
    cont = None
    for _ in range(100):
        fields = {"ACCT-NO": acct, "MAX-ROWS": "97"}
        if cont:
            fields["CONT-KEY"] = cont
        p = ok_payload(face, "TransactionHistory", fields, xsd)
        rows = p.findall(f"{{{CB}}}TXN")
        assert v(p, "ROW-COUNT") == f"{len(rows):03d}"
        seen += [int(v(r, "TXN-SEQ")) for r in rows]
        cont = v(p, "CONT-KEY")
        assert len(cont) == 21
        if not cont.strip():
            break
        assert cont == acct + v(rows[-1], "TXN-SEQ")
    assert seen == expected and len(seen) > 97
    # date filter: only rows posted in the window
    p = ok_payload(face, "TransactionHistory", {"ACCT-NO": acct, "FROM-DATE": "1261101",
                                                "TO-DATE": "1261130", "MAX-ROWS": "500"}, xsd)
    dates = [v(r, "POST-DT") for r in p.findall(f"{{{CB}}}TXN")]
    assert dates and all("1261101" <= d <= "1261130" for d in dates) and not v(p, "CONT-KEY").strip()
    # a key that belongs to another account is a client error
    status, _, data = call(face, envelope("TransactionHistory", {"ACCT-NO": acct,
                                                                 "CONT-KEY": accts["to"] + "000000010"}))
    f = fault_of(data, xsd)
    assert status == 500 and f["faultcode"] == "soap:Client" and f["code"] == "CBE0006"
    assert "CONT-KEY" in f["faultstring"]


# -- transfers ---------------------------------------------------------------------------

def test_funds_transfer_posts_and_a_reused_reference_posts_twice(face, xsd, accts, ledger):
    before_from, before_to = balance(face, accts["from"], xsd), balance(face, accts["to"], xsd)
    for _ in range(2):
        p = ok_payload(face, "FundsTransfer", xfer("DUP-REF-0001", accts["from"], accts["to"],
                                                   "+000000000002500"), xsd)
        assert v(p, "RETURN-BLOCK/RETURN-CODE") == "0000" and v(p, "XFER-STAT") == "P"
        assert v(p, "XFER-REF") == "DUP-REF-0001    "
    assert balance(face, accts["from"], xsd) == before_from - Decimal("50.00")
    assert balance(face, accts["to"], xsd) == before_to + Decimal("50.00")
    s = ok_payload(face, "TransferStatusInquiry", {"XFER-REF": "DUP-REF-0001"}, xsd)
    attempts = s.findall(f"{{{CB}}}XFER")
    assert v(s, "XFER-COUNT") == "002" and len(attempts) == 2
    assert [v(a, "XFER-STAT") for a in attempts] == ["P", "P"]
    assert len({v(a, "XFER-ID") for a in attempts}) == 2
    assert all(v(a, "XFER-AMT") == "+000000000002500" and v(a, "MEMO").rstrip() == "TEST" for a in attempts)
    assert len(ledger.transfers_by_ref("DUP-REF-0001")) == 2


@pytest.mark.parametrize(("case", "reason"), [
    ("insufficient", "R006"), ("negative", "R008"), ("currency", "R005"), ("unknown", "R001"),
    ("same", "R009"), ("closed", "R004"), ("jpy-fraction", "R008"), ("blank-ref", "R010")])
def test_funds_transfer_business_rejections_are_0008_with_the_engine_reason(face, xsd, accts, case, reason):
    src, dst = accts["from"], accts["to"]
    fields = {
        "insufficient": xfer("REJ", accts["poor"], src, "+000000002400000"),  # under the limit
        "negative": xfer("REJ", src, dst, "-000000000001000"),
        "currency": xfer("REJ", src, dst, "+000000000001000", ccy="USD"),
        "unknown": xfer("REJ", "999999999999", dst, "+000000000001000"),
        "same": xfer("REJ", src, src, "+000000000001000"),
        "closed": xfer("REJ", src, accts["closed"], "+000000000001000"),
        "jpy-fraction": xfer("REJ", accts["jpy"], dst, "+000000000001050", ccy="JPY"),
        "blank-ref": xfer("   ", src, dst, "+000000000001000"),
    }[case]
    p = ok_payload(face, "FundsTransfer", fields, xsd)
    assert v(p, "RETURN-BLOCK/RETURN-CODE") == "0008"
    assert v(p, "RETURN-BLOCK/REASON-CODE") == reason, v(p, "RETURN-BLOCK/MESSAGE")
    assert v(p, "XFER-STAT") == "R" and v(p, "DR-TXN-SEQ") is None


def test_ledger_failures_are_server_faults_with_return_code_0012(face, xsd, accts, ledger):
    ledger.execute("DROP TABLE CUSTMAST")
    status, _, data = call(face, envelope("CustomerInquiry", {"CUST-NO": accts["cust"]}))
    f = fault_of(data, xsd)
    assert status == 500 and f["faultcode"] == "soap:Server" and f["code"] == "CBE0031" and f["rc"] == "0012"
    ledger.execute("DROP TABLE XFERLOG")
    status, _, data = call(face, envelope("FundsTransfer", xfer("SYSERR", accts["from"], accts["to"],
                                                                "+000000000000100")))
    f = fault_of(data, xsd)
    assert f["faultcode"] == "soap:Server" and f["code"] == "CBE0031"
    assert "TransferStatusInquiry" in f["faultstring"]
    still_serving(face, accts["from"], xsd)


# -- headers and security -----------------------------------------------------------------

def test_request_id_is_echoed_in_the_header_and_the_logs(face, xsd, accts, caplog):
    caplog.set_level(logging.INFO, logger="mock_mainframe.soap")
    status, _, data = call(face, envelope("BalanceInquiry", {"ACCT-NO": accts["from"]},
                                          request_id="req-7f3a-0001"))
    header, payload = body_of(data)
    assert status == 200 and header.findtext(f"{{{CB}}}REQUEST-ID") == "req-7f3a-0001"
    assert any("req-7f3a-0001" in r.getMessage() for r in caplog.records)
    alt = "<cb:RequestId>req-alt-2</cb:RequestId>"
    header, _ = body_of(call(face, envelope("BalanceInquiry", {"ACCT-NO": accts["from"]},
                                            extra_header=alt))[2])
    assert header.findtext(f"{{{CB}}}REQUEST-ID") == "req-alt-2"
    # faults echo it too, in the header and in the detail
    f = fault_of(call(face, envelope("BalanceInquiry", {"ACCT-NO": accts["from"]}, password="nope",
                                     request_id="req-fault-3"))[2], xsd)
    assert f["header_rid"] == f["rid"] == "req-fault-3"
    # without one, no header is invented
    header, _ = body_of(call(face, envelope("BalanceInquiry", {"ACCT-NO": accts["from"]}))[2])
    assert header is None
    # zeep can send it as a header element built from the XSD
    client = zeep_client()
    svc = client.create_service(BINDING_QNAME, face.url)
    rid = etree.Element(f"{{{CB}}}REQUEST-ID")
    rid.text = "zeep-rid-4"
    result = svc.BalanceInquiry(**{"ACCT-NO": accts["from"]}, _soapheaders=[rid])
    assert result["RETURN-BLOCK"]["RETURN-CODE"] == "0000"
    assert any("zeep-rid-4" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("kwargs", "code", "phrase"), [
    ({"security": False}, "CBE0010", "WS-Security header missing"),
    ({"user": None}, "CBE0010", "no wsse:Username"),
    ({"password": None}, "CBE0010", "no wsse:Password"),
    ({"password": "wrong"}, "CBE0011", "authentication failed for user 'CBRIDGE'"),
    ({"user": "MALLORY"}, "CBE0011", "authentication failed for user 'MALLORY'"),
    ({"ptype": PROFILE + "#PasswordDigest"}, "CBE0012", "PasswordDigest is not supported"),
])
def test_wrong_or_missing_credentials_are_failed_authentication_faults(face, xsd, accts, kwargs, code,
                                                                       phrase):
    status, _, data = call(face, envelope("BalanceInquiry", {"ACCT-NO": accts["from"]}, **kwargs))
    f = fault_of(data, xsd)
    assert status == 500 and f["faultcode"] == "wsse:FailedAuthentication" and f["code"] == code
    assert phrase in f["faultstring"]
    still_serving(face, accts["from"], xsd)


def test_zeep_sees_a_fault_for_a_wrong_password(face, accts):
    svc = zeep_client(password="wrong").create_service(BINDING_QNAME, face.url)
    with pytest.raises(zeep.exceptions.Fault) as info:
        svc.BalanceInquiry(**{"ACCT-NO": accts["from"]})
    assert "authentication failed" in info.value.message
    assert info.value.code.endswith("FailedAuthentication")
    assert info.value.detail.findtext(f".//{{{CB}}}ERROR-CODE") == "CBE0011"


# -- bad input never crashes the server ------------------------------------------------------

LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10))
          + b']><soap:Envelope xmlns:soap="' + SOAP.encode() + b'"><soap:Body><x>&lol9;</x>'
          + b"</soap:Body></soap:Envelope>")
XXE = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
       b'<soap:Envelope xmlns:soap="' + SOAP.encode() + b'"><soap:Body><x>&e;</x></soap:Body>'
       b"</soap:Envelope>")
SOAP12 = (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>')


def _bad_inputs(acct: str) -> list[tuple[str, bytes | None, dict, int, str, str, str]]:
    good = {"ACCT-NO": acct}
    two_ops = envelope("BalanceInquiry", good).replace(b"</soap:Body>",
                                                       b"<cb:AccountList><cb:CUST-NO>X</cb:CUST-NO>"
                                                       b"</cb:AccountList></soap:Body>")
    must = ('<x:Trace xmlns:x="urn:other" soap:mustUnderstand="1">t</x:Trace>')
    return [
        # name, body, call kwargs, status, faultcode, CBE code, phrase in faultstring
        ("not-xml", b"this is not xml", {}, 500, "soap:Client", "CBE0001", "not well-formed XML"),
        ("empty", b"", {}, 500, "soap:Client", "CBE0001", "empty request body"),
        ("truncated", envelope("BalanceInquiry", good)[:-20], {}, 500, "soap:Client", "CBE0001",
         "not well-formed"),
        ("billion-laughs", LAUGHS, {}, 500, "soap:Client", "CBE0002", "DOCTYPE"),
        ("xxe", XXE, {}, 500, "soap:Client", "CBE0002", "DOCTYPE"),
        ("utf16-doctype", LAUGHS.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
         .decode().encode("utf-16"), {}, 500, "soap:Client", "CBE0002", "DOCTYPE"),
        ("not-an-envelope", b"<BalanceInquiry/>", {}, 500, "soap:Client", "CBE0003",
         "not a SOAP 1.1 envelope"),
        ("soap12-envelope", SOAP12, {}, 500, "soap:VersionMismatch", "CBE0003", "SOAP 1.2"),
        ("two-operations", two_ops, {}, 500, "soap:Client", "CBE0003", "exactly one"),
        ("wrong-namespace", envelope("BalanceInquiry", good, ns="urn:corebank:mainframe:v2"), {}, 500,
         "soap:Client", "CBE0004", "wrong namespace"),
        ("unknown-operation", envelope("CloseAccount", good), {}, 500, "soap:Client", "CBE0004",
         "unknown operation CloseAccount"),
        ("missing-field", envelope("BalanceInquiry", {}), {}, 500, "soap:Client", "CBE0005", "ACCT-NO"),
        ("too-long", envelope("BalanceInquiry", {"ACCT-NO": "1234567890123"}), {}, 500, "soap:Client",
         "CBE0005", "/BalanceInquiry/ACCT-NO"),
        ("bad-amount", envelope("FundsTransfer", xfer("R", acct, acct, "12.50")), {}, 500, "soap:Client",
         "CBE0005", "/FundsTransfer/XFER-AMT"),
        ("bad-date", envelope("TransactionHistory", {"ACCT-NO": acct, "FROM-DATE": "2026-01-01"}), {}, 500,
         "soap:Client", "CBE0005", "FROM-DATE"),
        ("unknown-field", envelope("BalanceInquiry", {"ACCT-NO": acct, "PIN": "1234"}), {}, 500,
         "soap:Client", "CBE0005", "PIN"),
        ("bad-request-id", envelope("BalanceInquiry", good, request_id="x" * 65), {}, 500, "soap:Client",
         "CBE0005", "REQUEST-ID"),
        ("must-understand", envelope("BalanceInquiry", good, extra_header=must), {}, 500,
         "soap:MustUnderstand", "CBE0009", "mustUnderstand"),
        ("soap-action", envelope("BalanceInquiry", good),
         {"headers": {"SOAPAction": f'"{CB}/FundsTransfer"'}}, 500, "soap:Client", "CBE0008", "SOAPAction"),
        ("json", b'{"acct": 1}', {"ctype": "application/json"}, 415, "soap:Client", "CBE0021", "text/xml"),
        ("no-content-type", envelope("BalanceInquiry", good), {"ctype": None}, 415, "soap:Client",
         "CBE0021", "Content-Type"),
        ("soap12-content-type", envelope("BalanceInquiry", good), {"ctype": "application/soap+xml"}, 415,
         "soap:Client", "CBE0021", "SOAP 1.2"),
        ("get", None, {"method": "GET", "ctype": None}, 405, "soap:Client", "CBE0020", "GET not allowed"),
        ("put", envelope("BalanceInquiry", good), {"method": "PUT"}, 405, "soap:Client", "CBE0020",
         "PUT not allowed"),
        ("wrong-path", envelope("BalanceInquiry", good), {"target": "/corebank/v2"}, 404, "soap:Client",
         "CBE0007", "no SOAP endpoint at /corebank/v2"),
        ("too-large", b"<a>" + b"x" * 1_100_000 + b"</a>", {}, 413, "soap:Client", "CBE0022", "too large"),
        ("too-deep", b"<a>" * 5000, {}, 500, "soap:Client", "CBE0001", "depth"),
    ]


def test_bad_input_gets_a_soap_fault_naming_the_problem(face, xsd, accts):
    for name, body, kwargs, status, faultcode, code, phrase in _bad_inputs(accts["from"]):
        got_status, headers, data = call(face, body, **kwargs)
        assert got_status == status, (name, data)
        assert headers["content-type"].startswith("text/xml"), name
        f = fault_of(data, xsd)
        assert (f["faultcode"], f["code"]) == (faultcode, code), (name, f)
        assert phrase in f["faultstring"], (name, f["faultstring"])
        if code == "CBE0005":
            assert f["path"], name
        if status == 405:
            assert "POST" in headers["allow"], name
    still_serving(face, accts["from"], xsd)


def test_xsd_errors_carry_the_element_path(face, xsd, accts):
    status, _, data = call(face, envelope("FundsTransfer", xfer("R", accts["from"], accts["to"], "+1")))
    f = fault_of(data, xsd)
    assert f["path"] == "/FundsTransfer/XFER-AMT"
    assert "XFER-AMT" in f["faultstring"] and "pattern" in f["faultstring"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(st.binary(max_size=200), st.text(max_size=60).map(str.encode)),
       acct=st.text(max_size=20))
def test_fuzzed_bodies_always_get_an_answer(face, junk, acct):
    for body in (junk, envelope("BalanceInquiry", {"ACCT-NO": acct})):
        status, headers, data = call(face, body)
        assert status in (200, 500), data
        if status == 500:
            assert fault_of(data)["faultcode"].startswith("soap:")


# -- injected faults ------------------------------------------------------------------------

def _rule(faults, **kw) -> None:
    faults.add_rule(FaultRule(face="soap", **kw))


def test_injected_fault_and_http500(face, faults, accts):
    svc = zeep_client().create_service(BINDING_QNAME, face.url)
    _rule(faults, operation="BalanceInquiry", error_rate=1.0, error="fault", remaining=1)
    with pytest.raises(zeep.exceptions.Fault) as info:
        svc.BalanceInquiry(**{"ACCT-NO": accts["from"]})
    assert "INJECTED" in info.value.message and info.value.code == "soap:Server"
    assert info.value.detail.findtext(f".//{{{CB}}}ERROR-CODE") == "CBE0030"
    _rule(faults, operation="*", error_rate=1.0, error="http500", remaining=1)
    status, headers, data = call(face, envelope("BalanceInquiry", {"ACCT-NO": accts["from"]}))
    assert status == 500 and headers["content-type"].startswith("text/plain") and b"injected" in data
    _rule(faults, operation="*", error_rate=1.0, error="http500", remaining=1)
    with pytest.raises(zeep.exceptions.TransportError) as terr:
        svc.BalanceInquiry(**{"ACCT-NO": accts["from"]})
    assert terr.value.status_code == 500
    assert svc.BalanceInquiry(**{"ACCT-NO": accts["from"]})["RETURN-BLOCK"]["RETURN-CODE"] == "0000"
    assert faults.counts["soap.BalanceInquiry.fault"] == 1
    assert faults.counts["soap.BalanceInquiry.http500"] == 2


def test_injected_reset_is_a_tcp_reset(face, faults, xsd, accts):
    _rule(faults, operation="BalanceInquiry", error_rate=1.0, error="reset", remaining=1)
    with pytest.raises(RESET_ERRORS):
        call(face, envelope("BalanceInquiry", {"ACCT-NO": accts["from"]}))
    still_serving(face, accts["from"], xsd)


def test_injected_hang_outlasts_the_client_timeout_then_resets(face, faults, xsd, accts):
    _rule(faults, operation="BalanceInquiry", error_rate=1.0, error="hang", hang_s=0.8, remaining=2)
    svc = zeep_client(timeout=0.5).create_service(BINDING_QNAME, face.url)
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        svc.BalanceInquiry(**{"ACCT-NO": accts["from"]})
    assert 0.45 <= time.monotonic() - t0 < 0.8
    t0 = time.monotonic()
    with pytest.raises(RESET_ERRORS):  # a patient client gets the reset after hang_s
        call(face, envelope("BalanceInquiry", {"ACCT-NO": accts["from"]}), timeout=5)
    assert 0.75 <= time.monotonic() - t0 < 3
    still_serving(face, accts["from"], xsd)


def test_injected_latency_is_measurable(face, faults, xsd, accts):
    t0 = time.monotonic()
    still_serving(face, accts["from"], xsd)
    fast = time.monotonic() - t0
    _rule(faults, operation="BalanceInquiry", latency_ms=300, remaining=1)
    t0 = time.monotonic()
    still_serving(face, accts["from"], xsd)
    slow = time.monotonic() - t0
    assert slow >= 0.29 and slow - fast >= 0.2


def test_commit_then_drop_posts_but_the_client_sees_a_reset(face, faults, xsd, accts, ledger):
    before = ledger.account(accts["from"])["AVAIL_BAL"]
    _rule(faults, operation="FundsTransfer", drop_response_rate=1.0, remaining=1)
    with pytest.raises(RESET_ERRORS):
        call(face, envelope("FundsTransfer", xfer("DROPPED-1", accts["from"], accts["to"],
                                                  "+000000000007700")))
    attempts = ledger.transfers_by_ref("DROPPED-1")
    assert [(a["XFER_STAT"], a["RTN_CD"]) for a in attempts] == [("P", "0000")]
    assert ledger.account(accts["from"])["AVAIL_BAL"] == before - Decimal("77.00")
    s = ok_payload(face, "TransferStatusInquiry", {"XFER-REF": "DROPPED-1"}, xsd)
    assert v(s, "XFER-COUNT") == "001" and v(s, "XFER/XFER-STAT") == "P"


def test_outage_refuses_connections_drops_keepalives_and_recovers_on_the_same_port(face, faults, xsd, accts):
    url, port = face.url, face.port
    keepalive = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    req = envelope("BalanceInquiry", {"ACCT-NO": accts["from"]})
    hdrs = {"Content-Type": "text/xml"}
    keepalive.request("POST", face.path, req, hdrs)
    assert keepalive.getresponse().read()
    faults.outage("soap", 0.6)
    t0 = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        call(face, req)
    with pytest.raises(RESET_ERRORS):
        keepalive.request("POST", face.path, req, hdrs)
        keepalive.getresponse().read()
    keepalive.close()
    while True:  # the injector's timer ends the outage
        try:
            still_serving(face, accts["from"], xsd)
            break
        except ConnectionRefusedError:
            assert time.monotonic() - t0 < 5, "SOAP face did not come back"
            time.sleep(0.05)
    assert time.monotonic() - t0 >= 0.5 and face.url == url
    faults.outage("soap", 30)
    with pytest.raises(ConnectionRefusedError):
        call(face, req)
    faults.end_outage("soap")
    still_serving(face, accts["from"], xsd)


# -- life cycle and load -------------------------------------------------------------------

def test_concurrent_clients_keep_the_ledger_consistent(face, xsd, accts, ledger):
    total_before = sum(ledger.account(a)["LEDGER_BAL"] for a in (accts["from"], accts["to"]))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", face.port, timeout=10)
            for i in range(25):
                if i % 5 == 0:
                    body = envelope("FundsTransfer", xfer(f"CONC-{n}-{i}", accts["from"], accts["to"],
                                                          "+000000000000101"))
                else:
                    body = envelope("BalanceInquiry", {"ACCT-NO": accts["to"]})
                conn.request("POST", face.path, body, {"Content-Type": "text/xml"})
                resp = conn.getresponse()
                data = resp.read()
                assert resp.status == 200 and b"<cb:RETURN-CODE>0000<" in data, data
            conn.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[0]
    assert sum(ledger.account(a)["LEDGER_BAL"] for a in (accts["from"], accts["to"])) == total_before
    posted = ledger.query("SELECT XFER_STAT FROM XFERLOG WHERE XFER_REF LIKE 'CONC-%'")
    assert [r["XFER_STAT"] for r in posted] == ["P"] * 30


def test_stop_is_prompt_with_a_request_hanging_and_frees_the_port(ledger, engine, faults, accts):
    face = SoapFace(MockConfig(host="127.0.0.1", soap_port=0), ledger, engine, faults).start()
    port = face.port
    _rule(faults, operation="*", error_rate=1.0, error="hang", hang_s=30)
    outcome: list[object] = []

    def hung_client() -> None:
        try:
            outcome.append(call(face, envelope("BalanceInquiry", {"ACCT-NO": accts["from"]}), timeout=10))
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    client = threading.Thread(target=hung_client)
    client.start()
    deadline = time.monotonic() + 5
    while not faults.counts.get("soap.BalanceInquiry.hang"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t0 = time.monotonic()
    face.stop()
    assert time.monotonic() - t0 < 3
    client.join(5)
    assert outcome and isinstance(outcome[0], OSError | http.client.HTTPException)
    assert not face.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    faults.clear()
    # a fixed port binds again (and the context manager stops the face)
    with SoapFace(MockConfig(host="127.0.0.1", soap_port=port), ledger, engine, faults) as again:
        assert again.port == port
        clash = SoapFace(MockConfig(host="127.0.0.1", soap_port=port), ledger, engine, faults)
        with pytest.raises(RuntimeError, match="did not start"):
            clash.start()
        assert not clash.running


def test_a_wildcard_bind_serves_the_address_the_client_used(ledger, engine, faults, accts, xsd):
    with SoapFace(MockConfig(host="0.0.0.0", soap_port=0), ledger, engine, faults) as face:
        assert face.url == f"http://127.0.0.1:{face.port}/corebank/v1"
        status, _, served = call(face, None, method="GET", target=f"{face.path}?wsdl", ctype=None)
        ns = {"soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
        assert etree.fromstring(served).xpath("//soap:address/@location", namespaces=ns) == [face.url]
        still_serving(face, accts["from"], xsd)
