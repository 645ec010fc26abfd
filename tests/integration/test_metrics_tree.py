"""Issue 15: /metrics of the real supervised tree under simulator traffic, parsed with
prometheus_client's parser, equals `arictl --json status/stats/list/calls` read around it.

What may change between two reads is allowed for, and only that: every number must lie between
what arictl said just before the scrape and just after it (endpoints and calls are compared id
by id: the ones that stayed the same must be counted, the ones that changed may go either way).
"""

from __future__ import annotations

import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import eventually, eventually_assert
from tests.trees import arictl_json, demo_tree, run_arimonitor

pytestmark = pytest.mark.timeout(150)

COUNTERS = {"events_received": "received", "events_applied": "applied",
            "events_duplicate": "duplicate", "events_malformed": "malformed",
            "events_lost": "frames_lost", "resyncs": "resyncs", "outages": "outages",
            "ari_link_connects": "link_up"}


@pytest.fixture
def tree(tmp_path):
    with demo_tree(tmp_path, workers=1) as demo:
        started = run_arimonitor("start", "--demo", env=demo.env)
        assert started.returncode == 0, started.stdout + started.stderr
        yield demo


arictl = arictl_json


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def values(family, sample_name: str | None = None, *labels: str) -> Counter:
    out: Counter = Counter()
    for s in family.samples:
        if sample_name is None or s.name == sample_name:
            out[tuple(s.labels[k] for k in labels)] += s.value
    return out


def console(env: dict) -> dict:
    return {word: arictl(env, word) for word in ("list", "calls", "stats", "status")}


def between(key, ours: Counter, before: dict, after: dict) -> None:
    """before/after: id -> key of each record; `ours` must count the stable ones, and at most
    the ones that were that key in either read."""
    for k in set(ours) | set(before.values()) | set(after.values()):
        stable = sum(1 for i, v in before.items() if v == k and after.get(i) == k)
        either = len({i for i, v in before.items() if v == k} | {i for i, v in after.items() if v == k})
        assert stable <= ours.get(k, 0) <= either, (key, k, stable, ours.get(k, 0), either)


def test_metrics_equal_the_console_under_traffic(tree):
    env, cfg = tree.env, tree.cfg
    port = cfg["metrics.port"]
    assert port and port != 9731
    # traffic: a live link, calls up, calls ended
    eventually(lambda: arictl(env, "status")["link"]["state"] == "connected", timeout=30, interval=0.3)
    eventually(lambda: arictl(env, "calls") and arictl(env, "stats")["counters"]["calls_ended"],
               timeout=60, interval=0.5)

    def compare():
        before = console(env)
        families = scrape(port)
        after = console(env)
        server = cfg["ari.server_id"]

        # endpoints: one sample per (client, state); every endpoint of `list` counted once
        ours = values(families["arimonitor_endpoints"], None, "client", "state")
        assert sum(ours.values()) == len(before["list"]) == len(after["list"])
        between("endpoints", ours, {e["id"]: (e["client"] or "", e["state"]) for e in before["list"]},
                {e["id"]: (e["client"] or "", e["state"]) for e in after["list"]})

        # calls now, by client, direction and state
        ours = values(families["arimonitor_calls"], None, "client", "direction", "state")
        between("calls", ours, {c["id"]: (c["client"], c["direction"], c["state"]) for c in before["calls"]},
                {c["id"]: (c["client"], c["direction"], c["state"]) for c in after["calls"]})

        # counters since start: between the two reads of `stats`
        for name, key in COUNTERS.items():
            got = values(families[f"arimonitor_{name}"], f"arimonitor_{name}_total", "server")[(server,)]
            assert before["stats"]["counters"][key] <= got <= after["stats"]["counters"][key], name
        ended = sum(values(families["arimonitor_calls_ended"], "arimonitor_calls_ended_total").values())
        assert before["stats"]["counters"]["calls_ended"] <= ended <= after["stats"]["counters"]["calls_ended"]
        assert ended > 0
        duration = values(families["arimonitor_call_duration_seconds"],
                          "arimonitor_call_duration_seconds_count")
        assert sum(duration.values()) == ended

        # status: link, transcoders, the click-to-call consumer and its broker
        assert values(families["arimonitor_ari_link_up"], None, "server")[(server,)] == 1
        assert before["status"]["link"]["state"] == after["status"]["link"]["state"] == "connected"
        alive = families["arimonitor_transcoder_workers_alive"].samples[0].value
        assert alive == before["status"]["processes"]["transcoders"]["alive"] == 1
        reports = after["status"]["processes"]["clicktocall"]
        assert reports and reports[0]["broker"]
        connected = values(families["arimonitor_rabbitmq_connected"], None, "process", "broker")
        assert connected[(reports[0]["process"], reports[0]["broker"])] == 1
        age = families["arimonitor_ari_last_event_age_seconds"].samples[0].value
        assert 0 <= age <= max(60.0, (after["status"]["last_event_age"] or 0) + 1)
        return True

    eventually_assert(compare, timeout=40)

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
        assert reply.status == 200 and reply.read() == b"ok\n"
