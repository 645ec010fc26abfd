"""Issue 4 through the real tree: the engine killed with kill -9 mid-traffic and restarted by
supervisord ends up with the same active calls and endpoint states as ARI, and keeps every
ended call it had recorded."""

from __future__ import annotations

import os
import signal

import pytest

from arimonitor.sim.testing import Control
from tests.engine.stack import ctl
from tests.support import (
    eventually,
    eventually_assert,
    pid_alive,
)
from tests.trees import demo_tree, run_arimonitor, running

pytestmark = pytest.mark.timeout(120)

@pytest.fixture
def demo(tmp_path):
    with demo_tree(tmp_path, workers=1) as tree:
        yield tree.env, tree.cfg, tree.tree


def test_engine_kill_9_under_supervisord_comes_back_equal_to_ari(demo):
    env, cfg, tree = demo
    started = run_arimonitor("start", "--demo", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    address = cfg["zmq.control"]
    sim = Control(f"http://127.0.0.1:{cfg['sim.port']}")

    def engine(cmd: str, *args: str):
        return ctl(address, cmd, *args, timeout=2)["data"]

    # demo traffic: wait for ended calls in history and calls in progress
    eventually(lambda: engine("history", "--limit", "1") and engine("calls"), timeout=45,
               interval=0.3)
    recorded = {r["id"] for r in engine("history", "--limit", "10000")}
    old_pid = running(tree)["engine"]
    os.kill(old_pid, signal.SIGKILL)  # mid-traffic: the demo keeps calling

    new_pid = eventually(lambda: (pid := running(tree).get("engine")) != old_pid and pid,
                         timeout=30, interval=0.2)
    assert new_pid and not pid_alive(old_pid)
    eventually(lambda: engine("status")["link"]["state"] == "connected"
               and engine("status")["last_resync"], timeout=20, interval=0.2)
    # New calls stop; the ones in progress still end on their own, so the comparison is
    # between two ARI snapshots taken around the engine's: what is in both must be in the
    # engine, and the engine may hold nothing that is in neither.
    sim.demo(False)

    def equal_to_ari():
        before = sim.state()
        calls = engine("calls")
        endpoints = {e["id"]: e["state"] for e in engine("_engine_endpoints")}
        after = sim.state()
        ours = {ch for call in calls for ch in call["channels"]}
        ari_before = {c["id"] for c in before["channels"]}
        ari_after = {c["id"] for c in after["channels"]}
        assert ari_before & ari_after <= ours, "channels in ARI the engine does not hold"
        assert ours <= ari_before | ari_after, "channels the engine holds that ARI does not"
        stable = {r: e["state"] for r, e in before["endpoints"].items()
                  if after["endpoints"][r]["state"] == e["state"]}
        assert {r: endpoints.get(r) for r in stable} == stable
        return calls
    calls = eventually_assert(equal_to_ari, timeout=20)
    assert all(c["state"] in ("ringing", "up") for c in calls)

    # every ended call recorded before the kill is still in history
    after = {r["id"] for r in engine("history", "--limit", "10000")}
    assert recorded <= after
    assert engine("stats")["counters"]["outages"] >= 1  # the engine's own downtime, closed
