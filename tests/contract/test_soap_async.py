"""The SOAP adapter's event-loop path (``SoapCore.abalance``): the same answers and the same errors as the
zeep path, with zeep as the reference.

* the envelope template renders byte for byte what zeep serialises, for awkward keys and request ids;
* the strict reader returns what ``serialize_object`` of zeep's parse returns, for the core's real
  replies, and hands anything off its shape back to zeep (so the outcome is zeep's);
* faults, timeouts, outages, non-SOAP answers and hostile bodies become the same ``adapters.errors``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import socket
import threading
import time
import uuid

import pytest
from lxml import etree
from zeep.helpers import serialize_object
from zeep.wsdl.utils import etree_to_string

from adapters.errors import BackendFault, BackendTimeout, BackendUnavailable, ContractViolation, RecordNotFound
from adapters.soap import MainframeFault, SoapCore, SoapSettings, request_id_var
from adapters.soap_async import _BAD, REQUEST_ID_TAG, Reply
from adapters.soap_errors import CB_NS
from adapters.soap_transport import CallScope
from canonical import Money
from mappings.engine import MappingRegistry
from mock_mainframe.faults import FaultRule
from tests.contract.test_soap_adapter import balance_reply, settings_for
from tests.support import CannedCore

pytestmark = pytest.mark.contract


def run(adapter: SoapCore, fn, rid: str | None = None):
    """``await fn()`` in a fresh event loop (the request id set as the facade sets it), then close the
    adapter's HTTP session of that loop."""

    async def main():
        request_id_var.set(rid)
        try:
            return await fn()
        finally:
            await adapter.aclose()

    return contextvars.copy_context().run(asyncio.run, main())


def outcome(fn):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - compared between the two paths
        return exc


def same_outcome(sync_result, async_result) -> None:
    if isinstance(sync_result, Exception):
        assert type(async_result) is type(sync_result), (sync_result, async_result)
        assert async_result.outcome_unknown is sync_result.outcome_unknown is False
        assert (async_result.backend, async_result.operation) == ("soap", "BalanceInquiry")
    else:
        assert async_result == sync_result


@pytest.fixture(scope="module")
def soap(core, registry):
    with SoapCore(settings_for(core), registry) as adapter:
        yield adapter


@pytest.fixture(scope="module")
def account(soap, core) -> str:
    return next(a.id for a in soap.accounts_of(core.customer_id) if a.status == "open")


# -- zeep is the reference ----------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["110000000543", "1", "12<&>'\"", "ÄÖÜ ß", " x "])
@pytest.mark.parametrize("rid", [None, "req-1", "<&>\"'~ !", "r" * 64])
def test_the_template_renders_what_zeep_serialises(registry, key, rid):
    with SoapCore(SoapSettings(endpoint="http://127.0.0.1:9/corebank/v1", username="U&<>", password="p\"'<&"),
                  registry) as adapter:
        fast = adapter._fast["BalanceInquiry"]
        kwargs = {"ACCT-NO": key}
        if rid is not None:
            header = etree.Element(REQUEST_ID_TAG, nsmap={"cb": CB_NS})
            header.text = rid
            kwargs["_soapheaders"] = [header]
        envelope, headers = adapter.service._binding._create("BalanceInquiry", (), kwargs, client=adapter.client)
        assert fast.template.render(key, rid) == etree_to_string(envelope)
        assert fast.headers == dict(headers)


def _zeep_and_fast(adapter: SoapCore, body: bytes, rid: str | None = None):
    fast = adapter._fast["BalanceInquiry"]
    reply = Reply(200, {"Content-Type": "text/xml; charset=utf-8"}, body)
    token = request_id_var.set(rid)
    try:
        zeep_result = outcome(lambda: serialize_object(
            adapter.service._binding.process_reply(adapter.client, fast._operation, reply), dict))
    finally:
        request_id_var.reset(token)
    return zeep_result, fast._fast(body, rid)


def test_the_reader_returns_zeeps_dict_for_the_cores_replies(soap, account):
    fast = soap._fast["BalanceInquiry"]
    for key, rid in ((account, "rid-1"), (account, None), ("999999999999", "rid-2")):
        call = CallScope.for_budget(5, 3, rid)
        reply = run(soap, lambda k=key, r=rid, c=call: soap.async_http.post(fast.request(soap.async_http, k, r), c))
        assert reply.status_code == 200
        zeep_result, fast_result = _zeep_and_fast(soap, reply.content, rid)
        assert fast_result is not _BAD, "the core's reply should be read on the fast path"
        assert fast_result == zeep_result
    assert fast_result["BALANCE"] is None and fast_result["RETURN-BLOCK"]["REASON-CODE"] == "N001"


def _variant(pattern: str, replacement: str) -> bytes:
    body = balance_reply().decode()
    changed = re.sub(pattern, replacement, body, count=1)
    assert changed != body, pattern
    return changed.encode()


