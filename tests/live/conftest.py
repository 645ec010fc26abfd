"""The live suite: a private real Asterisk, SIPp phones and the real arimonitor tree.

Runs only when ARIMONITOR_TEST_ASTERISK names an instance.sh-compatible launcher, sipp is
installed and this CPU can run that Asterisk (a build for AVX-512 dies with SIGILL on a machine
without it: one throw-away start per session finds out); otherwise every live test skips with
the same one-line reason. Any other failure to start is a failure, never a skip. One Asterisk
(two for a module that watches two servers) and one arimonitor tree per module; each module's
tests leave them clean for the next."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path

import pytest

from tests.live.asterisk import LAUNCHER_ENV, Asterisk, cannot_run_here, missing
from tests.live.monitor import monitor_of
from tests.live.phones import Phones
from tests.support import Processes

MISSING = missing()
_CPU: list[str | None] = []  # the one probe start's answer (cannot_run_here), once per session


def _why_not() -> str | None:
    """What stops the live suite here: something missing, or an Asterisk this CPU cannot run
    (found by starting one throw-away instance, once per session)."""
    if MISSING:
        return MISSING
    if not _CPU:
        with tempfile.TemporaryDirectory(prefix="asterisk-probe-") as folder:
            _CPU.append(cannot_run_here(os.environ[LAUNCHER_ENV], Path(folder)))
    return _CPU[0]


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
    why = MISSING or (_CPU[0] if _CPU else None)
    if why and report.skipped and isinstance(report.longrepr, tuple) and why in report.longrepr[2]:
        report.longrepr = (__file__, _SKIP_LINE, f"Skipped: {why}")


def _started_asterisk(tmp_path_factory, name: str):
    """One private Asterisk in its own folder and ports, stopped after; skipped like every live
    test when this machine cannot run it."""
    why = _why_not()
    if why:
        pytest.skip(why)
    instance = Asterisk(os.environ[LAUNCHER_ENV], tmp_path_factory.mktemp(name))
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def asterisk(tmp_path_factory, live_requirements):
    yield from _started_asterisk(tmp_path_factory, "asterisk")


@pytest.fixture(scope="module")
def asterisk2(tmp_path_factory, live_requirements):
    """A second Asterisk beside `asterisk` (modules that watch two servers)."""
    yield from _started_asterisk(tmp_path_factory, "asterisk2")


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
def phones2(asterisk2, module_processes, tmp_path_factory):
    """SIPp phones of `asterisk2`."""
    return Phones(asterisk2, module_processes, tmp_path_factory.mktemp("sipp2"))


@pytest.fixture(scope="module")
def monitor(asterisk, tmp_path_factory):
    with monitor_of(asterisk, tmp_path_factory.mktemp("arimonitor")) as mon:
        yield mon
