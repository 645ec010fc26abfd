"""Asterisk unique ids are compared as numbers: `.999` is older than `.1000`."""

from __future__ import annotations

import json

from arimonitor.engine.calls import id_order
from tests.engine.replay import new_engine_state


def test_id_order_is_numeric_for_asterisk_ids():
    ids = ["1795555370.1000", "1795555370.999", "1795555369.5000", "c2c-x-a",
           "host-1795555370.99", "1795555370.100"]
    assert sorted(ids, key=id_order) == ["1795555369.5000", "host-1795555370.99",
                                         "1795555370.100", "1795555370.999",
                                         "1795555370.1000", "c2c-x-a"]


def _channel(cid: str, endpoint: str, number: str, exten: str) -> dict:
    return {"id": cid, "name": f"PJSIP/{endpoint}-0000000{cid[-1]}", "state": "Ring",
            "caller": {"name": "", "number": number}, "connected": {"name": "", "number": ""},
            "dialplan": {"context": "from-endpoints", "exten": exten, "priority": 1},
            "creationtime": "2026-11-24T21:22:50.854+0000"}


def test_caller_and_callee_in_one_batch_file_the_call_under_the_caller():
    """Both channels get the same creation time; the caller's id `.999` sorts as text after the
    callee's `.1000`. The call must still be the caller's, and end."""
    state, fx, handlers = new_engine_state()
    caller = _channel("1795555370.999", "1003000", "1003000", "1013010")
    callee = _channel("1795555370.1000", "1013010", "1013010", "s")
    stamp = "2026-11-24T21:22:50.854+0000"
    events = [
        {"type": "ChannelCreated", "channel": caller},
        {"type": "ChannelCreated", "channel": callee},
        {"type": "Dial", "caller": caller, "peer": callee, "dialstatus": ""},
        {"type": "Dial", "caller": caller, "peer": callee, "dialstatus": "ANSWER"},
        {"type": "ChannelDestroyed", "channel": callee, "cause": 16, "cause_txt": "Normal Clearing"},
        {"type": "ChannelDestroyed", "channel": caller, "cause": 16, "cause_txt": "Normal Clearing"},
    ]
    for event in events:
        handlers.apply(json.dumps({**event, "timestamp": stamp}).encode(), 50.0)
    (call,) = fx.ended
    assert (call["id"], call["origin"], call["destination"]) == (
        "1795555370.999", "1003000", "1013010"), call
    assert not state.calls
