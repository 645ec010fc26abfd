"""The flow plugged into a real Engine (not run): hooks, PUB listeners, SQLite, console command."""

from __future__ import annotations

import json

import zmq

from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.component import ClickToCallComponent
from arimonitor.config import load_config
from arimonitor.engineproc.app import Engine
from tests.support import ARI, eventually

RID = "0f0e0d0c-req"


def test_component_in_a_real_engine(tmp_path):
    ini = tmp_path / "arimonitor.ini"
    ini.write_text(f"[paths]\nvar = {tmp_path / 'var'}\nrun = {tmp_path / 'run'}\n")
    (tmp_path / "run").mkdir(mode=0o700)
    cfg = load_config(ini, environ={"ARIMONITOR_ARI_URL": "http://127.0.0.1:9/ari"})
    engine = Engine(cfg, components=[ClickToCallComponent], zmq_context=zmq.Context())
    seen: list[tuple[str, dict]] = []
    engine.notifier.subscribe("c2c.", lambda topic, body: seen.append((topic, body)))
    try:
        for line in (ARI / "traces" / "failures.jsonl").read_text().splitlines():
            if '"fail-pjsip-busy"' in line:
                engine.handlers.apply(line.replace('"fail-pjsip-busy"', f'"c2c-{RID}-a"').encode(),
                                      1795555364.9)
        assert [t for t, _ in seen] == ["c2c.accepted", "c2c.final"]
        assert seen[-1][1]["reason"] == reasons.ORIGIN_BUSY
        reply = engine.registry.dispatch({"id": "1", "cmd": "c2c", "args": [RID]}, engine.ctx)
        assert reply["status"] == "ok" and reply["data"]["reason"] == reasons.ORIGIN_BUSY
        # The hang-up of the (already gone) leg ran on the REST worker and failed quietly.
        eventually(lambda: engine.rest_worker.pending == 0 or engine.loop.run_once(0.05))
        assert json.loads(json.dumps(reply["data"]))["events"][-1][0] == "final"
        # The consumer's catch-up: the stored final of each request that ended, none for others.
        reply = engine.registry.dispatch({"id": "2", "cmd": "_c2c_finals",
                                          "args": [json.dumps([RID, "never-seen"])]}, engine.ctx)
        (final,) = reply["data"]["finals"]
        assert (final["request_id"], final["event"], final["reason"]) == (
            RID, "final", reasons.ORIGIN_BUSY)
        bad = engine.registry.dispatch({"id": "3", "cmd": "_c2c_finals", "args": ["{}"]},
                                        engine.ctx)
        assert bad["status"] == "error"
    finally:
        engine.close()


def test_flow_state_survives_an_engine_restart(tmp_path):
    """Engine 1 sees a call connect and dies; engine 2 (same SQLite) restores it, keeps it over
    the resync (the legs are still in Asterisk) and ends it `completed` on the later hang-up."""
    from arimonitor.engine import calls as C

    ini = tmp_path / "arimonitor.ini"
    ini.write_text(f"[paths]\nvar = {tmp_path / 'var'}\nrun = {tmp_path / 'run'}\n")
    (tmp_path / "run").mkdir(mode=0o700)
    cfg = load_config(ini, environ={"ARIMONITOR_ARI_URL": "http://127.0.0.1:9/ari"})
    a, b = f"c2c-{RID}-a", f"c2c-{RID}-b"
    first = Engine(cfg, components=[ClickToCallComponent], zmq_context=zmq.Context())
    try:
        flow = first.components[0].flow
        flow.on_event({"type": "ChannelCreated", "channel": {"id": a, "name": "PJSIP/1013010-1"}}, 10.0)
        flow.on_event({"type": "StasisStart", "channel": {"id": a, "state": "Up"}, "args": [
            "click2call", RID, "A", "101", "endpoint", "1123000", "0", "30"]}, 12.0)
        flow.on_event({"type": "ChannelStateChange", "channel": {"id": b, "state": "Up"}}, 15.0)
    finally:
        first.close()
    second = Engine(cfg, components=[ClickToCallComponent], zmq_context=zmq.Context())
    seen: list[tuple[str, dict]] = []
    second.notifier.subscribe("c2c.", lambda topic, body: seen.append((topic, body)))
    try:
        assert second.components[0].flow.calls[RID].connected == 15.0
        for cid, name in ((a, "PJSIP/1013010-1"), (b, "PJSIP/1123000-2")):
            obj = {"id": cid, "name": name, "state": "Up", "caller": {}, "connected": {},
                   "dialplan": {}, "creationtime": "2026-01-01T00:00:00.000+0000"}
            C.attach_channel(second.state, C.channel_from_ari(obj, 20.0, 20.0))
        second.notifier.publish("link.resynced", {"reason": "engine start"})
        assert seen == [] and RID in second.components[0].flow.calls
        second.components[0].flow.on_event({"type": "ChannelDestroyed", "channel": {"id": b},
                                            "cause": 16}, 75.0)
        (topic, final), = seen
        assert (topic, final["result"], final["duration"], final["origin"]) == (
            "c2c.final", "completed", 60.0, "1013010")
    finally:
        second.close()
