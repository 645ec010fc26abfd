"""A snapshot as Prometheus metric families: every name, HELP line and label lives here.

Conventions (prometheus.io/docs/practices/naming): `arimonitor_` prefix, base units
(`_seconds`), counters end in `_total` (prometheus_client adds it), and labels take only
bounded values: server ids, clients and endpoint states of the v2.7 files, call directions,
Q.850 cause numbers, click-to-call results and reasons of `clicktocall/reasons.py`, broker
names of `__MQSERVERS__.DEF`. Never a call id, a phone number or an address.

Counters are since the engine process started (Prometheus handles the reset at a restart);
`arictl stats` shows the same numbers under SINCE START.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from arimonitor.engine.states import ENDPOINT_STATES
from arimonitor.metrics.readings import CALL_BUCKETS, RESYNC_BUCKETS, Histogram

PREFIX = "arimonitor_"
NO_RESYNC = Histogram(RESYNC_BUCKETS).view()  # a server not resynced yet: zero counts
NO_CALL = Histogram(CALL_BUCKETS).view()      # a server with no call ended yet
STALE_AFTER = 15.0  # a process reporting every 5 s is stale after three missed reports

# Engine counters (engine/state.py Counters) exported as `arimonitor_<name>_total{server}`.
EVENT_COUNTERS = {
    "events_received": ("received", "ARI events received from the reader"),
    "events_applied": ("applied", "ARI events that changed the engine's state"),
    "events_duplicate": ("duplicate", "ARI events that repeated one already applied"),
    "events_malformed": ("malformed", "frames that were not a readable ARI event"),
    "events_unknown": ("unknown_type", "ARI events of a type the engine does not handle"),
    "events_superseded": ("superseded", "frames dropped because a resync already covered them"),
    "events_lost": ("frames_lost", "frames lost between reader and engine (sequence gaps)"),
    "calls_lost": ("calls_lost", "calls ended as lost during an outage"),
    "outages": ("outages", "outages closed (link down or engine down, until the resync)"),
    "resyncs": ("resyncs", "resynchronisations with ARI REST done"),
    "resync_failures": ("resync_failures", "resynchronisations that failed"),
    "asterisk_restarts": ("asterisk_restarts", "Asterisk restarts seen (new startup time)"),
    "ari_link_connects": ("link_up", "times the reader's WebSocket to Asterisk came up"),
    "ari_auth_failures": ("auth_failures", "episodes of ARI REST refusing our credentials"),
    "readers_refused": ("readers_refused", "reader handshakes the CURVE events socket refused"),
}


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=list(labels))


def _per_server_histogram(name: str, doc: str, views: dict[str, dict[str, Any]],
                          servers: list[str], empty: dict[str, Any]) -> HistogramMetricFamily:
    """One histogram per configured server, zero counts until it has one."""
    family = HistogramMetricFamily(PREFIX + name, doc, labels=["server"])
    for server in servers:
        view = views.get(server) or empty
        family.add_metric([server], [(_bound(le), n) for le, n in view["buckets"]], view["sum"])
    return family


def _servers(snap: dict[str, Any]) -> list[str]:
    """The configured servers in config order, the first = [ari]."""
    return list(snap["servers"]) or [snap["server"]]


def _bound(le: float) -> str:
    return "+Inf" if le == float("inf") else repr(float(le))


def families(snap: dict[str, Any], db: dict[str, Any]) -> Iterator[Metric]:
    yield from _engine(snap)
    yield from _calls(snap)
    yield from _link(snap)
    yield from _processes(snap)
    yield from _bus(snap)
    yield from _recordings(db)


def _engine(snap: dict[str, Any]) -> Iterator[Metric]:
    start = _gauge("engine_start_time_seconds", "when the engine process started (epoch)")
    start.add_metric([], snap["started"])
    yield start
    # HELP texts as before several servers: one server's scrape stays byte for byte the same.
    # `server`: where the endpoint is online (the first server's for one online nowhere).
    endpoints = _gauge("endpoints", "endpoints by client and state; the samples add up to "
                       "every endpoint `arictl list` shows", ("server", "client", "state"))
    # Every state of every client on every server, zeros included: "all of client X offline"
    # must be a 0 an alert can see, not a series that vanished.
    clients = {client for _server, client, _state in snap["endpoints"]}
    counts = dict.fromkeys(((server, client, state) for server in _servers(snap)
                            for client in clients for state in ENDPOINT_STATES), 0)
    counts.update(snap["endpoints"])
    for (server, client, state), n in sorted(counts.items()):
        endpoints.add_metric([server, client, state], n)
    yield endpoints
    for name, (key, doc) in EVENT_COUNTERS.items():
        family = _counter(name, doc, ("server",))
        for each, view in snap["servers"].items():  # each server's own, never a sum
            family.add_metric([each], view["counters"].get(key, 0))
        yield family


def _calls(snap: dict[str, Any]) -> Iterator[Metric]:
    """Calls now and ended, each under the server it is (was) on."""
    tallies, servers = snap["tallies"], _servers(snap)
    calls = _gauge("calls", "active calls by client, direction and state (ringing, up)",
                   ("server", "client", "direction", "state"))
    for (server, client, direction, state), n in sorted(snap["calls"].items()):
        calls.add_metric([server, client, direction, state], n)
    yield calls
    ended = _counter("calls_ended", "calls ended, by Q.850 hangup cause and why they ended",
                     ("server", "cause", "reason"))
    for (server, cause, reason), n in sorted(tallies["ended"].items()):
        ended.add_metric([server, cause, reason], n)
    yield ended
    yield _per_server_histogram("call_duration_seconds", "length of ended calls, ringing included",
                                tallies["duration"], servers, NO_CALL)
    yield _per_server_histogram("call_billsec_seconds", "talk time of ended calls (answer to hangup)",
                                tallies["billsec"], servers, NO_CALL)
    outcomes = _counter("clicktocall_outcomes", "click-to-call requests finished by the engine, "
                        "by result and reason", ("result", "reason"))
    for (result, reason), n in sorted(tallies["c2c"].items()):
        outcomes.add_metric([result, reason], n)
    yield outcomes
    if snap["c2c_in_flight"] is not None:
        flight = _gauge("clicktocall_in_flight", "click-to-call calls placed and not finished")
        flight.add_metric([], snap["c2c_in_flight"])
        yield flight


def _link(snap: dict[str, Any]) -> Iterator[Metric]:
    """Every configured server's link, probe, outage and reader, labelled with its name."""
    servers, tallies = snap["servers"], snap["tallies"]
    for name, doc, value in (
            ("ari_link_up", "1 while the reader's WebSocket to Asterisk is connected",
             lambda v: v["link"].get("state") == "connected"),
            ("ari_rest_stalled", "1 while the ARI REST probe fails or is slow",
             lambda v: v["probe"].get("stalled")),
            ("ari_auth_failed", "1 while ARI REST refuses our credentials",
             lambda v: v["probe"].get("auth_failed")),
            ("outage_open", "1 while events may be unseen (link down, resync pending)",
             lambda v: v["outage_open_since"] is not None)):
        family = _gauge(name, doc, ("server",))
        for server, view in servers.items():
            family.add_metric([server], 1 if value(view) else 0)
        yield family
    ages = [(server, v["last_event_age"]) for server, v in servers.items()
            if v["last_event_age"] is not None]
    if ages:
        family = _gauge("ari_last_event_age_seconds", "seconds since the last ARI event arrived",
                        ("server",))
        for server, age in ages:
            family.add_metric([server], age)
        yield family
    open_since = [(server, v["outage_open_since"]) for server, v in servers.items()
                  if v["outage_open_since"] is not None]
    if open_since:
        family = _gauge("outage_open_seconds", "how long the open outage has been unseen",
                        ("server",))
        for server, since in open_since:
            family.add_metric([server], max(0.0, snap["t"] - since))
        yield family
    unseen = _counter("outage_unseen_seconds", "seconds of closed outages during which events "
                      "were not seen", ("server",))
    for server in servers:
        unseen.add_metric([server], tallies["unseen_seconds"].get(server, 0.0))
    yield unseen
    yield _per_server_histogram("resync_duration_seconds", "time from a resync's start to its result",
                                tallies["resync"], list(servers), NO_RESYNC)
    dropped = _counter("events_dropped", "frames the reader dropped because the engine did "
                       "not take them (since the reader started)", ("server",))
    for server, view in servers.items():
        dropped.add_metric([server], view["reader"].get("dropped") or 0)
    yield dropped


