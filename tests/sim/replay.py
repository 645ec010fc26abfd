"""Drive the simulator through a captured scenario and compare what it emits with the trace.

For each trace in tests/data/ari/traces (kept in the repository), a scenario lists the phone-side actions (register,
call, hang up) with their trace times; the REST calls come from the trace's .rest.jsonl. Steps
run in trace-time order; before each one the driver waits until the sim has emitted as many
(compared) events as the trace shows before that moment, so asynchronous behaviour (ringing,
answer, timeouts) lines up with the REST calls as it did on the real Asterisk.

Compared: per object (each channel, bridge, recording, endpoint, playback) the ordered list of
event types about it, plus the count of every type, plus the REST status of every request.
Across objects Asterisk's own order is not stable (events come from several threads, NOTES.md).
Not compared (IGNORED): ChannelVarset (RTCP statistics and BRIDGEPEER/BRIDGEPVTCALLID updates
whose count depends on media and bridge technology), ChannelCallerId and ChannelConnectedLine
(SIP party-ID updates the sim does not model), DeviceStateChanged (Asterisk's device-state
taskprocessor coalesces and repeats them by timing: 1 to 3 copies of one change in the traces).
"""

from __future__ import annotations

import datetime
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.support import ARI

TRACES = ARI / "traces"
IGNORED = {"ChannelVarset", "ChannelCallerId", "ChannelConnectedLine", "DeviceStateChanged"}
MARGIN = 0.004  # a REST call's own events come up to ~4 ms before its logged response time


def ts(event: dict[str, Any]) -> float:
    return datetime.datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def load(name: str) -> tuple[list[dict], list[dict]]:
    events = [json.loads(line) for line in (TRACES / f"{name}.jsonl").read_text().splitlines() if line]
    rest = [json.loads(line) for line in (TRACES / f"{name}.rest.jsonl").read_text().splitlines() if line]
    return events, rest


def compared(events: list[dict]) -> list[dict]:
    return [e for e in events if isinstance(e, dict) and e.get("type") not in IGNORED]


def object_keys(event: dict[str, Any]) -> list[str]:
    keys = []
    for field_ in ("channel", "peer", "caller"):
        if isinstance(event.get(field_), dict) and "id" in event[field_]:
            keys.append("channel:" + event[field_]["id"])
    if "bridge" in event:
        keys.append("bridge:" + event["bridge"]["id"])
    if "recording" in event:
        keys.append("recording:" + event["recording"]["name"])
    if "playback" in event:
        keys.append("playback:" + event["playback"]["id"])
    if "endpoint" in event:
        keys.append("endpoint:" + event["endpoint"]["resource"])
    return keys


def normalised(events: list[dict]) -> dict[str, list[str]]:
    """Object -> ordered event types; ids renamed by order of first appearance."""
    names: dict[str, str] = {}
    per: dict[str, list[str]] = {}
    for event in compared(events):
        for key in object_keys(event):
            kind = key.split(":", 1)[0]
            if kind in ("channel", "bridge") and key not in names:
                names[key] = f"{kind}#{sum(1 for n in names if n.startswith(kind))}"
            per.setdefault(names.get(key, key), []).append(event["type"])
    return per


@dataclass
class Scenario:
    name: str
    subscribe_all: bool = True
    before: list[Callable[[Any], None]] = field(default_factory=list)  # before the WebSocket
    actions: list[tuple[float, Callable[[Any], None]]] = field(default_factory=list)  # (trace t, fn)
    time_scale: float = 0.05


