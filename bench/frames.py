"""Synthetic ARI frames for the engine benchmarks: realistic shapes, every id unique.

`stasis_call_frames`: the realistic mix, an inbound call into Stasis(arimonitor), 14 events.

A dialplan call between two endpoints, 20 events: ChannelCreated x2, Varset, Dialplan, Dial x2,
StateChange x3, BridgeCreated, EnteredBridge x2, DeviceStateChanged x2, HangupRequest,
LeftBridge, Destroyed x2, BridgeDestroyed, Varset. Frames are ~500-900 bytes, as Asterisk's.
"""

from __future__ import annotations

import json

TS = "2026-11-24T21:21:49.846+0000"


def _channel(cid: str, name: str, state: str, caller: str, exten: str) -> dict:
    return {"id": cid, "name": name, "state": state, "protocol_id": f"{cid}@10.0.0.1",
            "caller": {"name": f"Lab {caller}", "number": caller},
            "connected": {"name": "", "number": ""}, "accountcode": "",
            "dialplan": {"context": "from-endpoints", "exten": exten, "priority": 1,
                         "app_name": "Dial", "app_data": f"PJSIP/{exten}"},
            "creationtime": TS, "language": "en"}


def _event(kind: str, **fields) -> bytes:
    body = {"type": kind, "timestamp": TS, **fields, "asterisk_id": "02:fc:00:00:00:01",
            "application": "arimonitor"}
    return json.dumps(body, separators=(",", ":")).encode()


def call_frames(n: int, endpoints: int = 1000) -> list[bytes]:
    a_ep, b_ep = f"{1000000 + (2 * n) % endpoints}", f"{1000000 + (2 * n + 1) % endpoints}"
    a_id, b_id, br = f"1795555000.{2 * n}", f"1795555000.{2 * n + 1}", f"bridge-{n}"
    a = _channel(a_id, f"PJSIP/{a_ep}-{2 * n:08x}", "Ring", a_ep, b_ep)
    b = _channel(b_id, f"PJSIP/{b_ep}-{2 * n + 1:08x}", "Down", a_ep, b_ep)
    bridge = {"id": br, "technology": "simple_bridge", "bridge_type": "mixing",
              "bridge_class": "basic", "creator": "", "name": "", "channels": [],
              "creationtime": TS, "video_mode": "talker"}
    out = [_event("ChannelCreated", channel=a),
           _event("ChannelVarset", variable="SIPDOMAIN", value="10.0.0.1", channel=a),
           _event("ChannelDialplan", dialplan_app="Dial", dialplan_app_data=f"PJSIP/{b_ep}", channel=a),
           _event("ChannelCreated", channel=b),
           _event("Dial", dialstatus="", forward="", dialstring=b_ep, caller=a, peer=b)]
    b = {**b, "state": "Ringing"}
    out += [_event("ChannelStateChange", channel=b),
            _event("Dial", dialstatus="RINGING", forward="", dialstring=b_ep, caller=a, peer=b),
            _event("DeviceStateChanged", device_state={"name": f"PJSIP/{b_ep}", "state": "RINGING"})]
    a, b = {**a, "state": "Up"}, {**b, "state": "Up"}
    out += [_event("ChannelStateChange", channel=b), _event("ChannelStateChange", channel=a),
            _event("BridgeCreated", bridge=bridge),
            _event("ChannelEnteredBridge", bridge={**bridge, "channels": [a_id]}, channel=a),
            _event("ChannelEnteredBridge", bridge={**bridge, "channels": [a_id, b_id]}, channel=b),
            _event("DeviceStateChanged", device_state={"name": f"PJSIP/{a_ep}", "state": "INUSE"}),
            _event("ChannelHangupRequest", cause=16, soft=True, channel=a),
            _event("ChannelLeftBridge", bridge={**bridge, "channels": [b_id]}, channel=a),
            _event("ChannelDestroyed", cause=16, cause_txt="Normal Clearing", channel=a),
            _event("ChannelVarset", variable="BRIDGEPEER", value="", channel=b),
            _event("ChannelDestroyed", cause=16, cause_txt="Normal Clearing", channel=b),
            _event("BridgeDestroyed", bridge=bridge)]
    return out


def stasis_call_frames(n: int, endpoints: int = 1000) -> list[bytes]:
    """An inbound call into Stasis(arimonitor), 14 events: the engine must `continue` it and
    write its history row. Sent whole, without waiting for the continue (a blast)."""
    ep, cid, br = f"{1000000 + n % endpoints}", f"1795556000.{n}", f"stasis-bridge-{n}"
    ch = _channel(cid, f"PJSIP/{ep}-{n:08x}", "Ring", ep, "5551234")
    ch["dialplan"] = {"context": "from-endpoints", "exten": "5551234", "priority": 2,
                      "app_name": "Stasis", "app_data": "arimonitor"}
    bridge = {"id": br, "technology": "simple_bridge", "bridge_type": "mixing",
              "bridge_class": "basic", "creator": "", "name": "", "channels": [],
              "creationtime": TS, "video_mode": "talker"}
    up = {**ch, "state": "Up"}
    return [_event("ChannelCreated", channel=ch),
            _event("ChannelDialplan", dialplan_app="Stasis", dialplan_app_data="arimonitor", channel=ch),
            _event("ChannelVarset", variable="SIPDOMAIN", value="10.0.0.1", channel=ch),
            _event("StasisStart", args=[], channel=ch),
            _event("DeviceStateChanged", device_state={"name": f"PJSIP/{ep}", "state": "INUSE"}),
            _event("ChannelStateChange", channel=up),
            _event("BridgeCreated", bridge=bridge),
            _event("ChannelEnteredBridge", bridge={**bridge, "channels": [cid]}, channel=up),
            _event("ChannelHangupRequest", cause=16, soft=True, channel=up),
            _event("ChannelLeftBridge", bridge=bridge, channel=up),
            _event("StasisEnd", channel=up),
            _event("ChannelDestroyed", cause=16, cause_txt="Normal Clearing", channel=up),
            _event("BridgeDestroyed", bridge=bridge),
            _event("DeviceStateChanged", device_state={"name": f"PJSIP/{ep}", "state": "NOT_INUSE"})]


STASIS_EVENTS = 14  # per call of stasis_call_frames


def frames(count: int, endpoints: int = 1000, make=call_frames) -> list[bytes]:
    out: list[bytes] = []
    n = 0
    while len(out) < count:
        out.extend(make(n, endpoints))
        n += 1
    return out[:count]


def contact_frame(ep: str, ip: str, port: int, state: str = "online") -> bytes:
    return _event("ContactStatusChange",
                  endpoint={"technology": "PJSIP", "resource": ep, "state": state, "channel_ids": []},
                  contact_info={"uri": f"sip:{ep}@{ip}:{port};transport=UDP",
                                "contact_status": "Reachable", "aor": ep, "roundtrip_usec": "900"})
