"""The click-to-call world (real RabbitMQ, fake ARI, the consumer process) for hostile tests."""

import pytest

from tests.clicktocall.conftest import c2c, engine_pub  # noqa: F401 - fixtures shared by name
from tests.rabbit_node import private_node


@pytest.fixture(scope="module")
def node():
    """A private RabbitMQ node per module, which its tests may stop and start (never the
    shared broker)."""
    with private_node() as started:
        yield started