class Driver:
    def __init__(self, sim: Any, stream: Any, scenario: Scenario) -> None:
        self.sim, self.stream, self.scenario = sim, stream, scenario
        self.trace_events, self.trace_rest = load(scenario.name)
        self.expected = compared(self.trace_events)
        self.times = [ts(e) for e in self.expected]
        self.statuses: list[tuple[str, int, int]] = []
        self.stalls: list[str] = []
        self.bodies: list[tuple[str, Any]] = []
        self.trace_ids = {e[f]["id"] for e in self.trace_events for f in ("channel", "bridge")
                          if e["type"] in ("ChannelCreated", "BridgeCreated") and f in e}
        self.http = requests.Session()

    def _expected_before(self, t: float) -> int:
        return sum(1 for x in self.times if x < t - MARGIN)

    def _wait_count(self, n: int, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while len(compared(self.stream.snapshot())) < n and time.monotonic() < deadline:
            time.sleep(0.003)
        got = len(compared(self.stream.snapshot()))
        if got < n:
            wanted = Counter(e["type"] for e in self.expected[:n])
            have = Counter(e["type"] for e in compared(self.stream.snapshot()))
            self.stalls.append(f"waited {timeout}s for {n} events, got {got}: missing {dict(wanted - have)}")

    def _id_map(self) -> dict[str, str]:
        """Trace channel/bridge id -> sim id, pairing them by order of creation."""
        mapping = {}
        for kind, field_ in (("ChannelCreated", "channel"), ("BridgeCreated", "bridge")):
            theirs = [e[field_]["id"] for e in self.trace_events if e["type"] == kind]
            ours = [e[field_]["id"] for e in self.stream.snapshot() if e.get("type") == kind]
            mapping.update({t: o for t, o in zip(theirs, ours) if t != o})
        return mapping

    def _referenced(self, record: dict[str, Any]) -> set[str]:
        params = record.get("params") or {}
        text = record["path"] + " " + " ".join(str(v) for v in params.values())
        parts = record["path"].strip("/").split("/")
        created = {str(params[k]) for k in ("channelId", "otherChannelId", "bridgeId", "snoopId") if k in params}
        if record["method"] == "POST" and len(parts) == 2 and parts[0] in ("channels", "bridges"):
            created.add(parts[1])  # POST /channels/{id}, /bridges/{id}: this call creates it
        return {i for i in self.trace_ids if i in text and i not in created}

    def _rest(self, record: dict[str, Any]) -> None:
        # a REST call about a channel or bridge waits until the sim has announced it
        wanted = self._referenced(record)
        deadline = time.monotonic() + 3.0
        while True:
            mapping = self._id_map()
            seen = {e.get(k, {}).get("id") for e in self.stream.snapshot() for k in ("channel", "bridge")
                    if isinstance(e.get(k), dict)}
            if all(i in mapping or i in seen for i in wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.003)
        path = record["path"]
        for theirs, ours in mapping.items():
            path = path.replace(theirs, ours)
        params = {k: mapping.get(v, v) for k, v in (record.get("params") or {}).items()}
        auth = (self.sim.user, self.sim.password if record["status"] != 401 else "wrong")
        response = self.http.request(record["method"], self.sim.url + path, params=params,
                                     json=record.get("json"), auth=auth, timeout=10)
        self.statuses.append((f"{record['method']} {record['path']}", record["status"], response.status_code))
        if record["status"] >= 400 and response.json() != record["body"]:
            # error bodies are part of the contract: clients match on them
            self.stalls.append(f"REST {record['method']} {record['path']}: body {response.text}, "
                               f"trace {record['body']}")
        elif response.status_code < 300 and response.content:
            self.bodies.append((record["path"], response.json()))

    def run(self) -> None:
        steps: list[tuple[float, Callable[[], None]]] = []
        steps += [(r["t"], (lambda r=r: self._rest(r))) for r in self.trace_rest]
        steps += [(t, (lambda fn=fn: fn(self.sim.control))) for t, fn in self.scenario.actions]
        for t, step in sorted(steps, key=lambda s: s[0]):
            self._wait_count(self._expected_before(t))
            step()
        self._wait_count(len(self.expected), timeout=5.0)
        self.stream.quiet(0.15)

    def differences(self) -> list[str]:
        problems = list(self.stalls)
        problems += [f"REST {what}: trace {want}, sim {got}" for what, want, got in self.statuses if want != got]
        ours = self.stream.snapshot()
        want_counts = Counter(e["type"] for e in self.expected)
        got_counts = Counter(e["type"] for e in compared(ours))
        if want_counts != got_counts:
            problems.append(f"event counts differ: trace-only {dict(want_counts - got_counts)}, "
                            f"sim-only {dict(got_counts - want_counts)}")
        want, got = normalised(self.trace_events), normalised(ours)
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                problems.append(f"{key}:\n  trace {want.get(key)}\n  sim   {got.get(key)}")
        return problems


def trace_endpoints() -> list[str]:
    """The lab PBX's endpoints, in Asterisk's order (GET /endpoints in registration.rest)."""
    _, rest = load("registration")
    return [e["resource"] for e in rest[0]["body"]]
