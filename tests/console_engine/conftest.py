from __future__ import annotations

import pytest

from tests.console_engine.engine_here import EngineHere


@pytest.fixture
def here():
    """A real Engine object with its loop in a thread (engine_here.py), closed at the end."""
    engine = EngineHere()
    try:
        yield engine
    finally:
        engine.close()
