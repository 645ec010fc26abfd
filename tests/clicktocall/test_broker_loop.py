"""The reconnect loop over __MQSERVERS__.DEF, with fake connections (no broker needed)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import pika.exceptions

from arimonitor.clicktocall import broker


@dataclass(frozen=True)
class S:
    name: str
    host: str = "127.0.0.1"
    port: int = 5672
    user: str = "guest"
    password: str = field(default="s3cret", repr=False)
    vhost: str = "/"
    queue: str = "q"


class FakeConn:
    is_open = True

    def close(self):
        self.is_open = False


class Stopper:
    def __init__(self, rounds: int):
        self.rounds = rounds
        self.waits: list[float] = []

    @property
    def stopping(self):
        return self.rounds <= 0

    def wait(self, seconds):
        self.waits.append(seconds)
        return self.stopping


def test_servers_in_order_fall_over_and_back_off(caplog):
    up = {"a": False, "b": True}
    tried: list[str] = []

    def connect(server):
        tried.append(server.name)
        if not up[server.name]:
            raise pika.exceptions.AMQPConnectionError("refused")
        return FakeConn()

    stopper = Stopper(rounds=3)
    used: list[int] = []

    class Session:
        consumed = False

        def run(self, connection, index):
            used.append(index)
            stopper.rounds -= 1
            if stopper.rounds == 2:   # broker closed the connection under a consuming session
                self.consumed = True
                raise pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED")
            if stopper.rounds == 1:
                up["a"] = True          # the first server is back: the session ends itself
                return broker.SessionEnd(True, "first server is back")
            return broker.SessionEnd(True, "stopping")

    with caplog.at_level(logging.INFO):
        broker.run_sessions([S("a"), S("b")], Session(), stopper, logging.getLogger("t"),
                            broker.Backoff(rng=random.Random(1)), connect)
    # Each round starts from the first server; "b" while "a" is down, then back to "a".
    assert tried == ["a", "b", "a", "b", "a"]
    assert used == [1, 1, 0]
    assert stopper.waits == []  # sessions that consumed reset the backoff: no waiting
    assert "s3cret" not in caplog.text
    assert "guest@127.0.0.1:5672/" in caplog.text


def test_backoff_grows_to_the_cap_and_resets():
    backoff = broker.Backoff(first=1, cap=8, rng=random.Random(3))
    delays = [backoff.next() for _ in range(6)]
    assert all(0.5 * b <= d <= b for d, b in zip(delays, [1, 2, 4, 8, 8, 8]))
    backoff.reset()
    assert backoff.next() <= 1


def test_no_server_answers_waits_with_backoff():
    stopper = Stopper(rounds=1)

    def connect(server):
        stopper.rounds -= 0.25
        raise pika.exceptions.AMQPConnectionError("refused")

    broker.run_sessions([S("a"), S("b")], None, stopper, logging.getLogger("t"),
                        broker.Backoff(first=0.5, rng=random.Random(1)), connect)
    assert len(stopper.waits) == 2 and stopper.waits[1] > stopper.waits[0]


def test_no_server_is_fatal():
    end = broker.run_sessions([], None, Stopper(1), logging.getLogger("t"))
    assert end.fatal
