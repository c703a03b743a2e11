"""Suite-wide test policy.

With ``CI=true`` a test skipped because a service or tool is missing is a *failure*: CI must
never go green while a face or a backend went untested. Skip through
:func:`tests.support.require` (or any skip whose reason starts with ``missing:``); the hook
below turns such skips into failures in CI, whoever raised them.
"""

from __future__ import annotations

import pytest

from tests.support import IN_CI, MISSING, require, require_tool

__all__ = ["require", "require_tool"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and call.excinfo is not None:
        reason = str(call.excinfo.value)
        if MISSING in reason or "could not import" in reason.lower():
            report.outcome = "failed"
            report.longrepr = f"skip turned into failure under CI=true: {reason}"
