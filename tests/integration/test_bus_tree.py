"""Issue 14, the events bus, through the real supervised tree (simulator traffic) and the real
RabbitMQ: the bus process carries what `arictl watch` shows, in order per call; a connection the
broker closes loses nothing; a broker absent at start leaves the engine working; a bus process
killed with -9 is restarted by supervisord and the engine never notices. Each test has its own
exchange and queue (deleted after); the shared broker is never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import pytest

from arimonitor.bus.publisher import WINDOW
from tests.support import PYTHON, ROOT, close_rabbit_connections, eventually, free_port
from tests.trees import (
    Received,
    arictl_json,
    demo_tree,
    run_arimonitor,
    running,
)

pytestmark = pytest.mark.timeout(180)


arictl = arictl_json


@contextmanager
def started_bus_tree(tmp_path, sections):
    """A demo tree with the bus on, started (`arimonitor start --demo`); stopped after."""
    with demo_tree(tmp_path, workers=1, sections={"bus": {"enabled": "yes", **sections}}) as tree:
        started = run_arimonitor("start", "--demo", env=tree.env)
        assert started.returncode == 0, started.stdout + started.stderr
        yield tree


def test_the_bus_carries_what_watch_shows_in_order_and_survives_a_closed_connection(tmp_path, bus_exchange):
    name, ch = bus_exchange
    got = Received(ch, name)
    with started_bus_tree(tmp_path, {"exchange": name}) as tree:
        env = tree.env
        watch_out = (tmp_path / "watch.jsonl").open("w+", encoding="utf-8")
        watch = subprocess.Popen([PYTHON, str(ROOT / "bin" / "arictl"), "--json", "watch", "call"],
                                 env=env, stdout=watch_out, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL)
        try:
            def watched() -> dict[tuple[str, str], dict]:
                watch_out.flush()
                lines = (tmp_path / "watch.jsonl").read_text(encoding="utf-8").splitlines()
                return {(m["event"]["id"], m["topic"]): m["event"]
                        for m in map(json.loads, filter(None, lines))}

            def whole_calls() -> list[str]:
                seen = watched()
                per_call = defaultdict(list)
                for key, message in got.read():
                    if message["kind"] == "call":
                        per_call[message["data"]["id"]].append(message["event"])
                return [cid for cid, events in per_call.items()
                        if events[-1:] == ["ended"] and "up" in events
                        and all((cid, f"call.{e}") in seen for e in ("ringing", "up", "ended"))]

            def two_whole_calls() -> bool:
                calls = whole_calls()
                assert len(calls) >= 2, (f"whole calls {calls}; bus: {len(got.messages)} "
                                         f"message(s); watch: {sorted(watched())[:6]}")
                return True

            eventually(two_whole_calls, timeout=90, interval=0.5)
            seen = watched()
            server = tree.cfg["ari.server_id"]
            for cid in whole_calls():
                ours = [(key, m) for key, m in got.messages
                        if m["kind"] == "call" and m["data"]["id"] == cid]
                assert [m["event"] for _k, m in ours] == ["ringing", "up", "ended"], cid
                seqs = [m["seq"] for _k, m in ours]
                assert seqs == sorted(seqs)
                for key, m in ours:
                    assert m["version"] == 1 and m["server"] == server
                    assert key == f"call.{m['event']}.{server}.{m['client'] or '-'}"
                    assert m["data"] == seen[(cid, m["topic"])], "the bus and watch differ"

            # Beyond calls: endpoints, the resync, and a recording's MP3 with its path
            def kinds_seen() -> bool:
                keys = [key for key, _m in got.read()]
                assert any(k.startswith(f"endpoint.online.{server}.") for k in keys), "endpoint"
                assert f"link.resynced.{server}.-" in keys, "resync done"
                mp3s = [m["data"]["mp3"] for key, m in got.messages
                        if key.startswith("recording.mp3.")]
                assert mp3s, "no recording.mp3 yet"
                assert all(Path(path).is_file() for path in mp3s)
                return True

            eventually(kinds_seen, timeout=90, interval=0.5)

            # The broker closes the bus process's connection while traffic flows.
            bus_pid = running(tree.tree)["bus"]
            applied_before = arictl(env, "stats")["counters"]["applied"]
            assert close_rabbit_connections(f"arimonitor-bus-{bus_pid}") == 1
            eventually(lambda: arictl(env, "stats")["bus"]["failures"] >= 1, timeout=30)
            eventually(lambda: arictl(env, "stats")["bus"]["connected"], timeout=60, interval=0.3)
            # ... the engine applied events all along, and more calls went out after the close
            last_before = max(m["seq"] for _k, m in got.read())
            eventually(lambda: arictl(env, "stats")["counters"]["applied"] > applied_before, timeout=30)
            eventually(lambda: any(m["seq"] > last_before + 5 for _k, m in got.read()), timeout=60,
                       interval=0.5)
            stats = arictl(env, "stats")
        finally:
            watch.terminate()
            watch.wait(timeout=10)
            watch_out.close()
    bus = stats["bus"]
    seqs = [m["seq"] for _k, m in got.read()]
    # nothing lost: every sequence number from the first to the last, in order; what was
    # unconfirmed at the close may come twice
    assert list(dict.fromkeys(seqs)) == list(range(1, max(seqs) + 1))
    assert len(seqs) - len(set(seqs)) <= WINDOW
    assert bus["dropped"] == 0 and bus["published"] >= bus["confirmed"] > 0
    assert {m["run"] for _k, m in got.messages} == {got.messages[0][1]["run"]}


def test_a_broker_absent_at_start_does_not_hold_the_engine(tmp_path):
    closed = free_port()
    with started_bus_tree(tmp_path, {"port": closed, "exchange": f"test-bus-{uuid.uuid4().hex[:8]}",
                             "buffer": 50}) as tree:
        env = tree.env
        eventually(lambda: arictl(env, "status")["link"]["state"] == "connected", timeout=30,
                   interval=0.3)
        eventually(lambda: arictl(env, "stats")["counters"]["calls_ended"] >= 3, timeout=90,
                   interval=0.5)
        stats = arictl(env, "stats")
        bus = stats["bus"]
        assert bus["connected"] is False and bus["failures"] >= 1 and bus["confirmed"] == 0
        assert bus["appended"] > 0 and bus["queued"] <= 50
        assert f"127.0.0.1:{closed}" in bus["broker"]
        text = subprocess.run([PYTHON, str(ROOT / "bin" / "arictl"), "stats"], env=env,
                              capture_output=True, text=True, timeout=20, check=False,
                              stdin=subprocess.DEVNULL).stdout
        assert "NOT CONNECTED" in text and "confirmed" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{tree.cfg['metrics.port']}/metrics",
                                    timeout=5) as reply:
            metrics = reply.read().decode()
        assert "arimonitor_bus_connected 0.0" in metrics
        assert 'arimonitor_bus_events_total{outcome="confirmed"} 0.0' in metrics
        assert "arimonitor_bus_gap_publications_total{outcome=\"missed\"} 0.0" in metrics
        log = (tmp_path / "var" / "log" / "bus.log").read_text(encoding="utf-8")
        assert log.count("events bus: RabbitMQ") == 1, "logged once, then counted"
        assert "guest@" in log and ":guest" not in log


def test_a_bus_process_killed_is_restarted_and_the_engine_never_notices(tmp_path, bus_exchange):
    name, ch = bus_exchange
    got = Received(ch, name)
    with started_bus_tree(tmp_path, {"exchange": name}) as tree:
        env = tree.env
        eventually(lambda: arictl(env, "stats")["bus"]["confirmed"] > 0, timeout=90, interval=0.5)
        before = running(tree.tree)
        first_run = got.read()[0][1]["run"]
        killed_at = time.time()
        os.kill(before["bus"], signal.SIGKILL)

        def restarted() -> bool:
            now = running(tree.tree)
            assert now.get("bus") not in (None, before["bus"]), now
            return True

        eventually(restarted, timeout=60, interval=0.3)
        # the new bus process publishes again (a new run: its seqs start from 1) ...
        eventually(lambda: any(m["run"] != first_run for _k, m in got.read()), timeout=90,
                   interval=0.5)
        eventually(lambda: arictl(env, "stats")["bus"]["connected"], timeout=30, interval=0.3)
        # ... starting after its saved position: what the engine published while it was down
        # is fetched from the engine, and no call ended since the kill is missing from the bus
        eventually(lambda: arictl(env, "stats")["bus"]["caught_up"] > 0, timeout=30, interval=0.3)
        after_restart = time.time()

        def ended_since_kill_on_the_bus() -> bool:
            rows = [r["id"] for r in arictl(env, "history", "--limit", "1000")
                    if killed_at <= r["ended"] <= after_restart]
            ended = defaultdict(set)
            for _key, m in got.read():
                if m["topic"] == "call.ended":
                    ended[m["data"]["id"]].add(m["id"])
            assert rows and all(ended[cid] for cid in rows), (rows, sorted(ended))
            assert all(len(ids) == 1 for ids in ended.values()), "one engine publication per end"
            return True

        eventually(ended_since_kill_on_the_bus, timeout=60, interval=0.5)
        assert arictl(env, "stats")["bus"]["missed"] == 0
        # ... and the engine never noticed: same process, the link never dropped
        assert running(tree.tree)["engine"] == before["engine"]
        # arictl status answers exit 0 only once every program is healthy: the tree's
        # clicktocall may still be reaching RabbitMQ (a degraded status raises: not yet)
        eventually(lambda: arictl(env, "status"), timeout=60, interval=0.5)
        assert arictl(env, "status")["link"]["state"] == "connected"
        status = run_arimonitor("status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "bus" in status.stdout
