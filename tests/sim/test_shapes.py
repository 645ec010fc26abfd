"""Every event type and REST body the sim produces fits Asterisk's own models (api-docs)."""

from __future__ import annotations

import requests

from arimonitor.sim.testing import SimServer
from tests.sim.wsclient import EventStream

REQUIRED_EVENTS = {
    "StasisStart", "StasisEnd", "ChannelCreated", "ChannelStateChange", "ChannelDialplan", "Dial",
    "ChannelHangupRequest", "ChannelDestroyed", "BridgeCreated", "BridgeDestroyed",
    "ChannelEnteredBridge", "ChannelLeftBridge", "RecordingStarted", "RecordingFinished",
    "RecordingFailed", "ContactStatusChange", "PeerStatusChange", "EndpointStateChange",
    "DeviceStateChanged", "ChannelVarset", "PlaybackStarted", "PlaybackFinished", "ApplicationReplaced",
}


def test_every_event_and_body_fits_the_models(apidocs) -> None:
    with SimServer(endpoints=["1003000", "1013010", "1123000", "1123010"], time_scale=0.02) as sim:
        auth = (sim.user, sim.password)
        c = sim.control
        main = EventStream(sim.ws_url, sim.user, sim.password)
        # a second app without subscribeAll but with an endpoint subscription: EndpointStateChange
        tap = EventStream(sim.ws_url.replace("app=arimonitor&subscribeAll=true", "app=tap"),
                          sim.user, sim.password)
        bodies: list[tuple[str, object]] = []

        def rest(method: str, path: str, model: str | None, status: int = 200, **params) -> object:
            response = requests.request(method, sim.url + path, params=params, auth=auth, timeout=5)
            assert response.status_code == status, (path, response.text)
            body = response.json() if response.content else None
            if model:
                bodies.append((model, body))
            return body

        try:
            main.wait_for(lambda _: len(c.state()["connections"]) == 2)
            rest("POST", "/applications/tap/subscription", "Application", eventSource="endpoint:PJSIP")
            c.register("1003000", "10.0.0.1", 5071)
            c.register("1013010", "10.0.0.2", 5072, qualify=True)
            c.register("1123000", "10.0.0.3", 5073)
            c.reachable("1013010", False)
            c.reachable("1013010", True)
            c.register("1003000", "10.0.0.9", 5090)  # the phone moved
            rest("GET", "/asterisk/info", "AsteriskInfo")
            rest("GET", "/asterisk/ping", "AsteriskPing")
            rest("GET", "/endpoints", "List[Endpoint]")
            rest("GET", "/endpoints/PJSIP", "List[Endpoint]")
            rest("GET", "/endpoints/PJSIP/1003000", "Endpoint")
            # originate answered, into a bridge, recorded, with a snoop recording too
            a = rest("POST", "/channels", "Channel", endpoint="PJSIP/1013010", app="arimonitor",
                     appArgs="c2c,A", callerId="Web <100>", channelId="a1")
            main.wait_type("StasisStart")
            b = rest("POST", "/channels/create", "Channel", endpoint="PJSIP/1123000", app="arimonitor",
                     channelId="b1")
            bridge = rest("POST", "/bridges", "Bridge", type="mixing", name="c2c")
            rest("POST", f"/bridges/{bridge['id']}/addChannel", None, 204, channel=f"{a['id']},{b['id']}")
            rest("POST", f"/channels/{b['id']}/dial", None, 204, caller=a["id"], timeout=10)
            main.wait_for(lambda evs: any(e.get("dialstatus") == "ANSWER" and e["peer"]["id"] == "b1"
                                          for e in evs))
            rest("POST", f"/bridges/{bridge['id']}/record", "LiveRecording", 201, name="c2c/one", format="wav")
            rest("GET", "/recordings/live/c2c/one", "LiveRecording")
            rest("GET", f"/bridges/{bridge['id']}", "Bridge")
            rest("GET", "/bridges", "List[Bridge]")
            rest("GET", "/channels", "List[Channel]")
            rest("GET", "/channels/a1", "Channel")
            rest("GET", "/channels/a1/variable", "Variable", variable="CHANNEL(pjsip,remote_addr)")
            rest("POST", "/channels/a1/play", "Playback", 201, media="sound:silence/1")
            main.wait_type("PlaybackFinished", timeout=15)  # before a1 is hung up below, even under load
            rest("POST", "/recordings/live/c2c/one/stop", None, 204)
            # a dialplan call, snooped and recorded
            caller = c.call("1003000", "1123010")
            c.register("1123010", "10.0.0.4", 5074)
            caller = c.call("1003000", "1123010")
            snoop = rest("POST", f"/channels/{caller}/snoop", "Channel", spy="both", app="arimonitor")
            c.recording_fail(1)
            rest("POST", f"/channels/{snoop['id']}/record", "LiveRecording", 201, name="failing", format="wav")
            rest("POST", f"/channels/{snoop['id']}/record", "LiveRecording", 201, name="snooped", format="wav")
            rest("POST", "/recordings/live/snooped/stop", None, 204)
            rest("GET", "/recordings/stored", "List[StoredRecording]")
            rest("GET", "/recordings/stored/snooped", "StoredRecording")
            rest("GET", "/applications", "List[Application]")
            rest("GET", "/applications/arimonitor", "Application")
            rest("GET", "/deviceStates", "List[DeviceState]")
            rest("DELETE", "/channels/a1", None, 204)
            rest("DELETE", f"/bridges/{bridge['id']}", None, 204)
            # inbound into Stasis, sent back to the dialplan; busy and unanswered dialplan calls
            inbound = c.call("1003000", "5551234")
            main.wait_for(lambda evs: any(e.get("type") == "StasisStart" and e["channel"]["id"] == inbound
                                          for e in evs))
            rest("POST", f"/channels/{inbound}/continue", None, 204)
            c.behaviour("1123000", mode="busy")
            c.call("1003000", "1123000")
            c.behaviour("1123000", mode="noanswer")
            c.call("1003000", "1123000")
            c.unregister("1123010")
            # a second connection for the app takes it over: the first gets ApplicationReplaced
            second = EventStream(sim.ws_url, sim.user, sim.password)
            main.wait_type("ApplicationReplaced")
            second.close()
            main.quiet(0.2)
            tap.quiet(0.1)
            events = main.snapshot() + tap.snapshot()
            for event in events:
                assert apidocs.check_message(event) == [], event
            for model, body in bodies:
                assert apidocs.check(body, model) == [], (model, body)
            assert REQUIRED_EVENTS <= {e["type"] for e in events}, REQUIRED_EVENTS - {e["type"] for e in events}
            assert "EndpointStateChange" not in main.types()  # never under subscribeAll
        finally:
            main.close()
            tap.close()


