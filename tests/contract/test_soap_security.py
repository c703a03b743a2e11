"""The SOAP adapter against a hostile server: replies built to exhaust memory or read local files.

A tiny ``http.server`` on loopback answers every POST with one hostile envelope (and records any GET,
which would be the client fetching a DTD or schema). The adapter must refuse each reply quickly
(< 1 s), without its memory growing (< 50 MB, sampled while the call runs), with one of our errors,
and without the content of a local file appearing anywhere. Two lines of defence are checked: the
transport's pre-screen (DOCTYPE/ENTITY, size cap) and, behind it, zeep's parser settings on their own.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from pathlib import Path

import psutil
import pytest
import zeep.exceptions
from zeep.loader import parse_xml

from adapters.errors import ContractViolation, CoreError
from adapters.soap import DEFAULT_WSDL, ZEEP_SETTINGS, SoapCore, SoapSettings
from canonical import Money, Transfer
from mappings.engine import MappingRegistry
from tests.support import LoopbackHttpServer

pytestmark = pytest.mark.contract

RSS_LIMIT = 50 * 1024 * 1024
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
CB = "urn:corebank:mainframe:v1"
BODY = (f'<soap:Envelope xmlns:soap="{SOAP}" xmlns:cb="{CB}"><soap:Body><cb:BalanceInquiryResponse>'
        "<cb:RETURN-BLOCK><cb:RETURN-CODE>0000</cb:RETURN-CODE><cb:REASON-CODE>    </cb:REASON-CODE>"
        "<cb:MESSAGE>{text}</cb:MESSAGE></cb:RETURN-BLOCK></cb:BalanceInquiryResponse></soap:Body></soap:Envelope>")


def billion_laughs() -> bytes:
    ents = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    return (f'<?xml version="1.0"?><!DOCTYPE soap:Envelope [{"".join(ents)}]>'
            + BODY.replace("{text}", "&lol9;")).encode()


def quadratic_blowup() -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE soap:Envelope [<!ENTITY a "{"x" * 50_000}">]>'
            + BODY.replace("{text}", "&a;" * 20_000)).encode()


def external_entity(target: str = "file:///etc/passwd") -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "{target}">]>'
            + BODY.replace("{text}", "&xxe;")).encode()


def parameter_entity(dtd_url: str) -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE soap:Envelope [<!ENTITY % remote SYSTEM "{dtd_url}"> %remote;]>'
            + BODY.replace("{text}", "x")).encode()


def external_dtd(dtd_url: str) -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE soap:Envelope SYSTEM "{dtd_url}">' + BODY.replace("{text}", "x")).encode()


def utf16_laughs() -> bytes:
    return billion_laughs().decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>'
                                             ).encode("utf-16")


def deep_nesting() -> bytes:
    return BODY.replace("{text}", "<a>" * 100_000 + "</a>" * 100_000).encode()


def oversized() -> bytes:
    return BODY.replace("{text}", "x" * (12 * 1024 * 1024)).encode()  # over the 8 MiB default cap


class HostileServer:
    def __init__(self) -> None:
        hostile = self
        self.payload = b""
        self.gets: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(hostile.payload)))
                self.end_headers()
                try:
                    self.wfile.write(hostile.payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up on an oversized body: that is the point

            def do_GET(self) -> None:  # noqa: N802
                hostile.gets.append(self.path)
                data = b'<!ENTITY % leak "<!ENTITY exfil SYSTEM \'http://127.0.0.1/?x\'>"> %leak;'
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = LoopbackHttpServer(Handler)
        self.base = self.server.base

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def hostile():
    server = HostileServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def adapter(hostile):
    settings = SoapSettings(endpoint=f"{hostile.base}/corebank/v1", username="U", password="P", read_timeout=5)
    with SoapCore(settings, MappingRegistry.load()) as core:
        yield core


class PeakRss:
    """The process's resident set size, sampled every 2 ms while the block runs."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.002)

    def __enter__(self) -> PeakRss:
        self.base = self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.base


PAYLOADS = {
    "billion-laughs": lambda base: billion_laughs(),
    "quadratic-blowup": lambda base: quadratic_blowup(),
    "xxe-etc-passwd": lambda base: external_entity(),
    "xxe-http": lambda base: external_entity(f"{base}/xxe"),
    "parameter-entity": lambda base: parameter_entity(f"{base}/evil.dtd"),
    "external-dtd": lambda base: external_dtd(f"{base}/evil.dtd"),
    "utf16-laughs": lambda base: utf16_laughs(),
    "deep-nesting": lambda base: deep_nesting(),
    "oversized": lambda base: oversized(),
}
PASSWD = Path("/etc/passwd").read_text() if Path("/etc/passwd").exists() else ""


