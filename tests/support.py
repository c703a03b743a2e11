"""Suite policy shared by every test module: a missing service or tool skips locally, fails in CI.

Import as ``from tests.support import require, require_tool`` (pytest puts the repo root on
``sys.path``, see ``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
MISSING = "missing:"


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI, when a service or tool the test needs is not there."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{MISSING} {what} (CI=true turns this skip into a failure)")
        pytest.skip(f"{MISSING} {what}")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"tool {name!r} not on PATH")
    assert path is not None
    return path
