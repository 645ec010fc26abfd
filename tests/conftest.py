from __future__ import annotations

import pytest

from tests.support import Processes


@pytest.fixture
def processes():
    """Every process a test starts through this is killed at the end, pass or fail."""
    tracker = Processes()
    try:
        yield tracker
    finally:
        tracker.kill_all()