@pytest.mark.parametrize("body", [
    _variant(r"<cb:MESSAGE>[^<]*</cb:MESSAGE>", "<cb:MESSAGE/>"),                     # empty: None in both
    _variant(r"</cb:AS-OF-DT>", "</cb:AS-OF-DT><cb:EXTRA>1</cb:EXTRA>"),             # unexpected element
    _variant(r"<cb:HOLD-AMT>[^<]*</cb:HOLD-AMT>", ""),                               # required one missing
    _variant(r"<cb:CURR-CD>", "<!-- c --><cb:CURR-CD>"),                              # a comment
    _variant(r"<cb:ACCT-STAT>A</cb:ACCT-STAT><cb:LEDGER-BAL>([^<]*)</cb:LEDGER-BAL>",
             r"<cb:LEDGER-BAL>\1</cb:LEDGER-BAL><cb:ACCT-STAT>A</cb:ACCT-STAT>"),       # out of order
    _variant(r"<cb:ACCT-NO>110000000543</cb:ACCT-NO>", "<cb:ACCT-NO>1100<b/>00000543</cb:ACCT-NO>"),
])
def test_a_reply_off_the_happy_shape_gets_zeeps_answer(canned, body):
    server, adapter = canned
    zeep_result, fast_result = _zeep_and_fast(adapter, body)
    assert fast_result is _BAD or fast_result == zeep_result
    server.reply = lambda _: (200, "text/xml", body)
    same_outcome(outcome(lambda: adapter.balance("110000000543")),
                 outcome(lambda: run(adapter, lambda: adapter.abalance("110000000543"))))


# -- the same answers and errors as the zeep path -------------------------------------------------------------

def test_abalance_answers_as_balance(soap, account):
    assert run(soap, lambda: soap.abalance(account)) == soap.balance(account)
    for missing in ("999999999999", "", "1234567890123"):
        with pytest.raises(RecordNotFound):
            run(soap, lambda m=missing: soap.abalance(m))


def test_request_id_reaches_the_core_and_a_foreign_echo_is_refused(mock_only, soap, account, canned, caplog):
    caplog.set_level(logging.INFO, logger="mock_mainframe.soap")
    rid = f"req-{uuid.uuid4().hex}"
    run(soap, lambda: soap.abalance(account), rid=rid)
    assert any(f"rid={rid}" in r.getMessage() for r in caplog.records if r.name == "mock_mainframe.soap")
    server, adapter = canned
    server.reply = lambda body: (200, "text/xml", balance_reply(rid="someone-else"))
    with pytest.raises(ContractViolation, match="another request"):
        run(adapter, lambda: adapter.abalance("110000000543"), rid="mine")
    assert re.search(rb"<(\w+:)?REQUEST-ID[^>]*>mine</", server.posts[-1])
    assert run(adapter, lambda: adapter.abalance("110000000543")).ledger == Money.of("125.40", "EUR")


@pytest.mark.parametrize("kind,error", [("fault", MainframeFault), ("http500", BackendFault),
                                        ("reset", BackendUnavailable)])
def test_injected_faults_are_translated_alike(mock_only, soap, account, kind, error):
    mock_only.faults.set_rules([FaultRule(face="soap", operation="*", error_rate=1.0, error=kind)])
    sync_err = outcome(lambda: soap.balance(account))
    async_err = outcome(lambda: run(soap, lambda: soap.abalance(account)))
    assert isinstance(async_err, error)
    same_outcome(sync_err, async_err)
    if kind == "fault":
        assert (async_err.error_code, async_err.return_code) == (sync_err.error_code, sync_err.return_code)


def test_hang_is_a_timeout_within_the_budget(mock_only, soap, account):
    mock_only.faults.set_rules([FaultRule(face="soap", operation="*", error_rate=1.0, error="hang", hang_s=1.0)])
    loop_time = []

    async def call():
        t0 = asyncio.get_running_loop().time()
        try:
            return await soap.abalance(account, timeout=0.3)
        finally:
            loop_time.append(asyncio.get_running_loop().time() - t0)

    err = outcome(lambda: run(soap, call))
    assert isinstance(err, BackendTimeout) and err.outcome_unknown is False and loop_time[0] < 0.5, (err, loop_time)


def test_outage_is_unavailable_then_it_reconnects(mock_only, soap, account):
    mock_only.faults.outage("soap", 10)
    try:
        err = outcome(lambda: run(soap, lambda: soap.abalance(account)))
        assert isinstance(err, BackendUnavailable) and "cannot connect" in str(err), err
    finally:
        mock_only.faults.end_outage("soap")
    assert run(soap, lambda: soap.abalance(account)).account_id == account


@pytest.mark.parametrize("status,body,error", [
    (200, b"<html>maintenance</html>", ContractViolation),
    (200, b"not xml at all", ContractViolation),
    (503, b"Service Unavailable", BackendUnavailable),
    (504, b"Gateway Timeout", BackendTimeout),
    (404, b"no such path", BackendFault),
    (200, balance_reply(rc="0012", reason="S001"), ContractViolation),
    (200, balance_reply(currency="ZZZ"), ContractViolation),
])
def test_answers_that_break_the_contract_fail_alike(canned, status, body, error):
    server, adapter = canned
    server.reply = lambda _: (status, "text/plain", body)
    sync_err = outcome(lambda: adapter.balance("110000000543"))
    async_err = outcome(lambda: run(adapter, lambda: adapter.abalance("110000000543")))
    assert isinstance(async_err, error), repr(async_err)
    same_outcome(sync_err, async_err)
    assert str(async_err) == str(sync_err)


