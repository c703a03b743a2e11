"""Observability of the facade: Prometheus metrics, structured JSON logs, masking, the request id.

* :data:`request_id_var` holds the current request's id (``X-Request-ID`` accepted when it is 1-64
  printable ASCII characters, generated otherwise); adapters read it to pass it to the core. It is
  set by the app's request middleware and copied into the worker threads the routes run in.
* :class:`Metrics` owns one ``CollectorRegistry`` per app instance (never the global one, so apps
  in tests do not clash): HTTP requests and latency per route template and status, core call
  latency per backend/operation/outcome (:meth:`Metrics.observe_core_call`, the hook the adapters'
  wrappers are given), mapping errors, auth failures, rate-limit refusals, and, read from
  ``Gateways.health()`` at scrape time, breaker states, retries and bulkhead use, and from
  ``Gateways.pools()`` each connection pool's connections (open, idle, in use) and counters
  (opened, discarded, cancelled by the watchdog, refused when exhausted, statements executed and
  prepared).
* :func:`mask_text` masks account numbers (runs of 10-19 digits keep their last 4), Luhn-valid card
  numbers written with spaces or dashes, and the values of fields named ``name``, ``first_name``,
  ``last_name``. :class:`MaskingFilter` and :class:`JsonFormatter` apply it to every log line;
  :func:`configure_logging` installs both on the root logger (the composition root calls it).

The patterns are compiled once, at import: nothing on the hot path compiles a regex.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters import errors as core_errors

__all__ = [
    "BREAKER_STATES",
    "JsonFormatter",
    "MaskingFilter",
    "Metrics",
    "REQUEST_INFO_KEY",
    "RequestInfo",
    "configure_logging",
    "luhn_valid",
    "mask_customer_id",
    "mask_text",
    "new_request_id",
    "outcome_of",
    "request_id_var",
    "valid_request_id",
]

#: where the request middleware puts the request's :class:`RequestInfo` in the ASGI scope
REQUEST_INFO_KEY = "corebridge.request"

#: the current request's id; ``None`` outside a request
request_id_var: ContextVar[str | None] = ContextVar("corebridge_request_id", default=None)

BREAKER_STATES = ("closed", "open", "half_open", "disabled", "forced_open")

# -- request ids ----------------------------------------------------------------------------------
_REQUEST_ID = re.compile(r"[\x20-\x7e]{1,64}\Z")


def valid_request_id(value: str | bytes | None) -> str | None:
    """The id if it is 1-64 printable ASCII characters (surrounding blanks dropped), else ``None``."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    value = value.strip()
    return value if value and _REQUEST_ID.match(value) else None


def new_request_id() -> str:
    return secrets.token_urlsafe(16)


class RequestInfo:
    """Per-request facts the middleware logs; the auth dependency fills in the customer."""

    __slots__ = ("customer", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.customer: str | None = None


# -- masking --------------------------------------------------------------------------------------
_CARD = re.compile(r"\d+(?:[ -]\d+)+")  # digit groups joined by single spaces or dashes
_ACCOUNT = re.compile(r"\d{10,}")  # 10-19 digits is an account number; longer runs are masked too
_SEPARATOR = re.compile(r"[ -]")
_NAME_FIELD = re.compile(
    r"""(?P<key>(?<!\w)(?:first_|last_)?name)(?P<q>["']?)(?P<sep>\s*[:=]\s*)"""
    r"""(?P<val>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;})\]]+)""",
    re.IGNORECASE,
)
_NAME_KEYS = frozenset({"name", "first_name", "last_name"})
_MASKED_NAME = "***"


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _keep_last4(digits: str) -> str:
    return "*" * (len(digits) - 4) + digits[-4:]


def _card(m: re.Match[str]) -> str:
    """A run of digit groups (spaces or dashes between them) holding a Luhn-valid 13-19 digit number
    on group boundaries: mask all its digits but the last 4. Contiguous runs are the account rule's."""
    text = m.group(0)
    groups = _SEPARATOR.split(text)
    for i in range(len(groups)):
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_valid(digits):
                return _keep_last4("".join(groups))
    return text


def _account(m: re.Match[str]) -> str:
    return _keep_last4(m.group(0))


def _name(m: re.Match[str]) -> str:
    val = m.group("val")
    quote = val[0] if val[0] in "\"'" else ""
    return f"{m.group('key')}{m.group('q')}{m.group('sep')}{quote}{_MASKED_NAME}{quote}"


#: what every rule needs at least: 10 digits in a row (single blanks or dashes between them allowed: cards)
#: or the word "name"; a text without either is returned as it is, after one scan instead of three
_SUSPECT = re.compile(r"(?:\d[ -]?){10}|name", re.IGNORECASE)


def mask_text(text: str) -> str:
    """Mask account numbers, card numbers and name fields in one log line."""
    if _SUSPECT.search(text) is None:
        return text
    text = _CARD.sub(_card, text)
    text = _ACCOUNT.sub(_account, text)
    return _NAME_FIELD.sub(_name, text)


def _mask_value(key: str, value: Any) -> Any:
    if key.lower() in _NAME_KEYS and value is not None:
        return _MASKED_NAME
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value("", v) for v in value]
    return value


