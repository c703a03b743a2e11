"""File conventions of the batch face: complete-file names and atomic publication.

A reader must never see half a file. The mock writes every outbox file under a temporary name
(``.<name>.tmp``, hidden from SFTP listings) and renames it when complete, and it only reads
inbox files whose names say they are complete (see :func:`is_complete_name`).
"""

from __future__ import annotations

import os
from pathlib import Path

TEMP_SUFFIXES = (".tmp", ".part", ".filepart")


def is_complete_name(name: str) -> bool:
    """False for names an uploader uses while a transfer is still running."""
    return bool(name) and not name.startswith(".") and not name.lower().endswith(TEMP_SUFFIXES)


def atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``.<name>.tmp`` beside ``path``, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def unique_path(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``... whichever does not exist yet."""
    if not path.exists():
        return path
    n = 1
    while path.with_name(f"{path.name}.{n}").exists():
        n += 1
    return path.with_name(f"{path.name}.{n}")
