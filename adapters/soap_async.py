"""The event-loop path of the SOAP adapter for single-key inquiries (BalanceInquiry): no thread hop,
no per-call zeep serialisation, still WSDL-driven.

Why: through zeep + requests in a worker thread a BalanceInquiry cost the facade ~1 ms of CPU per
request (the HTTP send, zeep's serialise and parse, the thread hop). Here:

* **The envelope is zeep's own.** :class:`EnvelopeTemplate` asks zeep (the WSDL binding, the
  WS-Security plugin) for the envelope once per shape (with and without the ``cb:REQUEST-ID``
  header) with placeholder values and keeps the bytes around them; a call only escapes and splices
  the key and the request id. A test checks the output against zeep's for tricky values.
* **The reply is read from the schema zeep loaded.** :func:`compile_reader` turns the output element
  of the operation (as zeep parsed it from the XSD) into a strict reader over an lxml tree: every
  element in order, required ones present, nothing unexpected, simple values through zeep's own
  ``pythonvalue``; it returns the same dict as ``serialize_object`` of zeep's result. Anything
  outside that happy shape (a Fault, HTTP status other than 200, malformed XML, an element out of
  place) is handed to zeep's ``process_reply`` on the same bytes, so errors are exactly zeep's and
  :func:`adapters.soap_errors.translate` maps them as before.
* **HTTP** is :mod:`adapters.soap_http` (keep-alive pool per event loop, httptools).
* **Hardening holds:** the body is capped while it streams in, refused when it carries a DOCTYPE or
  ENTITY declaration (:func:`screen`, before lxml sees it), and parsed with no DTD loading, no entity
  resolution, no network and no huge trees; a document that still has a DTD goes to zeep, which
  refuses it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree
from zeep.helpers import serialize_object
from zeep.wsdl.utils import etree_to_string

from adapters.soap_errors import CB_NS, HostileResponse, RequestIdMismatch, scrub
from adapters.soap_http import Reply
from adapters.soap_transport import has_declaration

__all__ = ["EnvelopeTemplate", "FastOperation", "Reply", "compile_reader", "screen"]

_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_ENVELOPE, _HEADER, _BODY = (f"{{{_ENV_NS}}}{n}" for n in ("Envelope", "Header", "Body"))
REQUEST_ID_TAG = f"{{{CB_NS}}}REQUEST-ID"
_KEY_MARK, _RID_MARK = "CBKEYMARK7Q", "CBRIDMARK7Q"
_BAD = object()  # a reply off the fast path's shape: zeep decides

_parsers = threading.local()


def _parser() -> etree.XMLParser:
    """A hardened lxml parser per thread (lxml parsers must not be shared between threads)."""
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                                 huge_tree=False, remove_comments=False)
        _parsers.parser = parser
    return parser


def screen(content: bytes) -> None:
    """Refuse a body carrying a DOCTYPE or ENTITY declaration (any XML encoding) before lxml sees it."""
    if has_declaration(content):
        raise HostileResponse("DOCTYPE or ENTITY declaration in the response")


# -- the request ----------------------------------------------------------------------------------------
class EnvelopeTemplate:
    """zeep's envelope for one single-key operation, as bytes with two holes (key, request id)."""

    def __init__(self, client: Any, binding: Any, operation: str, key_field: str) -> None:
        self.operation = operation
        self.key_field = key_field
        plain, self.headers = self._zeep(client, binding, None)
        with_rid, _ = self._zeep(client, binding, _RID_MARK)
        self._plain = self._split(plain, (_KEY_MARK,))
        self._with_rid = self._split(with_rid, (_RID_MARK, _KEY_MARK))

    def _zeep(self, client: Any, binding: Any, rid: str | None) -> tuple[bytes, dict[str, str]]:
        kwargs: dict[str, Any] = {self.key_field: _KEY_MARK}
        if rid is not None:
            header = etree.Element(REQUEST_ID_TAG, nsmap={"cb": CB_NS})
            header.text = rid
            kwargs["_soapheaders"] = [header]
        envelope, headers = binding._create(self.operation, (), kwargs, client=client)
        return etree_to_string(envelope), dict(headers)

    @staticmethod
    def _split(body: bytes, marks: tuple[str, ...]) -> list[bytes]:
        parts: list[bytes] = []
        rest = body
        for mark in marks:
            before, found, rest = rest.partition(mark.encode())
            if not found or mark.encode() in rest:
                raise ValueError(f"zeep's envelope does not carry the placeholder {mark} exactly once")
            parts.append(before)
        parts.append(rest)
        return parts

    def render(self, key: str, request_id: str | None) -> bytes:
        k = escape(key).encode()
        if request_id is None:
            a, b = self._plain
            return a + k + b
        a, b, c = self._with_rid
        return a + escape(request_id).encode() + b + k + c


