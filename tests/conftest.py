from __future__ import annotations

import os

import pytest

# The tests must not depend on the operator's environment: an exported ARIMONITOR_SIM_PORT (as
# the README suggests) would beat the free port each test writes into its own config.
# ARIMONITOR_TEST_* are the suite's own switches (tests/live), kept.
for _name in [n for n in os.environ if n.startswith("ARIMONITOR_") and not n.startswith("ARIMONITOR_TEST_")]:
    del os.environ[_name]

from tests.support import Processes


@pytest.fixture
def processes():
    """Every process a test starts through this is killed at the end, pass or fail."""
    tracker = Processes()
    try:
        yield tracker
    finally:
        tracker.kill_all()
