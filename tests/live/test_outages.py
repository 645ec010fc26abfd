"""Scenarios 7-8: Asterisk restarted or killed mid-call, the engine killed mid-recording and
stopped while a phone calls into Stasis; each against Asterisk's CDR, WAVs and channels."""

from __future__ import annotations

import os
import signal
import time

import pytest
from mutagen.mp3 import MP3

from tests.live import truth
from tests.live.monitor import holds
from tests.support import eventually, eventually_assert

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def lab(asterisk, phones, monitor):
    phones.answering("1003010")
    phones.answering("1013015")
    return monitor.start_watching("1003010", "1013015")


def _row(monitor, call_id: str) -> dict:
    def ended():
        rows = [r for r in monitor.arictl("history", "--limit", "50")["data"] if r["id"] == call_id]
        return rows[0] if rows else None
    return eventually(ended, timeout=30)


def _engine_pid(monitor) -> int:
    return eventually(lambda: monitor.pid("engine") if monitor.tree.states().get("engine") == "RUNNING" else None,
                      timeout=30)


def test_engine_killed_mid_recording_keeps_one_recording_of_the_whole_call(asterisk, phones, lab):
    caller = phones.call("1013010", "71013015", phones.talk_scenario(10000))   # client 101: gravar=S
    call_id = truth.call_id_of(asterisk, "1013010")
    eventually(lambda: any(f[0].startswith("Snoop/") for f in asterisk.channels()), timeout=10)
    os.kill(_engine_pid(lab), signal.SIGKILL)
    assert caller.wait(40) == 0
    cdrs = asterisk.cdrs()
    cdr = truth.the_cdr(cdrs, call_id, "Dial")
    # Asterisk's truth: one snoop for the call, the whole call in one WAV
    snoops = [c for c in cdrs if c.channel.startswith(f"Snoop/{call_id}-")]
    assert len(snoops) == 1, snoops
    wavs = list(asterisk.recordings().rglob(f"{call_id}*.wav"))
    assert len(wavs) == 1, wavs
    assert cdr.billsec - truth.EVENT_SLACK <= truth.wav_seconds(wavs[0]) < cdr.billsec + 1 + truth.EVENT_SLACK

    row = _row(lab, call_id)
    assert (row["origin"], row["destination"], row["end_reason"]) == ("1013010", "1013015", "hangup")
    truth.assert_billsec(cdr, row["billsec"])
    assert row["recording"] and wavs[0].name == row["recording"].rsplit("/", 1)[-1] + ".wav"

    def converted():
        rec = next(r for r in lab.arictl("recordings")["data"]["recordings"] if r["call_id"] == call_id)
        assert rec["job_state"] == "done", rec
        return rec
    rec = eventually_assert(converted, timeout=40)
    assert abs(MP3(rec["mp3"]).info.length - truth.wav_seconds(wavs[0])) <= truth.EVENT_SLACK
    # no phantom call made of the snoop channel
    assert not [r for r in lab.arictl("history", "--limit", "50")["data"] if r["destination"] == "s"]


def test_engine_stopped_while_a_phone_calls_into_stasis(asterisk, phones, lab):
    stopped = lab.ctl("stop", "arimonitor:engine")
    assert "stopped" in stopped, stopped
    try:
        caller = phones.call("1003000", "5551234", phones.talk_scenario(3000))
        # Asterisk's truth: the phone's channel waits in our Stasis app; nobody continues it
        eventually(lambda: any(f[0].startswith("PJSIP/1003000-") and f[5] == "Stasis"
                               for f in asterisk.channels()), timeout=10)
    finally:
        started = lab.ctl("start", "arimonitor:engine")
    assert "started" in started, started
    assert caller.wait(40) == 0
    cdr = next(c for c in reversed(asterisk.cdrs()) if c.src == "1003000" and c.dst == "5551234")
    assert cdr.disposition == "ANSWERED"
    row = _row(lab, cdr.uniqueid)
    assert (row["origin"], row["destination"], row["direction"]) == ("1003000", "5551234", "outbound")
    truth.assert_answer_time(cdr, row["answered"])
    truth.assert_billsec(cdr, row["billsec"])
    # calls.log tells the same story: every call it names is in the history, and ended
    history = {r["id"] for r in lab.arictl("history", "--limit", "50")["data"]}
    lines = [ln for ln in lab.log("calls.log").splitlines() if " call=" in ln]
    named = {ln.split(" call=")[1].split()[0] for ln in lines}
    assert named <= history, named - history
    assert not [ln for ln in lines if "ringanswer" in ln]


