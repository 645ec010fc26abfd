"""Crashes and outages: nothing lost, never a second call."""

from __future__ import annotations

import shutil
import signal

from arimonitor.clicktocall.consumer import TEST_ACK_DELAY_ENV
from tests.support import close_rabbit_connections, eventually, eventually_assert


def _flood_request(c2c, i: int) -> dict:
    return c2c.request(f"flood-{i:04d}", client="900", origin=f"90000{i % 20:02d}")


def test_redelivered_message_places_no_second_call(c2c, processes):
    # TEST ONLY switch: the ack of an accepted request waits 30 s, so kill -9 lands between
    # the originate and the ack and the broker redelivers the message.
    proc = c2c.start_consumer(processes, **{TEST_ACK_DELAY_ENV: "30"})
    req = c2c.request()
    c2c.publish(req)
    eventually(lambda: c2c.ari.originates(), message="no originate")
    c2c.stop_consumer(proc, signal.SIGKILL)
    eventually(lambda: c2c.counts(c2c.topology.queue) == (1, 0), message="not redelivered")

    # Same ledger: the redelivery is recognised before Asterisk is asked again.
    proc = c2c.start_consumer(processes)
    eventually(lambda: "duplicate (already placed)" in c2c.log_text())
    c2c.stop_consumer(proc)
    assert c2c.counts(c2c.topology.queue) == (0, 0)
    assert len(c2c.ari.originates()) == 1

    # Ledger lost too (another machine's consumer, a wiped disk): Asterisk's 409 on the
    # derived channel id still refuses the second call.
    c2c.publish(req)
    shutil.rmtree(c2c.tmp / "var")
    proc = c2c.start_consumer(processes)
    eventually(lambda: c2c.log_text().count("duplicate (already placed)") == 2)
    c2c.stop_consumer(proc)
    assert len(c2c.ari.originates()) == 2  # asked twice...
    assert list(c2c.ari.channels) == [f"c2c-{req['request_id']}-a"]  # ...one call
    assert c2c.counts(c2c.topology.queue) == (0, 0)


def test_consumer_killed_mid_flood_loses_nothing(c2c, processes):
    total = 400
    for i in range(total):
        c2c.publish(_flood_request(c2c, i), reply=False)
    proc = c2c.start_consumer(processes)
    eventually(lambda: len(c2c.ari.channels) >= 80, timeout=20)
    c2c.stop_consumer(proc, signal.SIGKILL)
    placed_before = len(c2c.ari.channels)
    assert placed_before < total, "the flood was over before the kill; make it bigger"
    c2c.start_consumer(processes)
    eventually(lambda: len(c2c.ari.channels) == total, timeout=30)
    assert sorted(c2c.ari.channels) == sorted(f"c2c-flood-{i:04d}-a" for i in range(total))
    eventually(lambda: c2c.counts(c2c.topology.queue)[0] == 0)
    assert c2c.get_all(c2c.topology.dead_letter_queue) == []


def _close_connections_of(pid: int) -> int:
    """Close (as the broker) the consumer's connections to the `principal` server."""
    return close_rabbit_connections(f"arimonitor-clicktocall-principal-{pid}")


def test_broker_closes_the_connection_under_it(c2c, processes):
    proc = c2c.start_consumer(processes)
    first = [_flood_request(c2c, i) for i in range(50)]
    for body in first:
        c2c.publish(body, reply=False)
    assert _close_connections_of(proc.pid) == 1
    for i in range(50, 100):
        c2c.publish(_flood_request(c2c, i), reply=False)
    eventually(lambda: len(c2c.ari.channels) == 100, timeout=30)
    eventually_assert(lambda: _assert_reconnected(c2c, proc))


def _assert_reconnected(c2c, proc):
    assert proc.poll() is None
    assert c2c.counts(c2c.topology.queue) == (0, 1)
    assert "ConnectionClosedByBroker" in c2c.log_text()
