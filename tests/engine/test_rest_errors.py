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


def _call_up(sim) -> tuple[AriRest, str]:
    """A call of 1013010 to 1123000, answered; ARI REST and the caller's channel id."""
    c = sim.control
    c.register("1013010")
    c.register("1123000")
    caller = c.call("1013010", "1123000")
    rest = AriRest(sim.url, sim.user, sim.password, timeout=2)
    eventually(lambda: any(ch["id"] == caller and ch["state"] == "Up" for ch in rest.channels()), timeout=10)
    return rest, caller


def _worker_ari(sim, rest: AriRest, refused: list) -> WorkerAri:
    """A WorkerAri whose steps run at once, refusals into `refused`."""
    def submit(work, done):
        try:
            done(work(), None)
        except Exception as exc:  # noqa: BLE001  as the engine's REST worker hands it back
            done(None, exc)

    return WorkerAri(rest, submit, sim.app, refused=lambda name, reason: refused.append((name, reason)))


def test_a_second_snoop_of_a_recorded_call_keeps_the_running_recording(sim):
    rest, caller = _call_up(sim)
    refused = []
    ari = _worker_ari(sim, rest, refused)
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


def test_an_adopted_snoop_is_recorded_once_and_a_live_recording_never_twice(sim):
    """The engine died between its snoop and the record: after the restart the snoop is
    recorded; asked again (a second restart, the recording now live) nothing is sent."""
    rest, caller = _call_up(sim)
    snoop_id = SNOOP_PREFIX + caller
    rest.post(f"/channels/{caller}/snoop", params={"spy": "both", "app": sim.app, "snoopId": snoop_id})
    refused = []
    ari = _worker_ari(sim, rest, refused)
    name = "101/2026-12-01/y"
    ari.record_unless_live(snoop_id, name, "wav")
    assert rest.get("/recordings/live/101%2F2026-12-01%2Fy")["target_uri"] == f"channel:{snoop_id}"
    ari.record_unless_live(snoop_id, name, "wav")
    assert refused == []
    requests = sim.control.requests()
    records = [r for r in requests if r["method"] == "POST" and r["path"].endswith("/record")]
    assert len(records) == 1 and records[0]["status"] == 201, records
    assert not [r for r in requests if r["path"].endswith("/snoop") and r["status"] != 200]
