"""The SFTP batch dropbox: the port's promises against the real adapter + the mock's SFTP face *and* the
hand-written fake (so the fake stays honest), then what only a real SSH server can show: host-key pinning,
authentication, the payment inbox taking an upload, outages, dropped sessions, resets and timeouts.

The mock runs in-process on port 0 with a tmp data dir; the adapter logs in with the mock's demo
credentials (password, or the demo client key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import socket
import threading
import time
from decimal import Decimal
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from adapters.errors import (
    BackendFault,
    BackendTimeout,
    BackendUnavailable,
    CoreError,
    RecordNotFound,
    Rejected,
)
from adapters.ports import BatchDropbox, RemoteFile
from adapters.sftp import (
    AuthenticationFailed,
    HostKeyMismatch,
    PinnedFingerprintPolicy,
    RemoteFileExists,
    SftpBatchDropbox,
    SftpSettings,
)
from mock_mainframe.batch.eod import EodWriter
from mock_mainframe.batch.layouts import (
    PAYACK_DETAIL,
    PAYACK_HEADER,
    PAYACK_LRECL,
    PAYIN_DETAIL,
    PAYIN_HEADER,
    PAYIN_TRAILER,
)
from mock_mainframe.config import MockConfig
from mock_mainframe.faults import FaultInjector, FaultRule
from mock_mainframe.ledger.legacy import to_cyymmdd
from mock_mainframe.ledger.posting import PostingEngine
from mock_mainframe.ledger.store import Ledger
from mock_mainframe.sftp.server import SftpFace
from tests.fakes.dropbox import FakeBatchDropbox

pytestmark = pytest.mark.contract



# -- the mock mainframe -------------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path) -> MockConfig:
    return MockConfig(data_dir=tmp_path / "mock", sftp_port=0)


@pytest.fixture
def face(config, ledger, faults):
    EodWriter(config, ledger, faults).write_recent(3)
    f = SftpFace(config, ledger, PostingEngine(ledger), faults).start()
    yield f
    f.stop()


@pytest.fixture
def known_hosts(face, tmp_path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(face.known_hosts_line() + "\n")
    return path


def settings_for(face: SftpFace, known_hosts: Path | None = None, **overrides) -> SftpSettings:
    cfg = face.config
    values = dict(host=cfg.host, port=face.port, username=cfg.sftp_user, password=cfg.sftp_password,
                  known_hosts_path=known_hosts, connect_timeout=5, banner_timeout=5, auth_timeout=5,
                  channel_timeout=5, operation_timeout=10, download_dir=cfg.data_dir.parent / "downloads")
    if known_hosts is None:
        values["host_key_fingerprint"] = face.host_key_fingerprint
    values.update(overrides)
    return SftpSettings(**values)


@pytest.fixture
def box(face, known_hosts):
    adapter = SftpBatchDropbox(settings_for(face, known_hosts))
    yield adapter
    adapter.close()


def wait_for(predicate, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def other_fingerprint() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption()).decode()
    return paramiko.Ed25519Key(file_obj=io.StringIO(pem)).fingerprint


# -- PAYIN bytes from the mock's copybook layouts ----------------------------------------------------
def accounts(ledger: Ledger, n: int = 2) -> list[str]:
    rows = ledger.query("SELECT ACCT_NO FROM ACCTMAST WHERE ACCT_STAT = 'A' AND CURR_CD = 'USD' "
                        "AND AVAIL_BAL > 100 ORDER BY ACCT_NO LIMIT ?", (n,))
    assert len(rows) == n
    return [r["ACCT_NO"].strip() for r in rows]


def payin_file(ledger: Ledger, refs: list[str], amount: Decimal = Decimal("12.34"), seq: int = 1) -> bytes:
    a, b = accounts(ledger)
    day = to_cyymmdd(ledger.business_date())
    out = [PAYIN_HEADER.encode({"PIH-REC-TYPE": "H", "PIH-FILE-ID": "PAYIN", "PIH-FILE-DATE": day,
                                "PIH-SEQ-NO": seq, "PIH-SENDER": "CBRIDGE"})]
    for ref in refs:
        out.append(PAYIN_DETAIL.encode({"PID-REC-TYPE": "D", "PID-TXN-REF": ref, "PID-DEBIT-ACCT": a,
                                        "PID-CREDIT-ACCT": b, "PID-AMOUNT": amount, "PID-CURR-CODE": "USD",
                                        "PID-VALUE-DATE": day, "PID-MEMO": "CONTRACT TEST"}))
    out.append(PAYIN_TRAILER.encode({"PIT-REC-TYPE": "T", "PIT-REC-COUNT": len(refs),
                                     "PIT-CTL-TOTAL": amount * len(refs)}))
    return b"".join(out)


def read_payack(data: bytes) -> tuple[dict, list[dict]]:
    recs = [data[i:i + PAYACK_LRECL] for i in range(0, len(data), PAYACK_LRECL)]
    return PAYACK_HEADER.decode(recs[0]), [PAYACK_DETAIL.decode(r) for r in recs[1:-1]]


# -- the port, twice: real adapter + mock, and the fake ------------------------------------------------
class MockSide:
    """The server side of the real adapter: the mock's SFTP root on disk."""

    def __init__(self, face: SftpFace, dropbox: SftpBatchDropbox) -> None:
        self.face = face
        self.root = Path(face.config.sftp_root)
        self.dropbox = dropbox

    def outbox_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (self.root / "outbox").iterdir()
                if p.is_file() and not p.name.startswith(".")}

    def put(self, folder: str, name: str, data: bytes) -> None:
        path = self.root / folder.strip("/") / name
        if folder.strip("/") == "inbox":
            self.face.inbox.hold(Path(self.face.config.inbox) / name)  # the core must not take it
        path.write_bytes(data)

    def delivered(self, name: str) -> bytes | None:
        """The uploaded file under its final name, wherever the payment inbox has moved it."""
        inbox = self.root / "inbox"

        def find() -> bytes | None:
            for path in (inbox / name, inbox / "processed" / name, inbox / "rejected" / name):
                try:
                    return path.read_bytes()
                except FileNotFoundError:
                    continue
            return None

        return wait_for(find, 5)

    def names(self, folder: str) -> set[str]:
        return {p.name for p in (self.root / folder.strip("/")).iterdir() if p.is_file()}


