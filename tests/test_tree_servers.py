"""Two Asterisk servers ([ari] and [ari:pbx2]): the real supervisord tree runs one reader each."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from arimonitor.sim.testing import SimServer
from tests.support import PYTHON, ROOT, eventually, eventually_assert
from tests.test_health_exit_codes import asterisk_tree
from tests.trees import run_arimonitor, running


def arictl(env: dict, *words: str) -> dict:
    result = subprocess.run([PYTHON, str(ROOT / "bin" / "arictl"), "--json", *words], env=env,
                            capture_output=True, text=True, timeout=30, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def arictl_status(env: dict, *words: str) -> tuple[int, dict]:
    """`status` answers with its health in the exit code: 0 healthy, 1 degraded."""
    result = subprocess.run([PYTHON, str(ROOT / "bin" / "arictl"), "--json", "status", *words],
                            env=env, capture_output=True, text=True, timeout=30, cwd=ROOT, check=False)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)["data"]


def by_server(port: int, family: str, sample: str | None = None, by: str = "server",
              **match: str) -> Counter:
    """One family of the engine's /metrics summed by its `by` label (samples matching)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    out: Counter = Counter()
    for f in text_string_to_metric_families(text):
        if f.name == family:
            for s in f.samples:
                if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in match.items()):
                    out[s.labels[by]] += s.value
    return out


