"""The click-to-call world (real RabbitMQ, fake ARI, the consumer process) for hostile tests."""

from tests.clicktocall.conftest import c2c, engine_pub  # noqa: F401 - fixtures shared by name
