"""Faults on request: dropped WebSocket, restart, slow or failing REST, malformed frames."""

from __future__ import annotations

import json

import pytest
import requests

from arimonitor.sim.testing import SimServer
from tests.sim.wsclient import EventStream
from tests.support import eventually


@pytest.fixture
def sim():
    with SimServer(endpoints=["1013010"], time_scale=0.02) as server:
        yield server


def test_drop_websocket(sim) -> None:
    stream = EventStream(sim.ws_url, sim.user, sim.password)
    eventually(lambda: sim.control.state()["connections"])
    assert sim.control.drop_websocket() == 1
    assert stream.closed.wait(5)
    again = EventStream(sim.ws_url, sim.user, sim.password)  # and a reconnect works
    sim.control.register("1013010")
    again.wait_type("PeerStatusChange")
    again.close()


def test_restart_forgets_channels_and_changes_identity(sim) -> None:
    auth = (sim.user, sim.password)
    sim.control.register("1013010")
    before = requests.get(sim.url + "/asterisk/info", auth=auth, timeout=5).json()
    stream = EventStream(sim.ws_url, sim.user, sim.password)
    requests.post(sim.url + "/channels", params={"endpoint": "PJSIP/1013010", "app": "arimonitor"},
                  auth=auth, timeout=5)
    stream.wait_type("StasisStart")
    sim.control.restart(down_for=0.3)
    assert stream.closed.wait(5)
    after = requests.get(sim.url + "/asterisk/info", auth=auth, timeout=5).json()
    assert after["system"]["entity_id"] != before["system"]["entity_id"]
    assert after["status"]["startup_time"] >= before["status"]["startup_time"]
    assert requests.get(sim.url + "/channels", auth=auth, timeout=5).json() == []
    stream.close()


def test_failing_and_slow_rest(sim) -> None:
    auth = (sim.user, sim.password)
    sim.control.rest_fault(status=503, count=2, path="/channels")
    assert [requests.get(sim.url + "/channels", auth=auth, timeout=5).status_code for _ in range(3)] == [503, 503, 200]
    assert requests.get(sim.url + "/endpoints", auth=auth, timeout=5).ok  # other paths untouched
    sim.control.rest_fault(seconds=3.0, count=1)
    with pytest.raises(requests.Timeout):
        requests.get(sim.url + "/asterisk/info", auth=auth, timeout=0.3)
    sim.control.clear_faults()
    assert requests.get(sim.url + "/asterisk/info", auth=auth, timeout=5).ok


def test_malformed_frames(sim) -> None:
    stream = EventStream(sim.ws_url, sim.user, sim.password)
    eventually(lambda: sim.control.state()["connections"])
    sim.control.malformed("not_json")
    sim.control.malformed("missing_fields")
    sim.control.push_event({"type": "ChannelUserevent", "eventname": "x"})
    stream.wait_for(lambda evs: len(stream.raw) >= 3)
    assert stream.raw[0] == "this is not JSON {"
    assert json.loads(stream.raw[1]) == {"type": "ChannelCreated"}
    pushed = json.loads(stream.raw[2])
    assert pushed["application"] == "arimonitor" and pushed["eventname"] == "x"
    stream.close()


def test_control_reset_and_requests(sim) -> None:
    auth = (sim.user, sim.password)
    sim.control.register("1013010")
    requests.get(sim.url + "/endpoints", auth=auth, timeout=5)
    seen = sim.control.requests()
    assert [(r["method"], r["path"], r["status"]) for r in seen] == [("GET", "/endpoints", 200)]
    assert seen[0]["body"][0]["state"] == "online"
    sim.control.reset()
    assert sim.control.requests() == []
    assert sim.control.state()["endpoints"]["1013010"]["registered"] is False
