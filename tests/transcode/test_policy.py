"""Recording policy: gravar per client, bridge vs snoop, names, stop at the end."""

from __future__ import annotations

import datetime as dt

import pytest

from arimonitor.transcode.policy import (
    LATE,
    CallInfo,
    Recorder,
    plan_for,
    recording_name,
)

T = dt.datetime(2026, 11, 24, 21, 22, 12).timestamp()


class FakeAri:
    def __init__(self, refuse: str = "") -> None:
        self.calls: list[tuple] = []
        self.refuse = refuse

    def __getattr__(self, op):
        def call(*args):
            if op == self.refuse:
                raise RuntimeError("409 Channel not in Stasis application")
            self.calls.append((op, *args))
        return call


RECORDS = {"101": True, "102": False, "103": None}


@pytest.mark.parametrize("client, default, recorded", [
    ("101", False, True), ("102", True, False), ("103", True, True), ("103", False, False),
    ("999", True, True), ("999", False, False)])
def test_gravar_then_default(client, default, recorded):
    plan = plan_for(CallInfo("c1", client, T, channel="ch1"), RECORDS, default)
    assert (plan is not None) == recorded


def test_names_are_client_date_callid_and_safe():
    assert recording_name("101", "1732480000.42", T) == "101/2026-11-24/1732480000.42"
    # a further server's calls: its name in front (two Asterisks may give the same uniqueid)
    assert recording_name("101", "1732480000.42", T, "pbx2") == "101/2026-11-24/pbx2-1732480000.42"
    assert recording_name("../x", "a/b", T) == "_x/2026-11-24/a_b"
    assert recording_name("", "1.2", T).startswith("unknown/")


def test_controlled_call_records_the_bridge_and_stops_at_the_end():
    ari = FakeAri()
    rec = Recorder(ari, lambda: RECORDS, lambda: False)
    plan = rec.call_answered(CallInfo("c1", "101", T, "1013010", "1123000", our_bridge="br1", channel="ch1"))
    assert plan.kind == "bridge" and ari.calls == [("record_bridge", "br1", "101/2026-11-24/c1", "wav")]
    assert rec.call_answered(CallInfo("c1", "101", T, our_bridge="br1")) is None  # once per call
    assert rec.describe("101/2026-11-24/c1")["destination"] == "1123000"
    rec.call_ended("c1")
    assert ari.calls[-1] == ("stop_recording", "101/2026-11-24/c1")


def test_observed_call_is_recorded_through_a_snoop_channel():
    ari = FakeAri()
    rec = Recorder(ari, lambda: RECORDS, lambda: False)
    plan = rec.call_answered(CallInfo("c2", "101", T, channel="PJSIP-ch"))
    assert [c[0] for c in ari.calls] == ["snoop", "record_channel"]
    assert ari.calls[1][1] == plan.snoop_id and rec.claims(type("Ch", (), {"id": plan.snoop_id}))
    rec.call_ended("c2")
    assert [c[0] for c in ari.calls[2:]] == ["stop_recording", "hangup"]


def test_refused_recording_is_reported_and_the_call_goes_on():
    failures = []
    rec = Recorder(FakeAri(refuse="snoop"), lambda: RECORDS, lambda: False,
                   failed=lambda name, reason: failures.append((name, reason)))
    assert rec.call_answered(CallInfo("c3", "101", T, channel="x")) is None
    assert "409" in failures[0][1] and rec.active == {}


def test_gravar_n_records_nothing():
    ari = FakeAri()
    rec = Recorder(ari, lambda: RECORDS, lambda: True)
    assert rec.call_answered(CallInfo("c4", "102", T, our_bridge="b")) is None and ari.calls == []


def test_a_call_found_answered_after_a_restart_is_recorded_late_and_marked():
    """Killed -9 as the call connected: the resync finds it answered, no snoop of ours in it."""
    ari = FakeAri()
    rec = Recorder(ari, lambda: RECORDS, lambda: False)
    plan = rec.call_answered(CallInfo("c5", "101", T, channel="PJSIP-ch", late=True))
    assert [c[0] for c in ari.calls] == ["snoop", "record_channel"]
    assert rec.describe(plan.name)["late"] == LATE
    # answered live: not marked
    rec.call_answered(CallInfo("c6", "101", T, channel="PJSIP-ch6"))
    assert "late" not in rec.describe(recording_name("101", "c6", T))


def test_our_snoop_found_in_an_adopted_call_is_recorded_unless_live_never_snooped_again():
    """Killed between the snoop and its record, or while it recorded: the snoop is in the call;
    no second snoop, and Asterisk is asked whether the recording is live before recording."""
    ari = FakeAri()
    rec = Recorder(ari, lambda: RECORDS, lambda: False)
    snoop = "arimon-snoop-c7"
    plan = rec.call_answered(CallInfo("c7", "101", T, channel="PJSIP-ch", late=True, snoop=snoop))
    assert ari.calls == [("record_unless_live", snoop, "101/2026-11-24/c7", "wav")]
    assert rec.call_answered(CallInfo("c7", "101", T, channel="PJSIP-ch", late=True, snoop=snoop)) is None
    rec.call_ended("c7")
    assert ari.calls[1:] == [("stop_recording", plan.name), ("hangup", snoop)]
