"""The bus process's feed (arimonitor/bus/feed.py): the engine's stamped publications into the
buffer; a gap in the stamps is filled from the engine's kept ring (the real Notifier here), and
only what the ring no longer has is counted and logged once, never silent."""

from __future__ import annotations

import json
import logging

from arimonitor import protocol
from arimonitor.bus.buffer import EventBuffer
from arimonitor.bus.feed import Feed, Unreachable
from arimonitor.engine.notifier import Notifier


class Engine:
    """A real Notifier with a PUB-like sink: what the SUB would get, and the catch-up."""

    def __init__(self, recent: int = 100) -> None:
        self.sent: list[list[bytes]] = []
        self.notifier = Notifier(self, recent=recent)
        self.asked: list[tuple[str, int]] = []
        self.answering = True

    def send_multipart(self, frames, flags=0) -> None:
        self.sent.append(frames)

    def catch_up(self, run: str, after: int) -> dict:
        self.asked.append((run, after))
        if not self.answering:
            raise Unreachable("down")
        return self.notifier.since(run, after, 3)  # small pages: the feed asks again

    def publish(self, *topics: str) -> None:
        for topic in topics:
            self.notifier.publish(topic, {"id": f"{topic}-{len(self.sent)}", "client": "101"})


def frames(topic: str, body: dict, seq: int, run: str = "100") -> list[bytes]:
    return protocol.publication(topic, body, f"{run}.{seq}")


def test_bus_topics_become_bus_events_and_the_rest_is_left_out():
    feed = Feed(EventBuffer(10), "pbx1", "r")
    feed.on_frames(frames("call.ended", {"id": "c1", "client": "101"}, 1))
    feed.on_frames(frames("progress.resync", {"done": 1}, 2))
    feed.on_frames(frames("endpoint.online", {"endpoint": "1013015", "server": "pbx2"}, 3))
    events = feed.buffer.after(0, 10)
    assert [e.routing_key for e in events] == ["call.ended.pbx1.101", "endpoint.online.pbx2.-"]
    assert [e.message_id for e in events] == ["100.1", "100.3"]  # the engine's stamps
    body = json.loads(events[0].body)
    assert (body["seq"], body["run"], body["id"], body["data"]["id"]) == (1, "r", "100.1", "c1")
    assert feed.missed == 0


def test_a_gap_without_a_catch_up_is_counted_and_logged_once(caplog):
    feed = Feed(EventBuffer(10), "pbx1", "r")
    with caplog.at_level(logging.WARNING):
        feed.on_frames(frames("call.up", {"id": "a"}, 1))
        feed.on_frames(frames("call.up", {"id": "b"}, 4))   # 2 and 3 never came
        feed.on_frames(frames("call.up", {"id": "c"}, 7))   # 5 and 6 neither: same episode
    assert feed.missed == 4
    warnings = [r.getMessage() for r in caplog.records if "missed" in r.getMessage()]
    assert len(warnings) == 1 and "arictl --json" in warnings[0]


def test_a_new_engine_run_starts_afresh_and_unstamped_messages_pass():
    feed = Feed(EventBuffer(10), "pbx1", "r")
    feed.on_frames(frames("call.up", {"id": "a"}, 1, run="100"))
    feed.on_frames(frames("call.up", {"id": "b"}, 1, run="200"))  # the engine restarted
    feed.on_frames(protocol.publication("call.up", {"id": "c"}))  # no stamp: nothing to check
    feed.on_frames([b"call.up", b"200.2", b"not json"])
    assert feed.missed == 0 and feed.bad == 1 and len(feed.buffer) == 3


def sub_gets(feed: Feed, engine: Engine, indexes) -> None:
    for i in indexes:
        feed.on_frames(engine.sent[i])


def topics_of(feed: Feed) -> list[str]:
    return [json.loads(e.body)["topic"] for e in feed.buffer.after(0, 1000)]


def test_what_was_published_before_the_sub_joined_is_fetched_in_order():
    engine = Engine()
    engine.publish("link.connected", "progress.resync", "endpoint.online", "link.resynced",
                   "call.ringing", "call.up")
    feed = Feed(EventBuffer(100), "pbx1", "r", catch_up=engine.catch_up)
    sub_gets(feed, engine, [4, 5])  # a slow joiner: the SUB's first message is seq 5
    assert topics_of(feed) == ["link.connected", "endpoint.online", "link.resynced",
                               "call.ringing", "call.up"]
    assert [e.message_id for e in feed.buffer.after(0, 10)] == [
        f"{engine.notifier.run}.{n}" for n in (1, 3, 4, 5, 6)]
    assert (feed.missed, feed.caught_up) == (0, 3)
    assert engine.asked == [(engine.notifier.run, 0)]


def test_a_drop_mid_stream_is_filled_across_pages_and_nothing_comes_twice():
    engine = Engine()
    engine.publish(*["call.up"] * 10)
    feed = Feed(EventBuffer(100), "pbx1", "r", catch_up=engine.catch_up)
    sub_gets(feed, engine, [0, 1, 9, 9, 3])  # 3..9 dropped; a repeat and a late one: ignored
    ids = [json.loads(e.body)["data"]["id"] for e in feed.buffer.after(0, 100)]
    assert ids == [f"call.up-{n}" for n in range(10)]
    assert feed.missed == 0 and len(engine.asked) == 3  # pages of 3: after 2, 5, 8


def test_only_what_the_ring_forgot_or_an_engine_that_does_not_answer_is_missed(caplog):
    engine = Engine(recent=4)
    engine.publish(*["endpoint.online"] * 10)
    feed = Feed(EventBuffer(100), "pbx1", "r", catch_up=engine.catch_up)
    with caplog.at_level(logging.WARNING):
        sub_gets(feed, engine, [9])  # the ring holds 7..10: 1..6 are gone
        assert feed.missed == 6 and feed.caught_up == 3 and len(feed.buffer) == 4
        engine.answering = False
        engine.publish("call.up", "call.up", "call.ended")
        sub_gets(feed, engine, [12])
    assert feed.missed == 8 and len(feed.buffer) == 5
    warnings = [r.getMessage() for r in caplog.records if "lost up to" in r.getMessage()]
    assert len(warnings) == 1 and "arictl --json" in warnings[0]


def test_a_restarted_bus_starts_after_its_position_and_a_new_engine_run_from_its_start():
    engine = Engine()
    engine.publish(*["call.up"] * 6)
    run = engine.notifier.run
    # the previous bus process had the broker confirm up to seq 4
    feed = Feed(EventBuffer(100), "pbx1", "r2", catch_up=engine.catch_up, position=(run, 4))
    sub_gets(feed, engine, [3, 5])  # 4 is old news; 6 shows 5 missing
    assert [e.message_id for e in feed.buffer.after(0, 10)] == [f"{run}.5", f"{run}.6"]
    assert feed.position == (run, 6)
    restarted = Engine()
    restarted.notifier.run = str(int(run) + 1)
    restarted.publish("link.connected", "call.up")
    feed.catch_up = restarted.catch_up
    sub_gets(feed, restarted, [1])
    assert [e.message_id for e in feed.buffer.after(0, 10)][2:] == [
        f"{restarted.notifier.run}.1", f"{restarted.notifier.run}.2"]
    assert feed.missed == 0
