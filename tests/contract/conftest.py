"""Where the contract suite points: the mock mainframe (default) or a bank's test core.

By default a whole mock mainframe (SOAP, SFTP, ODBC faces) is started in-process on free ports,
seeded small and deterministic. Set these variables to run the same suite against another
core instead (see README, "Contract tests against your test core"):

  COREBRIDGE_CONTRACT_SOAP_URL          endpoint URL of the CoreBanking SOAP service
  COREBRIDGE_CONTRACT_SOAP_USER         WS-Security user          ..._SOAP_PASSWORD
  COREBRIDGE_CONTRACT_SFTP_HOST         SFTP host                 ..._SFTP_PORT (22)
  COREBRIDGE_CONTRACT_SFTP_USER         SFTP user                 ..._SFTP_PASSWORD or ..._SFTP_KEY (path)
  COREBRIDGE_CONTRACT_SFTP_FINGERPRINT  the host key pin, SHA256:...
  COREBRIDGE_CONTRACT_ODBC              ODBC connection string
  COREBRIDGE_CONTRACT_CUSTOMER_ID       a customer with at least two open accounts in one currency
  COREBRIDGE_CONTRACT_ALLOW_WRITES=1    allow tests that post transfers / upload payment files

Tests that need the mock itself (fault injection, its files on disk) ask for ``mock`` and are
skipped against a real core.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.soap import SoapCore, SoapSettings
from mock_mainframe.config import MockConfig
from mock_mainframe.runtime import MockMainframe
from tests.support import CannedCore

ENV = "COREBRIDGE_CONTRACT_"


@dataclass(frozen=True)
class CoreTarget:
    """Everything a contract test needs to reach one core."""

    soap_url: str
    soap_user: str
    soap_password: str
    sftp_host: str
    sftp_port: int
    sftp_user: str
    sftp_password: str | None
    sftp_key: Path | None
    sftp_fingerprint: str
    odbc: str
    customer_id: str
    allow_writes: bool
    is_mock: bool


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV + name, default)


@pytest.fixture(scope="session")
def mock(tmp_path_factory):
    """The in-process mock mainframe (None when the suite points at a real core)."""
    if _env("SOAP_URL"):
        yield None
        return
    cfg = MockConfig(data_dir=tmp_path_factory.mktemp("contract-mock"), customers=40, seed=7,
                     soap_port=0, sftp_port=0, admin_port=0, outbox_days=3)
    mm = MockMainframe(cfg)
    mm.start()
    yield mm
    mm.stop()


@pytest.fixture(scope="session")
def core(mock) -> CoreTarget:
    if mock is None:
        key = _env("SFTP_KEY")
        return CoreTarget(
            soap_url=_env("SOAP_URL") or "", soap_user=_env("SOAP_USER", "") or "",
            soap_password=_env("SOAP_PASSWORD", "") or "", sftp_host=_env("SFTP_HOST", "") or "",
            sftp_port=int(_env("SFTP_PORT", "22") or 22), sftp_user=_env("SFTP_USER", "") or "",
            sftp_password=_env("SFTP_PASSWORD"), sftp_key=Path(key) if key else None,
            sftp_fingerprint=_env("SFTP_FINGERPRINT", "") or "", odbc=_env("ODBC", "") or "",
            customer_id=_env("CUSTOMER_ID", "") or "", allow_writes=_env("ALLOW_WRITES") == "1",
            is_mock=False)
    cfg, ep = mock.config, mock.endpoints
    return CoreTarget(
        soap_url=ep.soap_url, soap_user=cfg.soap_user, soap_password=cfg.soap_password,
        sftp_host=ep.sftp_host, sftp_port=ep.sftp_port, sftp_user=cfg.sftp_user,
        sftp_password=cfg.sftp_password, sftp_key=cfg.client_key_path, sftp_fingerprint=ep.sftp_fingerprint,
        odbc=ep.odbc_connection_string, customer_id="C0000001", allow_writes=True, is_mock=True)


@pytest.fixture
def mock_only(mock):
    """For tests that drive the mock's fault injection or read its files."""
    if mock is None:
        pytest.skip("needs the mock mainframe (fault injection), not run against a real core")
    mock.faults.clear()
    yield mock
    mock.faults.clear()


@pytest.fixture
def canned(registry):
    """A canned SOAP peer (tests.support.CannedCore) and an adapter pointed at it."""
    server = CannedCore()
    adapter = SoapCore(SoapSettings(endpoint=server.url, username="U", password="P", read_timeout=2), registry)
    yield server, adapter
    adapter.close()
    server.close()
