"""SFTP download throughput: ``SftpBatchDropbox.fetch`` against OpenSSH's ``sftp -b``, same file, same server.

Starts its own mock SFTP face (paramiko's server side) in a temp dir, writes a ~64 MB file of random
bytes to its outbox, then downloads it alternately through the adapter and through OpenSSH's client,
best of 3 each. Both pay for a fresh connection per download (a new adapter; a new ``sftp`` process), as
a batch job would. Both copies are checked against the file's SHA-256.

The face runs in a child process: in this process it would share the adapter's GIL, and the adapter
measured 130-150 MB/s instead of 215-237 MB/s for reasons that have nothing to do with it (OpenSSH's
client, a separate process, never competed). The server is Python either way, so it bounds both numbers.
paramiko's client is known to be slower than OpenSSH's, so the target is to report, not to win.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adapters.sftp import SftpBatchDropbox, SftpSettings
from mock_mainframe.config import MockConfig
from mock_mainframe.sftp.server import SftpFace

SIZE_MB = 64
REPEATS = 3
NAME = "BENCH.D000000.BIN"


def _write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 20))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _serve(data_dir: str, conn) -> None:
    """Child process: run the mock SFTP face until the parent says stop."""
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # resets at shutdown are expected
    cfg = MockConfig(data_dir=Path(data_dir), sftp_port=0)
    # no ledger: nothing is uploaded, so the face's payment inbox never posts
    face = SftpFace(cfg, None, None).start()
    try:
        conn.send((face.port, face.known_hosts_line()))
        conn.recv()
    finally:
        face.stop()


@contextlib.contextmanager
def sftp_face_process(work: Path):
    """The mock's SFTP face in a spawned child (its own GIL, as a real server), data under ``work/mock``;
    yields ``(MockConfig, port, known_hosts file)`` and stops the child on exit."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(str(work / "mock"), child), daemon=True)
    server.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the mock SFTP face did not start")
        port, known_hosts_line = parent.recv()
        known_hosts = work / "known_hosts"
        known_hosts.write_text(known_hosts_line + "\n")
        yield MockConfig(data_dir=work / "mock", sftp_port=port), port, known_hosts
    finally:
        parent.send("stop")
        server.join(15)
        if server.is_alive():
            server.kill()


def _adapter_once(settings: SftpSettings, dest: Path, expected: str) -> float:
    t0 = time.perf_counter()
    with SftpBatchDropbox(settings) as dropbox:
        got = dropbox.fetch("/outbox", NAME, dest)
    elapsed = time.perf_counter() - t0
    if got.sha256 != expected:
        raise RuntimeError("adapter download does not match the source file")
    got.path.unlink()
    return elapsed


class _Face:
    """What the OpenSSH run needs to know about the face in the child process."""

    def __init__(self, config: MockConfig, port: int) -> None:
        self.config = config
        self.port = port


def _openssh_once(sftp: str, face: _Face, known_hosts: Path, work: Path, expected: str) -> float:
    cfg = face.config
    target = work / "openssh.bin"
    batch = work / "batch.txt"
    batch.write_text(f"get /outbox/{NAME} {target}\n")
    cmd = [sftp, "-F", "/dev/null", "-b", str(batch), "-P", str(face.port),
           "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
           "-i", str(cfg.client_key_path), f"{cfg.sftp_user}@{cfg.host}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"sftp failed ({proc.returncode}): {proc.stderr.strip()}")
    if _sha256(target) != expected:
        raise RuntimeError("OpenSSH download does not match the source file")
    target.unlink()
    return elapsed


def run(size_mb: int = SIZE_MB, repeats: int = REPEATS) -> list[dict]:
    size = size_mb * 1024 * 1024
    mb = size / 1e6
    sftp = shutil.which("sftp")
    with tempfile.TemporaryDirectory(prefix="bench-sftp-") as tmp:
        work = Path(tmp)
        with sftp_face_process(work) as (cfg, port, known_hosts):
            face = _Face(cfg, port)
            expected = _write_random(Path(cfg.outbox) / NAME, size)
            settings = SftpSettings(host=cfg.host, port=port, username=cfg.sftp_user,
                                    private_key_path=Path(cfg.client_key_path), known_hosts_path=known_hosts,
                                    operation_timeout=60, download_dir=work / "downloads")
            ours: list[float] = []
            theirs: list[float] = []
            for _ in range(repeats):  # alternate, so drift on a busy machine hits both alike
                ours.append(_adapter_once(settings, work / "downloads", expected))
                if sftp is not None:
                    theirs.append(_openssh_once(sftp, face, known_hosts, work, expected))
    value = mb / min(ours)
    baseline_value = mb / min(theirs) if theirs else None
    return [{
        "name": "sftp_download_mb_s",
        "value": round(value, 1),
        "unit": "MB/s",
        "baseline": "OpenSSH sftp client, same file" + ("" if sftp else " (sftp not installed)"),
        "baseline_value": round(baseline_value, 1) if baseline_value else None,
        "ratio": round(value / baseline_value, 3) if baseline_value else None,
        "target": "report (paramiko known slower)",
    }]


if __name__ == "__main__":
    for row in run():
        print(row)
    sys.exit(0)
