"""The bounded hand-over between the engine loop and the bus publisher (arimonitor/bus/buffer.py)."""

from __future__ import annotations

import logging

import pytest

from arimonitor.bus import message
from arimonitor.bus.buffer import BusEvent, EventBuffer


def event(seq: int) -> BusEvent:
    return BusEvent(seq, f"call.ended.s.{seq}", b"{}", f"run.{seq}")


def test_events_stay_until_confirmed_and_leave_in_order():
    buf = EventBuffer(10)
    for seq in range(1, 6):
        buf.put(event(seq))
    assert [e.seq for e in buf.after(0, 3)] == [1, 2, 3]
    assert [e.seq for e in buf.after(0, 3)] == [1, 2, 3], "reading must not remove"
    buf.confirmed(2)
    assert [e.seq for e in buf.after(0, 10)] == [3, 4, 5]
    assert (buf.appended, buf.dropped, len(buf)) == (5, 0, 3)


def test_full_buffer_drops_the_oldest_with_one_warning_then_counts(caplog):
    buf = EventBuffer(3)
    with caplog.at_level(logging.WARNING, logger="arimonitor.bus.buffer"):
        for seq in range(1, 11):
            buf.put(event(seq))
    assert [e.seq for e in buf.after(0, 10)] == [8, 9, 10]
    assert buf.dropped == 7 and buf.appended == 10 and buf.high_water == 3
    full = [r for r in caplog.records if "buffer full" in r.getMessage()]
    assert len(full) == 1


def test_a_confirm_after_the_oldest_were_dropped_removes_only_what_is_confirmed():
    buf = EventBuffer(2)
    buf.put(event(1))
    buf.put(event(2))
    in_flight = buf.after(0, 2)
    buf.put(event(3))          # drops 1 while 1 and 2 are being published
    buf.confirmed(in_flight[-1].seq)
    assert [e.seq for e in buf.after(0, 10)] == [3]


def test_after_gives_what_was_not_sent_yet_even_when_the_head_was_dropped():
    buf = EventBuffer(4)
    for seq in range(1, 5):
        buf.put(event(seq))
    assert [e.seq for e in buf.after(2, 10)] == [3, 4]
    assert [e.seq for e in buf.after(0, 2)] == [1, 2]
    for seq in range(5, 8):   # 1..3 dropped while 1..2 were sent
        buf.put(event(seq))
    assert [e.seq for e in buf.after(2, 10)] == [4, 5, 6, 7]
    assert buf.after(7, 10) == []


def test_an_idle_publisher_is_woken_once_by_the_next_put():
    buf = EventBuffer(10)
    woken = []
    assert buf.wake_on_put(0, lambda: woken.append(1)) is False
    buf.put(event(1))
    buf.put(event(2))
    assert woken == [1], "once per idle spell, not per event"
    assert buf.wake_on_put(0, lambda: woken.append(2)) is True, "events wait: go on now"
    buf.put(event(3))
    assert woken == [1]


def test_a_bound_below_one_is_refused():
    with pytest.raises(ValueError, match="limit"):
        EventBuffer(0)


@pytest.mark.parametrize(("topic", "body", "key"), [
    ("call.ended", {"client": "101"}, "call.ended.asterisk1.101"),
    ("endpoint.online", {"client": ""}, "endpoint.online.asterisk1.-"),
    ("link.resynced", {}, "link.resynced.asterisk1.-"),
    ("recording.mp3", {"client": "a.b*#c"}, "recording.mp3.asterisk1.a_b__c"),
])
def test_routing_keys(topic, body, key):
    assert message.encode(topic, body, server="asterisk1", seq=1, run="r", source="e.1")[0] == key


def test_the_body_is_versioned_and_carries_the_publication_untouched():
    import json

    body = {"id": "c1", "client": 101, "t": 12.5}
    _key, data = message.encode("call.up", body, server="pbx.2", seq=7, run="r1", source="e.7")
    assert json.loads(data) == {"version": 1, "kind": "call", "event": "up", "topic": "call.up",
                                "server": "pbx.2", "client": "101", "run": "r1", "seq": 7, "id": "e.7",
                                "t": 12.5, "data": body}
