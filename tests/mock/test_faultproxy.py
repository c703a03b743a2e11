"""The fault proxy: a real TCP relay on loopback with Toxiproxy's toxics and HTTP API."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest
import requests

from mock_mainframe.faultproxy import BadRequest, FaultProxy, NotFound, Toxic

pytestmark = pytest.mark.timeout(30)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(10)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@pytest.fixture
def echo():
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def fp():
    proxy = FaultProxy(seed=1, api_listen="127.0.0.1:0").start()
    yield proxy
    proxy.stop()
    assert not [t for t in threading.enumerate() if t.name == "faultproxy"]


@pytest.fixture
def port(fp, echo) -> int:
    return fp.create("echo", upstream=echo).port


def _connect(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def _recv_all(sock: socket.socket) -> bytes:
    buf = b""
    while chunk := sock.recv(65536):
        buf += chunk
    return buf


def _rtt(sock: socket.socket, payload: bytes = b"ping") -> float:
    t0 = time.monotonic()
    sock.sendall(payload)
    assert _recv_exact(sock, len(payload)) == payload
    return time.monotonic() - t0


# -- the relay ----------------------------------------------------------------------------------
def test_plain_relay_both_directions(fp, port):
    payload = bytes(range(256)) * 1000
    with _connect(port) as s:
        sender = threading.Thread(target=s.sendall, args=(payload,))
        sender.start()
        assert _recv_exact(s, len(payload)) == payload
        sender.join()
        s.shutdown(socket.SHUT_WR)  # the half-close travels up, the echo server's close comes back
        assert s.recv(10) == b""
    assert fp.proxies()["echo"]["listen"] == f"127.0.0.1:{port}"


def test_latency_per_direction(fp, port):
    with _connect(port) as s:
        assert _rtt(s) < 0.1
        fp.add_toxic("echo", "latency", latency=200, jitter=50)  # downstream, added while connected
        rtts = [_rtt(s) for _ in range(4)]
        assert all(0.15 <= r <= 0.35 for r in rtts), rtts
        fp.add_toxic("echo", "latency", stream="upstream", latency=100)
        rtts = [_rtt(s) for _ in range(3)]
        assert all(0.25 <= r <= 0.45 for r in rtts), rtts
        fp.remove_toxic("echo", "latency_downstream")
        fp.remove_toxic("echo", "latency_upstream")
        assert _rtt(s) < 0.1


def test_bandwidth_caps_throughput(fp, port):
    fp.add_toxic("echo", "bandwidth", rate=100)  # 100 KB/s
    payload = b"x" * 150_000
    with _connect(port, timeout=10) as s:
        t0 = time.monotonic()
        sender = threading.Thread(target=s.sendall, args=(payload,))
        sender.start()
        assert _recv_exact(s, len(payload)) == payload
        elapsed = time.monotonic() - t0
        sender.join()
    assert 1.5 * 0.7 <= elapsed <= 1.5 * 1.3, elapsed


def test_slow_close_delays_the_close(fp, port):
    def close_time() -> float:
        with _connect(port) as s:
            s.sendall(b"bye")
            assert _recv_exact(s, 3) == b"bye"
            t0 = time.monotonic()
            s.shutdown(socket.SHUT_WR)
            assert s.recv(10) == b""
            return time.monotonic() - t0

    assert close_time() < 0.1
    fp.add_toxic("echo", "slow_close", delay=300)
    assert 0.28 <= close_time() <= 0.5


def test_timeout_stops_data_and_closes(fp, port):
    fp.add_toxic("echo", "timeout", timeout=300)
    with _connect(port) as s:
        t0 = time.monotonic()
        s.sendall(b"anyone?")
        assert s.recv(10) == b""  # nothing came through; closed
        assert 0.28 <= time.monotonic() - t0 <= 0.6


def test_timeout_zero_holds_until_removed(fp, port):
    with _connect(port, timeout=0.4) as s:
        fp.add_toxic("echo", "timeout", timeout=0)
        s.sendall(b"lost")
        with pytest.raises(TimeoutError):
            s.recv(10)  # dropped, and the connection is held open
        fp.remove_toxic("echo", "timeout_downstream")
        s.settimeout(5)
        assert _rtt(s, b"back") < 0.1  # new data flows again


def test_reset_peer(fp, port):
    fp.add_toxic("echo", "reset_peer", timeout=100)
    with _connect(port) as s:
        t0 = time.monotonic()
        s.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            s.recv(10)
        assert time.monotonic() - t0 >= 0.09


def test_limit_data(fp, port):
    fp.add_toxic("echo", "limit_data", bytes=100)
    with _connect(port) as s:
        s.sendall(b"y" * 1000)
        assert _recv_all(s) == b"y" * 100


def test_slicer_delivers_everything_in_pieces(fp, port):
    fp.add_toxic("echo", "slicer", average_size=10, size_variation=5, delay=2000)
    payload = bytes(range(200)) * 2
    with _connect(port) as s:
        s.sendall(payload)
        chunks = []
        got = 0
        while got < len(payload):
            chunk = s.recv(65536)
            assert chunk
            chunks.append(chunk)
            got += len(chunk)
    assert b"".join(chunks) == payload
    assert len(chunks) >= 8, [len(c) for c in chunks]


def _limited_pattern(fp: FaultProxy, port: int, n: int = 20) -> list[bool]:
    """For n connections: did the limit_data(1 byte) toxic apply?"""
    out = []
    for _ in range(n):
        with _connect(port) as s:
            s.sendall(b"hello")
            data = _recv_exact(s, 5)
            out.append(len(data) == 1)
    return out


def test_toxicity_zero_never_one_always_and_seeded(fp, port, echo):
    fp.add_toxic("echo", "limit_data", bytes=1, toxicity=0.0)
    assert _limited_pattern(fp, port, 5) == [False] * 5
    fp.update_toxic("echo", "limit_data_downstream", toxicity=1.0)
    assert _limited_pattern(fp, port, 5) == [True] * 5
    fp.update_toxic("echo", "limit_data_downstream", toxicity=0.5)
    first = _limited_pattern(fp, port, 20)
    assert 3 <= sum(first) <= 17
    with FaultProxy(seed=1) as other:  # same seed, same sequence of connections -> same draws
        p = other.create("echo", upstream=echo)
        other.add_toxic("echo", "limit_data", bytes=1, toxicity=0.0)
        _limited_pattern(other, p.port, 5)
        other.update_toxic("echo", "limit_data_downstream", toxicity=1.0)
        _limited_pattern(other, p.port, 5)
        other.update_toxic("echo", "limit_data_downstream", toxicity=0.5)
        assert _limited_pattern(other, p.port, 20) == first


def test_disable_refuses_and_drops_enable_restores(fp, port):
    with _connect(port) as live:
        assert _rtt(live) < 0.1
        fp.disable("echo")
        try:
            assert live.recv(10) == b""
        except ConnectionResetError:
            pass
        with pytest.raises(ConnectionRefusedError):
            _connect(port)
    proxy = fp.enable("echo")
    assert proxy.port == port
    with _connect(port) as s:
        assert _rtt(s) < 0.1


def test_toxic_validation():
    with pytest.raises(BadRequest, match="type"):
        Toxic.create("nonsense")
    with pytest.raises(BadRequest, match="stream"):
        Toxic.create("latency", stream="sideways")
    with pytest.raises(BadRequest, match="toxicity"):
        Toxic.create("latency", toxicity=1.5)
    with pytest.raises(BadRequest, match="'rate'"):
        Toxic.create("bandwidth", attributes={"rate": -1})
    with pytest.raises(BadRequest, match="latncy"):
        Toxic.create("latency", attributes={"latncy": 5})
    with pytest.raises(BadRequest, match="average_size"):
        Toxic.create("slicer", attributes={"average_size": 0})
    assert Toxic.create("timeout").to_json() == {
        "name": "timeout_downstream", "type": "timeout", "stream": "downstream", "toxicity": 1.0,
        "attributes": {"timeout": 0}}


def test_python_api_errors(fp, echo):
    fp.create("a", upstream=echo)
    with pytest.raises(NotFound):
        fp.get("nope")
    with pytest.raises(NotFound):
        fp.remove_toxic("a", "nope")
    with pytest.raises(BadRequest, match="upstream"):
        fp.create("b", upstream="no-port")


# -- the HTTP API -------------------------------------------------------------------------------
def test_http_api(fp, echo):
    api = fp.api_url
    assert requests.get(f"{api}/version", timeout=5).json()["version"].startswith("2.")

    r = requests.post(f"{api}/proxies", json={"name": "core", "listen": "127.0.0.1:0", "upstream": echo}, timeout=5)
    assert r.status_code == 201, r.text
    proxy = r.json()
    assert proxy["enabled"] is True and proxy["toxics"] == [] and proxy["upstream"] == echo
    port = int(proxy["listen"].rsplit(":", 1)[1])
    assert port > 0
    with _connect(port) as s:
        assert _rtt(s) < 0.1

    r = requests.post(f"{api}/proxies", json={"name": "core", "upstream": echo}, timeout=5)
    assert r.status_code == 409 and "already exists" in r.json()["error"]
    r = requests.post(f"{api}/proxies", json={"name": "x", "upstream": "nowhere"}, timeout=5)
    assert r.status_code == 400 and "upstream" in r.json()["error"]
    r = requests.post(f"{api}/proxies", json={"upstream": echo}, timeout=5)
    assert r.status_code == 400 and "name" in r.json()["error"]
    r = requests.post(f"{api}/proxies", data="{not json", timeout=5)
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    assert list(requests.get(f"{api}/proxies", timeout=5).json()) == ["core"]
    assert requests.get(f"{api}/proxies/core", timeout=5).json()["name"] == "core"
    assert requests.get(f"{api}/proxies/ghost", timeout=5).status_code == 404

    toxic = {"name": "slow", "type": "latency", "stream": "downstream", "toxicity": 1.0,
             "attributes": {"latency": 150, "jitter": 0}}
    r = requests.post(f"{api}/proxies/core/toxics", json=toxic, timeout=5)
    assert r.status_code == 200 and r.json() == toxic
    assert requests.post(f"{api}/proxies/core/toxics", json=toxic, timeout=5).status_code == 409
    r = requests.post(f"{api}/proxies/core/toxics", json={"type": "latency", "toxicity": 3}, timeout=5)
    assert r.status_code == 400 and "toxicity" in r.json()["error"]
    r = requests.post(f"{api}/proxies/core/toxics", json={"type": "bogus"}, timeout=5)
    assert r.status_code == 400 and "type" in r.json()["error"]
    r = requests.post(f"{api}/proxies/core/toxics", json={"type": "latency", "attributes": {"latency": "x"}},
                      timeout=5)
    assert r.status_code == 400 and "'latency'" in r.json()["error"]
    assert requests.post(f"{api}/proxies/ghost/toxics", json=toxic, timeout=5).status_code == 404
    assert requests.get(f"{api}/proxies/core/toxics", timeout=5).json() == [toxic]
    assert requests.get(f"{api}/proxies/core/toxics/slow", timeout=5).json() == toxic
    assert requests.get(f"{api}/proxies/core/toxics/ghost", timeout=5).status_code == 404
    with _connect(port) as s:
        assert 0.14 <= _rtt(s) <= 0.3
    r = requests.post(f"{api}/proxies/core/toxics/slow", json={"attributes": {"latency": 10}}, timeout=5)
    assert r.status_code == 200 and r.json()["attributes"] == {"latency": 10, "jitter": 0}
    assert requests.delete(f"{api}/proxies/core/toxics/slow", timeout=5).status_code == 204
    assert requests.delete(f"{api}/proxies/core/toxics/slow", timeout=5).status_code == 404

    r = requests.post(f"{api}/proxies/core", json={"enabled": False}, timeout=5)
    assert r.status_code == 200 and r.json()["enabled"] is False
    with pytest.raises(ConnectionRefusedError):
        _connect(port)
    r = requests.post(f"{api}/proxies/core", json={"enabled": "yes"}, timeout=5)
    assert r.status_code == 400 and "enabled" in r.json()["error"]
    requests.post(f"{api}/proxies/core/toxics", json={"type": "timeout"}, timeout=5).raise_for_status()
    assert requests.post(f"{api}/reset", timeout=5).status_code == 204
    after = requests.get(f"{api}/proxies/core", timeout=5).json()
    assert after["enabled"] is True and after["toxics"] == [] and after["listen"] == f"127.0.0.1:{port}"
    with _connect(port) as s:
        assert _rtt(s) < 0.1

    assert requests.delete(f"{api}/proxies/core", timeout=5).status_code == 204
    assert requests.delete(f"{api}/proxies/core", timeout=5).status_code == 404
    assert requests.get(f"{api}/proxies", timeout=5).json() == {}
