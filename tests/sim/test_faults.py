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


def _stasis_starts(stream: EventStream, channel_id: str) -> list[dict]:
    return [e for e in stream.snapshot() if e.get("type") == "StasisStart"
            and e["channel"]["id"] == channel_id]


def test_late_stasis_start_refuses_what_needs_stasis(sim) -> None:
    """The timing fault: 200 to create/snoop, then 422/409 until StasisStart, as Asterisk does."""
    auth = (sim.user, sim.password)
    sim.control.register("1013010")
    stream = EventStream(sim.ws_url, sim.user, sim.password)
    eventually(lambda: sim.control.state()["connections"])
    sim.control.stasis_delay(0.6)
    post = lambda path, **params: requests.post(sim.url + path, params=params, auth=auth, timeout=5)
    assert post("/bridges", type="mixing", bridgeId="br").ok
    assert post("/channels/create", endpoint="PJSIP/1013010", app="arimonitor", channelId="leg").ok
    refused = post("/bridges/br/addChannel", channel="leg")
    assert (refused.status_code, refused.json()) == (422, {"message": "Channel not in Stasis application"})
    assert post("/channels/leg/dial", timeout="5").status_code == 409
    assert post("/channels/leg/snoop", spy="both", app="arimonitor", snoopId="sn").ok
    refused = post("/channels/sn/record", name="r", format="wav")
    assert (refused.status_code, refused.json()) == (409, {"message": "Channel not in Stasis application"})
    assert not _stasis_starts(stream, "leg") and not _stasis_starts(stream, "sn")
    eventually(lambda: _stasis_starts(stream, "leg") and _stasis_starts(stream, "sn"))
    assert post("/bridges/br/addChannel", channel="leg").status_code == 204
    assert post("/channels/sn/record", name="r", format="wav").status_code == 201
    assert sim.control.state()["faults"] == [{"seconds": 0.6, "count": -1, "channel": "",
                                              "kind": "stasis_delay"}]
    stream.close()


def test_stasis_delay_by_channel_and_count(sim) -> None:
    auth = (sim.user, sim.password)
    sim.control.register("1013010")
    stream = EventStream(sim.ws_url, sim.user, sim.password)
    eventually(lambda: sim.control.state()["connections"])
    sim.control.stasis_delay(30, count=1, channel="late-")
    for cid in ("late-1", "other", "late-2"):  # only the first late- waits
        requests.post(sim.url + "/channels/create", auth=auth, timeout=5, params={
            "endpoint": "PJSIP/1013010", "app": "arimonitor", "channelId": cid})
    eventually(lambda: _stasis_starts(stream, "other") and _stasis_starts(stream, "late-2"))
    assert not _stasis_starts(stream, "late-1")
    stream.close()


def _info(sim) -> tuple:
    try:
        r = requests.get(sim.url + "/asterisk/info", auth=(sim.user, sim.password), timeout=2)
    except requests.ConnectionError:
        return ("refused",)
    return (r.status_code, r.headers.get("Content-Type", "").split(";")[0], r.text)


def test_restart_answers_503_while_shutting_down_and_booting(sim) -> None:
    """The phases `core restart now` showed on Asterisk 22.10.1 with calls up."""
    seen: list[tuple] = []

    def phase(want):
        seen.append(_info(sim))
        return want(seen[-1])

    sim.control.restart(down_for=0.4, shutting_down=0.6, booting=0.4, wait=False)
    eventually(lambda: phase(lambda a: a[:2] == (503, "text/html") and "Shutdown in progress" in a[2]), 5, 0.01)
    eventually(lambda: phase(lambda a: a == ("refused",)), 5, 0.01)
    eventually(lambda: phase(lambda a: a[:2] == (503, "application/json")
                             and json.loads(a[2]) == {"message": "Asterisk not booted"}), 5, 0.01)
    eventually(lambda: phase(lambda a: a[0] == 200), 5, 0.01)
