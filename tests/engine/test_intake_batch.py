"""The events socket's batch form: order kept, gaps seen across batches, bad frames isolated."""

from __future__ import annotations

import json
import logging
import time

import pytest
import zmq

from arimonitor import protocol
from arimonitor.engine.handlers import Handlers
from arimonitor.engine.intake import Intake
from arimonitor.engine.outputs import write_lines
from arimonitor.engine.state import State
from arimonitor.reader.forwarder import Forwarder
from tests.engine.fakes import RecordingEffects


class FakeServices:
    def __init__(self) -> None:
        self.epochs: list = []
        self.lost: list[tuple[int, str]] = []

    def on_new_epoch(self, server, epoch, t) -> None:
        self.epochs.append((server, epoch))

    def on_frames_lost(self, count: int, where: str) -> None:
        self.lost.append((count, where))


def _channel(cid: str, state: str) -> dict:
    return {"id": cid, "name": f"PJSIP/1000-{cid}", "state": state,
            "caller": {"name": "", "number": "1000"}, "dialplan": {"exten": "1001"}}


def _frame(kind: str, **fields) -> bytes:
    return json.dumps({"type": kind, **fields}).encode()


def inproc_pair() -> tuple[zmq.Socket, zmq.Socket]:
    """A connected (PULL, PUSH) over inproc: the events socket and a reader."""
    ctx = zmq.Context.instance()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    address = f"inproc://events-{time.monotonic_ns()}"
    pull.bind(address)
    push.connect(address)
    return pull, push


def feeder(intake: Intake, pull: zmq.Socket, push: zmq.Socket):
    """feed(*messages): send them, then let the intake drain its socket."""

    def feed(*messages):
        for parts in messages:
            push.send_multipart(parts)
        deadline = time.monotonic() + 2
        while pull.poll(0) == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        while pull.poll(50):
            intake.on_readable(pull)

    return feed


@pytest.fixture
def link():
    pull, push = inproc_pair()
    state = State("ast1")
    handlers = Handlers(state, RecordingEffects())
    services = FakeServices()
    intake = Intake(handlers, services)
    seen: list = []
    original = handlers.apply

    def apply(frame, t, where=""):
        seen.append(where)
        original(frame, t, where)

    handlers.apply = apply  # type: ignore[method-assign]

    yield feeder(intake, pull, push), intake, state, services, seen
    push.close(0)
    pull.close(0)


def test_a_batch_is_applied_in_order_with_its_sequence_numbers(link):
    feed, intake, state, services, seen = link
    frames = [_frame("ChannelCreated", channel=_channel("c1", "Ring")),
              _frame("ChannelStateChange", channel=_channel("c1", "Up")),
              _frame("ChannelDestroyed", cause=16, channel=_channel("c1", "Up"))]
    feed(protocol.ari_batch("ast1", 7, 1, frames, 100.0))
    assert seen == [(7, 1), (7, 2), (7, 3)]
    assert state.counters.applied == 3 and state.counters.calls_ended == 1
    assert intake.seq == 3 and intake.epoch == 7 and services.epochs == [("ast1", 7)]
    assert intake.batches == 1 and intake.messages == 1 and intake.frames == 3
    assert not services.lost


def test_lone_frames_and_batches_mix_and_gaps_are_seen_across_batches(link):
    feed, intake, _state, services, seen = link
    f = [_frame("ChannelVarset", variable=f"v{i}", value="x", channel=_channel("c", "Up"))
         for i in range(10)]
    feed(protocol.ari_batch("ast1", 7, 1, f[0:3], 1.0),      # 1..3
         protocol.ari_frame("ast1", 7, 4, f[3], 1.0),          # 4
         protocol.ari_batch("ast1", 7, 7, f[4:6], 1.0),       # 7..8: 5 and 6 were dropped
         protocol.ari_batch("ast1", 7, 9, f[6:8], 1.0))       # 9..10: no gap
    assert [s for _e, s in seen] == [1, 2, 3, 4, 7, 8, 9, 10]
    assert services.lost == [(2, "epoch 7 seq 5..6")]
    assert intake.seq == 10
    # a new connection restarts the numbering without counting a gap
    feed(protocol.ari_batch("ast1", 8, 1, f[8:10], 1.0))
    assert intake.seq == 2 and services.epochs[-1] == ("ast1", 8) and len(services.lost) == 1


def test_a_malformed_frame_in_a_batch_is_counted_and_the_others_apply(link):
    feed, intake, state, _services, _seen = link
    frames = [_frame("ChannelCreated", channel=_channel("c1", "Ring")),
              b"this is not JSON {",
              _frame("ChannelCreated", channel=_channel("c2", "Ring"))]
    feed(protocol.ari_batch("ast1", 7, 1, frames, 1.0))
    assert state.counters.malformed == 1 and state.counters.applied == 2
    assert set(state.channels) == {"c1", "c2"} and intake.seq == 3


