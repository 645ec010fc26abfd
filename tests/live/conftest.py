"""The live suite: a private real Asterisk, SIPp phones and the real arimonitor tree.

Runs only when ARIMONITOR_TEST_ASTERISK names an instance.sh-compatible launcher and sipp is
installed; otherwise every live test skips with the same one-line reason. One Asterisk and one
arimonitor tree per module; each module's tests leave them clean for the next."""

from __future__ import annotations

import inspect
import os

import pytest

from tests.live.asterisk import LAUNCHER_ENV, Asterisk, missing
from tests.live.monitor import monitor_of
from tests.live.phones import Phones
from tests.support import Processes

MISSING = missing()


@pytest.fixture(scope="module", autouse=True)
def live_requirements():
    if MISSING:
        pytest.skip(MISSING)


_SKIP_LINE = inspect.getsourcelines(live_requirements)[1]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Every live test skipped for the same reason reports it from here, so `-ra` folds them
    into the one line that says what is missing."""
    outcome = yield
    report = outcome.get_result()
    if MISSING and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (__file__, _SKIP_LINE, f"Skipped: {MISSING}")


@pytest.fixture(scope="module")
def asterisk(tmp_path_factory, live_requirements):
    instance = Asterisk(os.environ[LAUNCHER_ENV], tmp_path_factory.mktemp("asterisk"))
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def module_processes():
    tracker = Processes()
    try:
        yield tracker
    finally:
        tracker.kill_all()


@pytest.fixture(scope="module")
def phones(asterisk, module_processes, tmp_path_factory):
    return Phones(asterisk, module_processes, tmp_path_factory.mktemp("sipp"))


@pytest.fixture(scope="module")
def monitor(asterisk, tmp_path_factory):
    with monitor_of(asterisk, tmp_path_factory.mktemp("arimonitor")) as mon:
        yield mon
