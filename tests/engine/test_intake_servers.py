"""The intake hands each message to its server's lane: that server's state, sequence numbers
and link; a server not configured is set aside and counted (issue 14, state per server)."""

from __future__ import annotations

import json
import time

import pytest

from arimonitor import protocol
from arimonitor.engine.handlers import Handlers
from arimonitor.engine.intake import Intake
from arimonitor.engine.state import State
from tests.engine.fakes import RecordingEffects
from tests.engine.test_intake_batch import (
    FakeServices,
    _channel,
    _frame,
    feeder,
    inproc_pair,
)


@pytest.fixture
def two():
    pull, push = inproc_pair()
    lanes = {}
    intake = None
    for name in ("pbx1", "pbx2"):
        handlers = Handlers(State(name), RecordingEffects())
        services = FakeServices()
        if intake is None:
            intake = Intake(handlers, services)
        else:
            intake.add(handlers, services)
        lanes[name] = (handlers, services)

    yield feeder(intake, pull, push), intake, lanes
    push.close(0)
    pull.close(0)


def _ari(server: str | None, epoch: str, seq: int, frame: bytes) -> list[bytes]:
    header = {"epoch": epoch, "seq": seq, "t": time.time()}
    if server is not None:
        header["server"] = server
    return [protocol.KIND_ARI, json.dumps(header).encode(), frame]


def test_each_server_s_frames_go_to_its_own_state_with_its_own_sequence(two):
    feed, intake, lanes = two
    seen: list[tuple[str, str]] = []
    for name, (handlers, _services) in lanes.items():
        handlers.on_event("ChannelCreated", lambda e, _t, n=name: seen.append((n, e["server"])))
    # the same channel id on both servers (two Asterisks may well number alike): two channels
    feed(_ari("pbx1", "e1", 1, _frame("ChannelCreated", channel=_channel("c1", "Ring"))),
         _ari("pbx2", "e2", 1, _frame("ChannelCreated", channel=_channel("c1", "Ring"))),
         _ari("pbx1", "e1", 2, _frame("ChannelCreated", channel=_channel("c2", "Ring"))),
         _ari("pbx2", "e2", 2, _frame("ChannelStateChange", channel=_channel("c1", "Up"))),
         _ari("pbx9", "e9", 1, _frame("ChannelCreated", channel=_channel("x", "Ring"))))
    (h1, s1), (h2, s2) = lanes["pbx1"], lanes["pbx2"]
    assert set(h1.state.channels) == {"c1", "c2"} and set(h2.state.channels) == {"c1"}
    assert h1.state.channels["c1"].state == "Ring" and h2.state.channels["c1"].state == "Up"
    # interleaved, each server's numbering is whole: no loss seen
    assert s1.lost == [] and s2.lost == []
    assert s1.epochs == [("pbx1", "e1")] and s2.epochs == [("pbx2", "e2")]
    assert intake.other_servers == {"pbx9": 1}
    assert (h1.counters.received, h2.counters.received) == (2, 2)
    # listeners hear each event with the server it came from
    assert seen == [("pbx1", "pbx1"), ("pbx2", "pbx2"), ("pbx1", "pbx1")]
    view = intake.view()
    assert (view["servers"]["pbx1"]["seq"], view["servers"]["pbx2"]["seq"]) == (2, 2)

    # a gap on pbx2 is pbx2's loss (and its resync), never pbx1's
    feed(_ari("pbx2", "e2", 5, _frame("ChannelStateChange", channel=_channel("c1", "Up"))),
         _ari("pbx1", "e1", 3, _frame("ChannelStateChange", channel=_channel("c2", "Up"))))
    assert s1.lost == [] and [count for count, _ in s2.lost] == [2]


def test_a_header_without_a_server_is_the_first_server_s(two):
    feed, intake, lanes = two
    feed(_ari(None, "e1", 1, _frame("ChannelCreated", channel=_channel("c1", "Ring"))))
    assert "c1" in lanes["pbx1"][0].state.channels and not lanes["pbx2"][0].state.channels
    assert intake.other_servers == {}


def test_link_notices_and_reader_stats_go_to_their_server_s_link(two):
    feed, intake, lanes = two
    got: dict[str, list] = {"pbx1": [], "pbx2": []}
    for name, (_h, services) in lanes.items():
        services.on_link = lambda notice, n=name: got[n].append(notice["state"])
        services.on_reader_stats = lambda stats, n=name: got[n].append("stats")
    feed([protocol.KIND_LINK, json.dumps({"server": "pbx2", "state": "disconnected"}).encode()],
         [protocol.KIND_READER_STATS, json.dumps({"server": "pbx1", "epoch": "e1"}).encode()],
         [protocol.KIND_LINK, json.dumps({"server": "pbx9", "state": "connected"}).encode()])
    assert got == {"pbx1": ["stats"], "pbx2": ["disconnected"]}
    assert intake.other_servers == {"pbx9": 0}


def test_each_server_s_last_event_age_is_its_own(two):
    """A quiet pbx2 shows as quiet even while pbx1 is busy (the per-server metric and alert)."""
    feed, intake, _lanes = two
    feed(_ari("pbx1", "e1", 1, _frame("ChannelCreated", channel=_channel("c1", "Ring"))))
    lanes = intake.view()["servers"]
    assert lanes["pbx1"]["last_event_age"] is not None and lanes["pbx2"]["last_event_age"] is None
    feed(_ari("pbx2", "e2", 1, _frame("ChannelCreated", channel=_channel("c1", "Ring"))))
    assert intake.view()["servers"]["pbx2"]["last_event_age"] is not None
