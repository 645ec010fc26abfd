"""/metrics and /healthz of a real Engine object in this process (its loop in a thread, no
Asterisk): what the families say against what the console commands say, auth, failures."""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from prometheus_client.parser import text_string_to_metric_families

from arimonitor.config import ConfigError, load_config
from arimonitor.engine.state import Call
from arimonitor.metrics.component import MetricsComponent
from arimonitor.metrics.server import MetricsServer
from tests.console_engine.engine_here import EngineHere
from tests.support import free_port, write_config

pytestmark = pytest.mark.timeout(30)

# Every label any family may carry: all of them take bounded values (families.py).
BOUNDED_LABELS = {"server", "client", "state", "direction", "cause", "reason", "result", "process",
                  "broker", "outcome", "le"}


TWO_SERVERS = {"ari": {"server_id": "pbx1"}, "ari:pbx2": {"url": "http://127.0.0.1:9/ari"}}


@contextmanager
def served(**sections: dict[str, str]) -> Iterator[tuple[EngineHere, MetricsComponent]]:
    """A real engine here with its metrics component listening; both closed after."""
    engine = EngineHere(**sections)
    try:
        component = engine.in_loop(lambda: MetricsComponent(engine.ctx))
        component.start()
        try:
            yield engine, component
        finally:
            component.close()
    finally:
        engine.close()


@pytest.fixture
def here():
    with served() as both:
        yield both


def get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(component) -> dict:
    host, port = component.server.address
    status, text = get(f"http://{host}:{port}/metrics")
    assert status == 200, text
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family, name=None):
    return [s for s in family.samples if name is None or s.name == name]


def test_endpoints_add_up_to_the_list_and_split_by_client_and_state(here):
    engine, component = here
    listed = engine.cmd("list")["data"]
    families = scrape(component)
    endpoints = families["arimonitor_endpoints"]
    assert sum(s.value for s in endpoints.samples) == len(listed) > 0
    by_key: dict = {}
    for row in listed:
        key = (row["client"] or "", row["state"])
        by_key[key] = by_key.get(key, 0) + 1
    assert {(s.labels["client"], s.labels["state"]): s.value for s in endpoints.samples if s.value} == by_key
    # every state of every client is there, zeros included (an alert needs the 0)
    clients = {client for client, _state in by_key}
    assert len(endpoints.samples) == 3 * len(clients)


def test_every_family_is_named_documented_and_bounded(here):
    _engine, component = here
    families = scrape(component)
    ours = [f for name, f in families.items() if name.startswith("arimonitor_")]
    assert len(ours) >= 30
    for family in ours:
        assert family.documentation, family.name
        for sample in family.samples:
            assert set(sample.labels) <= BOUNDED_LABELS, (family.name, sample.labels)
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name


def test_ended_calls_and_click_to_call_outcomes_are_counted_from_the_notifier(here):
    engine, component = here
    publish = engine.ctx.publish

    def traffic():
        publish("call.ended", {"id": "call-9f3a01", "hangup_cause": 16, "end_reason": "hangup",
                               "duration": 12.0, "billsec": 9.5})
        publish("call.ended", {"id": "call-9f3a02", "hangup_cause": 17, "end_reason": "hangup",
                               "duration": 3.0, "billsec": 0.0})
        publish("call.ended", {"id": "call-9f3a03", "hangup_cause": 999, "end_reason": "lost during outage",
                               "duration": 70.0, "billsec": 65.0})
        publish("c2c.final", {"request_id": "req-77b1", "result": "completed", "reason": None})
        publish("c2c.final", {"request_id": "req-77b2", "result": "failed", "reason": "destination_busy"})

    engine.in_loop(traffic)
    families = scrape(component)
    ended = {(s.labels["cause"], s.labels["reason"]): s.value
             for s in samples(families["arimonitor_calls_ended"], "arimonitor_calls_ended_total")}
    assert ended == {("16", "hangup"): 1, ("17", "hangup"): 1, ("other", "lost during outage"): 1}
    duration = families["arimonitor_call_duration_seconds"]
    buckets = {s.labels["le"]: s.value for s in samples(duration, "arimonitor_call_duration_seconds_bucket")}
    assert buckets["5.0"] == 1 and buckets["30.0"] == 2 and buckets["+Inf"] == 3
    assert samples(duration, "arimonitor_call_duration_seconds_sum")[0].value == 85.0
    billsec_count = samples(families["arimonitor_call_billsec_seconds"], "arimonitor_call_billsec_seconds_count")
    assert billsec_count[0].value == 3
    outcomes = {(s.labels["result"], s.labels["reason"]): s.value
                for s in samples(families["arimonitor_clicktocall_outcomes"],
                                 "arimonitor_clicktocall_outcomes_total")}
    assert outcomes == {("completed", ""): 1, ("failed", "destination_busy"): 1}
    # no call id reached any label
    host, port = component.server.address
    text = get(f"http://{host}:{port}/metrics")[1]
    assert "9f3a" not in text and "77b" not in text


