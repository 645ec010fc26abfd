"""The bus publisher thread (arimonitor/bus/publisher.py): with a fake connection, then with
the real RabbitMQ on 127.0.0.1:5672 (unique exchange and queue per test, deleted after)."""

from __future__ import annotations

import json
import os
import threading
import time

import pika
import pika.exceptions
import pytest

from arimonitor.backoff import Backoff
from arimonitor.bus import message
from arimonitor.bus.buffer import BusEvent, EventBuffer
from arimonitor.bus.publisher import WINDOW, BrokerAddress, BusPublisher, parameters
from tests.support import close_rabbit_connections, eventually, free_port

pytestmark = pytest.mark.timeout(90)

BROKER = BrokerAddress("127.0.0.1", 5672, "/", "guest", "guest")


def event(seq: int, topic: str = "call.ended") -> BusEvent:
    key, data = message.encode(topic, {"client": "101", "n": seq}, server="s", seq=seq, run="r", source=f"e.{seq}")
    return BusEvent(seq, key, data, f"r.{seq}")


def test_publishing_to_a_closed_port_never_blocks_the_producer():
    """The engine loop's side (put) stays O(1) with the broker absent: the buffer takes the
    bound and drops the oldest, the publisher counts its failed connects."""
    buf = EventBuffer(50)
    pub = BusPublisher(buf, BrokerAddress("127.0.0.1", free_port(), "/", "guest", "guest"), "ex",
                       backoff=Backoff(0.01, 0.05))
    pub.start()
    try:
        for seq in range(1, 1001):
            buf.put(event(seq))
        eventually(lambda: pub.failures >= 2, timeout=10)
        assert (buf.appended, buf.dropped, len(buf)) == (1000, 950, 50)
        assert pub.view()["connected"] is False and pub.confirmed == 0
        # every failed session gives its sockets and wake-up pipe back: days of reconnects
        # must not run the process out of file descriptors
        fds = len(os.listdir("/proc/self/fd"))
        eventually(lambda: pub.failures >= 30, timeout=30)
        assert len(os.listdir("/proc/self/fd")) <= fds + 3
    finally:
        pub.stop(drain=0)


# ---- the real broker ---------------------------------------------------------------------------


def drain(ch, queue: str) -> list[dict]:
    got = []
    while True:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append(json.loads(body))


def test_real_broker_connection_closed_under_load_loses_nothing(bus_exchange):
    name, ch = bus_exchange
    total = 6000
    buf = EventBuffer(total)   # the whole load fits the bound: nothing may be lost
    pub = BusPublisher(buf, BROKER, name, backoff=Backoff(0.05, 0.5))
    pub.start()

    def produce():
        for seq in range(1, total + 1):
            buf.put(event(seq))
            if seq % 200 == 0:
                time.sleep(0.005)

    producer = threading.Thread(target=produce)
    try:
        eventually(lambda: pub.view()["connected"], timeout=15)
        producer.start()
        eventually(lambda: pub.confirmed >= 500, timeout=30)
        assert close_rabbit_connections(f"arimonitor-bus-{os.getpid()}") == 1
        producer.join(timeout=60)
        eventually(lambda: pub.confirmed >= total and len(buf) == 0, timeout=60)
    finally:
        pub.stop(drain=0)
    assert pub.failures >= 1, "the close was seen"
    got = drain(ch, name)
    seqs = [m["seq"] for m in got]
    assert sorted(set(seqs)) == list(range(1, total + 1)), "every event arrived"
    # at least once: what was unconfirmed at the close may come twice (at most the window)
    assert len(seqs) - total <= WINDOW
    firsts = list(dict.fromkeys(seqs))
    assert firsts == list(range(1, total + 1)), "in order"
    assert buf.dropped == 0


def test_connect_helper_names_the_connection_without_the_password():
    assert "guest@127.0.0.1:5672/" == str(BROKER) and "guest" not in repr(BROKER).split("@")[1]
    conn = pika.BlockingConnection(parameters(BROKER))
    try:
        assert conn.is_open
    finally:
        conn.close()
