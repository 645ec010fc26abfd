"""A re-registration as the real Asterisk sends it (the new contact, then the old one's Removed)
and an unregistration, from the simulator's events through the engine's handlers to `list`."""

from __future__ import annotations

import json

from arimonitor.commands.endpoints import _row
from arimonitor.sim.core import Pbx
from tests.engine.replay import new_engine_state


def _feed(tmp_path, steps):
    pbx = Pbx("arimonitor", tmp_path, endpoints=["1013015"])
    sent: list[dict] = []
    pbx.emit = lambda body, scope=None: sent.append(body)
    state, _fx, handlers = new_engine_state()
    for step in steps:
        step(pbx)
    for n, body in enumerate(sent):
        handlers.apply(json.dumps(body).encode(), float(n))
    return sent, state.endpoints["1013015"]


def test_re_registration_shows_the_live_contact_not_the_old_ones_removal(tmp_path):
    sent, ep = _feed(tmp_path, [lambda p: p.register("1013015", port=5070),
                                lambda p: p.register("1013015", ip="127.0.0.2", port=5080)])
    statuses = [e["contact_info"]["contact_status"] for e in sent if e["type"] == "ContactStatusChange"]
    assert statuses[-2:] == ["NonQualified", "Removed"], "the real order: new contact first"
    row = _row(ep.view(), None, False)
    assert (row["ip"], row["port"], row["last_seen"]) == ("127.0.0.2", 5080, None)
    assert row["contact_status"] == "NonQualified"


def test_after_unregistration_the_address_is_last_seen_only(tmp_path):
    _sent, ep = _feed(tmp_path, [lambda p: p.register("1013015", port=5070),
                                 lambda p: p.unregister("1013015")])
    row = _row(ep.view(), None, False)
    assert row["state"] == "offline"
    assert (row["ip"], row["port"], row["last_seen"]) == (None, None, "127.0.0.1:5070")
