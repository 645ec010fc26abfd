"""What the live suite (tests/live) reads of arimonitor, held here on the simulator: CI runs the
live suite against a real Asterisk, but a machine whose CPU cannot run that Asterisk skips it.
The tree is the live suite's own (tests/live/monitor.py: its config, its `arictl --json`, its
log and supervisorctl helpers), pointed at a SimServer, and this asserts the one-server shapes
the live tests read: a renamed key or log would fail here first, not only in CI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from mutagen.id3 import ID3

from arimonitor.sim.testing import SimServer
from tests.live.monitor import ENDPOINTS, monitor_of
from tests.support import eventually, eventually_assert


@dataclass
class SimAsterisk:
    """The part of tests/live/asterisk.Asterisk that monitor_of reads, for a SimServer."""
    sim: SimServer

    @property
    def http(self) -> int:
        return self.sim.port

    @property
    def ami(self) -> int:
        return self.sim.ami_port

    def ari_password(self) -> str:
        return self.sim.password

    def ami_secret(self) -> str:
        return self.sim.password

    def recordings(self) -> Path:
        return self.sim.recordings


@pytest.fixture
def lab(tmp_path):
    with SimServer(endpoints=list(ENDPOINTS), user="arimon", ami=True) as sim, \
            monitor_of(SimAsterisk(sim), tmp_path / "arimonitor") as monitor:
        for n, ep in enumerate(("1003000", "1003010", "1013010", "1013015")):
            sim.control.register(ep, ip="127.0.0.1", port=5070 + n)
        monitor.start_watching("1003000", "1003010", "1013010", "1013015")
        yield sim, monitor


def _ended(monitor, call_id: str) -> dict:
    def row():
        rows = [r for r in monitor.arictl("history", "--limit", "50")["data"] if r["id"] == call_id]
        return rows[0] if rows else None
    return eventually(row, timeout=20)


def test_the_one_server_shapes_the_live_suite_reads(lab):
    sim, monitor = lab
    # test_registration: list rows, the registry of remote IPs, where contacts came from
    row = next(r for r in monitor.arictl("list")["data"] if r["id"] == "1003010")
    assert (row["state"], row["ip"], row["port"], row["last_seen"]) == ("online", "127.0.0.1", 5071, None)
    assert {"source", "contact_status", "peer_status"} <= set(row)
    ips = {r["ip"]: r for r in monitor.arictl("ips")["data"]}
    assert "1003010" in ips["127.0.0.1"]["endpoints"]

    # test_clicktocall / test_races / test_outages: status, one server's keys at the top
    def ready():
        status = monitor.arictl("status")
        data = status["data"]
        assert data["processes"]["clicktocall"][0]["broker"], data["processes"]
        assert "clicktocall: seen" in status["text"]
        return data
    data = eventually_assert(ready, timeout=30)
    assert data["last_resync"]["contacts_source"] == "ami"
    assert data["link"]["state"] == "connected" and data["link"]["epoch"] and data["link"]["since"]
    assert data["state"]["asterisk_startup"]
    assert data["outage_open_since"] is None and "last_outage" in data
    assert isinstance(data["processes"]["reader"]["reconnects"], int)
    counters = monitor.arictl("stats")["data"]["counters"]
    assert {"rest_waited", "rest_races", "rest_wait_failed"} <= set(counters)

    # test_calls: a gravar=S client's direct call (7 + endpoint): active, then its history
    # row, its calls-log lines, its WAV under [paths] recordings and its tagged MP3
    sim.control.behaviour("1013010", talk=2.0)
    caller = sim.control.call("1013010", "71003010")
    active = eventually(lambda: [c for c in monitor.arictl("calls")["data"] if c["origin"] == "1013010"])
    assert active[0]["destination"] == "1003010" and active[0]["id"] == caller
    row = _ended(monitor, caller)
    assert (row["origin"], row["destination"], row["client"], row["direction"]) == \
        ("1013010", "1003010", "101", "internal")
    assert (row["hangup_cause"], row["end_reason"]) == (16, "hangup")
    assert row["answered"] and row["billsec"] > 0 and row["recording"]
    assert {"duration", "dial_status", "answered_by", "recording_state", "created", "ended"} <= set(row)
    wav = sim.recordings / f"{row['recording']}.wav"
    assert wav.name == f"{caller}.wav"   # one server: the recording's name is the call's id
    calls_log = monitor.log("calls.log")
    assert f"call={caller} client=101 1013010 -> 1003010 (ended)" in calls_log

    def converted():
        rec = next(r for r in monitor.arictl("recordings")["data"]["recordings"] if r["call_id"] == caller)
        assert rec["job_state"] == "done", rec
        return rec
    tags = ID3(eventually_assert(converted, timeout=30)["mp3"])
    assert (str(tags["TIT2"]), str(tags["TPE1"])) == ("1013010 -> 1003010", "Lab 101")

    # test_outages: the logs it reads, the engine's pid, supervisorctl on arimonitor:engine
    assert monitor.log("ari-reader_00.log") and monitor.log("engine.log")
    assert monitor.tree.states().get("engine") == "RUNNING" and monitor.pid("engine") > 0
    assert "stopped" in monitor.ctl("stop", "arimonitor:engine")
    assert "started" in monitor.ctl("start", "arimonitor:engine")
