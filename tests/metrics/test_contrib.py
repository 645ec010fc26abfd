"""contrib/grafana/arimonitor.json and contrib/prometheus/alerts.yml name only metrics the engine
exports, the dashboard imports as Grafana expects, and the rules are valid (promtool too, when
it is installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections import Counter

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from arimonitor.metrics.readings import Tallies
from arimonitor.metrics.server import MetricsServer
from tests.support import ROOT

DASHBOARD = ROOT / "contrib" / "grafana" / "arimonitor.json"
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\barimonitor_[a-z0-9_]+")
# Series Prometheus makes itself for every scrape job.
PROMETHEUS_OWN = {"up"}


def full_snapshot() -> tuple[dict, dict]:
    """A snapshot with every optional part present, so every family the code can export shows."""
    tallies = Tallies("asterisk1")
    tallies.on_call_ended("call.ended", {"hangup_cause": 16, "end_reason": "hangup", "duration": 3,
                                         "billsec": 2, "server": "pbx2"})
    tallies.on_c2c_final("c2c.final", {"result": "completed"})
    tallies.on_resynced("link.resynced", {"total_seconds": 0.2, "unseen_seconds": 4.0,
                                          "server": "asterisk1"})
    snap = {
        "t": 1000.0, "server": "asterisk1", "started": 900.0,
        "endpoints": Counter({("asterisk1", "101", "online"): 3, ("pbx2", "101", "online"): 1,
                              ("asterisk1", "101", "offline"): 1}),
        "calls": Counter({("pbx2", "101", "internal", "up"): 1}),
        "counters": {}, "link": {"state": "connected"}, "probe": {"stalled": False},
        "last_event_age": 1.5, "reader": {"dropped": 0}, "reader_restarts": {"pbx2": 1},
        "outage_open_since": 990.0, "transcoders": {"alive": 2, "known": 2, "gone": 0},
        "clicktocall": [{"process": "clicktocall", "broker": "[main] guest@127.0.0.1:5672/",
                         "received": 999.0, "counters": {"accepted": 4}}],
        "c2c_in_flight": 1, "tallies": tallies.view(),
        "servers": {name: {"link": {"state": "connected"}, "probe": {"stalled": False},
                           "counters": {}, "reader": {"dropped": 0}, "outage_open_since": 990.0,
                           "last_event_age": 1.5} for name in ("asterisk1", "pbx2")},
        "bus": {"enabled": True, "published": 5, "confirmed": 4, "dropped": 1, "queued": 1,
                "connected": True},
    }
    db = {"recordings": {"done": 2}, "backlog_jobs": 1, "backlog_audio_seconds": 30.0}
    return snap, db


@pytest.fixture(scope="module")
def scraped() -> str:
    server = MetricsServer("127.0.0.1", 0, full_snapshot)
    server.start()
    try:
        host, port = server.address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as reply:
            return reply.read().decode()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def exported(scraped) -> set[str]:
    """Every series name a query may use: gauges as named, counters with _total, histograms
    with _bucket/_sum/_count."""
    names = set()
    for family in text_string_to_metric_families(scraped):
        names |= {s.name for s in family.samples}
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return queries


def test_the_dashboard_imports_with_a_datasource_variable():
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["title"] and board["uid"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    graphs = [p for p in board["panels"] if p["type"] != "row"]
    assert len(graphs) >= 15
    for panel in graphs:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
    # what the issue asks the fleet view to show
    titles = " ".join(p["title"].lower() for p in graphs)
    for wanted in ("online per client", "calls now", "calls per minute", "causes", "click-to-call",
                   "transcode backlog", "last event age", "lost", "ari link"):
        assert wanted in titles, wanted


def test_every_dashboard_query_names_exported_metrics(exported):
    used = {name for query in dashboard_queries() for name in METRIC.findall(query)}
    assert len(used) >= 20
    assert used <= exported, sorted(used - exported)


def load_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alerts_are_well_formed_and_name_exported_metrics(exported):
    rules = load_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")"), rule["alert"]
        used = set(METRIC.findall(expr)) | (PROMETHEUS_OWN & set(re.findall(r"\b[a-z_]+\b", expr)))
        assert used and used <= exported | PROMETHEUS_OWN, (rule["alert"], used - exported)
    # the alerts the issue asks for
    joined = {r["alert"]: r["expr"] for r in rules}
    assert "arimonitor_ari_link_up == 0" in joined["ArimonitorAriLinkDown"]
    assert "arimonitor_ari_last_event_age_seconds" in joined["ArimonitorEventLag"]
    assert 'up{job="arimonitor"}' in joined["ArimonitorNotScraped"]
    assert "deriv(arimonitor_transcode_backlog_audio_seconds" in joined["ArimonitorTranscodeBacklogGrowing"]
    assert 'result="failed"' in joined["ArimonitorClickToCallFailureRatio"]
    assert 'state="online"' in joined["ArimonitorClientAllOffline"]


def test_a_client_is_offline_only_when_no_server_has_one_of_its_endpoints_online():
    """Endpoints count under the server they are online on (the first's while online nowhere):
    grouped per server, a client online on pbx2 only would be "all offline" on pbx1. The rule
    sums the servers away; its words name no server (tests/metrics/alerts_test.yml runs it)."""
    rule = next(r for r in load_rules() if r["alert"] == "ArimonitorClientAllOffline")
    assert rule["expr"].count("sum without (server, state) (arimonitor_endpoints") == 2, rule["expr"]
    assert "min without (server) (arimonitor_ari_link_up) == 1" in rule["expr"], rule["expr"]
    assert "$labels.server" not in str(rule["annotations"])


# Families about one server's link and probe: a series per configured server (issue 14).
PER_SERVER = ("arimonitor_ari_link_up", "arimonitor_ari_rest_stalled", "arimonitor_ari_auth_failed",
              "arimonitor_outage_open", "arimonitor_ari_last_event_age_seconds",
              "arimonitor_outage_open_seconds", "arimonitor_events_dropped_total",
              "arimonitor_events_received_total", "arimonitor_outage_unseen_seconds_total",
              "arimonitor_call_duration_seconds_count", "arimonitor_call_billsec_seconds_count")


def test_link_and_probe_families_have_a_series_per_server_and_alerts_name_it(scraped):
    servers: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.name in PER_SERVER:
                servers.setdefault(sample.name, set()).add(sample.labels["server"])
    assert servers == {name: {"asterisk1", "pbx2"} for name in PER_SERVER}, servers
    # an alert on them fires per server: its summary must say which
    for rule in load_rules():
        about = METRIC.findall(rule["expr"])
        if about and any(about[0].startswith(name.removesuffix("_total")) for name in PER_SERVER):
            assert "$labels.server" in rule["annotations"]["summary"], rule["alert"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed; the YAML tests above still run")
def test_promtool_accepts_the_rules_and_lints_the_scrape(scraped, tmp_path):
    checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in checked.stdout
    linted = subprocess.run(["promtool", "check", "metrics"], input=scraped, capture_output=True,
                            text=True, timeout=60, check=False)
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed; the YAML tests above still run")
def test_promtool_fires_the_alerts_as_their_unit_tests_expect():
    """tests/metrics/alerts_test.yml: the rules evaluated on made-up series (several servers)."""
    tested = subprocess.run(["promtool", "test", "rules", str(ROOT / "tests" / "metrics" / "alerts_test.yml")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