def test_two_servers_each_watched_with_its_own_state_outage_and_resync(tmp_path):
    with SimServer(endpoints=["1003000", "1003010"]) as pbx1, \
            SimServer(endpoints=["1003020", "1003030"]) as pbx2, asterisk_tree(
            tmp_path, pbx1.url, pbx1.password,
            {"ari": {"url": pbx1.url, "password": pbx1.password, "server_id": "pbx1"},
             "ari:pbx2": {"url": pbx2.url, "password": pbx2.password}}) as (env, tree):
        started = run_arimonitor("start", env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert {"ari-reader_00", "ari-reader_01"} <= set(running(tree))

        def connected(sim: SimServer) -> bool:
            return [c["app"] for c in sim.control.state()["connections"]] == ["arimonitor"]
        eventually(lambda: connected(pbx1) and connected(pbx2), timeout=20, interval=0.2)
        # each reader has its own log, connected to its own server with its own password
        for name, sim in (("ari-reader_00", pbx1), ("ari-reader_01", pbx2)):
            eventually(lambda n=name, s=sim: f"connected to {s.ws_url.split('?')[0]}"
                       in (tree.log_dir / f"{n}.log").read_text(), timeout=10)

        # the engine keeps both: each server's link, the first's at the top as before
        def both_linked() -> bool:
            code, status = arictl_status(env)
            links = {name: view["link"]["state"] for name, view in status["servers"].items()}
            assert links == {"pbx1": "connected", "pbx2": "connected"}, links
            assert status["link"]["server"] == "pbx1" and code == 0, status["problems"]
            return True
        eventually_assert(both_linked, timeout=20)

        # endpoints learn their server from where they register
        pbx1.control.register("1003000", ip="10.1.0.1")
        pbx2.control.register("1003020", ip="10.2.0.1")

        def servers_of_endpoints() -> bool:
            rows = {r["id"]: r["server"] for r in arictl(env, "list")["data"]}
            assert (rows["1003000"], rows["1003020"], rows["1003010"]) == ("pbx1", "pbx2", None), rows
            return True
        eventually_assert(servers_of_endpoints, timeout=15)
        assert [r["id"] for r in arictl(env, "list", "--server", "pbx2")["data"]] == ["1003020"]
        # `endpoints` checks each server with its own GET /endpoints
        swept = arictl(env, "endpoints")["data"]["servers"]
        assert (swept["pbx1"]["online"], swept["pbx2"]["online"]) == (1, 1), swept

        # calls on both at once, long enough to outlast what follows
        for sim, caller, callee in ((pbx1, "1003000", "1003010"), (pbx2, "1003020", "1003030")):
            sim.control.register(callee, ip="10.9.0.1")
            for ep in (caller, callee):
                sim.control.behaviour(ep, talk=300.0, answer_after=0.2)
            sim.control.call(caller, callee)

        def calls_on_both() -> dict:
            calls = arictl(env, "calls")["data"]
            assert sorted(c["server"] for c in calls) == ["pbx1", "pbx2"], calls
            return {c["server"]: c["id"] for c in calls}
        ids = eventually_assert(calls_on_both, timeout=15)
        # /metrics counts each call and online endpoint under its own server
        port = tree.cfg["metrics.port"]

        def metrics_per_server() -> bool:
            calls = by_server(port, "arimonitor_calls")
            assert (calls["pbx1"], calls["pbx2"]) == (1, 1), calls
            online = by_server(port, "arimonitor_endpoints", state="online")
            assert (online["pbx1"], online["pbx2"]) == (2, 2), online
            return True
        eventually_assert(metrics_per_server, timeout=15)

        # pbx2 goes away: an outage of pbx2 only, status degraded naming it
        pbx2.control.restart(down_for=4.0, wait=False)

        def pbx2_out() -> bool:
            code, status = arictl_status(env)
            assert status["servers"]["pbx2"]["outage_open_since"] is not None, status["servers"]
            assert code == 1 and any(p.startswith("pbx2 ") for p in status["problems"]), status["problems"]
            assert status["servers"]["pbx1"]["outage_open_since"] is None
            assert status["servers"]["pbx1"]["link"]["state"] == "connected"
            return True
        eventually_assert(pbx2_out, timeout=15)
        assert ids["pbx1"] in [c["id"] for c in arictl(env, "calls", "--server", "pbx1")["data"]]

        # it comes back: resynced and its outage closed, pbx2 only; pbx1's call never touched
        def pbx2_back() -> dict:
            code, status = arictl_status(env)
            pbx2_view = status["servers"]["pbx2"]
            assert pbx2_view["outage_open_since"] is None and pbx2_view["last_outage"], pbx2_view
            assert code == 0, status["problems"]
            return status
        status = eventually_assert(pbx2_back, timeout=30)
        assert status["servers"]["pbx1"]["last_outage"] is None
        assert status["servers"]["pbx1"]["state"]["asterisk_startup"]
        calls = arictl(env, "calls")["data"]
        assert [(c["server"], c["id"]) for c in calls] == [("pbx1", ids["pbx1"])], calls
        ended = arictl(env, "history", "--server", "pbx2")["data"]
        assert ids["pbx2"] in [r["id"] for r in ended]
        assert arictl(env, "history", "--server", "pbx1")["data"] == []
        ended = by_server(port, "arimonitor_calls_ended", "arimonitor_calls_ended_total")
        assert ended["pbx2"] >= 1 and ended["pbx1"] == 0, ended

        # pbx2's reader restarts (its counters start again): seen as its own, pbx1's untouched
        def restarts() -> Counter:
            return by_server(port, "arimonitor_process_restarts", "arimonitor_process_restarts_total",
                             by="process")
        eventually(lambda: arictl(env, "stats", "--server", "pbx2")["data"]["reader"].get("connects", 0) >= 2,
                   timeout=15, interval=0.3)
        assert (restarts()["ari-reader_00"], restarts()["ari-reader_01"]) == (0, 0)
        restarted = run_arimonitor("restart", "ari-reader_01", env=env)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr

        def pbx2_reader_restart_seen() -> bool:
            seen = restarts()
            assert (seen["ari-reader_00"], seen["ari-reader_01"]) == (0, 1), seen
            return True
        eventually_assert(pbx2_reader_restart_seen, timeout=30)
        eventually_assert(pbx2_back, timeout=30)

        # stats: the counters summed, and a row per server: pbx2's outage is pbx2's
        stats = arictl(env, "stats")
        rows = {r["server"]: r for r in stats["data"]["server_list"]}
        assert (rows["pbx1"]["outages"], rows["pbx1"]["calls"], rows["pbx1"]["link"]) == (
            0, 1, "connected"), rows["pbx1"]
        assert rows["pbx2"]["outages"] >= 1 and rows["pbx2"]["resyncs"] >= 2, rows["pbx2"]
        assert "=== SERVERS (2) ===" in stats["text"], stats["text"]
        assert rows["pbx1"]["probe"] == "ok", rows["pbx1"]  # REST answers: its probe in a word
        # recovery resyncs both at once and waits for each (exit 0: both did)
        done = arictl(env, "recovery")["data"]["servers"]
        assert {name: view["ok"] for name, view in done.items()} == {"pbx1": True, "pbx2": True}, done
        pbx2.control.restart(down_for=30.0, wait=False)
        eventually(lambda: arictl_status(env)[1]["servers"]["pbx2"]["link"]["state"] != "connected",
                   timeout=15, interval=0.2)
        failed = subprocess.run([PYTHON, str(ROOT / "bin" / "arictl"), "--json", "recovery"], env=env,
                                capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        views = json.loads(failed.stdout)["data"]["servers"]
        assert (views["pbx1"]["ok"], views["pbx2"]["ok"]) == (True, False), views


        def pbx2_probe_failing() -> bool:
            rows = {r["server"]: r["probe"] for r in arictl(env, "stats")["data"]["server_list"]}
            assert rows == {"pbx1": "ok", "pbx2": "failing"}, rows
            return True
        eventually_assert(pbx2_probe_failing, timeout=20)
