"""``SoapCore``: the core's SOAP face (CoreBanking.wsdl) behind the :class:`~adapters.ports.CustomerSource`,
:class:`~adapters.ports.AccountSource` and :class:`~adapters.ports.TransferGateway` ports.

What the adapter promises, and how:

* **Built once, from local files.** One zeep ``Client`` from the packaged ``adapters/wsdl/CoreBanking.wsdl``
  (and the XSD next to it), hardened (``strict``, ``forbid_dtd``, ``forbid_entities``,
  ``forbid_external``, no huge trees); the transport refuses to load anything over HTTP, so nothing is
  fetched at run time and the WSDL's own ``soap:address`` is ignored: the endpoint comes from
  :class:`SoapSettings` (``client.create_service(binding, url)``). One ``requests.Session`` with a
  keep-alive pool of ``pool_size`` connections (match the backend's bulkhead). Thread-safe: calls from
  many threads share the client and the pool.
* **Canonical out.** Every reply's ``RETURN-BLOCK`` is checked, then the mapping files turn it into
  canonical objects: 0000 -> mapped; 0008/N001 -> ``RecordNotFound``; 0008/R001..R010 on FundsTransfer
  -> ``Rejected``; 0004 (a list cut at 999) -> mapped, with a warning; anything else, or a reply a
  mapping refuses -> ``ContractViolation``. Mappings are looked up per call, so
  ``MappingRegistry.reload()`` takes effect without a new adapter.
* **The caller's timeout bounds the HTTP call.** ``timeout=`` (the pipeline's attempt budget; default
  ``read_timeout``) caps the connect, each wait for bytes and the whole body; see
  :mod:`adapters.soap_transport`.
* **Errors translated at this edge** (:mod:`adapters.soap_errors`): nothing from zeep, requests, urllib3
  or lxml leaves. A FundsTransfer that fails after its request may have left (timeout, reset, a server
  fault, an unreadable answer) carries ``outcome_unknown=True``: look it up with :meth:`SoapCore.inquire`
  before sending it again (the core does not de-duplicate references).
* **Request ids.** The facade sets :data:`request_id_var` (or hands ``SoapCore(request_id=...)`` its own
  context variable's ``get``); each call sends the id as the ``cb:REQUEST-ID`` SOAP header, and a reply
  that echoes a different id is refused (it answers another request).
* **No secrets or PII in logs.** Account numbers appear as their last 4 digits, never a customer's
  name; the password is not in ``repr(settings)``; zeep's DEBUG dump of message bodies is bypassed.
* **Speed** (``benchmarks/bench_soap.py``, BalanceInquiry on one thread against the mock's face in another
  process, 2-core machine): 1,040-1,280 calls/s, 0.79-0.80x a raw POST of the same envelope + lxml parse;
  160-200 us per call over raw (zeep's serialise + parse, WS-Security, ``serialize_object``, mapping,
  validation). Keys that cannot exist (too long, empty) are answered ``RecordNotFound`` without a round
  trip.
* **The event-loop path** (:meth:`SoapCore.abalance`, the facade's balance route): no worker thread, zeep's
  envelope as a precompiled template, a strict lxml reader built from zeep's schema, zeep's own parse for
  anything off the happy shape (:mod:`adapters.soap_async`), over a small keep-alive HTTP/1.1 client
  (:mod:`adapters.soap_http`); the same checks, mappings and errors as :meth:`SoapCore.balance`. With a
  proxy configured it runs :meth:`SoapCore.balance` in a worker thread instead.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import zeep
import zeep.exceptions
from lxml import etree
from zeep.helpers import serialize_object
from zeep.plugins import Plugin
from zeep.wsse.username import UsernameToken

from adapters.errors import ContractViolation, RecordNotFound, Rejected
from adapters.soap_async import FastOperation, screen
from adapters.soap_errors import CB_NS, MainframeFault, RequestIdMismatch, mask, scrub, translate
from adapters.soap_http import HttpPool
from adapters.soap_transport import BoundedTransport, CallScope, current_call, pooled_session
from canonical import Account, Balance, Customer, Page, Transaction, Transfer, TransferStatus

__all__ = [
    "BINDING_QNAME",
    "DEFAULT_WSDL",
    "MAPPINGS",
    "ZEEP_SETTINGS",
    "MainframeFault",
    "SoapCore",
    "SoapSettings",
    "request_id_var",
]

log = logging.getLogger(__name__)

BACKEND = "soap"
DEFAULT_WSDL = Path(__file__).resolve().parent / "wsdl" / "CoreBanking.wsdl"
BINDING_QNAME = "{urn:corebank:mainframe:v1:wsdl}CoreBankingSoapBinding"
REQUEST_ID_TAG = f"{{{CB_NS}}}REQUEST-ID"
_SOAP_HEADER = "{http://schemas.xmlsoap.org/soap/envelope/}Header"

#: zeep's parser settings (zeep 4.3.3 field names): no DTDs, entities, external fetches or huge trees
ZEEP_SETTINGS: dict[str, bool] = dict(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                                      xml_huge_tree=False)

#: the mapping files this adapter uses, by purpose
MAPPINGS = {
    "customer": "soap.customer_inquiry",
    "account": "soap.account_inquiry",
    "account_list": "soap.account_list",
    "balance": "soap.balance_inquiry",
    "history": "soap.transaction_history",
    "transfer_request": "soap.funds_transfer.request",
    "transfer_response": "soap.funds_transfer.response",
    "transfer_status": "soap.transfer_status",
}

#: the request id of the request being served (set by the facade), sent as the cb:REQUEST-ID header
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("corebridge_request_id", default=None)

_REQUEST_ID_OK = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?")  # CoreBanking.xsd RequestIdText
_REJECTION = re.compile(r"R0(0[1-9]|10)")
_CONT_KEY = re.compile(r"(?P<acct>.{12})(?P<seq>\d{9})")
_LIST_OPERATIONS = frozenset({"AccountList", "TransferStatusInquiry"})  # 0004: a list cut at 999 entries
# widths of the request keys (CoreBanking.xsd CustNoKey, AcctNoKey, XferRefKey)
CUST_NO_WIDTH, ACCT_NO_WIDTH, XFER_REF_WIDTH = 10, 12, 16
MAX_ROWS = 500  # CoreBanking.xsd MaxRows


@dataclass(frozen=True, kw_only=True)
class SoapSettings:
    """Where the core's SOAP face is and how to call it. The password is left out of ``repr``.

    ``read_timeout`` is the default budget of a call made without ``timeout=``; ``pool_size`` the number
    of keep-alive connections kept (size it to the backend's bulkhead). ``verify``: TLS verification for
    https endpoints (True, or a CA bundle path). ``proxy``: an HTTP proxy URL; the environment's proxy
    variables are ignored (where core traffic goes is configuration, not ambient state).
    ``max_response_bytes``: a longer reply is refused (``ContractViolation``) while it streams in.
    """

    endpoint: str
    username: str
    password: str = field(repr=False)
    wsdl_path: Path | None = DEFAULT_WSDL
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    pool_size: int = 20
    max_response_bytes: int = 8 * 1024 * 1024
    verify: bool | str = True
    proxy: str | None = field(default=None, repr=False)  # may carry credentials

    def __post_init__(self) -> None:
        if self.wsdl_path is None:  # "the packaged copy", as configuration files may say
            object.__setattr__(self, "wsdl_path", DEFAULT_WSDL)
        elif not isinstance(self.wsdl_path, Path):
            object.__setattr__(self, "wsdl_path", Path(self.wsdl_path))
        if not self.endpoint or not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"SoapSettings.endpoint must be an http(s) URL, got {self.endpoint!r}")
        if not self.username:
            raise ValueError("SoapSettings.username is required (WS-Security UsernameToken)")
        for name in ("connect_timeout", "read_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SoapSettings.{name} must be > 0 seconds, got {getattr(self, name)!r}")
        if self.pool_size < 1:
            raise ValueError(f"SoapSettings.pool_size must be >= 1, got {self.pool_size!r}")
        if self.max_response_bytes < 1024:
            raise ValueError("SoapSettings.max_response_bytes must be >= 1024")
        if not self.wsdl_path.is_file():
            raise ValueError(f"no WSDL file at {self.wsdl_path}")


class _RequestIdCheck(Plugin):
    """Refuse a reply whose cb:REQUEST-ID header differs from the id this call sent."""

    def ingress(self, envelope: etree._Element, http_headers: Any, operation: Any) -> None:
        call = current_call.get()
        if call is None or call.request_id is None:
            return None
        header = envelope.find(_SOAP_HEADER)
        if header is None:
            return None
        echoed = header.findtext(REQUEST_ID_TAG)
        if echoed is not None and echoed.strip() != call.request_id:
            raise RequestIdMismatch(f"sent REQUEST-ID {call.request_id!r}, the reply echoes {scrub(echoed, 64)!r}")
        return None


def _cyymmdd(day: dt.date) -> str:
    if not 1900 <= day.year <= 2099:
        raise ValueError(f"the core's dates (CYYMMDD) cover 1900-2099, not {day.isoformat()}")
    return f"{day.year // 100 - 19}{day:%y%m%d}"


def _key(value: str, width: int) -> str | None:
    """A request key as the core takes it, or None when no record can have it (empty, too long)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a str key, got {type(value).__name__}")
    key = value.strip()
    if not key or len(key) > width or not key.isprintable():
        return None
    return key


class SoapCore:
    """The CustomerSource, AccountSource and TransferGateway ports over the core's SOAP face.

    ``registry``: the compiled mappings by name (a :class:`mappings.engine.MappingRegistry`).
    ``request_id``: where the current request's id comes from (default :data:`request_id_var`; the
    composition root may pass its own context variable's ``get``). Building the adapter loads the WSDL
    and checks that the mappings exist (a bad file fails here, as ``ValueError``) but does not contact
    the core.
    """

    backend = BACKEND

    def __init__(self, settings: SoapSettings, registry: Mapping[str, Any], *,
                 request_id: Callable[[], str | None] | None = None) -> None:
        self.settings = settings
        self._request_id = request_id or request_id_var.get
        missing = [name for name in MAPPINGS.values() if name not in registry]
        if missing:
            raise ValueError(f"the mapping registry lacks {missing}")
        self._registry = registry
        self.session = pooled_session(settings.pool_size, verify=settings.verify, proxy=settings.proxy)
        self.transport = BoundedTransport(self.session, connect_timeout=settings.connect_timeout,
                                          read_timeout=settings.read_timeout,
                                          max_response_bytes=settings.max_response_bytes)
        try:
            self.client = zeep.Client(wsdl=str(settings.wsdl_path), settings=zeep.Settings(**ZEEP_SETTINGS),
                                      transport=self.transport,
                                      wsse=UsernameToken(settings.username, settings.password),
                                      plugins=[_RequestIdCheck()])
            self.service = self.client.create_service(BINDING_QNAME, settings.endpoint)
            # the event-loop path (balance only: the facade's hot read); zeep stays the source of truth
            self._fast = {"BalanceInquiry": FastOperation(self.client, self.service._binding, "BalanceInquiry",
                                                          "ACCT-NO")}
        except (zeep.exceptions.Error, etree.LxmlError, OSError, KeyError, ValueError) as exc:
            self.session.close()
            raise ValueError(f"cannot build the SOAP client from {settings.wsdl_path}: "
                             f"{type(exc).__name__}: {exc}") from exc
        self._operations = {op: self.service[op] for op in (
            "CustomerInquiry", "AccountList", "AccountInquiry", "BalanceInquiry", "TransactionHistory",
            "FundsTransfer", "TransferStatusInquiry")}
        # the event-loop path's HTTP client; with a proxy configured abalance uses the zeep path in a thread
        self.async_http = None if settings.proxy else HttpPool(settings.endpoint, pool_size=settings.pool_size,
                                                               max_response_bytes=settings.max_response_bytes,
                                                               verify=settings.verify)

    def close(self) -> None:
        self.session.close()

    async def aclose(self) -> None:
        """Close the event-loop path's idle connections (call from the loop that used them)."""
        if self.async_http is not None:
            await self.async_http.aclose()

    def __enter__(self) -> SoapCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SoapCore(endpoint={self.settings.endpoint!r}, user={self.settings.username!r})"

    # -- CustomerSource --------------------------------------------------------------------------
    def customer(self, customer_id: str, *, timeout: float | None = None) -> Customer:
        op = "CustomerInquiry"
        key = _key(customer_id, CUST_NO_WIDTH)
        if key is None:
            raise self._not_found(op, "customer", customer_id)
        reply = self._call(op, {"CUST-NO": key}, timeout, what=("customer", key))
        return self._same(op, key, self._read(op, "customer", self._record(op, reply, "CUSTOMER", "customer", key)))

    # -- AccountSource ---------------------------------------------------------------------------
    def accounts_of(self, customer_id: str, *, timeout: float | None = None) -> list[Account]:
        op = "AccountList"
        key = _key(customer_id, CUST_NO_WIDTH)
        if key is None:
            raise self._not_found(op, "customer", customer_id)
        reply = self._call(op, {"CUST-NO": key}, timeout, what=("customer", key))
        self._check(op, reply, "customer", key)
        with translate(op):
            accounts = self._registry[MAPPINGS["account_list"]].read_many(reply.get("ACCOUNT") or ())
        for a in accounts:
            self._same(op, key, a, a.customer_id)
        return accounts

    def account(self, account_id: str, *, timeout: float | None = None) -> Account:
        op = "AccountInquiry"
        key = _key(account_id, ACCT_NO_WIDTH)
        if key is None:
            raise self._not_found(op, "account", account_id)
        reply = self._call(op, {"ACCT-NO": key}, timeout, what=("account", key))
        return self._same(op, key, self._read(op, "account", self._record(op, reply, "ACCOUNT", "account", key)))

    def balance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        op = "BalanceInquiry"
        key = _key(account_id, ACCT_NO_WIDTH)
        if key is None:
            raise self._not_found(op, "account", account_id)
        reply = self._call(op, {"ACCT-NO": key}, timeout, what=("account", key))
        balance = self._read(op, "balance", self._record(op, reply, "BALANCE", "account", key))
        return self._same(op, key, balance, balance.account_id)

    async def abalance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        """:meth:`balance` on the event loop (aiohttp, zeep's envelope template, a strict lxml reader);
        the same checks, mapping and errors."""
        op = "BalanceInquiry"
        if self.async_http is None:
            return await anyio.to_thread.run_sync(functools.partial(self.balance, account_id, timeout=timeout))
        key = _key(account_id, ACCT_NO_WIDTH)
        if key is None:
            raise self._not_found(op, "account", account_id)
        reply = await self._acall(op, key, timeout)
        balance = self._read(op, "balance", self._record(op, reply, "BALANCE", "account", key))
        return self._same(op, key, balance, balance.account_id)

    def history(self, account_id: str, *, from_date: dt.date | None = None, to_date: dt.date | None = None,
                limit: int = 50, cursor: str | None = None, timeout: float | None = None) -> Page[Transaction]:
        """Newest first, ``limit`` (1..500) rows a page. ``cursor`` is the core's CONT-KEY from the previous
        page; send it with the same account and dates. A cursor of another account is a ``ValueError``."""
        op = "TransactionHistory"
        if not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
            raise ValueError(f"limit must be 1..{MAX_ROWS}, got {limit!r}")
        key = _key(account_id, ACCT_NO_WIDTH)
        if key is None:
            raise self._not_found(op, "account", account_id)
        fields: dict[str, Any] = {"ACCT-NO": key}
        if from_date is not None:
            fields["FROM-DATE"] = _cyymmdd(from_date)
        if to_date is not None:
            fields["TO-DATE"] = _cyymmdd(to_date)
        fields["MAX-ROWS"] = limit
        if cursor is not None:
            m = _CONT_KEY.fullmatch(cursor) if isinstance(cursor, str) else None
            if m is None or m.group("acct").rstrip() != key:
                raise ValueError("cursor is not a continuation of this account's history")
            fields["CONT-KEY"] = cursor
        reply = self._call(op, fields, timeout, what=("account", key))
        self._check(op, reply, "account", key)
        self._same(op, key, None, (reply.get("ACCT-NO") or "").strip())
        with translate(op):
            items = self._registry[MAPPINGS["history"]].read_many(reply.get("TXN") or (),
                                                                  context={"response": reply})
        cont = reply.get("CONT-KEY") or ""
        if cont.strip() and _CONT_KEY.fullmatch(cont) is None:
            raise ContractViolation(f"CONT-KEY {scrub(cont)!r} is not ACCT-NO + TXN-SEQ", backend=BACKEND,
                                    operation=op)
        return Page[Transaction](items=tuple(items), next_cursor=cont if cont.strip() else None)

    # -- TransferGateway -------------------------------------------------------------------------
    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        """Post once. ``Rejected`` for a business rejection (R001..R010); any failure after the request
        may have left carries ``outcome_unknown=True``."""
        op = "FundsTransfer"
        unsent = CallScope(connect=0, read=0, deadline=0)
        with translate(op, write=True, sent=unsent):  # a transfer the request format cannot carry: nothing sent
            request = self._registry[MAPPINGS["transfer_request"]].write(transfer)
        reply = self._call(op, request, timeout, write=True, what=("reference", transfer.reference))
        with translate(op, write=True):
            block = reply.get("RETURN-BLOCK") or {}
            code, reason = block.get("RETURN-CODE"), (block.get("REASON-CODE") or "").strip()
            status = (reply.get("XFER-STAT") or "").strip()
            if code == "0008" and _REJECTION.fullmatch(reason) and status == "R":
                message = (block.get("MESSAGE") or "").strip()
                log.info("soap %s ref=%s rejected %s", op, transfer.reference, reason)
                raise Rejected(f"transfer {transfer.reference} rejected", reason_code=reason, reason=message,
                               backend=BACKEND, operation=op)
            if code != "0000" or status != "P":
                raise ContractViolation(f"unexpected FundsTransfer outcome RETURN-CODE {code!r} REASON-CODE "
                                        f"{reason!r} XFER-STAT {status!r}", backend=BACKEND, operation=op,
                                        outcome_unknown=True)
            outcome = self._registry[MAPPINGS["transfer_response"]].read(reply, context={"request": request})
        if outcome.status is not TransferStatus.POSTED:  # pragma: no cover - the mapping follows XFER-STAT
            raise ContractViolation("posted reply mapped to a transfer that is not posted", backend=BACKEND,
                                    operation=op, outcome_unknown=True)
        return outcome

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        """Every attempt the core logged under ``reference``, oldest first; ``[]`` when there is none."""
        op = "TransferStatusInquiry"
        key = _key(reference, XFER_REF_WIDTH)
        if key is None:
            return []
        reply = self._call(op, {"XFER-REF": key}, timeout, what=("reference", key))
        block = reply.get("RETURN-BLOCK") or {}
        if block.get("RETURN-CODE") == "0008" and (block.get("REASON-CODE") or "").strip() == "N001":
            return []
        self._check(op, reply, "reference", key)
        with translate(op):
            return self._registry[MAPPINGS["transfer_status"]].read_many(reply.get("XFER") or ())

    # -- the call ----------------------------------------------------------------------------------
    def _call(self, operation: str, fields: dict[str, Any], timeout: float | None, *, write: bool = False,
              what: tuple[str, str] = ("", "")) -> dict[str, Any]:
        budget = self.settings.read_timeout if timeout is None else timeout
        if budget <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        rid = self._sendable_request_id(operation)
        call = CallScope.for_budget(budget, self.settings.connect_timeout, rid)
        kwargs = dict(fields)
        if rid is not None:
            header = etree.Element(REQUEST_ID_TAG, nsmap={"cb": CB_NS})
            header.text = rid
            kwargs["_soapheaders"] = [header]
        token = current_call.set(call)
        started = time.perf_counter()
        try:
            with translate(operation, write=write, sent=call):
                result = self._operations[operation](**kwargs)
                reply = serialize_object(result, dict)
        finally:
            current_call.reset(token)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("soap %s %s=%s rid=%s %.1fms", operation, what[0], mask(what[1]), rid,
                      (time.perf_counter() - started) * 1000)
        if not isinstance(reply, dict):
            raise ContractViolation(f"{operation} reply is not a message ({type(reply).__name__})",
                                    backend=BACKEND, operation=operation, outcome_unknown=write)
        return reply

    async def _acall(self, operation: str, key: str, timeout: float | None) -> dict[str, Any]:
        budget = self.settings.read_timeout if timeout is None else timeout
        if budget <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        rid = self._sendable_request_id(operation)
        call = CallScope.for_budget(budget, self.settings.connect_timeout, rid)
        fast = self._fast[operation]
        token = current_call.set(call)  # zeep's fallback parse (and its request id check) reads it
        started = time.perf_counter()
        try:
            with translate(operation, sent=call):
                http_reply = await self.async_http.post(fast.request(self.async_http, key, rid), call)
                screen(http_reply.content)
                reply = fast.parse(http_reply, rid)
        finally:
            current_call.reset(token)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("soap %s account=%s rid=%s %.1fms (async)", operation, mask(key), rid,
                      (time.perf_counter() - started) * 1000)
        if not isinstance(reply, dict):
            raise ContractViolation(f"{operation} reply is not a message ({type(reply).__name__})",
                                    backend=BACKEND, operation=operation)
        return reply

    def _sendable_request_id(self, operation: str) -> str | None:
        rid = self._request_id()
        if rid is not None and not _REQUEST_ID_OK.fullmatch(rid):
            log.debug("soap %s: request id not sendable as cb:REQUEST-ID (1..64 printable ASCII); not sent",
                      operation)
            return None
        return rid

    def _check(self, operation: str, reply: dict[str, Any], what: str, key: str) -> None:
        """RETURN-BLOCK: 0000 (and 0004 for lists) pass; 0008/N001 is RecordNotFound; else ContractViolation."""
        block = reply.get("RETURN-BLOCK") or {}
        code = block.get("RETURN-CODE")
        if code == "0000":
            return
        reason = (block.get("REASON-CODE") or "").strip()
        if code == "0004" and operation in _LIST_OPERATIONS:
            log.warning("soap %s %s=%s: list cut by the core (%s %s)", operation, what, mask(key), code, reason)
            return
        if code == "0008" and reason == "N001":
            raise self._not_found(operation, what, key)
        raise ContractViolation(f"unexpected RETURN-CODE {code!r} REASON-CODE {reason!r}: "
                                f"{scrub((block.get('MESSAGE') or '').strip())}", backend=BACKEND, operation=operation)

    def _record(self, operation: str, reply: dict[str, Any], element: str, what: str, key: str) -> dict[str, Any]:
        self._check(operation, reply, what, key)
        record = reply.get(element)
        if not isinstance(record, dict):
            raise ContractViolation(f"RETURN-CODE 0000 without {element}", backend=BACKEND, operation=operation)
        return record

    def _read(self, operation: str, purpose: str, record: dict[str, Any]) -> Any:
        with translate(operation):
            return self._registry[MAPPINGS[purpose]].read(record)

    @staticmethod
    def _same(operation: str, key: str, obj: Any, got: str | None = None) -> Any:
        """The reply is about the record asked for (a reply about another one answers another request)."""
        got = obj.id if got is None else got
        if got != key:
            raise ContractViolation(f"asked for {mask(key)}, the reply is about {mask(got)}", backend=BACKEND,
                                    operation=operation)
        return obj

    @staticmethod
    def _not_found(operation: str, what: str, key: str) -> RecordNotFound:
        return RecordNotFound(f"no {what} {mask(key)}", backend=BACKEND, operation=operation)
