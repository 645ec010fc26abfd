"""What a failing ARI REST call leaves in the logs: one short line, never a whole HTML page;
and a recording already running is never cut by a second snoop of its call."""

from __future__ import annotations

import pytest

from arimonitor.ari.rest import AriHttpError, AriRest, one_line
from arimonitor.sim.testing import SimServer
from arimonitor.transcode.policy import SNOOP_PREFIX
from arimonitor.transcode.wiring import WorkerAri
from tests.support import eventually


@pytest.fixture
def sim():
    with SimServer(endpoints=["1013010", "1123000"], time_scale=0.2) as server:
        yield server


def test_asterisks_html_error_page_becomes_one_short_line(sim):
    rest = AriRest(sim.url, sim.user, sim.password, timeout=2)
    sim.control.rest_fault(status=503, path="/asterisk/info", count=1)
    with pytest.raises(AriHttpError) as caught:
        rest.asterisk_info()
    text = str(caught.value)
    assert caught.value.status == 503
    assert "\n" not in text and "<" not in text and len(text) < 240, text
    assert "503 Service Unavailable" in text


def test_one_line_cuts_long_text():
    assert one_line("a\n  b\t c") == "a b c"
    assert len(one_line("x" * 1000)) <= 200


def test_a_second_snoop_of_a_recorded_call_keeps_the_running_recording(sim):
    c = sim.control
    c.register("1013010")
    c.register("1123000")
    caller = c.call("1013010", "1123000")
    rest = AriRest(sim.url, sim.user, sim.password, timeout=2)
    eventually(lambda: any(ch["id"] == caller and ch["state"] == "Up" for ch in rest.channels()), timeout=10)
    refused = []

    def submit(work, done):
        try:
            done(work(), None)
        except Exception as exc:  # noqa: BLE001  as the engine's REST worker hands it back
            done(None, exc)

    ari = WorkerAri(rest, submit, sim.app, refused=lambda name, reason: refused.append((name, reason)))
    snoop_id = SNOOP_PREFIX + caller
    ari.snoop(caller, snoop_id)
    ari.record_channel(snoop_id, "101/2026-12-01/x", "wav")
    assert refused == []
    live = rest.get("/recordings/live/101%2F2026-12-01%2Fx")
    assert live["state"] == "recording"
    # an engine that restarted and did not know: the same snoop again (Asterisk: 500)
    ari.snoop(caller, snoop_id)
    ari.record_channel(snoop_id, "101/2026-12-01/x", "wav")
    assert refused == []
    assert rest.get(f"/channels/{snoop_id}")["id"] == snoop_id
    assert rest.get("/recordings/live/101%2F2026-12-01%2Fx")["state"] == "recording"
