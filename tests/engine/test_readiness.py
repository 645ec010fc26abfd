"""Readiness: REST steps wait for the state they need (StasisStart, a bridge), never for time."""

from __future__ import annotations

from typing import Any

from arimonitor.ari.rest import AriHttpError
from arimonitor.engine.api import Cancelled, StateNotReached, Step, bridge, in_stasis
from arimonitor.engine.readiness import Readiness
from arimonitor.engine.state import Bridge, Channel, State

NOT_IN_STASIS = {"message": "Channel not in Stasis application"}


class World:
    """A State the test edits as the core handlers would, a worker that runs when told."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.state = State()
        self.now = 0.0
        self.queue: list[tuple[Any, Any]] = []
        self.sent: list[str] = []
        self.refuse: dict[str, list[BaseException]] = {}
        self.ended: list[BaseException | None] = []
        self.ready = Readiness(self.state, lambda work, done: self.queue.append((work, done)),
                               lambda: timeout, clock=lambda: self.now)

    def step(self, what: str, needs=(), gives=()) -> Step:
        def request() -> None:
            self.sent.append(what)
            refusals = self.refuse.get(what)
            if refusals:
                raise refusals.pop(0)
        return Step(what, request, tuple(needs), tuple(gives))

    def run(self, *steps: Step, alive=lambda: True) -> None:
        self.ready.run("test", list(steps), self.ended.append, alive)

    def work(self) -> None:
        """Run what was submitted, as the REST worker would, then hand back (loop thread)."""
        while self.queue:
            work, done = self.queue.pop(0)
            try:
                result, error = work(), None
            except Exception as exc:  # noqa: BLE001
                result, error = None, exc
            done(result, error)

    def stasis_start(self, channel_id: str) -> None:
        channel = self.state.channels.get(channel_id)
        if channel is None:
            channel = self.state.channels[channel_id] = Channel(
                channel_id, f"PJSIP/x-{channel_id}", "Up", "x", "PJSIP", "", "", 0.0)
        channel.in_stasis = True
        self.ready.on_event({"type": "StasisStart", "channel": {"id": channel_id}}, self.now)

    def destroyed(self, channel_id: str) -> None:
        self.state.channels.pop(channel_id, None)
        self.ready.on_event({"type": "ChannelDestroyed", "channel": {"id": channel_id}}, self.now)


def test_a_step_waits_for_the_stasis_start_it_needs_then_goes_in_order() -> None:
    w = World()
    w.run(w.step("create B"), w.step("addChannel B", needs=[in_stasis("b")]), w.step("dial B", needs=[in_stasis("b")]))
    w.work()
    assert w.sent == ["create B"] and w.ended == []
    assert w.state.counters.rest_waited == 1 and w.ready.pending() == 1
    w.stasis_start("b")
    w.work()
    assert w.sent == ["create B", "addChannel B", "dial B"]  # both ready steps in one job
    assert w.ended == [None] and w.ready.pending() == 0
    assert w.state.counters.rest_races == w.state.counters.rest_wait_failed == 0


def test_a_step_already_satisfied_goes_at_once_and_a_200_gives_the_bridge() -> None:
    w = World()
    w.stasis_start("a")
    w.run(w.step("create bridge", gives=[bridge("br")]), w.step("addChannel A", needs=[bridge("br"), in_stasis("a")]))
    assert len(w.queue) == 1  # one job: the bridge is known from the 200, not from its event
    w.work()
    assert w.sent == ["create bridge", "addChannel A"] and w.ended == [None]
    assert w.state.counters.rest_waited == 0


def test_a_bridge_need_is_met_by_its_event() -> None:
    w = World()
    w.run(w.step("record bridge", needs=[bridge("br")]))
    assert w.queue == []
    w.state.bridges["br"] = Bridge("br")
    w.ready.on_event({"type": "BridgeCreated", "bridge": {"id": "br"}}, 0.0)
    w.work()
    assert w.sent == ["record bridge"] and w.ended == [None]


def test_409_after_the_state_was_believed_is_a_race_retried_when_stasis_start_arrives() -> None:
    """A resync snapshot showed the channel in Stasis before Asterisk could control it."""
    w = World()
    w.state.channels["sn"] = Channel("sn", "Snoop/x-1", "Up", "x", "Snoop", "", "", 0.0, in_stasis=True)
    w.refuse["record"] = [AriHttpError("POST", "/channels/sn/record", 409, NOT_IN_STASIS)]
    w.run(w.step("snoop"), w.step("record", needs=[in_stasis("sn")]))
    w.work()
    assert w.sent == ["snoop", "record"] and w.ended == []  # not a failure
    assert w.state.counters.rest_races == 1 and w.ready.pending() == 1
    w.ready.recheck()  # the state still says "in Stasis": not trusted again until the event
    assert w.queue == []
    w.stasis_start("sn")
    w.work()
    assert w.sent == ["snoop", "record", "record"] and w.ended == [None]


def test_422_on_addchannel_is_a_race_too_and_other_errors_end_the_sequence() -> None:
    w = World()
    w.stasis_start("b")
    w.refuse["addChannel B"] = [AriHttpError("POST", "/bridges/br/addChannel", 422, NOT_IN_STASIS)]
    w.run(w.step("addChannel B", needs=[in_stasis("b")]), w.step("dial B", needs=[in_stasis("b")]))
    w.work()
    w.stasis_start("b")  # a repeat of the event (duplicates are normal) lets it go again
    w.work()
    assert w.sent == ["addChannel B", "addChannel B", "dial B"] and w.ended == [None]
    assert w.state.counters.rest_races == 1

    other = World()
    other.stasis_start("b")
    boom = AriHttpError("POST", "/channels/b/dial", 409, {"message": "Channel is not in the 'Down' state"})
    other.refuse["dial B"] = [boom]
    other.run(other.step("dial B", needs=[in_stasis("b")]))
    other.work()
    assert other.ended == [boom] and other.state.counters.rest_races == 0


def test_deadline_is_a_counted_failure_with_the_reason() -> None:
    w = World(timeout=10.0)
    w.run(w.step("create B"), w.step("addChannel B", needs=[in_stasis("b")]), w.step("dial B"))
    w.work()
    w.now = 9.9
    w.ready.tick()
    assert w.ended == []
    w.now = 10.0
    w.ready.tick()
    (error,) = w.ended
    assert isinstance(error, StateNotReached)
    assert str(error) == "channel b in Stasis not seen within 10 s"
    assert w.state.counters.rest_wait_failed == 1 and w.ready.pending() == 0
    assert w.sent == ["create B"]  # nothing after it went out
    w.stasis_start("b")  # too late: nothing is sent, done is not called twice
    w.work()
    assert w.sent == ["create B"] and len(w.ended) == 1


def test_channel_gone_while_waiting_fails_at_once() -> None:
    w = World()
    w.run(w.step("record", needs=[in_stasis("sn")]))
    w.destroyed("sn")
    (error,) = w.ended
    assert isinstance(error, StateNotReached) and "sn hung up before it entered Stasis" in str(error)
    assert w.state.counters.rest_wait_failed == 1


def test_owner_that_moved_on_cancels_without_sending() -> None:
    w = World()
    wanted = [True]
    w.run(w.step("record", needs=[in_stasis("sn")]), alive=lambda: wanted[0])
    wanted[0] = False
    w.stasis_start("sn")
    w.work()
    assert w.sent == [] and isinstance(w.ended[0], Cancelled)
    assert w.state.counters.rest_wait_failed == 0  # not a failure: nobody wants it any more


def test_recheck_after_a_resync_lets_a_waiting_step_go() -> None:
    w = World()
    w.run(w.step("addChannel A", needs=[in_stasis("a")]))
    w.state.channels["a"] = Channel("a", "PJSIP/x-a", "Up", "x", "PJSIP", "", "", 0.0, in_stasis=True)
    w.ready.recheck()
    w.work()
    assert w.sent == ["addChannel A"] and w.ended == [None]
