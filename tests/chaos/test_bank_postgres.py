"""The chaos bank test (see :mod:`tests.chaos.test_bank`) on the PostgreSQL store with TWO facade
instances: two facade processes on two ports sharing one PostgreSQL store database, each with its own
reconciler; every request of a client (each retry of a key, each status poll) goes to either instance, and
the first instance is killed with SIGKILL once mid-run and started again while the second keeps serving.
CI size: 200 transfers, 4 clients.
"""

from __future__ import annotations

import pytest

from tests.chaos.harness import (  # noqa: F401 - mock and proxy are fixtures
    FULL,
    TIMEOUT,
    Facade,
    _free_port,
    facade_settings,
    mock,
    on_port,
    proxy,
    run_bank,
    store_settings,
)
from tests.support import fresh_pg_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(TIMEOUT)]
CLIENTS = 16 if FULL else 4
TRANSFERS = 10_000 if FULL else 200
THINK_S = 0.05 if FULL else 0.4  # CI: ~30 s under faults, ~15 fault phases


@pytest.fixture(scope="module")
def pg_dsn():
    with fresh_pg_database("cb_chaos_bank") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def facades(mock, proxy, pg_dsn, tmp_path_factory):  # noqa: F811
    work = tmp_path_factory.mktemp("bank-facades")
    settings = facade_settings(mock, proxy, _free_port(), CLIENTS, store_settings("postgres", postgres_dsn=pg_dsn))
    pair = [Facade(settings, work, name="facade-a"), Facade(on_port(settings, _free_port()), work, name="facade-b")]
    try:
        for f in pair:
            f.start()
        yield pair
    finally:
        for f in pair:
            f.close()


def test_bank_on_two_instances_sharing_postgres_conserves_money_and_posts_exactly_once(mock, proxy,  # noqa: F811
                                                                                        facades):
    run_bank(mock, proxy, facades, clients=CLIENTS, transfers=TRANSFERS, think_s=THINK_S,
             label="chaos bank (postgres, 2 instances)")
