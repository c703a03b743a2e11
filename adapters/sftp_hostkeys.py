"""Host-key pinning for the SFTP adapter: a known_hosts file or an OpenSSH ``SHA256:`` fingerprint.

Both policies here subclass paramiko's ``RejectPolicy``: a key that is not pinned is refused, never
learnt (no auto-adding or warn-only policy anywhere). They raise :class:`HostKeyMismatch`, which
names the key the server presented and the one we expected, instead of paramiko's bare "not found in
known_hosts". paramiko checks the host key right after the key exchange, before authentication: a
server with the wrong key never sees our password, and nothing is uploaded to it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from pathlib import Path

import paramiko

from adapters.sftp_errors import HostKeyMismatch

__all__ = [
    "PinnedFingerprintPolicy",
    "RejectUnknownHostPolicy",
    "host_key_name",
    "known_host_keys",
    "normalise_fingerprint",
]

_PREFIX = "SHA256:"


def normalise_fingerprint(value: str) -> str:
    """``SHA256:<unpadded base64 of 32 bytes>``, as ``ssh-keygen -lf`` prints it; ValueError otherwise.

    Trailing ``=`` padding is accepted and removed. MD5 fingerprints (``aa:bb:...``) are refused: they
    are too weak to pin a key with.
    """
    text = value.strip()
    if not text.startswith(_PREFIX):
        raise ValueError(f"host key fingerprint must look like 'SHA256:...' (OpenSSH style), got {value!r}")
    body = text[len(_PREFIX):].rstrip("=")
    try:
        digest = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"host key fingerprint {value!r} is not valid base64") from None
    if len(digest) != 32:
        raise ValueError(f"host key fingerprint {value!r} is not a SHA-256 digest ({len(digest)} bytes)")
    return _PREFIX + body


def host_key_name(host: str, port: int) -> str:
    """The name a known_hosts file uses for ``host:port`` (``[host]:port`` unless the port is 22)."""
    return host if port == 22 else f"[{host}]:{port}"


def known_host_keys(path: Path, host: str, port: int) -> list[paramiko.PKey]:
    """The keys ``path`` (a known_hosts file, hashed names allowed) holds for ``host:port``."""
    keys = paramiko.HostKeys(str(path))
    entry = keys.lookup(host_key_name(host, port))
    return list(entry.values()) if entry is not None else []


class PinnedFingerprintPolicy(paramiko.RejectPolicy):
    """Accept exactly one host key: the one whose SHA-256 fingerprint equals the pin."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = normalise_fingerprint(fingerprint)

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        seen = key.fingerprint
        if hmac.compare_digest(seen.encode(), self.fingerprint.encode()):
            return  # accepted for this connection only: nothing is written anywhere
        raise HostKeyMismatch(hostname=hostname, seen_fingerprint=seen, seen_type=key.get_name(),
                              expected=f"{self.fingerprint} (pinned fingerprint)", operation="connect")


class RejectUnknownHostPolicy(paramiko.RejectPolicy):
    """paramiko's ``RejectPolicy`` for a known_hosts pin, with an error that names the key it saw."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyMismatch(hostname=hostname, seen_fingerprint=key.fingerprint, seen_type=key.get_name(),
                              expected=f"a key listed for {hostname} in {self.known_hosts} (none is)",
                              operation="connect")