def test_recording_is_a_real_wav(tmp_path) -> None:
    import wave

    with SimServer(endpoints=["1013010"], recordings=tmp_path, time_scale=0.01) as sim:
        auth = (sim.user, sim.password)
        sim.control.register("1013010")
        stream = EventStream(sim.ws_url, sim.user, sim.password)
        try:
            requests.post(sim.url + "/channels", params={"endpoint": "PJSIP/1013010", "app": "arimonitor",
                                                         "channelId": "r1"}, auth=auth, timeout=5)
            stream.wait_type("StasisStart")
            r = requests.post(sim.url + "/channels/r1/record", params={"name": "a/b/rec", "format": "wav"},
                              auth=auth, timeout=5)
            assert r.status_code == 201
            stream.wait_type("RecordingStarted", 2)
            import time
            time.sleep(0.3)  # some recorded time; the length is checked loosely
            requests.post(sim.url + "/recordings/live/a/b/rec/stop", auth=auth, timeout=5)
            finished = stream.wait_type("RecordingFinished", 2)
            assert finished[0] == finished[1]  # sent twice under subscribeAll, as Asterisk does
        finally:
            stream.close()
        path = tmp_path / "a" / "b" / "rec.wav"
        with wave.open(str(path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert 0.25 <= wav.getnframes() / 8000 < 5
        bad = requests.post(sim.url + "/channels/nope/record", params={"name": "x", "format": "wav"},
                            auth=auth, timeout=5)
        assert bad.status_code == 404
