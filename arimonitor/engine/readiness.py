"""ARI requests that need a state Asterisk must show first: wait for that state, never for time.

Asterisk takes a channel into Stasis on a thread of its own: `POST /channels/create` and
`POST /channels/{id}/snoop` answer 200 before the channel is in our app, and a request that
needs it there fails if it goes too soon (`addChannel` 422, `record` and `dial` 409 "Channel
not in Stasis application"; issue 16, 1 run in 5 against a real Asterisk). So a component
hands its requests in as a sequence of `Step`s, each naming what it needs (`in_stasis(id)`,
`bridge(id)`). A step goes to the REST worker only once the engine's state shows what it needs
(the StasisStart of that channel, the bridge's creation or a 200 to an earlier step that made
it); the steps run in order, consecutive ready steps in one worker job.

- A step that still meets 409/422 "not in Stasis" is a race (the state we trusted came from a
  resync snapshot, which shows a channel entering Stasis before Asterisk can control it):
  counted (`rest_races`), and sent again when that channel's StasisStart arrives.
- A need not met within `ari.state_timeout`, or whose channel or bridge is destroyed meanwhile,
  ends the sequence with `StateNotReached` and its reason (counted: `rest_wait_failed`).
- `alive()` false (the call ended, the owner moved on) ends it with `Cancelled`.

Every sequence ends with exactly one `done(error)` on the loop thread: None when all steps
were answered. Only the loop thread touches this object. The vocabulary (`Step`, `Need`,
`in_stasis`, `bridge`, the errors) lives in engine/api.py, the components' door; they call
`engine.run_steps(name, steps, done, alive)`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from arimonitor.engine.api import (
    BRIDGE,
    STASIS,
    Cancelled,
    Need,
    StateNotReached,
    Step,
    StepsDone,
    bridge,
    in_stasis,
    not_in_stasis,
)
from arimonitor.engine.state import Counters, State

log = logging.getLogger(__name__)

MAX_RACES = 3  # 409/422 answers one sequence may retry; each retry waits for a StasisStart
EVENT_TYPES = ("StasisStart", "ChannelDestroyed", "BridgeCreated", "BridgeDestroyed")

Submit = Callable[[Callable[[], Any], Callable[[Any, BaseException | None], None]], None]


class Readiness:
    def __init__(self, state: State, submit: Submit, timeout: Callable[[], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self.submit = submit
        self.timeout = timeout
        self.clock = clock
        self.counters: Counters = state.counters
        self.waiting: dict[Need, list[Steps]] = {}

    def met(self, need: Need) -> bool:
        if need.kind == STASIS:
            channel = self.state.channels.get(need.id)
            return channel is not None and channel.in_stasis
        return need.id in self.state.bridges

    def run(self, name: str, steps: Sequence[Step], done: StepsDone,
            alive: Callable[[], bool] | None = None) -> Steps:
        """Start a sequence now; `name` (a recording, a request id) goes into logs and reasons."""
        sequence = Steps(self, name, list(steps), done, alive or (lambda: True))
        sequence.advance()
        return sequence

    def pending(self) -> int:
        return sum(len(v) for v in self.waiting.values())

    # ---- fed by the engine (loop thread) --------------------------------------------------

    def on_event(self, event: dict, _t: float) -> None:
        kind = event.get("type")
        if kind == "StasisStart":
            self._arrived(in_stasis(event["channel"]["id"]))
        elif kind == "BridgeCreated":
            self._arrived(bridge(event["bridge"]["id"]))
        elif kind == "ChannelDestroyed":
            self._gone(in_stasis(event["channel"]["id"]), "hung up before it entered Stasis")
        elif kind == "BridgeDestroyed":
            self._gone(bridge(event["bridge"]["id"]), "was destroyed")

    def recheck(self) -> None:
        """After a resync the state may hold what a sequence waits for without an event."""
        for need in list(self.waiting):
            if self.met(need):
                for sequence in self.waiting.pop(need, []):
                    if need not in sequence.distrusted:
                        sequence.advance()
                    else:
                        self._park(sequence, need, sequence.deadline)

    def tick(self) -> None:
        """Deadlines (every half second from the loop's timer)."""
        now = self.clock()
        for need, sequences in list(self.waiting.items()):
            for sequence in list(sequences):
                if not sequence.alive():
                    self._unpark(sequence, need)
                    sequence.finish(Cancelled(f"{sequence.name}: no longer wanted"))
                elif now >= sequence.deadline:
                    self._unpark(sequence, need)
                    self.counters.rest_wait_failed += 1
                    reason = f"{need} not seen within {self.timeout():g} s"
                    log.warning("%s: %s; %s not sent", sequence.name, reason, sequence.current)
                    sequence.finish(StateNotReached(reason))

    # ---- inside -----------------------------------------------------------------------------

    def _park(self, sequence: Steps, need: Need, deadline: float) -> None:
        sequence.deadline = deadline
        self.waiting.setdefault(need, []).append(sequence)

    def _unpark(self, sequence: Steps, need: Need) -> None:
        sequences = self.waiting.get(need, [])
        if sequence in sequences:
            sequences.remove(sequence)
        if not sequences:
            self.waiting.pop(need, None)

    def _arrived(self, need: Need) -> None:
        for sequence in self.waiting.pop(need, []):
            sequence.distrusted.discard(need)
            sequence.advance()

    def _gone(self, need: Need, how: str) -> None:
        for sequence in self.waiting.pop(need, []):
            self.counters.rest_wait_failed += 1
            what = need.id if need.kind == BRIDGE else f"channel {need.id}"
            log.info("%s: %s %s; %s not sent", sequence.name, what, how, sequence.current)
            sequence.finish(StateNotReached(f"{what} {how}"))


class Steps:
    """One sequence of steps; made by `Readiness.run`."""

    def __init__(self, owner: Readiness, name: str, steps: list[Step], done: StepsDone,
                 alive: Callable[[], bool]) -> None:
        self.owner = owner
        self.name = name
        self.steps = steps
        self.done = done
        self.alive = alive
        self.next = 0
        self.given: set[Need] = set()
        self.distrusted: set[Need] = set()  # believed, then refused 409/422: wait for the event
        self.races = 0
        self.deadline = 0.0
        self.finished = False

    @property
    def current(self) -> str:
        return self.steps[self.next].what if self.next < len(self.steps) else "-"

    def _unmet(self, step: Step, known: set[Need]) -> Need | None:
        for need in step.needs:
            if need in self.distrusted or (need not in known and not self.owner.met(need)):
                return need
        return None

    def advance(self) -> None:
        if self.finished:
            return
        if not self.alive():
            self.finish(Cancelled(f"{self.name}: no longer wanted"))
            return
        batch: list[Step] = []
        known = set(self.given)
        unmet = None
        for step in self.steps[self.next:]:
            unmet = self._unmet(step, known)
            if unmet is not None:
                break
            batch.append(step)
            known.update(step.gives)
        if batch:
            self._send(batch)
        elif unmet is not None:
            self.owner.counters.rest_waited += 1
            log.debug("%s: %s waits for %s", self.name, self.current, unmet)
            self.owner._park(self, unmet, self.owner.clock() + self.owner.timeout())
        else:
            self.finish(None)

    def _send(self, batch: list[Step]) -> None:
        def work() -> tuple[int, BaseException | None]:
            for answered, step in enumerate(batch):
                try:
                    step.request()
                except Exception as exc:  # noqa: BLE001  handed back to the loop with how far we got
                    return answered, exc
            return len(batch), None

        self.owner.submit(work, self._sent)

    def _sent(self, result: Any, error: BaseException | None) -> None:
        answered, failure = result if error is None else (0, error)
        for step in self.steps[self.next:self.next + answered]:
            self.given.update(step.gives)
        self.next += answered
        if failure is None:
            self.advance()
            return
        step = self.steps[self.next]
        stasis = [n for n in step.needs if n.kind == STASIS]
        if not_in_stasis(failure) and stasis and self.races < MAX_RACES and self.alive():
            self.races += 1
            self.owner.counters.rest_races += 1
            log.info("%s: %s answered %s; sent again when %s arrives", self.name, step.what,
                     getattr(failure, "status", "?"), " and ".join(map(str, stasis)))
            self.distrusted.update(stasis)
            self.advance()
            return
        self.finish(failure)

    def finish(self, error: BaseException | None) -> None:
        if self.finished:
            return
        self.finished = True
        self.done(error)

