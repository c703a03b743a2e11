"""Fixtures of the API tests: signing keys and a JWKS file, settings, the fake core, the app, tokens.
(The session-wide log scan lives in tests/conftest.py: it covers every suite.)"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.fakes import FakeHealth, build_core, make_gateways
from tests.api.helpers import Keys, Tokens, make_keys, make_settings


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
