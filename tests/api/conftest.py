"""Fixtures of the API tests: signing keys and a JWKS file, settings, the fake core, the app, tokens,
and the session-wide log scan (no log line may carry an unmasked account or card number)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.fakes import FakeHealth, build_core, make_gateways
from tests.api.helpers import Keys, ScanHandler, Tokens, make_keys, make_settings


@pytest.fixture(scope="session", autouse=True)
def log_scan() -> Iterator[ScanHandler]:
    """Every log record while the suite runs, formatted as the service formats it, must be free of
    unmasked account numbers (10-19 digits) and Luhn-valid card numbers."""
    handler = ScanHandler()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("corebridge", "httpx")}
    logging.getLogger("corebridge").setLevel(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.INFO)  # its lines carry request URLs with account numbers
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    # (test_observability.py::test_the_session_log_scan_is_active proves the scan sees masked lines)
    assert not handler.violations, "unmasked account/card numbers in log lines:\n" + "\n".join(handler.violations[:20])


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("jwks"))


@pytest.fixture(scope="session")
def tokens(keys: Keys) -> Tokens:
    return Tokens(keys)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("COREBRIDGE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(keys: Keys) -> Settings:
    return make_settings(keys)


@pytest.fixture
def core():
    return build_core()


@pytest.fixture
def health() -> FakeHealth:
    return FakeHealth()


@pytest.fixture
def gateways(core, health):
    return make_gateways(core, health)


@pytest.fixture
def app(settings, gateways):
    return create_app(settings, gateways)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c
