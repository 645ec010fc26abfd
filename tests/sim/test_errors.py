"""Auth and the error answers not covered by the failures trace replay."""

from __future__ import annotations

import json

import pytest
import requests
import websocket

from arimonitor.sim.testing import SimServer
from tests.sim.wsclient import EventStream, basic_auth
from tests.support import ARI


@pytest.fixture
def sim():
    with SimServer(endpoints=["1003000", "1013010"], time_scale=0.02) as server:
        yield server


def test_rest_needs_the_right_credentials(sim) -> None:
    for auth in [None, (sim.user, "wrong"), ("nobody", sim.password)]:
        r = requests.get(sim.url + "/asterisk/info", auth=auth, timeout=5)
        assert r.status_code == 401
        assert r.json() == {"message": "Authentication required"}
        assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(sim.url + "/asterisk/info", auth=(sim.user, sim.password), timeout=5).ok
    # Asterisk also takes api_key=user:password
    assert requests.get(sim.url + "/asterisk/info", params={"api_key": f"{sim.user}:{sim.password}"},
                        timeout=5).ok
    # the request log records the refused ones too
    assert [r["status"] for r in sim.control.requests()][:3] == [401, 401, 401]


def test_websocket_handshake_errors(sim) -> None:
    real = {e["description"]: e for e in json.loads((ARI / "traces" / "rest_errors.json").read_text())}
    with pytest.raises(websocket.WebSocketBadStatusException) as bad_auth:
        websocket.create_connection(sim.ws_url, header={"Authorization": basic_auth(sim.user, "nope")}, timeout=5)
    assert bad_auth.value.status_code == 401
    assert json.loads(bad_auth.value.resp_body) == real["websocket connect with wrong password"]["body"]
    with pytest.raises(websocket.WebSocketBadStatusException) as no_app:
        websocket.create_connection(sim.ws_url.split("?")[0],
                                    header={"Authorization": basic_auth(sim.user, sim.password)}, timeout=5)
    assert no_app.value.status_code == 400


def test_originate_errors(sim) -> None:
    auth = (sim.user, sim.password)

    def originate(**params):
        return requests.post(sim.url + "/channels", params={"app": "arimonitor", **params}, auth=auth, timeout=5)

    stream = EventStream(sim.ws_url, sim.user, sim.password)
    try:
        # unregistered, unknown endpoint, unknown tech: 500 "Allocation failed" and no event at all
        for endpoint in ("PJSIP/1003000", "PJSIP/7777777", "FOO/1", "Local/nowhere@lab"):
            r = originate(endpoint=endpoint)
            assert (r.status_code, r.json()) == (500, {"error": "Allocation failed"})
        sim.control.register("1013010")
        assert originate(endpoint="PJSIP/1013010", channelId="x1").status_code == 200
        r = originate(endpoint="PJSIP/1013010", channelId="x1")
        assert (r.status_code, r.json()) == (409, {"message": "Channel with given unique ID already exists"})
        stream.wait_type("StasisStart")
        types = stream.types()
        assert types[:3] == ["PeerStatusChange", "DeviceStateChanged", "ContactStatusChange"]
        assert all(e["channel"]["id"] == "x1" for e in stream.snapshot()[3:] if "channel" in e)
    finally:
        stream.close()


def test_record_needs_stasis(sim) -> None:
    auth = (sim.user, sim.password)
    sim.control.register("1003000")
    sim.control.register("1013010")
    sim.control.behaviour("1013010", mode="noanswer")
    caller = sim.control.call("1003000", "1013010")  # plain dialplan: never in Stasis
    r = requests.post(f"{sim.url}/channels/{caller}/record", params={"name": "n", "format": "wav"},
                      auth=auth, timeout=5)
    assert (r.status_code, r.json()) == (409, {"message": "Channel not in Stasis application"})
    r = requests.get(f"{sim.url}/channels/{caller}/variable", params={"variable": "CHANNEL(pjsip,remote_addr)"},
                     auth=auth, timeout=5)
    assert r.json() == {"value": "127.0.0.1:5060"}
    r = requests.get(f"{sim.url}/channels/{caller}/variable", params={"variable": "NOPE"}, auth=auth, timeout=5)
    assert r.status_code == 404
