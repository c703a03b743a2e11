"""``make run`` / ``corebridge demo``: the mock mainframe and the facade together, on loopback.

The mock runs as a child process (``python -m mock_mainframe``: it is the other side of the
contract and is never imported by our code); once its ``endpoints.json`` appears, the facade is
built against it in demo mode (HS256 demo tokens with a secret made for this run), and the
launcher prints the facade URL, a demo token and curl commands that work exactly as printed.
Ctrl-C stops the facade, then the mock.
"""

from __future__ import annotations

import json
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

from api.auth import mint_demo_token
from api.bootstrap import build_gateways, tune_gc
from api.observability import Metrics, configure_logging
from api.settings import Settings, load_settings

DEMO_CUSTOMER = "C0000001"
DEMO_SCOPES = ("accounts:read", "transactions:read", "transfers:write")


def start_mock(data_dir: Path, mock_args: list[str], *, timeout: float = 180.0) -> tuple[subprocess.Popen, dict]:
    data_dir.mkdir(parents=True, exist_ok=True)
    endpoints = data_dir / "endpoints.json"
    endpoints.unlink(missing_ok=True)
    log_path = data_dir / "mock.log"
    log_file = log_path.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "mock_mainframe", "--data-dir", str(data_dir), *mock_args],
                            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if endpoints.exists():
            return proc, json.loads(endpoints.read_text())
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"the mock mainframe exited ({proc.returncode}) before it was ready:\n{tail}")
        time.sleep(0.1)
    stop_child(proc)
    raise SystemExit(f"the mock mainframe was not ready within {timeout:.0f} s (see {log_path})")


def stop_child(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Ctrl-C a child (the mock, a facade) as a user would; kill it if it has not gone within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def demo_settings(ep: dict[str, Any], host: str, port: int, store_path: Path | None = None) -> Settings:
    """Demo routing: balances, customers and transfers over SOAP (the online region); account
    lists, account look-ups (ownership checks) and history over the ODBC replica, so that with the
    SOAP face down a balance is still served, stale, from the replica. With ``store_path``, transfers
    are exactly-once (Idempotency-Key required) with the intent log in that SQLite file."""
    return load_settings(
        auth={"demo_mode": True, "demo_hs256_secret": secrets.token_urlsafe(32)},
        cursor_secret=secrets.token_urlsafe(32),
        backends={
            "soap": {"endpoint": ep["soap_url"], "username": ep["soap_user"], "password": ep["soap_password"]},
            "odbc": {"connection_string": ep["odbc"]},
            "sftp": {"host": ep["sftp_host"], "port": ep["sftp_port"], "username": ep["sftp_user"],
                     "private_key_path": ep["sftp_key"], "host_key_fingerprint": ep["sftp_fingerprint"]},
        },
        routing={"routes": {"default": "soap", "history": "odbc", "accounts": "odbc", "account": "odbc"},
                 "fallbacks": {"balance": "odbc"}},
        server={"host": host, "port": port},
        logging={"format": "text"},
        store={"backend": "sqlite", "sqlite_path": str(store_path)} if store_path else {"backend": "none"},
    )


def curl_commands(base: str, token: str, account: str) -> list[str]:
    """Reads only: they work whatever the store (transfers need an Idempotency-Key)."""
    auth = shlex.quote(f"Authorization: Bearer {token}")
    return [
        f"curl -s -H {auth} {base}/v1/customers/{DEMO_CUSTOMER}/accounts",
        f"curl -s -H {auth} {base}/v1/accounts/{account}/balance",
        f"curl -s -H {auth} '{base}/v1/accounts/{account}/transactions?limit=3'",
    ]


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="corebridge demo", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="facade port (%(default)s)")
    p.add_argument("--data-dir", type=Path, default=Path("var/mock"))
    p.add_argument("mock_args", nargs="*", help="passed to python -m mock_mainframe (after --)")
    args = p.parse_args(argv)
    # SIGTERM (a service manager, `timeout`, `kill`) must stop the mock too: uvicorn hands the signal back
    # once it has shut down, and Python's default action would end the process before `finally` runs
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    proc, ep = start_mock(args.data_dir, args.mock_args)
    try:
        settings = demo_settings(ep, args.host, args.port, store_path=args.data_dir.parent / "corebridge-store.db")
        configure_logging(settings.logging.level, settings.logging.format)
        metrics = Metrics()
        gateways = build_gateways(settings, metrics)
        from api.app import create_app

        app = create_app(settings, gateways, metrics=metrics)
        tune_gc(settings.server.gc_threshold)
        account = gateways.accounts.accounts_of(DEMO_CUSTOMER)[0].id
        token = mint_demo_token(settings.auth, DEMO_CUSTOMER, DEMO_SCOPES, ttl=12 * 3600)
        base = f"http://{args.host}:{args.port}"
        lines = [
            "",
            "corebridge demo is up",
            "",
            f"  facade         {base}   (OpenAPI: {base}/docs)",
            f"  mock mainframe SOAP {ep['soap_url']}  SFTP {ep['sftp_host']}:{ep['sftp_port']}"
            f"  admin {ep['admin_url']}  (log: {args.data_dir / 'mock.log'})",
            f"  demo customer  {DEMO_CUSTOMER} (token valid 12 h, scopes {' '.join(DEMO_SCOPES)})",
            "",
            "  token:",
            f"    {token}",
            "",
            "  try:",
            *[f"    {c}" for c in curl_commands(base, token, account)],
            "",
            "Ctrl-C stops the facade and the mock.",
            "",
        ]
        print("\n".join(lines), flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    finally:
        stop_child(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
