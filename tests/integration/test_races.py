"""A real Asterisk's late StasisStart, reproduced by the simulator's timing fault (issue 16).

Asterisk answers 200 to `/channels/create` and `/channels/{id}/snoop` before the channel is in
our app; a `record` (409) or `addChannel` (422) sent at once then fails. With `stasis_delay`
the sim holds the StasisStart back the same way, so these tests meet the race every time: the
engine must wait for the state, record the call and connect the click-to-call anyway.
The stack is test_engine_components.py's (its own instance for this module).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration import test_engine_components as stack
from tests.integration.test_engine_components import (
    World,
    history_row,
    publish,
    reply_for,
)
from tests.support import eventually_assert

world = stack.world  # the module-scoped stack fixture, one instance for this module

pytestmark = pytest.mark.timeout(120)

DELAY = 1.0  # seconds the StasisStart comes after the 200 (real Asterisk: a few ms)


def requests_for(world: World, fragment: str) -> list[dict]:
    return [r for r in world.sim.control.requests() if fragment in r["path"]]


def counters(world: World) -> dict:
    return world.ctl("stats")["counters"]


def test_recording_waits_for_the_snoop_channel_to_enter_stasis(world):
    c = world.sim.control
    before = counters(world)
    c.stasis_delay(DELAY, channel="arimon-snoop-")
    try:
        c.behaviour("1013010", talk=20.0)  # 4 s of wall time at time_scale 0.2
        caller = c.call("1013010", "1013015")
        row = history_row(world, caller)
    finally:
        c.clear_faults()
    snoop_id = f"arimon-snoop-{row['id']}"
    (snoop,) = requests_for(world, f"/channels/{caller}/snoop")
    records = requests_for(world, f"/channels/{snoop_id}/record")
    # the race was there (the record could not go before the delay) and was not lost to
    assert [r["status"] for r in records] == [201], records
    assert records[0]["t"] >= snoop["t"] + DELAY * 0.9, (snoop, records)

    def recorded() -> dict:
        recs = [r for r in world.ctl("recordings", "101")["recordings"] if row["id"] in r["name"]]
        assert recs and recs[0]["job_state"] == "done", recs
        return recs[0]
    rec = eventually_assert(recorded, timeout=20)
    assert Path(rec["mp3"]).is_file()
    after = counters(world)
    assert after["rest_waited"] > before["rest_waited"]
    assert after["rest_wait_failed"] == before["rest_wait_failed"]


def test_click_to_call_adds_leg_b_only_once_it_is_in_stasis(world):
    rid, corr = f"race-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    b_id = f"c2c-{rid}-b"
    c = world.sim.control
    c.stasis_delay(DELAY, channel=b_id)
    try:
        publish(world, {"request_id": rid, "client": "101", "origin": "1013030",
                        "destination": "1013031"}, corr)

        def connected() -> None:
            assert "connected" in [e[0] for e in world.ctl("c2c", rid)["events"]]
        eventually_assert(connected, timeout=20)
    finally:
        c.clear_faults()
    c.hangup(f"c2c-{rid}-a")
    final = reply_for(world, corr)
    assert (final["result"], final["reason"]) == ("completed", None), final
    assert final["recording"] and final["recording"].endswith(f"c2c-{rid}")

    (create,) = [r for r in requests_for(world, "/channels/create") if b_id in str(r["params"])]
    adds = [r for r in requests_for(world, f"/bridges/c2c-{rid}/addChannel")
            if r["params"]["channel"] == b_id]
    dials = requests_for(world, f"/channels/{b_id}/dial")
    assert [r["status"] for r in adds + dials] == [204, 204], adds + dials
    assert adds[0]["t"] >= create["t"] + DELAY * 0.9, (create, adds)


def test_state_that_never_comes_is_a_counted_failure_with_its_reason(world):
    rid, corr = f"late-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    b_id = f"c2c-{rid}-b"
    c = world.sim.control
    before = counters(world)
    world.ctl("set", "ari.state_timeout", "1s")
    c.stasis_delay(30, channel=b_id)
    try:
        publish(world, {"request_id": rid, "client": "101", "origin": "1013030",
                        "destination": "1013031"}, corr)
        final = reply_for(world, corr)
    finally:
        c.clear_faults()
        world.ctl("set", "ari.state_timeout", "10s")
    assert (final["result"], final["reason"]) == ("failed", "asterisk_error"), final
    assert f"channel {b_id} in Stasis not seen within 1 s" in final["text"], final
    assert not requests_for(world, f"/channels/{b_id}/dial")
    assert counters(world)["rest_wait_failed"] == before["rest_wait_failed"] + 1
