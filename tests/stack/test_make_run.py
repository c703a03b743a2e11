"""`make run` as a person uses it: the printed curl commands work exactly as printed; Ctrl-C stops all."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support import require_tool

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_demo(port: int, data: Path) -> tuple[subprocess.Popen, list[str]]:
    """``python -m api.demo`` (what ``make run`` runs) and the lines it printed up to its banner's end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.demo", "--port", str(port), "--data-dir", str(data), "--",
         "--customers", "30", "--soap-port", "0", "--sftp-port", "0", "--admin-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"demo exited early: {proc.stderr.read()}"
        lines.append(line)
        if line.startswith("Ctrl-C stops"):
            break
    return proc, lines


def test_demo_prints_commands_that_work_as_printed_and_ctrl_c_stops_everything(tmp_path):
    require_tool("curl")
    port = _free_port()
    data = tmp_path / "mock"
    proc, lines = _start_demo(port, data)
    try:
        banner = "".join(lines)
        assert f"http://127.0.0.1:{port}" in banner
        commands = [ln.strip() for ln in lines if ln.strip().startswith("curl ")]
        assert len(commands) == 3
        for _ in range(50):  # uvicorn binds just after the banner
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        outputs = [subprocess.run(["bash", "-c", c], capture_output=True, text=True, timeout=20) for c in commands]
        accounts, balance, history = (json.loads(o.stdout) for o in outputs)
        assert accounts["items"] and accounts["items"][0]["customer_id"] == "C0000001"
        assert isinstance(balance["available"]["amount"], str) and balance["stale"] is False
        assert len(history["items"]) == 3 and history["next_cursor"]
        assert (data / "endpoints.json").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(30)
    assert rc == 0
    assert not (data / "endpoints.json").exists(), "the mock child was not stopped cleanly"


def test_sigterm_stops_the_mock_too(tmp_path):
    port = _free_port()
    data = tmp_path / "mock"
    proc, _ = _start_demo(port, data)
    try:
        assert (data / "endpoints.json").exists()
        for _ in range(50):  # SIGTERM while uvicorn serves: it shuts down, then hands the signal back
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    assert rc == 128 + signal.SIGTERM
    assert not (data / "endpoints.json").exists(), "SIGTERM left the mock child running"
