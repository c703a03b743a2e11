"""Suite policy shared by every test module: a missing service or tool skips locally, fails in CI.

Import as ``from tests.support import require, require_tool`` (pytest puts the repo root on
``sys.path``, see ``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
MISSING = "missing:"


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI, when a service or tool the test needs is not there."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{MISSING} {what} (CI=true turns this skip into a failure)")
        pytest.skip(f"{MISSING} {what}")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"tool {name!r} not on PATH")
    assert path is not None
    return path


PG_ADMIN_DSN = os.environ.get("COREBRIDGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_admin_dsn() -> str:
    """The PostgreSQL maintenance DSN for tests; a missing server fails under CI=true."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            ok = True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        ok = False
    require(ok, f"PostgreSQL at {PG_ADMIN_DSN} (set COREBRIDGE_TEST_PG_DSN)")
    return PG_ADMIN_DSN


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "cb_test"):
    """Yield the DSN of a new, uniquely named database; drop it afterwards."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    admin_dsn = pg_admin_dsn()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_dsn, dbname=name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def running_mock(data_dir, *, seed: int, customers: int = 40):
    """The whole mock mainframe (SOAP, SFTP, admin on ephemeral ports; a day of outbox files) for a
    module of stack tests; stopped on exit."""
    from mock_mainframe.config import MockConfig
    from mock_mainframe.runtime import MockMainframe

    mm = MockMainframe(MockConfig(data_dir=data_dir, customers=customers, seed=seed, soap_port=0, sftp_port=0,
                                  admin_port=0, outbox_days=1))
    mm.start()
    try:
        yield mm
    finally:
        mm.stop()


def customer_with_two_accounts(mock) -> tuple[str, str, str, str]:
    """``(customer, account, account, currency)``: the first customer of ``mock`` with two open, funded
    accounts in one currency (not JPY: amounts with cents)."""
    for row in mock.ledger.query("SELECT CUST_NO FROM CUSTMAST ORDER BY CUST_NO"):
        by_ccy: dict[str, list[str]] = {}
        for a in mock.ledger.accounts_of(row["CUST_NO"].strip()):
            if a["ACCT_STAT"] == "A" and a["AVAIL_BAL"] > 100:
                by_ccy.setdefault(a["CURR_CD"], []).append(a["ACCT_NO"].strip())
        for ccy, nos in by_ccy.items():
            if len(nos) >= 2 and ccy != "JPY":
                return row["CUST_NO"].strip(), nos[0], nos[1], ccy
    raise AssertionError("seed has no customer with two open accounts in one currency")


class LoopbackHttpServer:
    """A threaded ``http.server`` on an ephemeral loopback port for a test's hand-written handler
    (a canned or hostile SOAP peer); ``close()`` stops it."""

    def __init__(self, handler) -> None:
        import http.server
        import threading

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def use_tls(self, context) -> None:
        """Serve HTTPS from now on (``context``: a server-side ``ssl.SSLContext``)."""
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class CannedCore:
    """A loopback HTTP server answering every POST with ``reply(body) -> (status, content type, bytes)``."""

    def __init__(self) -> None:
        canned = self
        self.reply = lambda body: (200, "text/xml; charset=utf-8", b"")
        self.posts: list[bytes] = []

        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                canned.posts.append(body)
                status, ctype, data = canned.reply(body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = LoopbackHttpServer(Handler)
        self.url = f"{self.server.base}/corebank/v1"

    def close(self) -> None:
        self.server.close()
