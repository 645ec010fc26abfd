"""Several Asterisk servers, engine side (issue 14): every REST request of a click-to-call goes
to the server its leg A came from, the outcomes say which, and that survives a restart."""

from __future__ import annotations

import sqlite3

from arimonitor.clicktocall.flow import ClickToCallFlow
from arimonitor.clicktocall.history import FLOWS_SCHEMA, SCHEMA, FlowStore, OutcomeStore
from tests.clicktocall.test_flow import FakeRest, _run
from tests.clicktocall.test_flow_restart import ARGS, leg

SERVERS = ("pbx1", "pbx2")


class TwoServers:
    """A flow over one SQLite file with a fake REST per server (one engine life)."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(SCHEMA + FLOWS_SCHEMA)
        self.rests = {name: FakeRest() for name in SERVERS}
        self.asked: list[str] = []  # servers whose REST was built, in order
        self.published: list[tuple[str, dict]] = []
        self.flow = ClickToCallFlow(self.rest_for("pbx1"), _run,
                                    lambda t, b: self.published.append((t, b)),
                                    OutcomeStore(self.db), app="arimonitor",
                                    trunk_dial="PJSIP/{number}@trunk", clock=lambda: 2000.0,
                                    flows=FlowStore(self.db), rest_for=self.rest_for,
                                    default_server="pbx1")
        self.flow.restore()

    def rest_for(self, server: str) -> FakeRest:
        self.asked.append(server)
        return self.rests[server]

    def paths(self, server: str) -> list[str]:
        return [f"{method} {path}" for method, path, _ in self.rests[server].calls]


def answered_on(world: TwoServers, rid: str, server: str | None) -> None:
    a = f"c2c-{rid}-a"
    tag = {"server": server} if server else {}
    world.flow.on_event({"type": "ChannelCreated", **tag,
                         "channel": {"id": a, "name": "PJSIP/1013010-01", "state": "Down"}}, 1000.0)
    world.flow.on_event({"type": "StasisStart", **tag, "args": [x.format(rid=rid) for x in ARGS],
                         "channel": {"id": a, "name": "PJSIP/1013010-01", "state": "Up"}}, 1003.0)


def test_leg_b_the_bridge_and_the_hang_up_go_to_the_server_of_leg_a(tmp_path):
    world = TwoServers(tmp_path / "db.sqlite")
    answered_on(world, "r2", "pbx2")
    setup = world.paths("pbx2")
    assert setup == ["POST /bridges", "POST /bridges/c2c-r2/addChannel", "POST /channels/create",
                     "POST /bridges/c2c-r2/addChannel", "POST /channels/c2c-r2-b/dial"], setup
    world.flow.on_event({"type": "ChannelDestroyed", "server": "pbx2", "cause": 16,
                         "channel": {"id": "c2c-r2-a"}}, 1005.0)
    assert "DELETE /channels/c2c-r2-b" in world.paths("pbx2")
    assert world.paths("pbx1") == []
    assert {b.get("server") for _t, b in world.published} == {"pbx2"}
    # the stored final (what the consumer's catch-up reads) says it too
    (final,) = OutcomeStore(world.db).finals(["r2"])
    assert final["server"] == "pbx2"


def test_an_event_without_a_server_is_the_first_servers(tmp_path):
    world = TwoServers(tmp_path / "db.sqlite")
    answered_on(world, "r1", None)
    assert world.paths("pbx1")[0] == "POST /bridges" and world.paths("pbx2") == []
    assert {b.get("server") for _t, b in world.published} == {"pbx1"}


def test_a_restarted_engine_hangs_up_on_the_calls_server(tmp_path):
    first = TwoServers(tmp_path / "db.sqlite")
    answered_on(first, "r2", "pbx2")
    again = TwoServers(tmp_path / "db.sqlite")  # a new engine over the same file
    assert again.flow.calls["r2"].server == "pbx2"
    # after the resync only leg B is left (on pbx2): the call ends, hung up there
    again.flow.reconcile([{**leg("r2", "b"), "server": "pbx2"}], now=2000.0)
    assert "DELETE /channels/c2c-r2-b" in again.paths("pbx2")
    assert again.paths("pbx1") == []
    (final,) = [b for t, b in again.published if t == "c2c.final"]
    assert final["server"] == "pbx2"


def test_a_call_found_only_as_its_leg_b_is_ended_on_that_legs_server(tmp_path):
    world = TwoServers(tmp_path / "db.sqlite")
    world.flow.reconcile([{**leg("r9", "b", state="Up"), "server": "pbx2"}], now=2000.0)
    assert "DELETE /channels/c2c-r9-b" in world.paths("pbx2")  # adopted, then over (no leg A)
    assert world.paths("pbx1") == []
