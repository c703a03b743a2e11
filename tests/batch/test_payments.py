"""``batch push`` end to end: transfers -> PAYIN (through the payin mapping) uploaded to the mock's SFTP
inbox -> the mock posts them -> its PAYACK is reconciled into the batch store.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.sftp import SftpBatchDropbox, SftpSettings
from api.batch import DuplicateReferences, PaymentPusher, load_transfers, open_store
from api.cli import app
from mock_mainframe.config import MockConfig
from mock_mainframe.faults import FaultInjector
from mock_mainframe.ledger.posting import PostingEngine
from mock_mainframe.ledger.store import Ledger
from mock_mainframe.sftp.server import SftpFace
from tests.support import fresh_pg_database

pytestmark = pytest.mark.contract


@pytest.fixture
def face(tmp_path, ledger):
    config = MockConfig(data_dir=tmp_path / "mock", sftp_port=0)
    f = SftpFace(config, ledger, PostingEngine(ledger), FaultInjector(seed=42)).start()
    yield f
    f.stop()


def settings_for(face: SftpFace) -> SftpSettings:
    cfg = face.config
    return SftpSettings(host=cfg.host, port=face.port, username=cfg.sftp_user, password=cfg.sftp_password,
                        host_key_fingerprint=face.host_key_fingerprint, connect_timeout=5, banner_timeout=5,
                        auth_timeout=5, channel_timeout=5, operation_timeout=10)


@pytest.fixture
def box(face):
    adapter = SftpBatchDropbox(settings_for(face))
    yield adapter
    adapter.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(tmp_path / "batch.db")
        yield s
        s.close()
        return
    with fresh_pg_database("cb_batch_pay") as dsn:
        s = open_store(dsn)
        yield s
        s.close()


def usd_accounts(ledger: Ledger, n: int = 3) -> list[str]:
    rows = ledger.query("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'USD' "
                        "AND AVAIL_BAL > 1000 ORDER BY ACCT_NO LIMIT ?", (n,))
    assert len(rows) == n
    return [r["ACCT_NO"].strip() for r in rows]


def balance(ledger: Ledger, acct: str) -> Decimal:
    return Decimal(str(ledger.query("SELECT LEDGER_BAL FROM ACCTMAST WHERE ACCT_NO = ?", (acct,))[0]["LEDGER_BAL"]))


def transfers_file(tmp_path: Path, ledger: Ledger, prefix: str = "PAY") -> tuple[Path, list[str]]:
    a, b, c = usd_accounts(ledger)
    day = ledger.business_date().isoformat()
    items = [
        {"reference": f"{prefix}-1", "from": a, "to": b, "amount": "10.25", "currency": "USD", "memo": "INVOICE 1",
         "value_date": day},
        {"reference": f"{prefix}-2", "from": b, "to": c, "amount": "3.10", "currency": "USD", "memo": "INVOICE 2",
         "value_date": day},
        {"reference": f"{prefix}-3", "from": a, "to": "999999999999", "amount": "1.00", "currency": "USD",
         "memo": "UNKNOWN PAYEE", "value_date": day},
    ]
    path = tmp_path / f"{prefix}.json"
    path.write_text(json.dumps(items))
    return path, [a, b, c]


def test_push_round_trip_posts_two_and_rejects_one(box, store, registry, ledger, tmp_path):
    path, (a, b, c) = transfers_file(tmp_path, ledger)
    before = {x: balance(ledger, x) for x in (a, b, c)}
    pusher = PaymentPusher(store, registry, box, inbox="/inbox", outbox="/outbox", work_dir=tmp_path / "work")
    result = pusher.push(load_transfers(path), ack_timeout=15, poll_interval=0.1, day=ledger.business_date())

    assert result.status == "acked" and result.ack_status == "A"
    assert result.file_name.startswith("PAYIN.D") and result.file_name.endswith(".S000001")
    assert result.ack_name == "PAYACK." + result.file_name[len("PAYIN."):]
    by_ref = {p["reference"]: p for p in store.payments_of(result.file_name)}
    assert [by_ref[f"PAY-{i}"]["status"] for i in (1, 2, 3)] == ["posted", "posted", "rejected"]
    assert by_ref["PAY-3"]["reason_code"] == "R002" and "NOT FOUND" in by_ref["PAY-3"]["reason"]
    assert by_ref["PAY-1"]["core_id"] and by_ref["PAY-1"]["amount"] == "10.25"
    assert result.posted == 2 and result.rejected == 1
    # the money moved in the core's ledger
    assert balance(ledger, a) == before[a] - Decimal("10.25")
    assert balance(ledger, b) == before[b] + Decimal("10.25") - Decimal("3.10")
    assert balance(ledger, c) == before[c] + Decimal("3.10")
    assert store.payment_file(result.file_name)["status"] == "acked"

    # the same references again: refused, nothing uploaded, nothing posted twice
    with pytest.raises(DuplicateReferences):
        pusher.push(load_transfers(path), ack_timeout=1, day=ledger.business_date())
    assert balance(ledger, a) == before[a] - Decimal("10.25")
    assert store.scalar("SELECT COUNT(*) FROM payment_files") == 1


def test_missing_ack_is_reported_and_a_rerun_resumes_the_same_file(box, store, registry, ledger, tmp_path, face):
    path, _ = transfers_file(tmp_path, ledger, "HOLD")
    pusher = PaymentPusher(store, registry, box, inbox="/inbox", outbox="/outbox", work_dir=tmp_path / "work")
    transfers = load_transfers(path)
    # a core that takes the file but never answers: list() never shows the ack
    real_list = box.list

    def no_acks(folder, pattern="*", **kw):
        return [] if folder == "/outbox" else real_list(folder, pattern, **kw)

    box.list = no_acks  # type: ignore[method-assign]
    result = pusher.push(transfers, ack_timeout=0.3, poll_interval=0.1, day=ledger.business_date())
    assert result.status == "ack_missing" and "within 0.3 s" in result.ack_reason
    assert all(p["status"] == "pending" for p in result.payments)

    box.list = real_list  # type: ignore[method-assign]
    again = pusher.push(transfers, ack_timeout=15, poll_interval=0.1, day=ledger.business_date())
    assert again.resumed and again.file_name == result.file_name  # same name, not uploaded twice
    assert again.status == "acked" and again.posted == 2 and again.rejected == 1
    assert store.scalar("SELECT COUNT(*) FROM payment_files") == 1


def test_cli_push(face, ledger, tmp_path):
    path, _ = transfers_file(tmp_path, ledger, "CLI")
    cfg = face.config
    args = ["batch", "push", "--transfers", str(path), "--store", str(tmp_path / "cli.db"), "--work-dir",
            str(tmp_path / "cli"), "--ack-timeout", "15", "--host", cfg.host, "--port", str(face.port), "--user",
            cfg.sftp_user, "--password", cfg.sftp_password, "--fingerprint", face.host_key_fingerprint]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output  # one payment rejected
    assert "posted" in result.output and "rejected" in result.output and "R002" in result.output
    again = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert again.exit_code == 2 and "already sent" in again.output


def test_an_upload_whose_status_update_was_lost_is_not_uploaded_again(store, registry, ledger, tmp_path):
    """The upload landed but the run died before recording it: the re-run meets the port's
    refusal to overwrite (FILE_EXISTS), takes the file as uploaded, and never writes a second name."""
    from adapters.errors import BackendUnavailable
    from tests.fakes.dropbox import FakeBatchDropbox

    path, _ = transfers_file(tmp_path, ledger, "LOST")
    fake = FakeBatchDropbox(download_dir=tmp_path / "dl")
    real_upload = fake.upload

    def upload_then_die(*args, **kwargs):
        real_upload(*args, **kwargs)
        raise BackendUnavailable("connection lost after the rename", backend="sftp", operation="upload")

    fake.upload = upload_then_die  # type: ignore[method-assign]
    pusher = PaymentPusher(store, registry, fake, inbox="/inbox", outbox="/outbox", work_dir=tmp_path / "work")
    transfers = load_transfers(path)
    with pytest.raises(BackendUnavailable):
        pusher.push(transfers, ack_timeout=0.2, poll_interval=0.05, day=ledger.business_date())
    (name,) = fake.names("/inbox")
    assert store.payment_file(name)["status"] == "built"

    fake.upload = real_upload  # type: ignore[method-assign]
    again = pusher.push(transfers, ack_timeout=0.2, poll_interval=0.05, day=ledger.business_date())
    assert again.resumed and again.file_name == name
    assert again.status == "ack_missing"  # the fake core never answers; what matters is below
    assert fake.names("/inbox") == {name}
    assert store.payment_file(name)["status"] != "built"
    assert store.scalar("SELECT COUNT(*) FROM payment_files") == 1