def _processes(snap: dict[str, Any]) -> Iterator[Metric]:
    restarts = _counter("process_restarts", "restarts of other processes the engine saw "
                        "(transcoder: a worker declared gone; ari-reader: its counters reset)",
                        ("process",))
    for process, server in _readers(snap):
        restarts.add_metric([process], snap["reader_restarts"].get(server, 0))
    workers = snap["transcoders"]
    if workers is not None:
        restarts.add_metric(["transcoder"], workers.get("gone", 0))
        alive = _gauge("transcoder_workers_alive", "transcoder workers heard from lately")
        alive.add_metric([], workers["alive"])
        yield alive
    yield restarts
    connected = _gauge("rabbitmq_connected", "1 while the click-to-call consumer is connected "
                       "to this broker and reporting", ("process", "broker"))
    messages = _counter("clicktocall_messages", "click-to-call messages the consumer handled, "
                        "by what became of them", ("process", "outcome"))
    for report in snap["clicktocall"]:
        process = str(report.get("process") or "clicktocall")
        fresh = snap["t"] - report.get("received", 0) <= STALE_AFTER
        broker = report.get("broker")
        connected.add_metric([process, str(broker or "")], 1 if broker and fresh else 0)
        counts = report.get("counters") or {}
        for outcome, n in sorted(counts.items() if isinstance(counts, dict) else ()):
            if isinstance(n, (int, float)):
                messages.add_metric([process, str(outcome)], n)
    yield connected
    yield messages


