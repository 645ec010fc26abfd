"""The bus process's feed (arimonitor/bus/feed.py): the engine's stamped publications into the
buffer; a gap in the stamps is counted and logged once, never silent."""

from __future__ import annotations

import json
import logging

from arimonitor import protocol
from arimonitor.bus.buffer import EventBuffer
from arimonitor.bus.feed import Feed


def frames(topic: str, body: dict, seq: int, run: str = "100") -> list[bytes]:
    return protocol.publication(topic, body, f"{run}.{seq}")


def test_bus_topics_become_bus_events_and_the_rest_is_left_out():
    feed = Feed(EventBuffer(10), "pbx1", "r")
    feed.on_frames(frames("call.ended", {"id": "c1", "client": "101"}, 1))
    feed.on_frames(frames("progress.resync", {"done": 1}, 2))
    feed.on_frames(frames("endpoint.online", {"endpoint": "1013015", "server": "pbx2"}, 3))
    events = feed.buffer.after(0, 10)
    assert [e.routing_key for e in events] == ["call.ended.pbx1.101", "endpoint.online.pbx2.-"]
    assert [e.message_id for e in events] == ["r.1", "r.2"]
    body = json.loads(events[0].body)
    assert (body["seq"], body["run"], body["data"]["id"]) == (1, "r", "c1")
    assert feed.missed == 0


def test_a_gap_in_the_engine_stamps_is_counted_and_logged_once(caplog):
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
    feed.on_frames(frames("call.up", {"id": "a"}, 50, run="100"))
    feed.on_frames(frames("call.up", {"id": "b"}, 1, run="200"))  # the engine restarted
    feed.on_frames(protocol.publication("call.up", {"id": "c"}))  # no stamp: nothing to check
    feed.on_frames([b"call.up", b"200.2", b"not json"])
    assert feed.missed == 0 and feed.bad == 1 and len(feed.buffer) == 3
