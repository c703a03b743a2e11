"""Shared fixtures for tests that run pieces of the mock mainframe in-process (registered in
tests/conftest.py through ``pytest_plugins``): a small seeded ledger per test, its posting
engine, a seeded fault injector, and the loaded mapping registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mappings.engine import MappingRegistry
from mock_mainframe.faults import FaultInjector
from mock_mainframe.ledger.posting import PostingEngine
from mock_mainframe.ledger.seed import seed_sqlite
from mock_mainframe.ledger.store import Ledger

SMALL_CUSTOMERS = 40


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory) -> Path:
    """One seeded ledger per session; tests get a copy (seeding is deterministic)."""
    path = tmp_path_factory.mktemp("ledger-template") / "ledger.db"
    seed_sqlite(path, seed=7, customers=SMALL_CUSTOMERS)
    return path


@pytest.fixture
def ledger(seeded_template, tmp_path) -> Ledger:
    path = tmp_path / "ledger.db"
    shutil.copyfile(seeded_template, path)
    led = Ledger(path)
    yield led
    led.close()


@pytest.fixture
def engine(ledger) -> PostingEngine:
    return PostingEngine(ledger)


@pytest.fixture
def faults() -> FaultInjector:
    return FaultInjector(seed=42)


@pytest.fixture(scope="session")
def registry() -> MappingRegistry:
    return MappingRegistry.load()
