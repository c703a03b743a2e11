"""Suite-wide test policy.

With ``CI=true`` a test skipped because a service or tool is missing is a *failure*: CI must
never go green while a face or a backend went untested. Skip through
:func:`tests.support.require` (or any skip whose reason starts with ``missing:``); the hook
below turns such skips into failures in CI, whoever raised them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from tests.api.helpers import ScanHandler, unmasked
from tests.support import IN_CI, MISSING, require, require_tool

__all__ = ["require", "require_tool"]

pytest_plugins = ["tests.fixtures_mock"]

#: loggers of the other side of the contract (the mock core prints its own data freely)
FOREIGN_LOGGERS = ("mock_mainframe",)


class _RawAdapterScan(logging.Handler):
    """Our adapters must mask account numbers themselves (a CLI or a host logging setup may not use
    the service's masking formatter): their *raw* messages are scanned too."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.violations: list[str] = []

    #: an account number is a token of its own; digits inside an identifier (CB0398213349A658, a
    #: transfer reference) are not one
    ACCOUNT_TOKEN = re.compile(r"(?<![A-Za-z0-9])\d{10,19}(?![A-Za-z0-9])")

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("adapters"):
            message = record.getMessage()
            if self.ACCOUNT_TOKEN.search(message) or (unmasked(message) and not _only_in_identifiers(message)):
                self.violations.append(f"{record.name}: {message}")


def _only_in_identifiers(message: str) -> bool:
    """True when every long digit run of ``message`` sits inside an alphanumeric identifier."""
    return not _RawAdapterScan.ACCOUNT_TOKEN.search(message) and unmasked(
        re.sub(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*", " ", message)) is None


class _OursOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(FOREIGN_LOGGERS)


@pytest.fixture(scope="session", autouse=True)
def log_scan() -> Iterator[ScanHandler]:
    """Every log line of our code while the WHOLE suite runs, formatted as the service formats it,
    must be free of unmasked account numbers (10-19 digits) and Luhn-valid card numbers."""
    handler = ScanHandler()
    handler.addFilter(_OursOnly())
    raw = _RawAdapterScan()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("corebridge", "httpx", "adapters")}
    logging.getLogger("corebridge").setLevel(logging.DEBUG)
    logging.getLogger("adapters").setLevel(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.INFO)  # its lines carry request URLs with account numbers
    root.addHandler(handler)
    root.addHandler(raw)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.removeHandler(raw)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    # (tests/api/test_observability.py::test_the_session_log_scan_is_active proves the scan sees masked lines)
    assert not handler.violations, "unmasked account/card numbers in log lines:\n" + "\n".join(handler.violations[:20])
    assert not raw.violations, "adapters logged unmasked account/card numbers:\n" + "\n".join(raw.violations[:20])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and call.excinfo is not None:
        reason = str(call.excinfo.value)
        if MISSING in reason or "could not import" in reason.lower():
            report.outcome = "failed"
            report.longrepr = f"skip turned into failure under CI=true: {reason}"
