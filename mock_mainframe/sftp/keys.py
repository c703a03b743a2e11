"""SSH keys of the SFTP face: a persistent Ed25519 host key, a demo client key, authorized keys.

Paramiko cannot generate Ed25519 keys, so ``cryptography`` (which paramiko depends on) does,
writing the standard OpenSSH private-key format (mode 0600) and a ``.pub`` beside it. A key
file that exists is never regenerated: the host key, and so the fingerprint that clients pin,
survives restarts. Two processes racing to create the same key agree on one (hard link, which
fails if the name exists).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

log = logging.getLogger(__name__)


def public_line(key: paramiko.PKey, comment: str = "") -> str:
    """``ssh-ed25519 AAAA... comment``, as in a .pub or authorized_keys file."""
    return f"{key.get_name()} {key.get_base64()}" + (f" {comment}" if comment else "")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH style: ``SHA256:`` + unpadded base64 of the SHA-256 of the public key blob."""
    return key.fingerprint


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` with ``data`` unless it exists; True if this call created it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def ensure_ed25519_key(path: Path, comment: str) -> paramiko.Ed25519Key:
    """Load the private key at ``path``, generating it (and ``path.pub``) first if missing."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        private = ed25519.Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        if _write_new(path, pem, 0o600):
            log.info("generated Ed25519 key %s", path)
    key = paramiko.Ed25519Key(filename=str(path))
    pub = path.with_name(path.name + ".pub")
    if not pub.exists():
        _write_new(pub, (public_line(key, comment) + "\n").encode(), 0o644)
    return key


def parse_public_key(line: str) -> paramiko.PKey | None:
    """The key on an authorized_keys / .pub line (options before the key type are skipped)."""
    parts = line.split()
    for i, token in enumerate(parts[:-1]):
        if token.startswith(("ssh-", "ecdsa-")):
            try:
                return paramiko.PKey.from_type_string(token, base64.b64decode(parts[i + 1]))
            except Exception:  # noqa: BLE001 - an unreadable line is skipped, not fatal
                log.warning("skipping unreadable public key line: %.40s...", line)
                return None
    return None


def read_public_keys(path: Path) -> list[paramiko.PKey]:
    """Every key in an authorized_keys-style file; a missing file holds none."""
    try:
        text = Path(path).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return []
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key = parse_public_key(line)
            if key is not None:
                keys.append(key)
    return keys


__all__ = ["ensure_ed25519_key", "fingerprint", "parse_public_key", "public_line",
           "read_public_keys"]
