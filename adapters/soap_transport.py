"""The HTTP side of the SOAP adapter: one pooled ``requests.Session`` and a zeep ``Transport`` that takes
its timeouts from the call in progress.

zeep fixes a Transport's ``operation_timeout`` when it is built, but the resilience pipeline hands every
attempt its own time (``fn(timeout=...)``: min(attempt timeout, time left)), and zeep is shared by
threads. So :class:`CallScope` (what one call may spend, and whether its request was started) lives in a
``ContextVar``; :class:`BoundedTransport.post` reads it, per thread and per task, and passes
``timeout=(connect, read)`` to ``session.post``:

* connect: ``min(connect_timeout, budget)``;
* read: ``budget``, the longest wait for the response to start and for each following read;
* the whole body must have arrived ``budget`` seconds after the call began (checked between chunks
  while streaming it), else the call is a read timeout.

The body is streamed and refused past ``max_response_bytes``; a body that carries ``<!DOCTYPE`` or
``<!ENTITY`` (in UTF-8/16/32) is refused before lxml sees it. zeep's own parser settings
(``forbid_dtd``, ``forbid_entities``, no entity resolution, no huge trees) are the second line.
Loading anything over HTTP(S) is refused (``load``): the WSDL and XSD are local files, read once.
The transport never logs a message body (zeep's does, at DEBUG: it holds the password and account
numbers).
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import requests
import requests.adapters
import zeep.exceptions
from zeep.transports import Transport

from adapters.soap_errors import HostileResponse, ResponseTooLarge

__all__ = ["CHUNK", "MARKERS", "BoundedTransport", "CallScope", "current_call", "has_declaration", "pooled_session"]

CHUNK = 64 * 1024
#: a DOCTYPE or ENTITY declaration in any of the encodings XML allows: refused before lxml sees the body
MARKERS = tuple(marker.encode(enc) for marker in ("<!DOCTYPE", "<!ENTITY")
                 for enc in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"))


def has_declaration(body: bytes) -> bool:
    """Whether ``body`` holds a DOCTYPE or ENTITY declaration (any of :data:`MARKERS`).

    A body with no ``<!`` and no NUL byte cannot hold one (the UTF-8 markers start with ``<!``, the
    UTF-16/32 ones all hold NULs): two scans instead of ten on every ordinary reply."""
    if b"<!" not in body and b"\x00" not in body:
        return False
    return any(marker in body for marker in MARKERS)


@dataclass
class CallScope:
    """One SOAP call's limits and progress (set by the adapter, read by the transport)."""

    connect: float
    read: float
    deadline: float  # time.monotonic() by which the response body must be complete
    request_id: str | None = None
    attempted: bool = False  # the HTTP request was started: it may have reached the core
    status: int | None = field(default=None)

    @classmethod
    def for_budget(cls, budget: float, connect_timeout: float, request_id: str | None = None) -> CallScope:
        return cls(connect=min(connect_timeout, budget), read=budget, deadline=time.monotonic() + budget,
                   request_id=request_id)


current_call: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar("corebridge_soap_call",
                                                                                default=None)


def pooled_session(pool_size: int, *, verify: bool | str = True, proxy: str | None = None) -> requests.Session:
    """A session with one connection pool of ``pool_size`` keep-alive connections per host.

    requests' default pool holds 10; size it to the backend's bulkhead so that concurrent calls do not
    open and discard connections. No retries here (the pipeline decides), no redirects for POSTs,
    no proxies or netrc from the environment (only ``proxy``, if given).
    """
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0,
                                            pool_block=False)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False
    session.verify = verify
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    session.headers["User-Agent"] = "corebridge-soap"
    return session


class BoundedTransport(Transport):
    """zeep Transport: per-call timeouts from :data:`current_call`, capped and pre-screened bodies."""

    def __init__(self, session: requests.Session, *, connect_timeout: float, read_timeout: float,
                 max_response_bytes: int) -> None:
        super().__init__(session=session, timeout=connect_timeout + read_timeout, operation_timeout=read_timeout)
        self.session.adapters.pop("file://", None)  # zeep mounts a file:// adapter; nothing here reads files by URL
        self.session.headers["User-Agent"] = "corebridge-soap"
        self._close_session = False  # the adapter owns the session and closes it
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_response_bytes = max_response_bytes

    def load(self, url: str) -> bytes:
        """Local files only: the WSDL and its XSD are packaged; nothing is fetched at run time."""
        if urlparse(url).scheme in ("http", "https"):
            raise zeep.exceptions.ExternalReferenceForbidden(url)
        return super().load(url)

    def get(self, address, params, headers):  # noqa: ANN001 - zeep's signature
        raise zeep.exceptions.ExternalReferenceForbidden(address)

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> requests.Response:
        call = current_call.get()
        if call is None:
            call = CallScope.for_budget(self.read_timeout, self.connect_timeout)
        call.attempted = True
        response = self.session.post(address, data=message, headers=headers, timeout=(call.connect, call.read),
                                     stream=True, allow_redirects=False)
        call.status = response.status_code
        try:
            body = self._read_body(response, call)
        except BaseException:
            response.close()  # a half-read connection must not go back to the pool
            raise
        response._content = body  # what requests does when it reads the body itself
        response._content_consumed = True
        return response

    def _read_body(self, response: requests.Response, call: CallScope) -> bytes:
        limit = self.max_response_bytes
        header = response.headers.get("Content-Length")
        length = int(header) if header is not None and header.isdigit() else None
        if length is not None and length > limit:
            raise ResponseTooLarge(f"Content-Length {length} exceeds the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(f"the body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
            # a body still incomplete at the deadline is a timeout; a complete one is used, however late
            if (length is None or size < length) and time.monotonic() > call.deadline:
                raise requests.exceptions.ReadTimeout(
                    f"the response body was not complete within {call.read:g} s", response=response)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if has_declaration(body):
            raise HostileResponse("DOCTYPE or ENTITY declaration in the response")
        return body