def test_the_wrong_password_is_a_client_fault(mock_only, core, registry, account):
    with SoapCore(settings_for(core, password="wrong"), registry) as adapter:
        err = outcome(lambda: run(adapter, lambda: adapter.abalance(account)))
    assert isinstance(err, MainframeFault) and (err.error_code, err.return_code) == ("CBE0011", "0008")


def test_keep_alive_connections_are_reused_up_to_pool_size_and_closed_by_aclose(core, account):
    with SoapCore(settings_for(core, pool_size=4), MappingRegistry.load()) as adapter:
        pool = adapter.async_http

        async def calls():
            for _ in range(5):
                await adapter.abalance(account)
            sequential = pool.idle_connections()
            await asyncio.gather(*(adapter.abalance(account) for _ in range(8)))
            concurrent = pool.idle_connections()
            await adapter.aclose()
            return sequential, concurrent, pool.idle_connections()

        assert run(adapter, calls) == (1, 4, 0)


class RawServer:
    """A loopback server answering each request with ``answer`` bytes, then closing or keeping the connection."""

    def __init__(self, answer: bytes, *, close: bool) -> None:
        self.answer, self.close_after = answer, close
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/corebank/v1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(self.answer)
                if not self.close_after:
                    time.sleep(0.2)

    def stop(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("framing", ["chunked", "until-eof"])
def test_chunked_and_read_until_close_answers_are_read_whole(registry, framing):
    body = balance_reply()
    if framing == "chunked":
        half = len(body) // 2
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]))
        answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + chunks + b"0\r\n\r\n")
    else:
        answer = b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n" + body
    server = RawServer(answer, close=framing == "until-eof")
    try:
        with SoapCore(SoapSettings(endpoint=server.url, username="U", password="P", read_timeout=2),
                      registry) as adapter:
            assert run(adapter, lambda: adapter.abalance("110000000543")).ledger == Money.of("125.40", "EUR")
    finally:
        server.stop()


def test_garbage_instead_of_http_is_a_lost_connection(registry):
    server = RawServer(b"SSH-2.0-OpenSSH_9.2\r\n", close=True)
    try:
        with SoapCore(SoapSettings(endpoint=server.url, username="U", password="P", read_timeout=2),
                      registry) as adapter:
            err = outcome(lambda: run(adapter, lambda: adapter.abalance("110000000543")))
            assert isinstance(err, BackendUnavailable) and type(err) is type(outcome(
                lambda: adapter.balance("110000000543"))), err
    finally:
        server.stop()


def test_with_a_proxy_configured_the_zeep_path_answers(core, registry):
    with SoapCore(settings_for(core, proxy="http://127.0.0.1:9"), registry) as adapter:  # nothing listens there
        assert adapter.async_http is None
        same_outcome(outcome(lambda: adapter.balance("110000000543")),
                     outcome(lambda: run(adapter, lambda: adapter.abalance("110000000543"))))


def test_a_keep_alive_connection_the_server_dropped_is_not_reused_nor_waited_on(registry):
    body = balance_reply()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    server = RawServer(answer, close=True)  # claims keep-alive, then closes after each answer
    try:
        with SoapCore(SoapSettings(endpoint=server.url, username="U", password="P", read_timeout=2),
                      registry) as adapter:
            async def calls():
                first = await adapter.abalance("110000000543")
                await asyncio.sleep(0.1)  # the server's close has arrived: that connection is not reused
                second = await adapter.abalance("110000000543")
                started = asyncio.get_running_loop().time()
                try:  # no pause: the request may meet the dropped connection; it fails fast, never waits
                    third = await adapter.abalance("110000000543")
                except BackendUnavailable as exc:
                    third = exc
                return first, second, third, asyncio.get_running_loop().time() - started

            first, second, third, took = run(adapter, calls)
            assert first == second and took < 1.0
            assert third == first or isinstance(third, BackendUnavailable)
    finally:
        server.stop()


def _self_signed(tmp_path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_with_the_cores_ca_and_a_refusal_without_it(registry, tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    server = CannedCore()
    server.reply = lambda _: (200, "text/xml", balance_reply())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.server.use_tls(context)
    url = server.url.replace("http://", "https://")
    try:
        with SoapCore(SoapSettings(endpoint=url, username="U", password="P", read_timeout=2, verify=cert),
                      registry) as adapter:
            assert run(adapter, lambda: adapter.abalance("110000000543")) == adapter.balance("110000000543")
        with SoapCore(SoapSettings(endpoint=url, username="U", password="P", read_timeout=2), registry) as adapter:
            same_outcome(outcome(lambda: adapter.balance("110000000543")),
                         outcome(lambda: run(adapter, lambda: adapter.abalance("110000000543"))))
            assert isinstance(outcome(lambda: run(adapter, lambda: adapter.abalance("110000000543"))),
                              BackendUnavailable)
    finally:
        server.close()