def mask_customer_id(customer_id: str | None) -> str | None:
    """``C0000001`` -> ``C*****01``: enough to correlate, not enough to identify."""
    if not customer_id:
        return customer_id
    if len(customer_id) <= 3:
        return "*" * len(customer_id)
    return customer_id[0] + "*" * (len(customer_id) - 3) + customer_id[-2:]


_STANDARD_ATTRS = frozenset(logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__) | {
    "message", "asctime", "taskName", "_masked"}


class MaskingFilter(logging.Filter):
    """Masks a record in place (message, arguments and extra fields) so every handler after it sees
    masked text. Always lets the record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not lose the line
            message = str(record.msg)
        record.msg = mask_text(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                record.__dict__[key] = _mask_value(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        record._masked = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, extra fields, exc. A record the
    :class:`MaskingFilter` has seen is not masked twice (the line is masked again only when the request
    id could hold a number); any other record is masked field by field and then as a whole line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            out["request_id"] = rid
        masked = getattr(record, "_masked", False)  # MaskingFilter did message, extras and exc text
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in out and not key.startswith("_"):
                out[key] = value if masked else _mask_value(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        line = json.dumps(out, default=str, ensure_ascii=False)
        if masked:  # only the request id (the client's) and JSON's own text are left to check
            return line if rid is None or _SUSPECT.search(rid) is None else mask_text(line)
        return mask_text(line)


class _MaskingTextFormatter(logging.Formatter):
    """Masks what a record carries (message, exception and stack text), not the prefix we add: the
    timestamp alone holds ten digits, so masking the whole line sent every line through every rule."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_text:  # cached by another handler's formatter, perhaps unmasked
            record.exc_text = mask_text(record.exc_text)
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = mask_text(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return mask_text(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return mask_text(super().formatStack(stack_info))


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> logging.Handler:
    """Route every log record through one masked handler on the root logger (call once per process,
    from the composition root; uvicorn then runs with ``log_config=None``)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else _MaskingTextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_corebridge", False):
            root.removeHandler(old)
    handler._corebridge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # what the logging HOWTO's "Optimization" section lists: our formatters print no caller, thread or
    # process, and collecting them was a third of each access-log line's cost (~17 -> ~12 us a line)
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # our access log replaces it
    return handler


# -- metrics --------------------------------------------------------------------------------------
_HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def outcome_of(exc: BaseException | None) -> str:
    """The ``outcome`` label of a core call that ended with ``exc`` (``None``: success)."""
    if exc is None:
        return "success"
    for cls, label in _OUTCOMES:
        if isinstance(exc, cls):
            return label
    return "error"


_OUTCOMES: tuple[tuple[type[BaseException], str], ...] = (
    (core_errors.RecordNotFound, "not_found"),
    (core_errors.Rejected, "rejected"),
    (core_errors.BackendTimeout, "timeout"),
    (core_errors.DeadlineExceeded, "deadline"),
    (core_errors.BackendUnavailable, "unavailable"),
    (core_errors.CircuitOpen, "circuit_open"),
    (core_errors.BulkheadFull, "bulkhead_full"),
    (core_errors.ContractViolation, "contract_violation"),
    (core_errors.BackendFault, "fault"),
)

HealthRows = Callable[[], Iterable[Mapping[str, Any]]]


PoolStats = Callable[[], Mapping[str, Mapping[str, int]]]

#: pool counters exported: stats() key -> (metric name, help)
_POOL_COUNTERS = {
    "opened": ("corebridge_pool_connections_opened", "connections opened"),
    "discarded": ("corebridge_pool_connections_discarded", "connections closed (broken, idle too long, shutdown)"),
    "cancelled": ("corebridge_pool_statements_cancelled", "statements cancelled at their call's deadline"),
    "exhausted": ("corebridge_pool_exhausted", "calls refused because every connection was busy"),
    "executed": ("corebridge_pool_statements_executed", "statements executed"),
    "prepared": ("corebridge_pool_statements_prepared", "statements prepared (executed ones reuse kept statements)"),
}


class _BackendCollector(Collector):
    """Breaker state, retries and bulkhead use, read from ``Gateways.health()`` at scrape time, and
    the connection pools' numbers from ``Gateways.pools()``."""

    def __init__(self) -> None:
        self.health: HealthRows | None = None
        self.mappings_loaded: Callable[[], bool] | None = None
        self.pools: PoolStats | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.mappings_loaded is not None:
            g = GaugeMetricFamily("corebridge_mappings_loaded", "1 when the mapping files are loaded")
            try:
                g.add_metric([], 1.0 if self.mappings_loaded() else 0.0)
            except Exception:  # noqa: BLE001 - a scrape must not fail because a probe did
                logging.getLogger("corebridge.metrics").warning("mappings_loaded() failed", exc_info=True)
                g.add_metric([], 0.0)
            yield g
        yield from self._pools()
        if self.health is None:
            return
        try:
            rows = list(self.health())
        except Exception:  # noqa: BLE001
            logging.getLogger("corebridge.metrics").warning("gateways.health() failed", exc_info=True)
            return
        labels = ["backend", "operation_class"]
        state = GaugeMetricFamily("corebridge_breaker_state", "circuit breaker state (1 for the current one)",
                                  labels=[*labels, "state"])
        failure = GaugeMetricFamily("corebridge_breaker_failure_rate", "failure rate in percent (-1: too few calls)",
                                    labels=labels)
        in_flight = GaugeMetricFamily("corebridge_bulkhead_in_flight", "calls in flight", labels=labels)
        tokens = GaugeMetricFamily("corebridge_retry_budget_tokens", "retry budget tokens left", labels=labels)
        counters = {
            "retries": CounterMetricFamily("corebridge_core_retries", "retries by the resilience pipeline",
                                           labels=labels),
            "calls": CounterMetricFamily("corebridge_core_calls", "calls into the resilience pipeline", labels=labels),
            "attempts": CounterMetricFamily("corebridge_core_attempts", "attempts (calls plus retries)", labels=labels),
            "not_permitted_calls": CounterMetricFamily("corebridge_breaker_not_permitted",
                                                       "calls refused by an open breaker", labels=labels),
            "bulkhead_rejected": CounterMetricFamily("corebridge_bulkhead_rejected", "calls refused by a full bulkhead",
                                                     labels=labels),
        }
        for row in rows:
            lv = [str(row.get("backend", "unknown")), str(row.get("operation_class", "default"))]
            current = str(row.get("breaker_state", "closed"))
            for s in BREAKER_STATES:
                state.add_metric([*lv, s], 1.0 if s == current else 0.0)
            if row.get("failure_rate") is not None:
                failure.add_metric(lv, float(row["failure_rate"]))
            if row.get("in_flight") is not None:
                in_flight.add_metric(lv, float(row["in_flight"]))
            if row.get("budget_tokens") is not None:
                tokens.add_metric(lv, float(row["budget_tokens"]))
            for key, family in counters.items():
                if row.get(key) is not None:
                    family.add_metric(lv, float(row[key]))
        yield from (state, failure, in_flight, tokens, *counters.values())

    def _pools(self) -> Iterator[Metric]:
        if self.pools is None:
            return
        try:
            pools = {str(backend): dict(stats) for backend, stats in self.pools().items()}
        except Exception:  # noqa: BLE001 - a scrape must not fail because a pool's numbers did
            logging.getLogger("corebridge.metrics").warning("gateways.pools() failed", exc_info=True)
            return
        if not pools:
            return
        connections = GaugeMetricFamily("corebridge_pool_connections", "pooled connections by state",
                                        labels=["backend", "state"])
        size = GaugeMetricFamily("corebridge_pool_size", "connections at most", labels=["backend"])
        counters = {key: CounterMetricFamily(name, doc, labels=["backend"])
                    for key, (name, doc) in _POOL_COUNTERS.items()}
        for backend, stats in sorted(pools.items()):
            for state in ("open", "idle", "in_use"):
                if state in stats:
                    connections.add_metric([backend, state], float(stats[state]))
            if "size" in stats:
                size.add_metric([backend], float(stats["size"]))
            for key, family in counters.items():
                if key in stats:
                    family.add_metric([backend], float(stats[key]))
        yield from (connections, size, *counters.values())


class Metrics:
    """The metrics of one app instance, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        http_labels = ["method", "route", "status"]
        self.http_requests = Counter("corebridge_http_requests", "HTTP requests served", http_labels, registry=r)
        self.http_latency = Histogram("corebridge_http_request_duration_seconds",
                                      "HTTP request latency (seconds) per route template and status",
                                      http_labels, buckets=_HTTP_BUCKETS, registry=r)
        self.core_latency = Histogram("corebridge_core_call_duration_seconds",
                                      "latency of calls into the core per backend, operation and outcome",
                                      ["backend", "operation", "outcome"], buckets=_CORE_BUCKETS, registry=r)
        self.mapping_errors = Counter("corebridge_mapping_errors", "records a mapping could not translate",
                                      ["backend", "operation"], registry=r)
        self.auth_failures = Counter("corebridge_auth_failures", "requests refused by authentication",
                                     ["reason"], registry=r)
        self.rate_limited = Counter("corebridge_rate_limited", "requests refused by the rate limiter", registry=r)
        self._backend = _BackendCollector()
        r.register(self._backend)
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    # wiring -------------------------------------------------------------------------------------
    def attach(self, health: HealthRows | None, mappings_loaded: Callable[[], bool] | None = None,
               pools: PoolStats | None = None) -> None:
        """Feed breaker/retry gauges from ``health()`` (rows as ``ResilienceRegistry.snapshot()``) and the
        pool metrics from ``pools()`` (backend -> ``OdbcCore.stats()``)."""
        self._backend.health = health
        self._backend.mappings_loaded = mappings_loaded
        self._backend.pools = pools

    # hooks --------------------------------------------------------------------------------------
    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._http_children.get(key)
        if children is None:
            with self._lock:
                labels = (method, route, str(status))
                children = (self.http_requests.labels(*labels), self.http_latency.labels(*labels))
                self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_core_call(self, backend: str, operation: str, seconds: float, outcome: str = "success") -> None:
        """The hook for the adapters' wrappers: one finished call into the core."""
        self.core_latency.labels(backend, operation, outcome).observe(seconds)

    @contextmanager
    def core_call(self, backend: str, operation: str) -> Iterator[None]:
        """``with metrics.core_call("soap", "BalanceInquiry"): ...`` times the block, outcome from the error."""
        start = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self.observe_core_call(backend, operation, time.perf_counter() - start, outcome_of(exc))
            raise
        self.observe_core_call(backend, operation, time.perf_counter() - start, "success")

    def count_mapping_error(self, backend: str, operation: str) -> None:
        self.mapping_errors.labels(backend, operation).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
