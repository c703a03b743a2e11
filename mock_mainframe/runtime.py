"""Assembles the mock mainframe: one ledger, the fault injector, three faces and the admin port.

``MockMainframe(config).start()`` prepares the ledger (seeding it only when the data directory
holds none with the same parameters, so postings survive a restart), writes the recent
end-of-day files, then starts SOAP, SFTP and the admin endpoint. The ODBC face needs no server
of ours: it is the ledger itself behind unixODBC, reached with :attr:`odbc_connection_string`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from typing import Any

from .admin import AdminFace
from .batch.eod import EodWriter
from .batch.payments import PaymentInbox
from .config import MockConfig
from .faults import FaultInjector
from .ledger.posting import PostingEngine
from .ledger.seed import seed_matches, seed_sqlite
from .ledger.store import Ledger
from .odbc import connection_string, load_into_postgres
from .sftp.server import SftpFace
from .soap.server import SoapFace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoints:
    soap_url: str
    wsdl_url: str
    sftp_host: str
    sftp_port: int
    sftp_fingerprint: str
    sftp_known_hosts_line: str
    odbc_connection_string: str
    admin_url: str


class MockMainframe:
    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.faults = FaultInjector(seed=config.fault_seed)
        self.ledger: Ledger | None = None
        self.engine: PostingEngine | None = None
        self.soap: SoapFace | None = None
        self.sftp: SftpFace | None = None
        self.admin: AdminFace | None = None
        self.eod: EodWriter | None = None
        self.inbox: PaymentInbox | None = None

    # -- ledger ------------------------------------------------------------------------
    def prepare_ledger(self) -> Ledger:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        if cfg.reseed or not seed_matches(cfg.ledger_path, seed=cfg.seed, customers=cfg.customers):
            log.info("seeding ledger: %d customers, seed %d", cfg.customers, cfg.seed)
            for suffix in ("-wal", "-shm"):
                cfg.ledger_path.with_name(cfg.ledger_path.name + suffix).unlink(missing_ok=True)
            seed_sqlite(cfg.ledger_path, seed=cfg.seed, customers=cfg.customers,
                        business_date=cfg.business_date)
            # files of the previous ledger mean nothing to the new one
            for stale in (cfg.outbox, cfg.inbox):
                if stale.exists():
                    shutil.rmtree(stale)
        if cfg.odbc == "postgres":
            if not cfg.pg_dsn:
                raise ValueError("--odbc postgres needs --pg-dsn")
            load_into_postgres(cfg.ledger_path, cfg.pg_dsn)
            return Ledger(pg_dsn=cfg.pg_dsn, txn_limit=cfg.txn_limit)
        return Ledger(cfg.ledger_path, txn_limit=cfg.txn_limit)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Endpoints:
        cfg = self.config
        self.ledger = self.prepare_ledger()
        self.engine = PostingEngine(self.ledger)
        cfg.outbox.mkdir(parents=True, exist_ok=True)
        cfg.inbox.mkdir(parents=True, exist_ok=True)
        self.eod = EodWriter(cfg, self.ledger, self.faults)
        self.eod.write_recent(cfg.outbox_days)
        self.inbox = PaymentInbox(cfg, self.ledger, self.engine)
        self.inbox.start()
        self.soap = SoapFace(cfg, self.ledger, self.engine, self.faults)
        self.soap.start()
        self.sftp = SftpFace(cfg, self.ledger, self.engine, self.faults, inbox=self.inbox)
        self.sftp.start()
        self.admin = AdminFace(cfg.host, cfg.admin_port, self.faults, self.status, self.close_day)
        self.admin.start()
        return self.endpoints

    def stop(self) -> None:
        for part in (self.admin, self.sftp, self.soap, self.inbox):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # noqa: BLE001 - keep stopping the others
                    log.exception("stopping %s failed", type(part).__name__)
        if self.ledger is not None:
            self.ledger.close()

    def __enter__(self) -> MockMainframe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- views -------------------------------------------------------------------------
    @property
    def odbc_connection_string(self) -> str:
        return connection_string(self.config)

    @property
    def endpoints(self) -> Endpoints:
        assert self.soap and self.sftp and self.admin
        return Endpoints(
            soap_url=self.soap.url, wsdl_url=self.soap.wsdl_url, sftp_host=self.config.host,
            sftp_port=self.sftp.port, sftp_fingerprint=self.sftp.host_key_fingerprint,
            sftp_known_hosts_line=self.sftp.known_hosts_line(),
            odbc_connection_string=self.odbc_connection_string, admin_url=self.admin.url)

    def endpoints_dict(self) -> dict[str, Any]:
        """Every address and demo credential as plain JSON values (what ``endpoints.json`` holds)."""
        cfg, ep = self.config, self.endpoints
        return {
            "soap_url": ep.soap_url, "wsdl_url": ep.wsdl_url, "soap_user": cfg.soap_user,
            "soap_password": cfg.soap_password, "sftp_host": ep.sftp_host, "sftp_port": ep.sftp_port,
            "sftp_user": cfg.sftp_user, "sftp_password": cfg.sftp_password,
            "sftp_key": str(cfg.client_key_path.resolve()), "sftp_fingerprint": ep.sftp_fingerprint,
            "known_hosts": str((cfg.keys_dir / "known_hosts").resolve()), "odbc": ep.odbc_connection_string,
            "admin_url": ep.admin_url,
        }

    def status(self) -> dict[str, Any]:
        assert self.ledger is not None
        ep = self.endpoints
        return {
            "business_date": self.ledger.business_date().isoformat(),
            "soap": {"url": ep.soap_url, "wsdl": ep.wsdl_url},
            "sftp": {"host": ep.sftp_host, "port": ep.sftp_port, "fingerprint": ep.sftp_fingerprint},
            "odbc": {"connection_string": ep.odbc_connection_string},
        }

    def close_day(self) -> dict[str, Any]:
        assert self.eod is not None and self.ledger is not None
        closed = self.ledger.business_date()
        files = self.eod.close_business_day()
        return {"closed": closed.isoformat(), "business_date": self.ledger.business_date().isoformat(),
                "files": [f.name for f in files]}


__all__ = ["Endpoints", "MockMainframe"]
