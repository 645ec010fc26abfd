"""Scenarios 3-5: direct calls (answered, busy, cancelled), a call into Stasis, recordings;
each held against Asterisk's CDR, its channel list, the WAV it wrote and SIPp's own timing."""

from __future__ import annotations

import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from tests.live.truth import (
    EVENT_SLACK,
    assert_answer_time,
    assert_billsec,
    the_cdr,
    wav_seconds,
)
from tests.support import eventually, eventually_assert

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def lab(asterisk, phones, monitor):
    """Phones that answer (1003010, 1013010), are busy (1013015), never answer (1013020)."""
    phones.answering("1003010")
    phones.answering("1013010")
    phones.answering("1013015", "uas_busy.xml")
    phones.answering("1013020", "uas_noanswer.xml")
    return monitor.start_watching("1003010", "1013010", "1013015", "1013020")


def _history_row(monitor, origin: str, seen: set[str]) -> dict:
    """The newest ended call from `origin` not looked at before."""
    def fresh():
        rows = [r for r in monitor.arictl("history", "--limit", "50")["data"]
                if r["origin"] == origin and r["id"] not in seen]
        return rows[0] if rows else None
    row = eventually(fresh, timeout=20)
    seen.add(row["id"])
    return row


SEEN: set[str] = set()


def test_a_direct_call_has_the_cdrs_answer_time_and_billsec(asterisk, phones, lab):
    phones.call("1003000", "71013010", phones.talk_scenario(3000), wait=True)
    row = _history_row(lab, "1003000", SEEN)
    cdr = the_cdr(asterisk.cdrs(), row["id"], "Dial")
    assert (cdr.src, cdr.dst, cdr.disposition) == ("1003000", "71013010", "ANSWERED")
    assert (row["origin"], row["destination"], row["client"], row["direction"]) == \
        ("1003000", "1013010", "100", "internal")
    assert_answer_time(cdr, row["answered"])
    assert_billsec(cdr, row["billsec"])
    # SIPp talked 3000 ms after the answer and then hung up
    assert abs(row["billsec"] - 3.0) <= EVENT_SLACK
    assert (row["hangup_cause"], row["end_reason"]) == (16, "hangup")


@pytest.mark.parametrize("callee, scenario, disposition, dial_status, cause", [
    ("1013015", "uac_call.xml", "BUSY", "BUSY", 17),
    # the caller gives up 3 s into the ringing; its CANCEL ends its channel with cause 127
    ("1013020", "uac_call_cancel_ring.xml", "NO ANSWER", "CANCEL", 127),
], ids=["busy", "caller-cancels"])
def test_a_call_that_is_never_answered(asterisk, phones, lab, callee, scenario, disposition, dial_status, cause):
    phones.call("1003000", f"7{callee}", scenario, wait=True)
    row = _history_row(lab, "1003000", SEEN)
    cdr = the_cdr(asterisk.cdrs(), row["id"], "Dial")
    assert (cdr.dst, cdr.disposition, cdr.answer, cdr.billsec) == (f"7{callee}", disposition, "", 0)
    assert (row["destination"], row["answered"], row["billsec"]) == (callee, None, 0.0)
    assert (row["hangup_cause"], row["dial_status"]) == (cause, dial_status)
    assert abs(row["duration"] - cdr.duration) <= 1 + EVENT_SLACK


def test_a_call_into_stasis_is_continued_and_shown_as_the_number_dialled(asterisk, phones, lab):
    caller = phones.call("1003000", "5551234", phones.talk_scenario(3000))

    def dialling_on():
        # Asterisk's own view: the phone's channel has left Stasis and is in Dial
        apps = {f[0].rsplit("-", 1)[0]: f[5] for f in asterisk.channels()}
        assert apps.get("PJSIP/1003000") == "Dial", apps
        return True
    eventually(dialling_on, timeout=10)
    active = eventually(lambda: [c for c in lab.arictl("calls")["data"] if c["origin"] == "1003000"])
    assert active[0]["destination"] == "5551234"
    assert caller.wait(30) == 0
    row = _history_row(lab, "1003000", SEEN)
    cdr = the_cdr(asterisk.cdrs(), row["id"], "Dial")
    assert (cdr.dst, cdr.disposition, cdr.dstchannel.split("-")[0]) == ("5551234", "ANSWERED", "Local/ringanswer@lab")
    assert (row["destination"], row["answered_by"]) == ("5551234", "Local/ringanswer@lab")
    assert_answer_time(cdr, row["answered"])
    assert_billsec(cdr, row["billsec"])
    calls_log = lab.log("calls.log")
    assert f"call={row['id']} client=100 1003000 -> 5551234 (ringing)" in calls_log
    assert f"call={row['id']} client=100 1003000 -> 5551234 (ended)" in calls_log


def test_the_calls_log_tells_the_story_of_the_history(lab):
    """Every line of a call names what history names: no '-> 71013010 outbound' before the Dial."""
    rows = {r["id"]: r for r in lab.arictl("history", "--limit", "50")["data"]}
    assert rows
    for line in lab.log("calls.log").splitlines():
        words = dict(w.split("=", 1) for w in line.split() if "=" in w and not w.startswith("reason"))
        row = rows.get(words.get("call"))
        if row is None:
            continue
        assert f" {row['origin']} -> {row['destination']} (" in line, (line, row)
        assert words["direction"] == row["direction"], (line, row)


def test_a_recorded_client_gets_one_mp3_of_the_whole_call(asterisk, phones, lab):
    # 1013010 is of client 101 (gravar=S)
    phones.call("1013010", "71003010", phones.talk_scenario(5000), wait=True)
    row = _history_row(lab, "1013010", SEEN)
    cdr = the_cdr(asterisk.cdrs(), row["id"], "Dial")
    wav = asterisk.recordings() / f"{row['recording']}.wav"
    assert wav.exists(), list(asterisk.recordings().rglob("*"))
    # the WAV Asterisk wrote covers the talk time (the snoop starts on answer)
    assert cdr.billsec - EVENT_SLACK <= wav_seconds(wav) < cdr.billsec + 1 + EVENT_SLACK

    def converted():
        rec = next(r for r in lab.arictl("recordings")["data"]["recordings"] if r["call_id"] == row["id"])
        assert rec["job_state"] == "done", rec
        return rec
    rec = eventually_assert(converted, timeout=30)
    mp3 = MP3(rec["mp3"])
    assert abs(mp3.info.length - wav_seconds(wav)) <= EVENT_SLACK
    tags = ID3(rec["mp3"])
    assert str(tags["TIT2"]) == "1013010 -> 1003010"
    assert str(tags["TPE1"]) == "Lab 101"   # client 101's nome= in the lab's __CLIENTES__.DEF (monitor.py)


def test_a_client_not_recorded_gets_no_recording(asterisk, phones, lab):
    # 1003000 is of client 100 (gravar=N)
    before = set(asterisk.recordings().rglob("*.wav"))
    phones.call("1003000", "71003010", phones.talk_scenario(2000), wait=True)
    row = _history_row(lab, "1003000", SEEN)
    assert the_cdr(asterisk.cdrs(), row["id"], "Dial").disposition == "ANSWERED"
    assert (row["recording"], row["recording_state"]) == ("", "")
    assert set(asterisk.recordings().rglob("*.wav")) == before