def test_counters_match_stats(here):
    engine, component = here
    families = scrape(component)
    counters = engine.cmd("stats")["data"]["counters"]
    received = samples(families["arimonitor_events_received"], "arimonitor_events_received_total")
    assert received[0].value == counters["received"]
    assert received[0].labels == {"server": engine.cfg["ari.server_id"]}


def test_link_and_probe_families_cover_every_server(tmp_path):
    """Two servers: each one's link, probe, outage, events and resyncs under its own `server`,
    never the first server's alone nor a sum labelled with it."""
    with served(**TWO_SERVERS) as (engine, component):
        pbx1, pbx2 = engine.engine.watches["pbx1"], engine.engine.watches["pbx2"]

        def pbx2_story() -> None:
            pbx1.link.on_link({"state": "connected", "t": 1.0, "epoch": "e1"})
            pbx2.state.counters.received += 5
            pbx2.link.on_link({"state": "disconnected", "t": 2.0, "reason": "test"})
            pbx2.link.probe.stalled = True
            engine.engine.notifier.publish("link.resynced", {"server": "pbx2", "total_seconds": 0.3,
                                                             "unseen_seconds": 2.5})
        engine.in_loop(pbx2_story)
        families = scrape(component)

        def by_server(family: str, name: str | None = None) -> dict[str, float]:
            return {s.labels["server"]: s.value for s in samples(families[family], name)}
        assert by_server("arimonitor_ari_link_up") == {"pbx1": 1, "pbx2": 0}
        assert by_server("arimonitor_ari_rest_stalled") == {"pbx1": 0, "pbx2": 1}
        assert set(by_server("arimonitor_ari_auth_failed")) == {"pbx1", "pbx2"}
        assert by_server("arimonitor_outage_open") == {"pbx1": 0, "pbx2": 1}
        assert set(by_server("arimonitor_outage_open_seconds")) == {"pbx2"}
        assert set(by_server("arimonitor_events_dropped", "arimonitor_events_dropped_total")) == {"pbx1", "pbx2"}
        received = by_server("arimonitor_events_received", "arimonitor_events_received_total")
        assert received == {"pbx1": 0, "pbx2": 5}, received
        assert by_server("arimonitor_outage_unseen_seconds",
                         "arimonitor_outage_unseen_seconds_total") == {"pbx1": 0, "pbx2": 2.5}
        assert by_server("arimonitor_resync_duration_seconds",
                         "arimonitor_resync_duration_seconds_count")["pbx2"] >= 1


def test_endpoints_and_calls_count_under_the_server_they_are_on():
    """Two servers: an endpoint under the server it is online on (the first's when online
    nowhere), a call and an ended call under the server it was on, never all under the first."""
    with served(**TWO_SERVERS) as (engine, component):
        watches = engine.engine.watches

        def traffic() -> None:
            for server, ep_id in (("pbx1", "1013010"), ("pbx2", "1013015")):
                watches[server].state.endpoint("PJSIP", ep_id).state = "online"
            now = time.time()
            for server, cid in (("pbx2", "c2"), ("pbx2", "c3"), ("pbx1", "c1")):
                watches[server].state.calls[cid] = Call(cid, server, now, client="101")
            engine.engine.notifier.publish("call.ended", {"server": "pbx2", "hangup_cause": 16,
                                                          "end_reason": "hangup", "duration": 40.0,
                                                          "billsec": 30.0})
        engine.in_loop(traffic)
        listed = engine.cmd("list")["data"]
        families = scrape(component)
        online = {s.labels["server"]: s.value for s in families["arimonitor_endpoints"].samples
                  if s.labels["client"] == "101" and s.labels["state"] == "online"}
        assert online == {"pbx1": 1, "pbx2": 1}, online
        nowhere = sum(1 for r in listed if r["server"] is None)
        by_server = Counter()
        for s in families["arimonitor_endpoints"].samples:
            by_server[s.labels["server"]] += s.value
        assert by_server == {"pbx1": 1 + nowhere, "pbx2": 1}, by_server  # still adds up to `list`
        calls = Counter()
        for s in families["arimonitor_calls"].samples:
            calls[s.labels["server"]] += s.value
        assert calls == {"pbx1": 1, "pbx2": 2}, calls
        ended = {s.labels["server"]: s.value for s in samples(families["arimonitor_calls_ended"],
                                                              "arimonitor_calls_ended_total")}
        assert ended == {"pbx2": 1}, ended
        for family in ("arimonitor_call_duration_seconds", "arimonitor_call_billsec_seconds"):
            counts = {s.labels["server"]: s.value for s in samples(families[family], family + "_count")}
            assert counts == {"pbx1": 0, "pbx2": 1}, (family, counts)


