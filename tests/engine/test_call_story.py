"""A direct call as the simulator's dialplan places it (`7` + endpoint, as in the lab PBX),
through the engine's handlers: the call is announced with the phone it rings, never as "to
71013015, outbound" before the Dial; and legs that arrive in one batch (one receive time) keep
the caller's id and direction."""

from __future__ import annotations

import asyncio
import json

from arimonitor.sim.calls import Calls
from arimonitor.sim.core import Pbx
from arimonitor.sim.dialplan import Dialplan
from arimonitor.sim.media import Media
from tests.engine.replay import new_engine_state


def _direct_call_events(tmp_path) -> list[dict]:
    sent: list[dict] = []

    async def place() -> None:
        pbx = Pbx("arimonitor", tmp_path, endpoints=["1013010", "1013015"])
        pbx.register("1013010", port=5070)
        pbx.register("1013015", port=5072)
        pbx.counters["uniqueid"] = 9   # the callee gets "N.10", the caller "N.9"
        pbx.emit = lambda body, scope=None: sent.append(body)
        Dialplan(pbx, Calls(pbx, Media(pbx))).place("1013010", "71013015")
        for handle in list(pbx.timers):
            handle.cancel()

    asyncio.run(place())
    return sent


def test_a_direct_call_is_announced_with_the_phone_it_rings(tmp_path):
    state, fx, handlers = new_engine_state()
    announced = []
    fx.call_started = lambda call: announced.append((call.origin, call.destination, call.direction))
    for n, body in enumerate(_direct_call_events(tmp_path)):
        handlers.apply(json.dumps(body).encode(), float(n))
    assert announced == [("1013010", "1013015", "internal")]
    (call,) = state.calls.values()
    assert (call.origin, call.destination, call.direction) == ("1013010", "1013015", "internal")


def test_legs_of_one_batch_keep_the_callers_id(tmp_path):
    events = _direct_call_events(tmp_path)
    caller_id = next(e["channel"]["id"] for e in events if e["type"] == "ChannelCreated")
    assert caller_id.endswith(".9")
    state, _fx, handlers = new_engine_state()
    for body in events:
        handlers.apply(json.dumps(body).encode(), 100.0)  # one receive time for the whole burst
    (call,) = state.calls.values()
    assert call.id == caller_id
    assert (call.origin, call.direction) == ("1013010", "internal")
