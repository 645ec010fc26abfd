"""The engine's door: EngineDoor is exactly the EngineApi protocol, and its intents work."""

from __future__ import annotations

import inspect

from arimonitor.engine import resync as R
from arimonitor.engine import states as S
from arimonitor.engine.api import EngineApi
from arimonitor.engine.door import EngineDoor
from tests.engine.replay import new_engine_state


def _members(cls: type) -> dict[str, object]:
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


def test_the_door_is_the_protocol_nothing_more_nothing_less():
    api, door = _members(EngineApi), _members(EngineDoor)
    assert set(api) == set(door), (set(api) ^ set(door))
    for name, declared in api.items():
        if isinstance(declared, property):
            assert isinstance(door[name], property), name
            continue
        assert inspect.signature(declared) == inspect.signature(door[name]), name


def test_an_endpoint_sweep_leaves_alone_what_an_event_changed_after_the_get():
    state, _fx, handlers = new_engine_state()
    state.endpoints.clear()  # only the three below
    for ep_id, ep_state in (("100", S.ENDPOINT_OFFLINE), ("101", S.ENDPOINT_OFFLINE),
                            ("102", S.ENDPOINT_ONLINE)):
        ep = state.endpoint("PJSIP", ep_id)
        ep.state, ep.last_change = ep_state, 10.0
    state.endpoints["101"].last_change = 60.0   # an event after the GET (fetched at 50)
    listed = [{"technology": "PJSIP", "resource": "100", "state": "online"},
              {"technology": "PJSIP", "resource": "101", "state": "online"}]
    assert R.apply_endpoint_states(handlers, listed, 70.0, fetched_at=50.0) == 1
    assert R.unknown_unless_listed(handlers, R.listed_ids(listed), 70.0, fetched_at=50.0) == 1
    assert {e.id: e.state for e in state.endpoints.values()} == {
        "100": S.ENDPOINT_ONLINE, "101": S.ENDPOINT_OFFLINE, "102": S.ENDPOINT_UNKNOWN}
    assert R.endpoint_counts(state) == {"online": 1, "offline": 1, "unknown": 1, "total": 3}
    # Without fetched_at (a resync: its own guard is `touched`), ARI's word wins.
    assert R.apply_endpoint_states(handlers, listed, 80.0) == 1
    assert state.endpoints["101"].state == S.ENDPOINT_ONLINE


def test_listed_ids_follow_the_state_s_key_rule():
    listed = [{"technology": "PJSIP", "resource": "100"}, {"technology": "IAX2", "resource": "x"}]
    state, _fx, _handlers = new_engine_state()
    assert R.listed_ids(listed) == {state.endpoint(o["technology"], o["resource"]).id for o in listed}
