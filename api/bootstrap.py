"""The composition root: the only place that builds zeep clients, ODBC pools and SSH sessions.

``build_gateways(settings, metrics)`` turns one :class:`~api.settings.Settings` into the ports the
facade needs, each behind its resilience pipeline and routed per settings::

    SoapCore ---- ResilientAccountSource(soap/read) --\\
    OdbcCore ---- ResilientAccountSource(odbc/read) ---+-- RoutedAccountSource (balance falls back
                                                           to the ODBC replica, marked stale)
    SoapCore ---- ResilientTransferGateway(soap/write, inquiries on soap/read)
    OdbcCore ---- ResilientTransferInquiry(odbc/read): inquiries when SOAP cannot answer (FallbackInquiryGateway)

``build_app`` also attaches the end-of-day fallback of the reconciler (``store.end_of_day_fallback``).

``create_app_from_settings()`` is the factory ``uvicorn`` and ``corebridge serve`` use. Nothing is
built at import time.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from adapters.errors import ContractViolation
from adapters.odbc import OdbcCore
from adapters.resilience import ResilienceRegistry
from adapters.resilient import (
    ResilientAccountSource,
    ResilientCustomerSource,
    ResilientTransferGateway,
    ResilientTransferInquiry,
)
from adapters.routing import RoutedAccountSource, RoutedCustomerSource
from adapters.soap import SoapCore
from api.app import create_app
from api.gateways import Gateways
from api.observability import Metrics, configure_logging, outcome_of, request_id_var
from api.services.inquiry import FallbackInquiryGateway
from api.settings import Settings, load_settings
from api.store import Store, StoreSettings
from mappings.engine import MAPPINGS_DIR, MappingRegistry

log = logging.getLogger(__name__)


def _observer(metrics: Metrics) -> Callable[[str, str, float, BaseException | None], None]:
    def observe(backend: str, operation: str, seconds: float, error: BaseException | None) -> None:
        metrics.observe_core_call(backend, operation, seconds, outcome_of(error))
        if isinstance(error, ContractViolation):
            metrics.count_mapping_error(backend, operation)

    return observe


def build_gateways(settings: Settings, metrics: Metrics, *,
                   mappings: MappingRegistry | None = None) -> Gateways:
    registry = mappings or MappingRegistry.load(settings.mappings_dir or MAPPINGS_DIR)
    resilience = ResilienceRegistry()
    observe = _observer(metrics)
    closers: list[Callable[[], Any]] = []

    soap = SoapCore(settings.backends.soap.to_adapter_settings(), registry, request_id=request_id_var.get)
    closers.append(soap.close)
    soap_read = resilience.pipeline("soap", "read", settings.resilience.soap.to_config())
    soap_write = resilience.pipeline("soap", "write", settings.resilience.soap.to_config())
    account_sources: dict[str, Any] = {"soap": ResilientAccountSource(soap, soap_read, observer=observe)}
    customer_sources: dict[str, Any] = {"soap": ResilientCustomerSource(soap, soap_read, observer=observe)}
    transfers: Any = ResilientTransferGateway(soap, soap_write, inquire_pipeline=soap_read, observer=observe)

    pools: dict[str, Callable[[], Any]] = {}
    if settings.backends.odbc.connection_string is not None:
        odbc = OdbcCore(settings.backends.odbc.to_adapter_settings(), registry)
        closers.append(odbc.close)
        pools["odbc"] = odbc.stats
        odbc_read = resilience.pipeline("odbc", "read", settings.resilience.odbc.to_config())
        account_sources["odbc"] = ResilientAccountSource(odbc, odbc_read, observer=observe)
        customer_sources["odbc"] = ResilientCustomerSource(odbc, odbc_read, observer=observe)
        transfers = FallbackInquiryGateway(transfers, ResilientTransferInquiry(odbc, odbc_read, observer=observe))

    routing = settings.routing.to_adapter_settings()
    fallbacks = {op: backend for op, backend in settings.routing.fallbacks.items() if backend in account_sources}
    accounts: Any = RoutedAccountSource(account_sources, routing.routes, fallbacks)
    accounts = _with_batch(settings, registry, accounts, closers)
    customers = RoutedCustomerSource(customer_sources, routing.routes)

    def close() -> None:
        for fn in closers:
            try:
                fn()
            except Exception:  # noqa: BLE001 - keep closing the others at shutdown
                log.exception("closing a backend client failed")

    return Gateways(customers=customers, accounts=accounts, transfers=transfers, health=resilience.snapshot,
                    close=close, aclose=soap.aclose, mappings_loaded=lambda: len(registry) > 0,
                    pools=lambda: {backend: stats() for backend, stats in pools.items()})


def _with_batch(settings: Settings, registry: MappingRegistry, accounts: Any, closers: list[Callable[[], Any]]) -> Any:
    """``batch.history_mode`` (history from the read model, alone or merged) and the scheduled pull."""
    batch = settings.batch
    if not batch.uses_store:
        return accounts
    from api.batch.history import BatchHistoryAccountSource
    from api.batch.store import open_store

    store = open_store(batch.store_target)
    if batch.schedule_interval_seconds > 0:
        from api.batch.scheduler import PullScheduler, pull_job

        sftp = settings.backends.sftp

        def dropbox() -> Any:
            from adapters.sftp import SftpBatchDropbox

            return SftpBatchDropbox(sftp.to_adapter_settings())

        scheduler = PullScheduler(pull_job(store, registry, batch, dropbox, outbox=sftp.outbox),
                                  batch.schedule_interval_seconds).start()
        closers.append(scheduler.stop)  # before the store closes: a run in progress finishes first
    closers.append(store.close)
    if batch.history_mode == "core":
        return accounts
    return BatchHistoryAccountSource(accounts, store, batch.history_mode)


def build_app(settings: Settings | None = None, *, store: Store | None = None,
              store_settings: StoreSettings | None = None, reconciler: bool = True) -> FastAPI:
    """The app over ``build_gateways``; ``store``/``store_settings``/``reconciler`` as for ``create_app``."""
    settings = settings or load_settings()
    metrics = Metrics()
    gateways = build_gateways(settings, metrics)
    end_of_day = None
    if (store_settings or settings.store).end_of_day_fallback:
        from api.batch.store import open_store
        from api.services.eod_lookup import BatchStorePostings

        end_of_day = BatchStorePostings(open_store(settings.batch.store_target))  # its own connection
        gateways = dataclasses.replace(gateways, close=_then(gateways.close, end_of_day.close))
    app = create_app(settings, gateways, metrics=metrics, store=store, store_settings=store_settings,
                     reconciler=reconciler)
    if end_of_day is not None and app.state.services.exactly_once is not None:
        app.state.services.exactly_once.use_end_of_day(end_of_day)
    return app


def _then(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        try:
            first()
        finally:
            second()

    return both


def create_app_from_settings() -> FastAPI:
    """uvicorn factory (``--factory api.bootstrap:create_app_from_settings``): settings from the environment."""
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.format)
    app = build_app(settings)
    tune_gc(settings.server.gc_threshold)
    return app


def tune_gc(threshold: int) -> None:
    """After start-up: freeze what exists (settings, mappings, clients: alive for the process's life) out of
    the cyclic collector, and collect the young generation every ``threshold`` allocations. A request's
    objects die by reference counting; what the collector did every few requests was rescan the heap
    (~5% of the facade's CPU per balance at c=32). 0: leave the collector alone."""
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(threshold, second, third)
