"""Resilience applied to a port, in one place: wrappers that run every call of an inner port
implementation through a :class:`~adapters.resilience.Pipeline` (deadline -> retry -> breaker ->
bulkhead -> per-attempt timeout), so neither adapters nor business code carry retry logic.

* Reads are ``idempotent=True``: a ``BackendUnavailable`` or ``BackendTimeout`` is retried within the
  budget and the deadline.
* ``TransferGateway.post`` is ``idempotent=False``: never resent blindly. A timeout or a reset after
  the request was sent leaves the outcome unknown; the caller reconciles with ``inquire`` (idempotent).
* ``timeout=`` from the caller becomes the call's deadline (capped by the pipeline's total deadline);
  each attempt hands the inner port ``timeout=min(attempt timeout, time left)``.

``abalance`` is the event-loop form of ``balance``: an inner port with its own ``abalance`` coroutine
(the SOAP adapter) is awaited under :meth:`Pipeline.call_coro`; any other runs in a worker thread
under :meth:`Pipeline.call_async`. Either way the same pipeline (same breaker, bulkhead, budget).

The composition root builds one wrapper per (port, backend) with pipelines from a
:class:`~adapters.resilience.ResilienceRegistry`; ``snapshot()`` exposes the pipeline's state.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.resilience import Deadline, Pipeline

if TYPE_CHECKING:
    from adapters.odbc import TransferInquiry
    from adapters.ports import AccountSource, CustomerSource, TransferGateway
    from canonical import Account, Balance, Customer, Page, Transaction, Transfer

__all__ = [
    "ResilientAccountSource",
    "ResilientCustomerSource",
    "ResilientTransferGateway",
    "ResilientTransferInquiry",
]

T = TypeVar("T")


#: ``observer(backend, operation, seconds, error_or_None)``: told about every finished call (metrics)
Observer = Callable[[str, str, float, "BaseException | None"], None]


class _Resilient:
    def __init__(self, inner: Any, pipeline: Pipeline, *, observer: Observer | None = None) -> None:
        self.inner = inner
        self.pipeline = pipeline
        self.backend = pipeline.backend
        self.observer = observer

    def _call(self, pipeline: Pipeline, operation: str, fn: Callable[..., T], timeout: float | None, *,
              idempotent: bool) -> T:
        deadline = None if timeout is None else Deadline.after(timeout, pipeline.clock)
        if self.observer is None:
            return pipeline.call(fn, idempotent=idempotent, operation=operation, deadline=deadline)
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            return pipeline.call(fn, idempotent=idempotent, operation=operation, deadline=deadline)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.observer(self.backend, operation, time.perf_counter() - start, error)

    async def _call_async(self, pipeline: Pipeline, operation: str, fn: Callable[..., Any], timeout: float | None,
                          *, idempotent: bool, native: bool) -> Any:
        deadline = None if timeout is None else Deadline.after(timeout, pipeline.clock)
        run = pipeline.call_coro if native else pipeline.call_async
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            return await run(fn, idempotent=idempotent, operation=operation, deadline=deadline)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self.observer is not None:
                self.observer(self.backend, operation, time.perf_counter() - start, error)

    async def aclose(self) -> None:
        """Close the inner port's event-loop resources, if it has any."""
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def snapshot(self) -> dict[str, Any]:
        return self.pipeline.snapshot()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r}, {self.pipeline.backend}/{self.pipeline.operation_class})"


class ResilientCustomerSource(_Resilient):
    """A :class:`~adapters.ports.CustomerSource` behind a pipeline."""

    inner: CustomerSource

    def customer(self, customer_id: str, *, timeout: float | None = None) -> Customer:
        return self._call(self.pipeline, "customer", functools.partial(self.inner.customer, customer_id), timeout,
                          idempotent=True)


class ResilientAccountSource(_Resilient):
    """An :class:`~adapters.ports.AccountSource` behind a pipeline; every operation is a read."""

    inner: AccountSource

    def accounts_of(self, customer_id: str, *, timeout: float | None = None) -> list[Account]:
        return self._call(self.pipeline, "accounts_of", functools.partial(self.inner.accounts_of, customer_id),
                          timeout, idempotent=True)

    def account(self, account_id: str, *, timeout: float | None = None) -> Account:
        return self._call(self.pipeline, "account", functools.partial(self.inner.account, account_id), timeout,
                          idempotent=True)

    def balance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        return self._call(self.pipeline, "balance", functools.partial(self.inner.balance, account_id), timeout,
                          idempotent=True)

    async def abalance(self, account_id: str, *, timeout: float | None = None) -> Balance:
        native = getattr(self.inner, "abalance", None)
        if native is not None:
            return await self._call_async(self.pipeline, "balance", functools.partial(native, account_id), timeout,
                                          idempotent=True, native=True)
        return await self._call_async(self.pipeline, "balance", functools.partial(self.inner.balance, account_id),
                                      timeout, idempotent=True, native=False)

    def history(self, account_id: str, *, from_date: dt.date | None = None, to_date: dt.date | None = None,
                limit: int = 50, cursor: str | None = None, timeout: float | None = None) -> Page[Transaction]:
        fn = functools.partial(self.inner.history, account_id, from_date=from_date, to_date=to_date, limit=limit,
                               cursor=cursor)
        return self._call(self.pipeline, "history", fn, timeout, idempotent=True)


class ResilientTransferInquiry(_Resilient):
    """A read-only transfer lookup (e.g. the ODBC face's) behind a pipeline."""

    inner: TransferInquiry

    def __init__(self, inner: Any, pipeline: Pipeline, *, inquire_pipeline: Pipeline | None = None,
                 observer: Observer | None = None) -> None:
        super().__init__(inner, pipeline, observer=observer)
        self.inquire_pipeline = inquire_pipeline or pipeline

    def inquire(self, reference: str, *, timeout: float | None = None) -> list[Transfer]:
        return self._call(self.inquire_pipeline, "inquire", functools.partial(self.inner.inquire, reference),
                          timeout, idempotent=True)


class ResilientTransferGateway(ResilientTransferInquiry):
    """A :class:`~adapters.ports.TransferGateway` behind a pipeline: ``post`` is attempted once
    (``idempotent=False``), ``inquire`` is a retried read. ``inquire_pipeline`` (optional) lets the
    lookups run under the backend's read policies (their own breaker) rather than the write's."""

    inner: TransferGateway

    def post(self, transfer: Transfer, *, timeout: float | None = None) -> Transfer:
        return self._call(self.pipeline, "post", functools.partial(self.inner.post, transfer), timeout,
                          idempotent=False)
