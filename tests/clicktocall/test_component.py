"""The flow plugged into a real Engine (not run): hooks, PUB listeners, SQLite, console command."""

from __future__ import annotations

import json

import zmq

from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.component import ClickToCallComponent
from arimonitor.config import load_config
from arimonitor.engine.app import Engine
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
    finally:
        engine.close()
