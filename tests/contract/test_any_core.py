"""The part of the contract suite that runs unchanged against the mock OR a bank's test core.

Only the ``core`` fixture is used (see tests/contract/conftest.py): addresses, credentials and a
known customer come from COREBRIDGE_CONTRACT_* variables when set. Nothing here reads the mock's
ledger or drives its faults, so a real core can answer every test.
"""

from __future__ import annotations

import re

import pytest

from adapters.errors import RecordNotFound
from adapters.odbc import OdbcCore, OdbcSettings
from adapters.sftp import SftpBatchDropbox, SftpSettings
from adapters.soap import SoapCore, SoapSettings


@pytest.fixture(scope="module")
def soap(core, registry):
    with SoapCore(SoapSettings(endpoint=core.soap_url, username=core.soap_user, password=core.soap_password),
                  registry) as adapter:
        yield adapter


@pytest.fixture(scope="module")
def odbc(core, registry):
    adapter = OdbcCore(OdbcSettings(connection_string=core.odbc), registry)
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def dropbox(core):
    box = SftpBatchDropbox(SftpSettings(
        host=core.sftp_host, port=core.sftp_port, username=core.sftp_user,
        password=None if core.sftp_key else core.sftp_password, private_key_path=core.sftp_key,
        host_key_fingerprint=core.sftp_fingerprint))
    yield box
    box.close()


def test_soap_and_odbc_agree_on_a_customers_accounts_and_balances(core, soap, odbc):
    over_soap = {a.id: a for a in soap.accounts_of(core.customer_id)}
    over_odbc = {a.id: a for a in odbc.accounts_of(core.customer_id)}
    assert over_soap and over_soap.keys() == over_odbc.keys()
    for acct_id, acct in over_soap.items():
        assert acct == over_odbc[acct_id]
        b_soap, b_odbc = soap.balance(acct_id), odbc.balance(acct_id)
        assert (b_soap.ledger, b_soap.available) == (b_odbc.ledger, b_odbc.available)
        assert b_soap.ledger.currency == acct.currency


def test_history_pages_agree_between_faces(core, soap, odbc):
    acct_id = soap.accounts_of(core.customer_id)[0].id
    soap_page = soap.history(acct_id, limit=20)
    odbc_page = odbc.history(acct_id, limit=20)
    assert [t.id for t in soap_page.items] == [t.id for t in odbc_page.items]
    assert [t.amount for t in soap_page.items] == [t.amount for t in odbc_page.items]


def test_unknown_records_are_not_found_on_every_face(soap, odbc):
    for adapter in (soap, odbc):
        with pytest.raises(RecordNotFound):
            adapter.account("000000000000")
        with pytest.raises(RecordNotFound):
            adapter.customer("Z9999999")


def test_end_of_day_files_can_be_listed_and_fetched(dropbox, tmp_path):
    files = dropbox.list("/outbox")
    names = [f.name for f in files]
    assert any(re.fullmatch(r"TXNHIST\.D\d{6}", n) for n in names), names
    newest = max((f for f in files if f.name.startswith("TXNHIST.D")), key=lambda f: f.name)
    fetched = dropbox.fetch("/outbox", newest.name, tmp_path)
    assert fetched.size == newest.size and len(fetched.sha256) == 64
    assert fetched.path.read_bytes()[:1] == b"\xc8"  # 'H' in cp037: the file starts with its header