# -- the reply --------------------------------------------------------------------------------------------
def compile_reader(element: Any) -> Callable[[etree._Element], Any]:
    """A strict reader for ``element`` (a zeep ``Element`` of sequences of single elements and simple
    values) returning ``serialize_object``'s dict, or ``_BAD`` when the tree is off that shape.
    ``ValueError`` when the schema uses something this reader does not cover (then no fast path)."""
    xsd_type = element.type
    if element.max_occurs != 1 or getattr(element, "nillable", False):
        raise ValueError(f"{element.qname}: only single, non-nillable elements")
    if not hasattr(xsd_type, "elements"):
        pythonvalue = xsd_type.pythonvalue

        def simple(node: etree._Element) -> Any:
            if len(node):
                return _BAD
            text = node.text
            return None if text is None else pythonvalue(text)

        return simple
    if xsd_type.attributes or type(xsd_type._element).__name__ != "Sequence":
        raise ValueError(f"{element.qname}: only plain sequences without attributes")
    spec = [(name, child.qname.text, child.min_occurs > 0, compile_reader(child)) for name, child in xsd_type.elements]

    def complex_(node: etree._Element) -> Any:
        out: dict[str, Any] = {}
        children = iter(node)
        child = next(children, None)
        for name, qname, required, read in spec:
            if child is not None and child.tag == qname:
                value = read(child)
                if value is _BAD:
                    return _BAD
                out[name] = value
                child = next(children, None)
            elif required:
                return _BAD
            else:
                out[name] = None
        return _BAD if child is not None else out

    return complex_


class FastOperation:
    """One single-key operation: its envelope template, its reply reader, zeep as the fallback."""

    def __init__(self, client: Any, binding: Any, operation: str, key_field: str) -> None:
        self.client = client
        self.binding = binding
        self.name = operation
        self.template = EnvelopeTemplate(client, binding, operation, key_field)
        self.headers = self.template.headers
        self._operation = binding.get(operation)
        output = self._operation.output.body
        self.response_tag = output.qname.text
        self.read = compile_reader(output)
        self._prefix: tuple[Any, bytes] | None = None

    def request(self, pool: Any, key: str, request_id: str | None) -> bytes:
        """The whole HTTP request for ``pool`` (an :class:`adapters.soap_http.HttpPool`)."""
        if self._prefix is None or self._prefix[0] is not pool:
            self._prefix = (pool, pool.prefix(self.headers))
        return pool.request_bytes(self._prefix[1], self.template.render(key, request_id))

    def parse(self, reply: Reply, request_id: str | None) -> dict[str, Any]:
        """The reply as ``serialize_object(zeep's result, dict)``: read here when it has the happy shape,
        else by zeep (which raises its Fault, TransportError, ... for ``translate``)."""
        if reply.status_code == 200:
            fast = self._fast(reply.content, request_id)
            if fast is not _BAD:
                return fast
        result = self.binding.process_reply(self.client, self._operation, reply)
        return serialize_object(result, dict)

    def _fast(self, content: bytes, request_id: str | None) -> Any:
        try:
            root = etree.fromstring(content, _parser())
        except etree.XMLSyntaxError:
            return _BAD
        if root.tag != _ENVELOPE:
            return _BAD
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
            return _BAD  # a DTD of any kind: zeep (forbid_dtd) refuses it

        body = None
        for part in root:
            if part.tag == _HEADER and body is None:
                _check_request_id(part, request_id)
            elif part.tag == _BODY and body is None:
                body = part
            else:
                return _BAD
        if body is None or len(body) != 1 or body[0].tag != self.response_tag:
            return _BAD
        return self.read(body[0])


def _check_request_id(header: etree._Element, request_id: str | None) -> None:
    if request_id is None:
        return
    echoed = None
    for child in header:  # header.findtext(REQUEST_ID_TAG), without compiling a path per call
        if child.tag == REQUEST_ID_TAG:
            echoed = child.text or ""
            break
    if echoed is not None and echoed.strip() != request_id:
        raise RequestIdMismatch(f"sent REQUEST-ID {request_id!r}, the reply echoes {scrub(echoed, 64)!r}")