def test_a_batch_whose_header_lies_about_its_size_is_rejected_whole(link):
    feed, intake, state, _services, seen = link
    parts = protocol.ari_batch("ast1", 7, 1, [_frame("ChannelVarset", channel=_channel("c", "Up"))] * 2, 1.0)
    parts[1] = parts[1].replace(b'"n":2', b'"n":3')
    feed(parts)
    assert state.counters.malformed == 1 and seen == [] and intake.seq == 0
    with pytest.raises(ValueError):
        protocol.ari_frames(parts)


def test_frames_superseded_by_a_resync_are_dropped_batch_and_all(link):
    feed, intake, state, _services, _seen = link
    intake.superseded_before = 50.0
    frames = [_frame("ChannelCreated", channel=_channel(f"c{i}", "Ring")) for i in range(3)]
    feed(protocol.ari_batch("ast1", 7, 1, frames, 49.0))
    assert state.counters.superseded == 3 and state.counters.received == 3 and not state.channels


def test_forwarder_sends_a_batch_as_one_message_and_a_lone_frame_as_before(tmp_path):
    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    address = f"ipc://{tmp_path}/events.sock"
    pull.bind(address)
    fwd = Forwarder(address, ctx)
    try:
        time.sleep(0.1)  # IMMEDIATE: let the connection come up
        assert fwd.frames("ast1", 5, 11, [b"{}", b"[1]", b"x"], 123.5)
        assert fwd.frames("ast1", 5, 14, [b"{}"], 124.0)
        assert pull.poll(2000)
        batch = pull.recv_multipart()
        assert pull.poll(2000)
        lone = pull.recv_multipart()
    finally:
        fwd.close()
        pull.close(0)
    assert batch[0] == protocol.KIND_ARI_BATCH and batch[2:] == [b"{}", b"[1]", b"x"]
    assert json.loads(batch[1]) == {"server": "ast1", "epoch": 5, "seq": 11, "n": 3, "t": 123.5}
    assert [(h["seq"], f) for h, f in protocol.ari_frames(batch)] == [(11, b"{}"), (12, b"[1]"), (13, b"x")]
    assert lone[0] == protocol.KIND_ARI and json.loads(lone[1])["seq"] == 14
    assert fwd.sent == 4 and fwd.batches == 1


def test_calls_log_lines_of_a_burst_read_as_if_written_one_by_one(tmp_path):
    logger = logging.getLogger("test.calls.burst")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(tmp_path / "calls.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(handler)
    try:
        write_lines(logger, ["ringing call=1", "up call=1 100%", "ended call=1"])
        write_lines(logger, ["ringing call=2"])
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = (tmp_path / "calls.log").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "ringing call=1", "up call=1 100%", "ended call=1", "ringing call=2"]
    stamp = lines[0].split(" ", 2)[:2]
    assert all(line.split(" ", 2)[:2] == stamp for line in lines[:3])


def test_work_finishing_after_the_loop_closed_is_dropped_not_written_to_a_stale_fd(tmp_path):
    from arimonitor.engine.loop import Loop

    loop = Loop()
    loop.close()
    # both pipe fd numbers are free again: other files (a database) may now hold them
    with open(tmp_path / "a.db", "wb") as first, open(tmp_path / "b.db", "wb") as second:
        assert first.fileno() >= 0 and second.fileno() >= 0
        loop.call_soon_threadsafe(lambda: None)  # a worker thread finishing late: no error
    assert (tmp_path / "a.db").read_bytes() == b"" and (tmp_path / "b.db").read_bytes() == b""


def test_messages_of_another_server_are_set_aside_and_counted(link):
    feed, intake, state, services, seen = link
    frames = [_frame("ChannelCreated", channel=_channel("c9", "Ring"))] * 2
    feed(protocol.ari_batch("pbx2", 3, 1, frames, 1.0),
         [protocol.KIND_LINK, protocol.dumps(protocol.link_notice("pbx2", 3, protocol.LINK_CONNECTED))],
         protocol.ari_frame("ast1", 7, 1, _frame("ChannelCreated", channel=_channel("c1", "Ring")), 1.0))
    # pbx2's frames never reach ast1's state, its epoch never reads as ast1's new connection
    assert seen == [(7, 1)] and set(state.channels) == {"c1"}
    assert services.epochs == [("ast1", 7)] and intake.epoch == 7
    assert intake.view()["other_servers"] == {"pbx2": 2}