def test_core_restart_now_mid_call(asterisk, phones, lab):
    before = lab.arictl("status")["data"]
    caller = phones.call("1003000", "71003010", "uac_call.xml")   # talks until Asterisk hangs up
    call_id = truth.call_id_of(asterisk, "1003000")
    time.sleep(2)  # talk time for the CDR to count (Asterisk's whole seconds)
    asterisk.cli("core restart now")
    assert caller.wait(20) == 0
    cdr = truth.the_cdr(asterisk.cdrs(), call_id, "Dial")
    assert cdr.disposition == "ANSWERED"
    row = _row(lab, call_id)
    assert (row["destination"], row["end_reason"]) == ("1003010", "hangup")
    truth.assert_billsec(cdr, row["billsec"])

    def back():
        now = lab.arictl("status")["data"]
        assert now["state"]["asterisk_startup"] != before["state"]["asterisk_startup"]
        assert now["link"]["state"] == "connected" and now["link"]["epoch"] != before["link"]["epoch"]
        assert now["outage_open_since"] is None
        return now
    eventually_assert(back, timeout=30)


def test_asterisk_killed_mid_call_ends_it_when_last_seen_and_reconnects_at_once(asterisk, phones, lab):
    caller = phones.call("1003000", "71003010", "uac_call.xml")
    call_id = truth.call_id_of(asterisk, "1003000")
    up = eventually(lambda: [c for c in lab.arictl("calls")["data"] if c["id"] == call_id and c["state"] == "up"])
    time.sleep(2)
    log_before = len(lab.log("ari-reader_00.log"))
    reconnects_before = _reader_reconnects(lab)
    killed_at = time.time()
    asterisk.kill()
    eventually_assert(lambda: holds(lab.arictl("status")["data"]["outage_open_since"] is not None), timeout=10)
    # down until the reader's backoff has grown to a wait of seconds: after 4 failed tries its
    # next wait is drawn from [4, 8] s (backoff.py), so a reconnect that waited for the backoff
    # would come seconds after Asterisk is back. (A failed connect is logged once, then counted:
    # the count is in status.)
    eventually(lambda: _reader_reconnects(lab) >= reconnects_before + 4, timeout=40, interval=0.2)
    open_while_down = lab.arictl("status")["data"]["outage_open_since"]
    asterisk.start()
    ready_at = time.time()
    # a call placed as soon as Asterisk is back: one call, answered, as in the CDR (not two
    # unanswered calls "lost during outage")
    phones.call("1003000", "71003010", phones.talk_scenario(2000), wait=True)
    caller.kill()

    row = _row(lab, call_id)
    # ended when Asterisk was last seen alive: at most what was observed, cause unknown
    assert (row["hangup_cause"], row["end_reason"]) == (0, "Asterisk went away")
    assert row["ended"] <= killed_at + truth.EVENT_SLACK
    assert row["billsec"] <= killed_at - up[0]["answered"] + truth.EVENT_SLACK
    assert row["billsec"] >= killed_at - up[0]["answered"] - truth.EVENT_SLACK

    gap_cdr = next(c for c in reversed(asterisk.cdrs()) if c.src == "1003000" and c.dst == "71003010")
    gap = _row(lab, gap_cdr.uniqueid)
    assert gap_cdr.disposition == "ANSWERED"
    assert (gap["end_reason"], gap["destination"], gap["hangup_cause"]) == ("hangup", "1003010", 16)
    assert gap["answered"] is not None
    # answered as the CDR says; its talk time may start late if the answer came before the
    # reader was back (an adopted call's answer time is when it was adopted)
    assert 0 < gap["billsec"] < gap_cdr.billsec + 1 + truth.EVENT_SLACK
    assert [r["id"] for r in lab.arictl("history", "--limit", "50")["data"]
            if r["created"] >= ready_at - 1 and r["id"] != call_id] == [gap["id"]]

    status = lab.arictl("status")["data"]
    outage = status["last_outage"]
    assert outage["disconnected"] == pytest.approx(open_while_down, abs=0.01)
    # the outage stayed open until the WebSocket was back and resynced
    assert outage["resynced"] >= status["link"]["since"] >= ready_at - 1
    # ... and the reader did not sit out its backoff: it came back when ARI answered
    assert "Asterisk answers again: reconnecting now" in lab.log("ari-reader_00.log")[log_before:]


def _reader_reconnects(monitor) -> int:
    """How many times the reader has tried again since it started (status, from its stats)."""
    return monitor.arictl("status")["data"]["processes"]["reader"]["reconnects"]