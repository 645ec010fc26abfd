"""How a RabbitMQ server is named in logs and `status`: user@host:port/vhost, no password."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from arimonitor.clicktocall.broker import describe


@pytest.mark.parametrize("vhost, shown", [("/", "[main] guest@127.0.0.1:5672/"),
                                          ("lab", "[main] guest@127.0.0.1:5672/lab")])
def test_the_vhost_follows_a_slash(vhost, shown):
    server = SimpleNamespace(name="main", host="127.0.0.1", port=5672, user="guest", password="s3cret",
                    vhost=vhost, queue="c2c")
    assert describe(server) == shown
    assert "s3cret" not in describe(server)
