"""The SFTP face through paramiko's client: auth, host-key pinning, the file-system rules,
injected latency / failures / resets, outages, and several clients at once."""

from __future__ import annotations

import io
import os
import socket
import struct
import threading
import time
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mock_mainframe.batch.eod import EodWriter
from mock_mainframe.config import MockConfig
from mock_mainframe.faults import FaultRule
from mock_mainframe.sftp.server import SftpFace

DROPPED = (paramiko.SSHException, EOFError, OSError)


@pytest.fixture
def config(tmp_path) -> MockConfig:
    return MockConfig(data_dir=tmp_path / "mock", sftp_port=0)


@pytest.fixture
def face(config, ledger, engine, faults):
    EodWriter(config, ledger, faults).write_recent(1)
    f = SftpFace(config, ledger, engine, faults)
    f.start()
    yield f
    f.stop()


def connect(face: SftpFace, *, password: str | None = None, pkey: paramiko.PKey | None = None,
            known_hosts: str | None = None, timeout: float = 10) -> paramiko.SSHClient:
    """A client that only trusts the pinned host key (RejectPolicy), over a TCP_NODELAY socket."""
    cfg = face.config
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    line = face.known_hosts_line() if known_hosts is None else known_hosts
    if line:
        entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
        for name in entry.hostnames:
            client.get_host_keys().add(name, entry.key.get_name(), entry.key)
    sock = socket.create_connection((cfg.host, face.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        client.connect(cfg.host, face.port, username=cfg.sftp_user,
                       password=cfg.sftp_password if password is None and pkey is None else password,
                       pkey=pkey, sock=sock, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, allow_agent=False, look_for_keys=False)
    except BaseException:
        client.close()
        sock.close()
        raise
    return client


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def new_key() -> tuple[paramiko.PKey, str]:
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    key = paramiko.Ed25519Key(file_obj=io.StringIO(pem))
    return key, f"{key.get_name()} {key.get_base64()} test@example"


# -- auth and host keys ----------------------------------------------------------------------------
def test_password_auth_with_the_pinned_host_key(face):
    with connect(face) as client:
        sftp = client.open_sftp()
        assert sorted(sftp.listdir("/")) == ["inbox", "outbox"]
        assert any(n.startswith("TXNHIST.D") for n in sftp.listdir("/outbox"))
        assert sftp.normalize(".") == "/"
        assert client.get_transport().remote_version.startswith("SSH-2.0-")


def test_wrong_password_unknown_host_and_wrong_host_key_are_refused(face):
    with pytest.raises(paramiko.AuthenticationException):
        connect(face, password="not-the-password")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(face, known_hosts="")
    other, _ = new_key()
    wrong = f"[{face.config.host}]:{face.port} {other.get_name()} {other.get_base64()}"
    with pytest.raises(paramiko.BadHostKeyException):
        connect(face, known_hosts=wrong)


def test_public_key_auth_demo_key_and_authorized_keys_file(face, config):
    demo = paramiko.Ed25519Key(filename=str(config.client_key_path))
    with connect(face, pkey=demo) as client:
        assert client.open_sftp().listdir("/inbox") is not None
    key, line = new_key()
    with pytest.raises(paramiko.AuthenticationException):
        connect(face, pkey=key)
    (config.keys_dir / "authorized_keys").write_text(f"# team keys\n{line}\n")
    with connect(face, pkey=key) as client:  # re-read at each attempt: no restart needed
        assert "outbox" in client.open_sftp().listdir("/")


def test_host_key_persists_across_restarts(face, config, ledger, engine, faults):
    fingerprint, line = face.host_key_fingerprint, face.known_hosts_line()
    assert fingerprint.startswith("SHA256:") and len(fingerprint) == 7 + 43 and "=" not in fingerprint
    assert line.startswith(f"[127.0.0.1]:{face.port} ssh-ed25519 AAAA")
    assert config.host_key_path.stat().st_mode & 0o777 == 0o600
    pem = config.host_key_path.read_bytes()
    face.stop()
    again = SftpFace(config, ledger, engine, faults).start()
    try:
        assert again.host_key_fingerprint == fingerprint
        assert again.known_hosts_line().split()[1:] == line.split()[1:]
        assert config.host_key_path.read_bytes() == pem
        with connect(again) as client:
            client.open_sftp().listdir("/")
    finally:
        again.stop()


# -- the file system -----------------------------------------------------------------------------
def test_paths_outside_the_root_are_refused(face, config, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the root")
    os.symlink(tmp_path, config.outbox / "escape")
    with connect(face) as client:
        sftp = client.open_sftp()
        for path in ("../secret.txt", "/../../secret.txt", "/inbox/../../secret.txt",
                     "/outbox/escape/secret.txt"):
            with pytest.raises(PermissionError):
                sftp.open(path).read()
        with pytest.raises(PermissionError):
            sftp.listdir("/..")
        assert sftp.normalize("/inbox/../..") == "/"


def test_outbox_is_read_only_and_hides_files_being_written(face, config):
    name = sorted(p.name for p in config.outbox.iterdir())[0]
    (config.outbox / ".TXNHIST.D991231.tmp").write_bytes(b"half")
    with connect(face) as client:
        sftp = client.open_sftp()
        for attempt in (lambda: sftp.open("/outbox/NEW", "w"), lambda: sftp.remove(f"/outbox/{name}"),
                        lambda: sftp.rename(f"/outbox/{name}", "/outbox/X"),
                        lambda: sftp.rename(f"/outbox/{name}", "/inbox/X"),
                        lambda: sftp.open("/NEW", "w"), lambda: sftp.mkdir("/inbox/sub"),
                        lambda: sftp.open("/inbox/processed/X", "w")):
            with pytest.raises(PermissionError):
                attempt()
        assert ".TXNHIST.D991231.tmp" not in sftp.listdir("/outbox")
        with pytest.raises(FileNotFoundError):
            sftp.stat("/outbox/.TXNHIST.D991231.tmp")
        assert sftp.stat(f"/outbox/{name}").st_size == (config.outbox / name).stat().st_size


def test_upload_rename_hands_the_file_to_the_inbox(face, config):
    with connect(face) as client:
        sftp = client.open_sftp()
        sftp.putfo(io.BytesIO(b"NOT A PAYMENT FILE"), "/inbox/PAYIN.JUNK.part")
        sftp.putfo(io.BytesIO(b"x"), "/inbox/PAYIN.OTHER.part")
        time.sleep(1.2)
        assert not (config.outbox / "PAYACK.JUNK").exists(), "a .part upload is never taken"
        sftp.rename("/inbox/PAYIN.JUNK.part", "/inbox/PAYIN.JUNK")
        assert wait_for((config.outbox / "PAYACK.JUNK").exists)
        ack = (config.outbox / "PAYACK.JUNK").read_bytes()
        assert ack[52:57].decode("cp037") == "RF005", "rejected whole: not a multiple of 120"
        assert "PAYACK.JUNK" in sftp.listdir("/outbox")
        assert "PAYIN.JUNK" in sftp.listdir("/inbox/rejected")
        # a plain rename never overwrites; the posix-rename extension does
        sftp.putfo(io.BytesIO(b"y"), "/inbox/B.part")
        with pytest.raises(OSError):
            sftp.rename("/inbox/PAYIN.OTHER.part", "/inbox/B.part")
        sftp.posix_rename("/inbox/PAYIN.OTHER.part", "/inbox/B.part")
        assert (config.inbox / "B.part").read_bytes() == b"x"


def test_an_upload_cut_off_by_a_lost_connection_is_parked(face, config):
    client = connect(face)
    f = client.open_sftp().open("/inbox/PAYIN.CUT", "w")
    f.write(b"H" * 120)
    f.flush()
    # drop the connection with a TCP RST and no SSH_FXP_CLOSE: the server sees the session
    # end while the upload's handle is still open
    client.get_transport().sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    assert wait_for((config.inbox / ".PAYIN.CUT.aborted").exists)
    time.sleep(1.2)
    assert not (config.outbox / "PAYACK.CUT").exists()
    assert not (config.inbox / "PAYIN.CUT").exists()


# -- faults and outages --------------------------------------------------------------------------
def test_injected_latency_and_failure_status(face, faults):
    with connect(face) as client:
        sftp = client.open_sftp()
        faults.add_rule(FaultRule(face="sftp", operation="list", latency_ms=300))
        t0 = time.monotonic()
        sftp.listdir("/outbox")
        assert time.monotonic() - t0 >= 0.3
        faults.clear()
        name = next(n for n in sftp.listdir("/outbox") if n.startswith("TXNHIST."))
        faults.add_rule(FaultRule(face="sftp", operation="open", error_rate=1.0, error="fault",
                                  remaining=1))
        with pytest.raises(OSError, match="Failure"):
            sftp.open(f"/outbox/{name}")
        assert sftp.open(f"/outbox/{name}").read(1) == "H".encode("cp037")  # the next one works
        assert faults.snapshot()["counts"].get("sftp.open.fault") == 1


def test_injected_reset_drops_the_connection(face, faults):
    client = connect(face)
    sftp = client.open_sftp()
    name = sftp.listdir("/outbox")[0]
    faults.add_rule(FaultRule(face="sftp", operation="read", error_rate=1.0, error="reset",
                              remaining=1))
    with pytest.raises(DROPPED):
        sftp.open(f"/outbox/{name}").read()
    assert wait_for(lambda: not client.get_transport().is_active(), 5)
    client.close()
    with connect(face) as again:  # the face itself is fine
        assert name in again.open_sftp().listdir("/outbox")


def test_injected_reset_at_connect(face, faults):
    faults.add_rule(FaultRule(face="sftp", operation="connect", error_rate=1.0, error="reset",
                              remaining=1))
    with pytest.raises(DROPPED):
        connect(face)
    with connect(face) as client:
        client.open_sftp().listdir("/")


def test_outage_closes_listener_and_sessions_then_reopens_on_the_same_port(face, faults):
    port = face.port
    client = connect(face)
    sftp = client.open_sftp()
    sftp.listdir("/")
    faults.outage("sftp", 30)
    with pytest.raises(DROPPED):
        sftp.listdir("/outbox")
    client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((face.config.host, port), timeout=2).close()
    faults.end_outage("sftp")
    assert face.port == port
    with connect(face) as again:
        assert "outbox" in again.open_sftp().listdir("/")


# -- concurrency and shutdown ----------------------------------------------------------------------
def test_several_clients_download_at_once(face, config):
    big = os.urandom(3 * 1024 * 1024)
    (config.outbox / "BIG.BIN").write_bytes(big)
    errors: list[BaseException] = []
    results: dict[int, bytes] = {}

    def one(i: int) -> None:
        try:
            with connect(face) as client:
                buf = io.BytesIO()
                client.open_sftp().getfo("/outbox/BIG.BIN", buf)
                results[i] = buf.getvalue()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 6 and all(v == big for v in results.values())


@pytest.fixture
def before_face_threads() -> set:
    return set(threading.enumerate())


def test_stop_is_clean(before_face_threads, face, config):
    client = connect(face)
    client.open_sftp().listdir("/")
    port = face.port
    # only this face's threads: other tests of the session may run mock mainframes of their own
    mine = [t for t in threading.enumerate() if t.name.startswith(("sftp-", "payment-inbox"))
            and t not in before_face_threads]
    assert mine, "the face started no threads?"
    face.stop()
    assert face.session_count == 0
    assert wait_for(lambda: not client.get_transport().is_active(), 5)
    client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((config.host, port), timeout=2).close()
    assert wait_for(lambda: not [t for t in mine if t.is_alive()], 5)


def test_data_dir_layout(face, config):
    assert Path(config.client_key_path).exists()
    assert Path(str(config.client_key_path) + ".pub").read_text().startswith("ssh-ed25519 AAAA")
    assert (config.inbox / "processed").is_dir() and (config.inbox / "rejected").is_dir()
