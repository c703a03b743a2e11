"""SOAP 1.1 envelopes in and out: hardened parsing, the faults we raise, the bytes we send.

Requests are parsed with lxml and a parser that resolves no entity, loads no DTD and touches no
network; a document that carries a DOCTYPE at all is refused (billion laughs, XXE). Replies are
rendered from text templates (escaped), which is several times faster than building trees and
is checked against the XSD by the test suite.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from lxml import etree

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
CB_NS = "urn:corebank:mainframe:v1"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"

OPERATIONS = ("CustomerInquiry", "AccountList", "AccountInquiry", "BalanceInquiry",
              "TransactionHistory", "FundsTransfer", "TransferStatusInquiry")
REQUEST_ID_NAMES = frozenset({f"{{{CB_NS}}}REQUEST-ID", f"{{{CB_NS}}}RequestId"})
SECURITY_TAG = f"{{{WSSE_NS}}}Security"
_MUST_UNDERSTAND = f"{{{SOAP_ENV}}}mustUnderstand"
_UNDERSTOOD = REQUEST_ID_NAMES | {SECURITY_TAG}
_ENVELOPE = f"{{{SOAP_ENV}}}Envelope"
_HEADER = f"{{{SOAP_ENV}}}Header"
_BODY = f"{{{SOAP_ENV}}}Body"
_CB_PREFIX = f"{{{CB_NS}}}"

# faultcode values (SOAP 1.1 section 4.4.1, WS-Security 1.0 section 12)
CLIENT = "soap:Client"
SERVER = "soap:Server"
VERSION_MISMATCH = "soap:VersionMismatch"
MUST_UNDERSTAND = "soap:MustUnderstand"
FAILED_AUTH = "wsse:FailedAuthentication"

_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_REQUEST_ID_OK = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?")


class SoapError(Exception):
    """A request that ends in a SOAP Fault; ``code`` is the mainframe-style CBEnnnn code."""

    def __init__(self, code: str, text: str, *, faultcode: str = CLIENT, http_status: int = 500,
                 path: str | None = None, return_code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
        self.faultcode = faultcode
        self.http_status = http_status
        self.path = path
        self.return_code = return_code or ("0012" if faultcode == SERVER else "0008")
        self.headers = headers or {}
        self.request_id: str | None = None  # set once known, so that the fault can echo it


@dataclass
class Envelope:
    operation: str
    payload: etree._Element
    headers: list[etree._Element] = field(default_factory=list)
    request_id: str | None = None


_NO_DOCTYPE = "DOCTYPE and entity declarations are not allowed (protection against entity expansion and XXE)"
# A DOCTYPE in the encodings an XML declaration may announce without a BOM-free ASCII prefix.
_DOCTYPE_MARKERS = tuple("<!DOCTYPE".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be",
                                                              "utf-32-le", "utf-32-be"))
_local = threading.local()


def _parser() -> etree.XMLParser:
    """One hardened parser per thread (lxml parsers must not be shared between threads)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=False, dtd_validation=False, remove_pis=True)
        _local.parser = parser
    return parser


def _describe(tag: object) -> str:
    return tag if isinstance(tag, str) else "a non-element node"


def request_id_of(headers: list[etree._Element]) -> str | None:
    for entry in headers:
        if entry.tag in REQUEST_ID_NAMES:
            value = (entry.text or "").strip()
            if not _REQUEST_ID_OK.fullmatch(value):
                raise SoapError("CBE0005", "header REQUEST-ID must be 1..64 printable ASCII characters",
                                path=f"/Envelope/Header/{entry.tag[len(_CB_PREFIX):]}")
            return value
    return None