class FakeSide:
    def __init__(self, fake: FakeBatchDropbox) -> None:
        self.dropbox = fake
        for day in (1, 2, 3):
            fake.put("/outbox", f"TXNHIST.D26112{day}", bytes([day]) * (200 * (day + 2)))
            fake.put("/outbox", f"STMT.D26112{day}", bytes([day + 10]) * (44 * day + 44))

    def outbox_files(self) -> dict[str, bytes]:
        return {n: self.dropbox.read("/outbox", n) for n in self.dropbox.names("/outbox")
                if not n.startswith(".")}

    def put(self, folder: str, name: str, data: bytes) -> None:
        self.dropbox.put(folder, name, data)

    def delivered(self, name: str) -> bytes | None:
        return self.dropbox.read("/inbox", name)

    def names(self, folder: str) -> set[str]:
        return self.dropbox.names(folder)


@pytest.fixture(params=["sftp+mock", "fake"])
def side(request, tmp_path):
    if request.param == "fake":
        fake = FakeBatchDropbox(download_dir=tmp_path / "downloads")
        yield FakeSide(fake)
        fake.close()
    else:
        yield MockSide(request.getfixturevalue("face"), request.getfixturevalue("box"))


@pytest.fixture
def payload(tmp_path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(b"\xc8" + bytes(range(256)) * 40)
    return path


def test_port_is_a_batch_dropbox(side):
    assert isinstance(side.dropbox, BatchDropbox)


def test_list_shows_what_the_server_holds(side):
    truth = side.outbox_files()
    listed = side.dropbox.list("/outbox")
    assert [f.name for f in listed] == sorted(truth)
    assert {f.name: f.size for f in listed} == {n: len(b) for n, b in truth.items()}
    assert all(isinstance(f, RemoteFile) and f.modified.tzinfo is not None for f in listed)
    txnhist = side.dropbox.list("/outbox", "TXNHIST.D*")
    assert len(txnhist) == 3 and all(f.name.startswith("TXNHIST.D") for f in txnhist)
    assert len(side.dropbox.list("/outbox", "STMT.D*")) == 3
    assert side.dropbox.list("/outbox", "NOTHING.*") == []


def test_list_hides_transfers_in_progress_and_folders(side):
    side.put("/inbox", "PAYIN.HELD", b"complete")
    side.put("/inbox", ".PAYIN.X.part", b"half")
    side.put("/inbox", "PAYIN.Y.filepart", b"half")
    assert [f.name for f in side.dropbox.list("/inbox")] == ["PAYIN.HELD"]


def test_fetch_is_complete_hashed_and_renamed_into_place(side, tmp_path):
    truth = side.outbox_files()
    name = sorted(n for n in truth if n.startswith("TXNHIST."))[0]
    dest = tmp_path / "incoming"
    got = side.dropbox.fetch("/outbox", name, dest)
    assert got.name == name and got.path == dest / name and got.size == len(truth[name])
    assert got.sha256 == hashlib.sha256(truth[name]).hexdigest()
    assert (dest / name).read_bytes() == truth[name]
    assert [p.name for p in dest.iterdir()] == [name], "no temp file left behind"
    (dest / name).write_bytes(b"stale local copy")
    again = side.dropbox.fetch("/outbox", name, dest)
    assert again.sha256 == got.sha256 and (dest / name).read_bytes() == truth[name]


def test_fetch_defaults_to_the_download_dir(side):
    name = sorted(side.outbox_files())[0]
    got = side.dropbox.fetch("/outbox", name)
    assert got.path.parent.name == "downloads" and got.path.read_bytes() == side.outbox_files()[name]


def test_missing_file_or_folder_is_record_not_found(side, tmp_path):
    dest = tmp_path / "incoming"
    with pytest.raises(RecordNotFound, match="TXNHIST.D000101"):
        side.dropbox.fetch("/outbox", "TXNHIST.D000101", dest)
    assert list(dest.iterdir()) == []
    with pytest.raises(RecordNotFound):
        side.dropbox.list("/no-such-folder")


def test_upload_publishes_under_the_final_name_only(side, payload):
    side.dropbox.upload(payload, "/inbox", "PAYIN.T1")
    assert side.delivered("PAYIN.T1") == payload.read_bytes()
    assert ".PAYIN.T1.part" not in side.names("/inbox")


def test_upload_refuses_to_overwrite(side, payload):
    side.put("/inbox", "PAYIN.HELD", b"already here")
    with pytest.raises(RemoteFileExists, match="PAYIN.HELD") as info:
        side.dropbox.upload(payload, "/inbox", "PAYIN.HELD")
    assert isinstance(info.value, Rejected) and info.value.reason_code == "FILE_EXISTS"
    assert side.delivered("PAYIN.HELD") == b"already here"
    assert side.names("/inbox") == {"PAYIN.HELD"}, "no temp file left behind"


def test_upload_starts_over_after_a_stale_temp(side, payload):
    side.put("/inbox", ".PAYIN.S1.part", b"the first half of an upload cut off before its rename")
    side.dropbox.upload(payload, "/inbox", "PAYIN.S1")
    assert side.delivered("PAYIN.S1") == payload.read_bytes()
    assert ".PAYIN.S1.part" not in side.names("/inbox")


def test_upload_refuses_temp_and_path_names(side, payload):
    for name in (".PAYIN.A", "PAYIN.A.part", "PAYIN.A.TMP", "../PAYIN.A", "a/b", ""):
        with pytest.raises(ValueError):
            side.dropbox.upload(payload, "/inbox", name)
    with pytest.raises(ValueError):
        side.dropbox.fetch("/outbox", "../secret")


def test_missing_local_file_is_a_local_error(side, tmp_path):
    with pytest.raises(OSError) as info:
        side.dropbox.upload(tmp_path / "nope.bin", "/inbox", "PAYIN.NOPE")
    assert not isinstance(info.value, CoreError)


def test_closed_dropbox_is_unavailable(side):
    side.dropbox.close()
    with pytest.raises(BackendUnavailable):
        side.dropbox.list("/outbox")


# -- the real server only ---------------------------------------------------------------------------------
def test_payment_file_is_taken_by_the_core_and_acknowledged(face, box, ledger, tmp_path):
    day = ledger.business_date()
    name = f"PAYIN.D{day:%y%m%d}.S000001"
    local = tmp_path / name
    local.write_bytes(payin_file(ledger, ["CT-PAY-0001", "CT-PAY-0002"]))
    box.upload(local, "/inbox", name)
    ack = f"PAYACK.D{day:%y%m%d}.S000001"
    assert wait_for(lambda: box.list("/outbox", ack), 10, 0.1), "the core wrote no PAYACK"
    fetched = box.fetch("/outbox", ack, tmp_path / "acks")
    header, details = read_payack(fetched.path.read_bytes())
    assert header["PAH-FILE-STATUS"] == "A" and header["PAH-IN-FILE"].strip() == name
    assert [(d["PAD-TXN-REF"].strip(), d["PAD-STATUS"]) for d in details] == [
        ("CT-PAY-0001", "A"), ("CT-PAY-0002", "A")]
    assert [p["CHANNEL"] for p in ledger.transfers_by_ref("CT-PAY-0001")] == ["BAT"]
    assert (Path(face.config.inbox) / "processed" / name).exists()


def test_fingerprint_pin_key_auth_and_tcp_nodelay(face, tmp_path):
    cfg = face.config
    settings = settings_for(face, password=None, private_key_path=cfg.client_key_path)
    assert settings.host_key_fingerprint == face.host_key_fingerprint
    with SftpBatchDropbox(settings) as dropbox:
        assert len(dropbox.list("/outbox")) == 6
        sock = dropbox._session.client.get_transport().sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert dropbox._session.client.get_transport().remote_cipher == "aes128-gcm@openssh.com"


def test_wrong_fingerprint_is_refused_and_nothing_is_uploaded(face, payload):
    pin = other_fingerprint()
    dropbox = SftpBatchDropbox(settings_for(face, host_key_fingerprint=pin))
    with pytest.raises(HostKeyMismatch) as info:
        dropbox.upload(payload, "/inbox", "PAYIN.EVIL")
    err = info.value
    assert isinstance(err, BackendFault) and not err.outcome_unknown
    assert err.seen_fingerprint == face.host_key_fingerprint
    assert face.host_key_fingerprint in str(err) and pin in str(err), str(err)
    assert dropbox.sessions_opened == 0
    inbox = Path(face.config.inbox)
    assert [p.name for p in inbox.rglob("*") if p.is_file()] == [], "nothing reached the server"


def test_another_server_behind_the_pinned_name_is_refused(face, ledger, faults, tmp_path, payload):
    # a second server (its own data dir, so its own host key) where the first one is pinned
    other_cfg = MockConfig(data_dir=tmp_path / "impostor", sftp_port=0)
    other = SftpFace(other_cfg, ledger, PostingEngine(ledger), FaultInjector()).start()
    try:
        known = tmp_path / "known_hosts_first"
        key_part = face.known_hosts_line().split(" ", 1)[1]
        known.write_text(f"[{other_cfg.host}]:{other.port} {key_part}\n")
        dropbox = SftpBatchDropbox(settings_for(other, known))
        with pytest.raises(HostKeyMismatch) as info:
            dropbox.upload(payload, "/inbox", "PAYIN.EVIL")
        assert info.value.seen_fingerprint == other.host_key_fingerprint
        assert other.host_key_fingerprint in str(info.value) and face.host_key_fingerprint in str(info.value)
        assert [p for p in Path(other_cfg.inbox).rglob("*") if p.is_file()] == []
    finally:
        other.stop()


def test_fingerprint_policy_accepts_only_the_pin(face):
    key = face.host_key
    policy = PinnedFingerprintPolicy(key.fingerprint + "=")  # padding is tolerated
    assert isinstance(policy, paramiko.RejectPolicy)
    policy.missing_host_key(None, "[h]:1", key)
    with pytest.raises(HostKeyMismatch, match=key.fingerprint.replace("+", r"\+")):
        PinnedFingerprintPolicy(other_fingerprint()).missing_host_key(None, "[h]:1", key)


def test_settings_refuse_unpinned_or_unusable_configurations(face, known_hosts, tmp_path):
    base = dict(host="127.0.0.1", port=face.port, username="u", password="p")
    with pytest.raises(ValueError, match="pin"):
        SftpSettings(**base)
    with pytest.raises(ValueError, match="SHA256"):
        SftpSettings(**base, host_key_fingerprint="aa:bb:cc")
    with pytest.raises(ValueError, match="password or private_key_path"):
        SftpSettings(host="h", username="u", known_hosts_path=known_hosts)
    with pytest.raises(ValueError, match="operation_timeout"):
        SftpSettings(**base, known_hosts_path=known_hosts, operation_timeout=0)
    assert "batch-demo" not in repr(settings_for(face, known_hosts))
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(ValueError, match="no key"):
        SftpBatchDropbox(SftpSettings(**base, known_hosts_path=empty))
    with pytest.raises(ValueError, match="disagrees"):
        SftpBatchDropbox(SftpSettings(**base, known_hosts_path=known_hosts, host_key_fingerprint=other_fingerprint()))
    with pytest.raises(ValueError, match="private key"):
        SftpBatchDropbox(SftpSettings(**base, known_hosts_path=known_hosts, private_key_path=tmp_path / "none"))


def test_wrong_password_is_an_authentication_failure(face, known_hosts):
    dropbox = SftpBatchDropbox(settings_for(face, known_hosts, password="not-the-password"))
    with pytest.raises(AuthenticationFailed) as info:
        dropbox.list("/outbox")
    assert isinstance(info.value, BackendFault) and info.value.operation == "list"
    assert dropbox.sessions_opened == 0


def test_outage_is_unavailable_then_reconnects(face, box, faults):
    assert box.list("/outbox")
    faults.outage("sftp", 1.0)
    with pytest.raises(BackendUnavailable):
        box.list("/outbox")
    listed = wait_for(lambda: _try_list(box), 6, 0.2)
    assert listed and len(listed) == 6
    assert box.sessions_opened == 2


def _try_list(box: SftpBatchDropbox) -> list[RemoteFile] | None:
    try:
        return box.list("/outbox")
    except BackendUnavailable:
        return None


def test_dropped_session_reconnects_before_the_next_call(face, box, config, ledger, faults):
    assert box.list("/outbox")
    session = box._session
    port = face.port
    face.stop()
    assert wait_for(lambda: not session.alive(), 5)
    config.sftp_port = port
    again = SftpFace(config, ledger, PostingEngine(ledger), faults).start()
    try:
        assert len(box.list("/outbox")) == 6
        assert box.sessions_opened == 2
    finally:
        again.stop()


def test_reset_during_list_or_fetch_is_retried_once(face, box, faults, tmp_path):
    faults.set_rules([FaultRule(face="sftp", operation="list", error_rate=1.0, error="reset", remaining=1)])
    assert len(box.list("/outbox")) == 6
    assert box.sessions_opened == 2
    name = box.list("/outbox", "TXNHIST.D*")[0].name
    faults.set_rules([FaultRule(face="sftp", operation="read", error_rate=1.0, error="reset", remaining=1)])
    got = box.fetch("/outbox", name, tmp_path / "in")
    assert got.sha256 == hashlib.sha256((Path(face.config.outbox) / name).read_bytes()).hexdigest()
    assert [p.name for p in (tmp_path / "in").iterdir()] == [name]
    faults.set_rules([FaultRule(face="sftp", operation="list", error_rate=1.0, error="reset", remaining=2)])
    with pytest.raises(BackendUnavailable):
        box.list("/outbox")  # retried once only


def test_upload_cut_off_is_not_retried_and_publishes_nothing(face, box, faults, ledger, tmp_path):
    local = tmp_path / "PAYIN.CUT1"
    local.write_bytes(payin_file(ledger, ["CT-CUT-0001"]))
    faults.set_rules([FaultRule(face="sftp", operation="write", error_rate=1.0, error="reset", remaining=1)])
    with pytest.raises(BackendUnavailable) as info:
        box.upload(local, "/inbox", "PAYIN.CUT1")
    assert not info.value.outcome_unknown, "the rename was never sent"
    assert box.sessions_opened == 1, "an upload is not retried"
    inbox = Path(face.config.inbox)
    assert not (inbox / "PAYIN.CUT1").exists() and not (inbox / "processed" / "PAYIN.CUT1").exists()
    box.upload(local, "/inbox", "PAYIN.CUT1")  # starts over with a fresh temp
    assert wait_for((Path(face.config.outbox) / "PAYACK.CUT1").exists)
    assert not (inbox / ".PAYIN.CUT1.part").exists()


def test_slow_reads_time_out_and_the_next_call_reconnects(face, box, faults, tmp_path):
    name = box.list("/outbox", "TXNHIST.D*")[0].name
    faults.set_rules([FaultRule(face="sftp", operation="read", latency_ms=1500)])
    t0 = time.monotonic()
    with pytest.raises(BackendTimeout, match="0.3 s"):
        box.fetch("/outbox", name, tmp_path / "in", timeout=0.3)
    assert time.monotonic() - t0 < 1.2
    assert list((tmp_path / "in").iterdir()) == []
    faults.set_rules([])
    assert box.fetch("/outbox", name, tmp_path / "in").size > 0
    assert box.sessions_opened == 2


def test_slow_banner_is_a_timeout_capped_by_the_call_timeout(face, known_hosts, faults):
    faults.set_rules([FaultRule(face="sftp", operation="connect", latency_ms=1500)])
    dropbox = SftpBatchDropbox(settings_for(face, known_hosts, banner_timeout=0.3))
    t0 = time.monotonic()
    with pytest.raises(BackendTimeout):
        dropbox.list("/outbox")
    assert time.monotonic() - t0 < 1.2
    patient = SftpBatchDropbox(settings_for(face, known_hosts))  # banner_timeout 5 s
    t0 = time.monotonic()
    with pytest.raises(BackendTimeout):
        patient.list("/outbox", timeout=0.3)  # the attempt's budget caps the connection timeouts
    assert time.monotonic() - t0 < 1.2


def test_refused_connection_is_unavailable(face, known_hosts):
    settings = settings_for(face, known_hosts)
    face.stop()
    with pytest.raises(BackendUnavailable):
        SftpBatchDropbox(settings).list("/outbox")


def test_sftp_failure_status_is_a_fault_and_keeps_the_session(face, box, faults, tmp_path):
    name = box.list("/outbox", "STMT.D*")[0].name
    faults.set_rules([FaultRule(face="sftp", operation="open", error_rate=1.0, error="fault", remaining=1)])
    with pytest.raises(BackendFault):
        box.fetch("/outbox", name, tmp_path / "in")
    assert box.fetch("/outbox", name, tmp_path / "in").size > 0
    assert box.sessions_opened == 1


def test_threads_share_one_session_safely(face, box, tmp_path):
    names = [f.name for f in box.list("/outbox")]
    truth = {n: hashlib.sha256((Path(face.config.outbox) / n).read_bytes()).hexdigest() for n in names}
    results: dict[tuple[int, str], str] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for n in names:
                results[(i, n)] = box.fetch("/outbox", n, tmp_path / f"t{i}").sha256
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert all(results[(i, n)] == truth[n] for i in range(4) for n in names)
    assert box.sessions_opened == 1


def test_modified_times_come_from_the_server(face, box):
    listed = {f.name: f for f in box.list("/outbox")}
    for name, f in listed.items():
        mtime = (Path(face.config.outbox) / name).stat().st_mtime
        assert abs(f.modified.timestamp() - mtime) < 1
        assert f.modified.tzinfo == dt.UTC


def test_fake_can_fail_the_next_call_for_tests_upstream(tmp_path):
    fake = FakeBatchDropbox()
    fake.fail_next("list", BackendUnavailable("injected", backend="sftp", operation="list"))
    with pytest.raises(BackendUnavailable, match="injected"):
        fake.list("/outbox")
    assert fake.list("/outbox") == []
    assert fake.calls == [("list", "/outbox"), ("list", "/outbox")]
