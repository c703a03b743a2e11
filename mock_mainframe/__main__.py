"""``python -m mock_mainframe``: start all three faces on loopback and say how to reach them."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
from decimal import Decimal
from pathlib import Path

from .config import MockConfig


def parse_args(argv: list[str] | None = None) -> MockConfig:
    d = MockConfig()
    p = argparse.ArgumentParser(prog="python -m mock_mainframe",
                                description="A simulated mainframe core: SOAP, SFTP batch and ODBC faces "
                                            "over one ledger, with faults on demand.")
    p.add_argument("--data-dir", type=Path, default=d.data_dir,
                   help="ledger, keys and SFTP root (%(default)s)")
    p.add_argument("--host", default=d.host, help="loopback address to bind (%(default)s)")
    p.add_argument("--soap-port", type=int, default=d.soap_port)
    p.add_argument("--sftp-port", type=int, default=d.sftp_port)
    p.add_argument("--admin-port", type=int, default=d.admin_port)
    p.add_argument("--customers", type=int, default=d.customers, help="customers to seed (%(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the generated data (%(default)s)")
    p.add_argument("--business-date", type=dt.date.fromisoformat, default=d.business_date,
                   help="the core's business date when seeding (%(default)s)")
    p.add_argument("--reseed", action="store_true", help="throw away the ledger and seed it again")
    p.add_argument("--txn-limit", type=Decimal, default=d.txn_limit, help="per-transaction limit")
    p.add_argument("--odbc", choices=("sqlite", "postgres"), default=d.odbc,
                   help="store behind the ODBC face: embedded SQLite, or a PostgreSQL database")
    p.add_argument("--pg-dsn", default=None,
                   help="libpq URL for --odbc postgres, e.g. postgresql://postgres@127.0.0.1:5432/corebank_mock")
    p.add_argument("--outbox-days", type=int, default=d.outbox_days, help="end-of-day files written at start")
    p.add_argument("--fault-seed", type=int, default=d.fault_seed, help="seed of injected faults")
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    if a.customers < 1:
        p.error("--customers must be >= 1")
    if a.odbc == "postgres" and not a.pg_dsn:
        p.error("--odbc postgres needs --pg-dsn")
    logging.basicConfig(level=a.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return MockConfig(data_dir=a.data_dir, host=a.host, soap_port=a.soap_port, sftp_port=a.sftp_port,
                      admin_port=a.admin_port, seed=a.seed, customers=a.customers,
                      business_date=a.business_date, reseed=a.reseed, txn_limit=a.txn_limit,
                      odbc=a.odbc, pg_dsn=a.pg_dsn, outbox_days=a.outbox_days, fault_seed=a.fault_seed)


def banner(mock) -> str:
    cfg, ep = mock.config, mock.endpoints
    sample = mock.ledger.accounts_of("C0000001")
    acct = sample[0]["ACCT_NO"].strip() if sample else "<ACCT-NO>"
    return "\n".join([
        "",
        f"mock mainframe core is up (business date {mock.ledger.business_date().isoformat()})",
        "",
        f"  SOAP     {ep.soap_url}",
        f"           WSDL {ep.wsdl_url}",
        f"           WS-Security UsernameToken: {cfg.soap_user} / {cfg.soap_password}",
        f"  SFTP     {ep.sftp_host}:{ep.sftp_port}  user {cfg.sftp_user} / {cfg.sftp_password}"
        f"  (or key {cfg.client_key_path})",
        f"           host key {ep.sftp_fingerprint}",
        f"           known_hosts: {ep.sftp_known_hosts_line}",
        f"  ODBC     {ep.odbc_connection_string}",
        f"  admin    {ep.admin_url}/status   (faults: {ep.admin_url}/faults)",
        "",
        "  try:",
        f"    curl -s '{ep.wsdl_url}' | head",
        f"    sftp -P {ep.sftp_port} -i {cfg.client_key_path} -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={cfg.keys_dir / 'known_hosts'} {cfg.sftp_user}@{ep.sftp_host}",
        f"    curl -s -X POST {ep.admin_url}/outage -d '{{\"face\": \"soap\", \"seconds\": 10}}'",
        f"    (customer C0000001 holds account {acct})",
        "",
        "Ctrl-C stops it.",
        "",
    ])


def write_endpoints(mock, known_hosts: Path) -> Path:
    """``<data-dir>/endpoints.json``: the banner in machine-readable form, written once all faces are up
    (temp file, then rename), so a launcher can wait for it instead of parsing text."""
    cfg = mock.config
    data = {**mock.endpoints_dict(), "known_hosts": str(known_hosts.resolve()),
            "business_date": mock.ledger.business_date().isoformat(), "pid": os.getpid()}
    path = cfg.data_dir / "endpoints.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    from .runtime import MockMainframe

    mock = MockMainframe(config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        mock.start()
        known_hosts = config.keys_dir / "known_hosts"
        known_hosts.write_text(mock.endpoints.sftp_known_hosts_line + "\n")
        write_endpoints(mock, known_hosts)
        print(banner(mock), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        print("stopping mock mainframe ...", file=sys.stderr, flush=True)
        (config.data_dir / "endpoints.json").unlink(missing_ok=True)
        mock.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
