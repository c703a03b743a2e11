"""A bank test in the style of Jepsen's: concurrent clients move money between accounts through the
real facade while the link to the core misbehaves; afterwards the books must balance and every
answer a client was given must be true of the core.

    mock mainframe (in process, SQLite ledger; commit-then-drop on ~5% of FundsTransfer)
      ^ SOAP
    fault proxy (toxics rotated every PHASE_S seconds by a seeded schedule)
      ^
    facade: a child process (``python -m api.cli serve``: uvicorn over the composition root, SQLite
    idempotency store, its reconciler), killed with SIGKILL once mid-run and started again on the same
    store file and port
      ^ HTTP, real client timeouts
    CLIENTS threads, each transfer with its own Idempotency-Key, retried with the SAME key until a
    definite answer (201/422) or a 202 UNKNOWN (then GET /v1/transfers/{reference} is polled)

Invariants checked (never counts of faults): money is conserved per currency on every read of the
ledger; no available balance is ever negative (ledger reads and facade balance reads); every key
maps to one reference and every reference to at most one posting; 201 -> exactly one posting,
422 -> none; every UNKNOWN resolves (via the reconciler / the status URL) to what the core holds;
each account's balance moved by exactly the transfers the clients were told were posted; no posting
in the core that no client asked for.

CI size by default; ``CHAOS_SCALE=full`` (``make chaos``): 50 accounts, 16 clients, 10,000
transfers. ``CHAOS_SEED=<n>`` replays a schedule (the seed is printed and in every failure message).
"""

from __future__ import annotations

import pytest

from tests.chaos.harness import (  # noqa: F401 - mock and proxy are fixtures
    CLIENTS,
    TIMEOUT,
    Facade,
    _free_port,
    facade_settings,
    mock,
    proxy,
    run_bank,
    store_settings,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]


@pytest.fixture(scope="module")
def facade(mock, proxy, tmp_path_factory):  # noqa: F811
    work = tmp_path_factory.mktemp("bank-facade")
    store = store_settings("sqlite", sqlite_path=work / "store.db")
    f = Facade(facade_settings(mock, proxy, _free_port(), CLIENTS, store), work)
    f.start()
    yield f
    f.close()


def test_bank_transfers_under_faults_conserve_money_and_post_exactly_once(mock, proxy, facade):  # noqa: F811
    run_bank(mock, proxy, [facade])
