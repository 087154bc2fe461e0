"""pytest plugin: with BOOKCHAT_TEST_REQUIRE_ALL=1 (set by .ci/run), a skipped test that needs
PostgreSQL or a browser is a failure, so CI cannot pass by skipping what it was meant to test."""

from __future__ import annotations

import os

import pytest

_REQUIRED_MARKERS = ("postgres", "browser")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if not os.environ.get("BOOKCHAT_TEST_REQUIRE_ALL") or not report.skipped:
        return
    if hasattr(report, "wasxfail"):
        return
    needed = [m for m in _REQUIRED_MARKERS if item.get_closest_marker(m) is not None]
    if needed:
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = (
            f"skipped a {'/'.join(needed)} test although BOOKCHAT_TEST_REQUIRE_ALL is set: {reason}"
        )