@pytest.mark.parametrize("name", list(PAYLOADS))
@pytest.mark.parametrize("operation", ["balance", "abalance", "post"])
def test_hostile_replies_are_refused_fast_and_small(hostile, adapter, name, operation):
    hostile.payload = PAYLOADS[name](hostile.base)
    hostile.gets.clear()
    if operation == "balance":
        def call():
            return adapter.balance("110000000543")
    elif operation == "abalance":  # the event-loop path: aiohttp, the template, its own lxml parser
        def call():
            async def main():
                try:
                    return await adapter.abalance("110000000543")
                finally:
                    await adapter.aclose()
            return asyncio.run(main())
    else:
        def call():
            return adapter.post(Transfer(reference="EVIL-1", from_account="110000000543", to_account="159000000016",
                                         amount=Money.of(1, "EUR")))
    t0 = time.perf_counter()
    with PeakRss() as rss, pytest.raises(CoreError) as err:
        call()
    took = time.perf_counter() - t0
    assert isinstance(err.value, ContractViolation), repr(err.value)
    assert took < 1.0, took
    assert rss.growth < RSS_LIMIT, f"RSS grew {rss.growth / 2**20:.1f} MB"
    assert err.value.outcome_unknown is (operation == "post")  # the core may have posted before answering
    assert hostile.gets == [], "the client fetched a DTD or an entity"
    text = f"{err.value!s} {err.value!r} {err.value.__cause__!r}"
    for line in PASSWD.splitlines()[:3]:
        assert line not in text
    assert "lol" not in text and "x" * 100 not in text


@pytest.mark.parametrize("name", ["billion-laughs", "quadratic-blowup", "xxe-etc-passwd", "parameter-entity",
                                  "external-dtd", "utf16-laughs", "deep-nesting"])
def test_zeep_settings_alone_refuse_them_too(hostile, adapter, name):
    """Behind the transport's pre-screen: zeep's parser with the adapter's settings, fed the raw payload."""
    settings = adapter.client.settings
    assert {k: getattr(settings, k) for k in ZEEP_SETTINGS} == ZEEP_SETTINGS
    hostile.gets.clear()
    payload = PAYLOADS[name](hostile.base)
    t0 = time.perf_counter()
    with PeakRss() as rss, pytest.raises((zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden,
                                          zeep.exceptions.XMLSyntaxError)):
        parse_xml(payload, adapter.transport, settings=settings)
    assert time.perf_counter() - t0 < 1.0
    assert rss.growth < RSS_LIMIT
    assert hostile.gets == []


def test_a_wsdl_importing_a_remote_schema_is_refused_without_fetching(hostile, tmp_path):
    wsdl = DEFAULT_WSDL
    text = wsdl.read_text().replace('schemaLocation="CoreBanking.xsd"',
                                    f'schemaLocation="{hostile.base}/CoreBanking.xsd"')
    evil = tmp_path / "CoreBanking.wsdl"
    evil.write_text(text)
    hostile.gets.clear()
    settings = SoapSettings(endpoint=f"{hostile.base}/corebank/v1", username="U", password="P", wsdl_path=evil)
    with pytest.raises(ValueError, match="ExternalReferenceForbidden"):
        SoapCore(settings, MappingRegistry.load())
    assert hostile.gets == []


def test_the_transport_loads_no_url(adapter, hostile):
    hostile.gets.clear()
    for url in (f"{hostile.base}/x.xsd", "https://example.invalid/x.wsdl"):
        with pytest.raises(zeep.exceptions.ExternalReferenceForbidden):
            adapter.transport.load(url)
    assert "file://" not in adapter.session.adapters
    assert hostile.gets == []


@pytest.mark.parametrize("name", ["billion-laughs", "quadratic-blowup", "xxe-etc-passwd", "parameter-entity",
                                  "external-dtd", "utf16-laughs", "deep-nesting"])
def test_the_event_loop_parser_alone_refuses_them_too(hostile, adapter, name):
    """Second line of the event-loop path (the transport's DOCTYPE/ENTITY screen bypassed): its own
    lxml parser expands nothing and fetches nothing, and zeep, which gets what is off the happy shape,
    refuses the rest."""
    from adapters.soap_async import Reply
    from adapters.soap_errors import translate

    hostile.gets.clear()
    fast = adapter._fast["BalanceInquiry"]
    with PeakRss() as rss, pytest.raises(ContractViolation), translate("BalanceInquiry"):
        fast.parse(Reply(200, {"Content-Type": "text/xml"}, PAYLOADS[name](hostile.base)), None)
    assert rss.growth < RSS_LIMIT and hostile.gets == []
