"""No test skips silently: a skip becomes a failure of that test, unless its reason is allowed.

The real parts the tests need (root, QEMU/libvirt, dnsmasq/iptables/nft, namespaces, PostgreSQL,
the openstack CLI and SDKs, Chromium) are installed and started by the project's scripts
(`make test` runs `make install`), so a test that cannot run has found a broken machine or a
broken script: it must say so (tests/harness/requires.py fails it, naming the script). This guard
catches every skip that still gets through (a new `pytest.skip`, `skipif` or `importorskip`):
a skipped test is reported as FAILED with the skip's reason and where it was raised; a module
whose collection skipped is listed at the end of the run, which then fails.

A skip that is right by design goes on ALLOWED_SKIPS below, with a comment that says why.
Expected failures (xfail) are not skips and are left alone.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

# Reasons (the text after "Skipped: ") that may skip, each with why. Empty: nothing may skip.
ALLOWED_SKIPS: frozenset[str] = frozenset()


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> tuple[str, str] | None:
    """(where, reason) of a skip that is not allowed, or None."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    if isinstance(report.longrepr, tuple):
        path, line, message = report.longrepr
        where = f"{path}:{line if line is not None else '?'}"  # pytest's line: 1-based here
    else:
        where, message = report.nodeid, str(report.longrepr)
    reason = message.removeprefix("Skipped: ")
    return None if reason in ALLOWED_SKIPS else (where, reason)


def _as_failure(report: pytest.TestReport | pytest.CollectReport) -> None:
    found = _skip_reason(report)
    if found is not None:
        where, reason = found
        report.outcome = "failed"
        report.longrepr = (f"skipped at {where}: {reason}\nA skip fails the run (tests/skip_guard.py):"
                           " install the missing part with its script, or fix the test.")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                        pytest.TestReport]:
    report = yield
    _as_failure(report)
    return report


# A module whose collection skipped: recorded, not failed on the spot (a failed collection
# would stop the whole session before any test ran); the run fails at its end.
_SKIPPED_COLLECTIONS: list[str] = []


def pytest_collectreport(report: pytest.CollectReport) -> None:
    found = _skip_reason(report)
    if found is not None:
        _SKIPPED_COLLECTIONS.append(f"{report.nodeid}: skipped at {found[0]}: {found[1]}")


def fail_on_skipped_collections(session: pytest.Session) -> None:
    """From pytest_sessionfinish: a run where a module's collection skipped fails."""
    if _SKIPPED_COLLECTIONS and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SKIPPED_COLLECTIONS:
        terminalreporter.section("skipped collections fail the run (tests/skip_guard.py)", red=True)
        for line in _SKIPPED_COLLECTIONS:
            terminalreporter.write_line(line)
