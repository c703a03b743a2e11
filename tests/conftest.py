"""Suite-wide test policy.

With ``CI=true`` a test skipped because a service or tool is missing is a *failure*: CI must
never go green while a face or a backend went untested. Use :func:`require` (or
``pytest.skip`` with a message starting ``missing:``) for such skips.
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and call.excinfo is not None:
        reason = str(call.excinfo.value)
        if MISSING in reason or "could not import" in reason.lower():
            report.outcome = "failed"
            report.longrepr = f"skip turned into failure under CI=true: {reason}"
