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


@pytest.fixture
def bus_exchange():
    """Events bus tests: a unique topic exchange and a queue bound to all of it on the shared
    RabbitMQ, made before anything publishes; (name, channel); both deleted after."""
    import uuid

    from tests.trees import delete_exchange_and_queue, topic_exchange_with_queue

    name = f"test-bus-{uuid.uuid4().hex[:8]}"
    conn, ch = topic_exchange_with_queue(name)
    yield name, ch
    delete_exchange_and_queue(conn, ch, name)