def parse(body: bytes) -> Envelope:
    """Parse and check one request envelope; raise :class:`SoapError` naming the problem."""
    if not body or not body.strip():
        raise SoapError("CBE0001", "empty request body: expected a SOAP 1.1 envelope")
    if any(marker in body for marker in _DOCTYPE_MARKERS):
        raise SoapError("CBE0002", _NO_DOCTYPE)
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        if "entity" in str(exc).lower():  # libxml2's own amplification guard, in any encoding
            raise SoapError("CBE0002", f"{_NO_DOCTYPE}: {exc}") from None
        raise SoapError("CBE0001", f"request is not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. a str with an encoding declaration
        raise SoapError("CBE0001", f"request is not well-formed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SoapError("CBE0002", _NO_DOCTYPE)
    if root.tag != _ENVELOPE:
        if root.tag == f"{{{SOAP12_ENV}}}Envelope":
            raise SoapError("CBE0003", "SOAP 1.2 envelopes are not supported: send a SOAP 1.1 "
                                       f"envelope ({SOAP_ENV})", faultcode=VERSION_MISMATCH)
        raise SoapError("CBE0003", f"not a SOAP 1.1 envelope: the root element is "
                                   f"{_describe(root.tag)}, expected {_ENVELOPE}")
    header: etree._Element | None = None
    body_el: etree._Element | None = None
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == _HEADER and header is None and body_el is None:
            header = child
        elif child.tag == _BODY and body_el is None:
            body_el = child
        else:
            raise SoapError("CBE0003", f"unexpected element {child.tag} in soap:Envelope "
                                       "(expected an optional soap:Header, then soap:Body)")
    if body_el is None:
        raise SoapError("CBE0003", "soap:Envelope has no soap:Body")
    headers = [h for h in header if isinstance(h.tag, str)] if header is not None else []
    request_id = request_id_of(headers)
    try:
        payload, operation = _operation(body_el)
        for entry in headers:
            if entry.get(_MUST_UNDERSTAND) in ("1", "true") and entry.tag not in _UNDERSTOOD:
                raise SoapError("CBE0009", f"header {entry.tag} has mustUnderstand=1 but is not "
                                           "understood", faultcode=MUST_UNDERSTAND)
    except SoapError as err:
        err.request_id = request_id
        raise
    return Envelope(operation, payload, headers, request_id)


def _operation(body_el: etree._Element) -> tuple[etree._Element, str]:
    payloads = [c for c in body_el if isinstance(c.tag, str)]
    if not payloads:
        raise SoapError("CBE0003", "soap:Body is empty: expected one operation element")
    if len(payloads) > 1:
        raise SoapError("CBE0003", f"soap:Body holds {len(payloads)} elements: expected exactly one "
                                   "operation element")
    payload = payloads[0]
    tag = payload.tag
    if not tag.startswith(_CB_PREFIX):
        ns = tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
        raise SoapError("CBE0004", f"wrong namespace for body element {etree.QName(tag).localname}: "
                                   f"{ns or '(none)'}; expected {CB_NS}")
    operation = tag[len(_CB_PREFIX):]
    if operation not in OPERATIONS:
        raise SoapError("CBE0004", f"unknown operation {operation}; known operations: "
                                   f"{', '.join(OPERATIONS)}")
    return payload, operation


# -- replies --------------------------------------------------------------------------------

_OPEN = (f'<?xml version="1.0" encoding="utf-8"?>\n<soap:Envelope xmlns:soap="{SOAP_ENV}" '
         f'xmlns:cb="{CB_NS}">')


def text(value: str) -> str:
    """Escape a value for element content (and drop characters XML 1.0 cannot carry)."""
    if not value.isprintable():
        value = _INVALID_XML_CHARS.sub("?", value)
    return escape(value)


def _header(request_id: str | None) -> str:
    if request_id is None:
        return ""
    return f"<soap:Header><cb:REQUEST-ID>{text(request_id)}</cb:REQUEST-ID></soap:Header>"


def reply(body_xml: str, request_id: str | None = None) -> bytes:
    """A response envelope around ``body_xml`` (already-escaped XML using the ``cb`` prefix)."""
    return f"{_OPEN}{_header(request_id)}<soap:Body>{body_xml}</soap:Body></soap:Envelope>".encode()


def fault(err: SoapError, request_id: str | None = None) -> bytes:
    """A SOAP 1.1 Fault; the detail carries a cb:MAINFRAME-ERROR (see CoreBanking.xsd)."""
    wsse = f' xmlns:wsse="{WSSE_NS}"' if err.faultcode.startswith("wsse:") else ""
    detail = [f"<cb:ERROR-CODE>{text(err.code)}</cb:ERROR-CODE>",
              f"<cb:RETURN-CODE>{err.return_code}</cb:RETURN-CODE>",
              f"<cb:ERROR-TEXT>{text(err.text[:256])}</cb:ERROR-TEXT>"]
    if err.path:
        detail.append(f"<cb:ERROR-PATH>{text(err.path[:256])}</cb:ERROR-PATH>")
    if request_id is not None:
        detail.append(f"<cb:REQUEST-ID>{text(request_id)}</cb:REQUEST-ID>")
    body = (f"<soap:Fault{wsse}><faultcode>{err.faultcode}</faultcode>"
            f"<faultstring>{text(err.code)}: {text(err.text)}</faultstring>"
            f"<detail><cb:MAINFRAME-ERROR>{''.join(detail)}</cb:MAINFRAME-ERROR></detail></soap:Fault>")
    return reply(body, request_id)
