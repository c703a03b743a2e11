"""The mock mainframe's configuration: ports, data directory, demo credentials, seed.

Port 0 means "pick a free port" (tests); the defaults are fixed so that `make run` prints
stable addresses. Demo credentials are the mock's own and are printed at start-up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from .ledger.seed import DEFAULT_BUSINESS_DATE


@dataclass
class MockConfig:
    data_dir: Path = Path("var/mock")
    host: str = "127.0.0.1"
    soap_port: int = 8081
    sftp_port: int = 2222
    admin_port: int = 8089
    seed: int = 1
    customers: int = 1000
    business_date: dt.date = DEFAULT_BUSINESS_DATE
    reseed: bool = False
    txn_limit: Decimal = Decimal("25000.00")
    # SOAP: WS-Security UsernameToken (PasswordText) demo credentials
    soap_user: str = "CBRIDGE"
    soap_password: str = "mainframe-demo"  # noqa: S105 - demo credential, printed at start-up
    # SFTP: password and public-key auth for one batch user
    sftp_user: str = "cbbatch"
    sftp_password: str = "batch-demo"  # noqa: S105 - demo credential, printed at start-up
    # ODBC: "sqlite" (embedded default) or "postgres" (pg_dsn is a libpq DSN/URL)
    odbc: str = "sqlite"
    pg_dsn: str | None = None
    outbox_days: int = 5
    fault_seed: int = 0

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.db"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def host_key_path(self) -> Path:
        return self.keys_dir / "ssh_host_ed25519_key"

    @property
    def client_key_path(self) -> Path:
        """A demo client key pair whose public half is authorised for the SFTP user."""
        return self.keys_dir / "client_ed25519_key"

    @property
    def sftp_root(self) -> Path:
        return self.data_dir / "sftp"

    @property
    def outbox(self) -> Path:
        return self.sftp_root / "outbox"

    @property
    def inbox(self) -> Path:
        return self.sftp_root / "inbox"