def _readers(snap: dict[str, Any]) -> list[tuple[str, str]]:
    """(process label, server) of each reader: `ari-reader` with one server, as always; with
    several, each reader's supervisord program, `ari-reader_NN` (NN: its server's place in the
    config, as `arimonitor restart ari-reader_01` names it)."""
    servers = _servers(snap)
    if len(servers) == 1:
        return [("ari-reader", servers[0])]
    return [(f"ari-reader_{n:02d}", server) for n, server in enumerate(servers)]


def _bus(snap: dict[str, Any]) -> Iterator[Metric]:
    bus = snap.get("bus") or {}
    if not bus.get("enabled"):
        return
    events = _counter("bus_events", "events bus: events published to RabbitMQ, confirmed by "
                      "it, dropped from the full buffer (oldest first)", ("outcome",))
    for outcome in ("published", "confirmed", "dropped"):
        events.add_metric([outcome], bus.get(outcome, 0))
    yield events
    gaps = _counter("bus_gap_publications", "events bus: engine publications its SUB did not get, "
                    "fetched from the engine's kept ring (caught_up) or lost (missed)", ("outcome",))
    for outcome in ("caught_up", "missed"):
        gaps.add_metric([outcome], bus.get(outcome, 0))
    yield gaps
    queued = _gauge("bus_queued", "events bus: events waiting for the broker")
    queued.add_metric([], bus.get("queued", 0))
    yield queued
    connected = _gauge("bus_connected", "1 while the events bus is connected to RabbitMQ")
    connected.add_metric([], 1 if bus.get("connected") else 0)
    yield connected


def _recordings(db: dict[str, Any]) -> Iterator[Metric]:
    recordings = _gauge("recordings", "recordings by state (recording, done, failed...)", ("state",))
    for state, n in sorted(db["recordings"].items()):
        recordings.add_metric([state], n)
    yield recordings
    jobs = _gauge("transcode_backlog_jobs", "transcode jobs not finished (pending or sent)")
    jobs.add_metric([], db["backlog_jobs"])
    yield jobs
    audio = _gauge("transcode_backlog_audio_seconds", "seconds of audio waiting to be transcoded")
    audio.add_metric([], db["backlog_audio_seconds"])
    yield audio