def test_every_reader_s_restarts_are_counted_under_its_program(here):
    """One server: process="ari-reader" as always; two: each reader's own program, so a
    restart of pbx2's reader is seen (it used to be the first server's reader alone)."""
    _engine, component = here

    def restarts(component) -> dict[str, float]:
        family = scrape(component)["arimonitor_process_restarts"]
        return {s.labels["process"]: s.value for s in samples(family, "arimonitor_process_restarts_total")
                if s.labels["process"].startswith("ari-reader")}
    assert restarts(component) == {"ari-reader": 0}
    with served(**TWO_SERVERS) as (two, metrics):
        links = {name: w.link for name, w in two.engine.watches.items()}

        def connects(pbx1: int, pbx2: int) -> None:
            links["pbx1"].reader_stats = {"connects": pbx1}
            links["pbx2"].reader_stats = {"connects": pbx2}
        two.in_loop(lambda: connects(4, 5))
        assert restarts(metrics) == {"ari-reader_00": 0, "ari-reader_01": 0}
        two.in_loop(lambda: connects(5, 1))  # pbx2's reader started again: its counters reset
        assert restarts(metrics) == {"ari-reader_00": 0, "ari-reader_01": 1}


def test_healthz_names_the_problem_while_the_link_is_down(here):
    _engine, component = here
    host, port = component.server.address
    status, text = get(f"http://{host}:{port}/healthz")
    assert status == 503
    assert "link: the reader has not connected to Asterisk yet" in text  # as arictl status names it
    assert get(f"http://{host}:{port}/nothing")[0] == 404


def test_basic_auth_guards_every_path():
    server = MetricsServer("127.0.0.1", 0, lambda: pytest.fail("no scrape without auth"),
                           user="prom", password="s3cret")
    server.start()
    try:
        host, port = server.address
        for path in ("/metrics", "/healthz"):
            assert get(f"http://{host}:{port}{path}")[0] == 401
            assert get(f"http://{host}:{port}{path}", ("prom", "wrong"))[0] == 401
    finally:
        server.stop()


def test_a_loop_that_does_not_answer_is_a_503_with_the_reason():
    def take():
        raise TimeoutError("the engine loop did not answer within 2 s")

    server = MetricsServer("127.0.0.1", 0, take)
    server.start()
    try:
        host, port = server.address
        for path in ("/metrics", "/healthz"):
            status, text = get(f"http://{host}:{port}{path}")
            assert status == 503 and "did not answer" in text
        assert server.failed == 2
    finally:
        server.stop()


def test_config_refuses_metrics_beyond_loopback_without_a_password(tmp_path):
    ini = write_config(tmp_path, {"metrics": {"host": "0.0.0.0", "port": free_port()}})
    with pytest.raises(ConfigError, match=r"\[metrics\] host = 0.0.0.0 .*not loopback"):
        load_config(ini, environ={})
    ini = write_config(tmp_path, {"metrics": {"host": "0.0.0.0", "user": "prom", "password": "x"}})
    assert load_config(ini, environ={})["metrics.user"] == "prom"
    ini = write_config(tmp_path, {"metrics": {"user": "prom"}})
    with pytest.raises(ConfigError, match="set both or neither"):
        load_config(ini, environ={})


def test_port_zero_is_off(tmp_path):
    engine = EngineHere(metrics={"port": "0"})
    try:
        component = engine.in_loop(lambda: MetricsComponent(engine.ctx))
        component.start()
        assert component.server is None
        component.close()
    finally:
        engine.close()
