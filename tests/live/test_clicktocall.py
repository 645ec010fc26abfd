"""Scenario 6: click-to-call over the real RabbitMQ (127.0.0.1:5672) against the real Asterisk:
connected (and recorded, client 101 has gravar=S), destination busy, destination never
answering, origin not registered. Truth: Asterisk's CDR and the WAV it wrote."""

from __future__ import annotations

import time

import pytest

from tests.live import truth
from tests.live.web import Requests
from tests.support import eventually

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def lab(asterisk, phones, monitor):
    phones.answering("1013010")                     # the origin: answers its own phone
    phones.answering("1013015")                     # a destination that answers
    phones.answering("1013020", "uas_busy.xml")     # a destination that is busy
    monitor.start_watching("1013010", "1013015", "1013020")
    eventually(lambda: monitor.arictl("status")["data"]["processes"]["clicktocall"][0]["broker"], timeout=30)
    return monitor


@pytest.fixture(scope="module")
def web(lab):
    client = Requests(lab.queue)
    try:
        yield client
    finally:
        client.close()


def test_connected_and_recorded(asterisk, lab, web):
    rid = web.send(client="101", origin="1013010", destination="1013015", timeout=20)
    lab.c2c_reached(rid, "connected")
    # Asterisk's truth for the talk: the operator hangs up the origin after ~2 s
    eventually(lambda: asterisk.up_channels("1013015"))
    time.sleep(2)
    asterisk.hang_up(f"c2c-{rid}-a")
    final = web.final(rid)
    assert final["result"] == "completed", final
    cdr_a = next(c for c in asterisk.cdrs() if c.uniqueid == f"c2c-{rid}-a")
    assert cdr_a.disposition == "ANSWERED"
    wav = asterisk.recordings() / f"{final['recording']}.wav"
    assert final["recording"].endswith(f"c2c-{rid}") and wav.exists(), final
    # the bridge recording holds the connected talk: about what the outcome calls its duration
    assert abs(truth.wav_seconds(wav) - final["duration"]) <= 1 + truth.EVENT_SLACK, (final, truth.wav_seconds(wav))


def test_destination_busy(asterisk, lab, web):
    rid = web.send(client="101", origin="1013010", destination="1013020", timeout=10)
    final = web.final(rid)
    assert (final["result"], final["reason"]) == ("failed", "destination_busy"), final
    # Asterisk's record of leg A (the origin answered) names the leg B it dialled
    (a,) = [c for c in asterisk.cdrs() if c.uniqueid == f"c2c-{rid}-a"]
    assert a.dstchannel.startswith("PJSIP/1013020-"), a


def test_destination_never_answers(asterisk, phones, lab, web):
    phones.answering("1013020", "uas_noanswer.xml")   # now it rings and never answers
    rid = web.send(client="101", origin="1013010", destination="1013020", timeout=5)
    final = web.final(rid)
    assert (final["result"], final["reason"]) == ("failed", "destination_no_answer"), final
    (a,) = [c for c in asterisk.cdrs() if c.uniqueid == f"c2c-{rid}-a"]
    assert a.dstchannel.startswith("PJSIP/1013020-"), a
    # leg B rang for the request's 5 s and was never answered: no recording of a talk
    assert not list(asterisk.recordings().rglob(f"*c2c-{rid}*"))


def test_origin_not_registered(asterisk, lab, web):
    assert "1013020" in asterisk.contacts() and "1003000" not in asterisk.contacts()
    rid = web.send(client="100", origin="1003000", destination="1003010", timeout=10)
    final = web.final(rid)
    assert final["result"] == "refused" and "offline" in final["reason"], final
    # Asterisk was never asked to ring anyone for it
    assert not [c for c in asterisk.cdrs() if rid in c.uniqueid]
