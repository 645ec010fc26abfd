"""The engine's one door: all that a component or a console command may use of the engine.

Components (transcode, click-to-call, the manager port) get an `EngineApi` in their factory;
console commands get one as `ctx`. Neither sees the loop, the handlers, the state objects or
the store: queries return plain values (dicts, lists, the frozen v2.7 `Tables`), intents say
what should happen and the engine decides how. The engine implements it in `engine/door.py`;
tests may hand in any object with the same shape.

Threads: the engine runs one loop thread that owns all state. Everything here is for that
thread (fast commands and component callbacks run there) except what says "any thread".
A slow command (a worker thread) wraps its loop-thread reads in `call_in_loop`.

This module imports nothing of the engine but its vocabulary (`engine.states`), so every room
may depend on it without a cycle (tests/test_layering.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# (result, error) -> None, called on the loop thread when work given to a worker is done.
Done = Callable[[Any, "BaseException | None"], None]
# (topic, body) -> None
Listener = Callable[[str, dict[str, Any]], None]
# error -> None: how a sequence of steps ended (None: every step was answered)
StepsDone = Callable[["BaseException | None"], None]


# ---- REST steps that wait for the state they need (engine/readiness.py; issue 16) -------------
# Asterisk answers 200 to /channels/create and /channels/{id}/snoop before the channel is in
# our app; a record/dial (409) or addChannel (422) sent at once fails. A component names what
# each request needs and the engine sends it once its state shows that: `run_steps`.

STASIS, BRIDGE = "stasis", "bridge"


@dataclass(frozen=True, slots=True)
class Need:
    kind: str  # STASIS | BRIDGE
    id: str

    def __str__(self) -> str:
        return f"channel {self.id} in Stasis" if self.kind == STASIS else f"bridge {self.id}"


def in_stasis(channel_id: str) -> Need:
    return Need(STASIS, channel_id)


def bridge(bridge_id: str) -> Need:
    return Need(BRIDGE, bridge_id)


@dataclass(frozen=True)
class Step:
    what: str                          # for logs: "addChannel c2c-…-b"
    request: Callable[[], Any]         # runs on the REST worker thread
    needs: tuple[Need, ...] = ()
    gives: tuple[Need, ...] = ()       # known true once this step was answered (a 200 to POST /bridges)


class StateNotReached(Exception):
    """What a step needed never showed (deadline, or its channel/bridge went away)."""


class Cancelled(Exception):
    """The sequence's owner no longer wants it (alive() turned false)."""


def not_in_stasis(error: BaseException) -> bool:
    """Asterisk's answer to a request that needs a channel in Stasis, sent before it was."""
    return getattr(error, "status", 0) in (409, 422) and "not in stasis" in str(error).lower()



# run_steps(name, steps, done, alive): EngineApi.run_steps, or SendAtOnce(submit) without an engine
RunSteps = Callable[[str, Sequence[Step], StepsDone, "Callable[[], bool] | None"], None]


class SendAtOnce:
    """`run_steps` for a part used without an engine (unit tests): every step is sent at once,
    in order, in one job given to `submit`; the first failure ends the sequence."""

    def __init__(self, submit: Callable[[Callable[[], Any], Done], None]) -> None:
        self.submit = submit

    def __call__(self, name: str, steps: Sequence[Step], done: StepsDone,
                 alive: Callable[[], bool] | None = None) -> None:
        def work() -> None:
            for step in steps:
                step.request()

        self.submit(work, lambda _result, error: done(error))



class Timer(Protocol):
    interval: float

    def cancel(self) -> None: ...


class EngineApi(Protocol):
    # ---- settings -----------------------------------------------------------------------------

    @property
    def cfg(self) -> Any:
        """The engine's one Config (`cfg[name]` at use time; `display(name)` masks secrets)."""

    def take_config(self, new: Any) -> None:
        """`set`: every holder of the Config reads the new values from its next use on."""

    def save_setting(self, name: str, raw: str) -> None:
        """`set`: keep the raw value in the engine's store, applied again at the next start
        (unless the file's value changed since)."""

    def forget_setting(self, name: str) -> bool:
        """`unset`: drop the saved value (True if there was one)."""

    def saved_setting_names(self) -> set[str]: ...

    # ---- queries (plain values) ---------------------------------------------------------------

    def status(self, server: str | None = None) -> dict[str, Any]:
        """The first server's link, probe and state at the top, every server's in `servers`;
        with `server`, that server's at the top (KeyError: not configured)."""

    def stats(self, server: str | None = None) -> dict[str, Any]:
        """Counters summed over the servers, each server's in `servers`; with `server`, its own."""

    def totals(self) -> dict[str, int]:
        """Persisted counters since the database was made (this run's plus earlier runs')."""

    def link(self) -> dict[str, Any]:
        """The reader's link (state, since, epoch, reason), its last stats (`reader`) and the
        start of the outage not closed yet (`outage_open_since`, None when none is open): the
        first server's, and every server's the same way in `servers` (name -> view)."""

    def tables(self) -> Any:
        """The current v2.7 `Tables` snapshot (frozen), or None before the first load."""

    def endpoints(self, client: str | None = None, state: str | None = None,
                  server: str | None = None) -> list[dict[str, Any]]:
        """One view per endpoint; its `server`: where it is online now (None: nowhere)."""

    def active_calls(self, client: str | None = None, server: str | None = None) -> list[dict[str, Any]]: ...
    def count_endpoints(self) -> dict[tuple[str, str, str], int]:
        """(server, client, state) -> how many endpoints: cheap enough for every scrape (no
        views). `server`: the first it is online on; the first server's for one online nowhere."""

    def count_calls(self) -> dict[tuple[str, str, str, str], int]:
        """(server, client, direction, state) -> how many active calls (no views)."""

    def read_database(self) -> sqlite3.Connection:
        """Any thread: a new read-only connection to the engine's SQLite, for that thread's
        reads off the loop (the caller closes it)."""

    def remote_ips(self) -> list[dict[str, Any]]: ...
    def history(self, client: str | None = None, since: float | None = None,
                limit: int = 50, server: str | None = None) -> list[dict[str, Any]]: ...

    def history_count(self, client: str | None = None, since: float | None = None,
                      server: str | None = None) -> int:
        """How many ended calls that filter has (the history shows the newest `limit`)."""

    def call(self, call_id: str, server: str | None = None) -> dict[str, Any] | None:
        """A live call's view plus `channel_views`: its channels' views, in id order. `server`:
        on that server (two servers may give the same uniqueid); None: the first that has it."""

    def channels(self, prefix: str = "") -> list[dict[str, Any]]:
        """Views of the live channels whose id starts with `prefix`."""

    def bridges(self) -> list[str]: ...
    def recording_meta(self, name: str) -> dict[str, Any] | None: ...
    def recording_live(self, name: str) -> bool: ...

    def view(self, name: str) -> Any:
        """What a component offered under `name` (`offer`), called now; None if nobody did."""

    # ---- intents ------------------------------------------------------------------------------

    def publish(self, topic: str, body: dict[str, Any]) -> None: ...
    def publications_since(self, run: str, after: int, most: int) -> dict[str, Any]:
        """The kept bus-topic publications after `<run>.<after>` (Notifier.since)."""

    def publish_soon(self, topic: str, body: dict[str, Any]) -> None:
        """Any thread: publish from the loop thread (it alone owns the PUB socket)."""

    def load_files(self, tables: Any) -> dict[str, int]:
        """Swap in a v2.7 `Tables` snapshot: counts listed, added, dropped."""

    def whitelist(self, ip: str, wanted: bool) -> dict[str, Any]:
        """Set a remote IP's whitelist flag and save it (an unknown IP may be added in advance);
        KeyError when removing an unknown IP."""

    def sweep_endpoints(self, listed: list[dict[str, Any]], fetched_at: float,
                        progress: Callable[[int, int], None] | None = None,
                        server: str | None = None) -> dict[str, int]:
        """Worker thread: ARI's endpoint objects (one GET /endpoints made at `fetched_at`) into
        the state, in steps that let events through between them (progress(done, total) after
        each); what ARI did not list becomes unknown; an event newer than the GET wins.
        Returns changed, online, offline, unknown, total, chunks (steps) and step (their size)."""

    def note_process_report(self, report: dict[str, Any]) -> None:
        """Another process's `_report` (click-to-call consumer...), kept for `status`."""

    def process_reports(self) -> dict[str, dict[str, Any]]: ...
    def note_level_sent(self, process: str, level: str) -> None:
        """`debug`: the level sent to a process (`all` replaces every earlier one)."""
    def levels_sent(self) -> dict[str, str]: ...

    def recover(self, timeout: float = 30.0,
                server: str | None = None) -> dict[str, dict[str, Any] | Exception]:
        """Worker thread: resync every server (or `server` only) now, at once, and wait for
        each within `timeout`: name -> its result, or the TimeoutError / AriError it failed
        with (KeyError: `server` not configured)."""

    def call_in_loop(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Worker thread: run fn() on the loop thread and return its value (or raise its error)."""

    # ---- plugging in (components) -------------------------------------------------------------

    @property
    def zmq_context(self) -> Any: ...

    def add_socket(self, sock: Any, handler: Callable[[Any], None]) -> None: ...
    def every(self, seconds: float, fn: Callable[[], Any]) -> Timer: ...
    def on_event(self, event_type: str, fn: Callable[[dict, float], Any]) -> None:
        """fn(event, t) after the engine's own handler of that ARI event type."""

    def claim_channels(self, name: str, fn: Callable[..., bool]) -> None:
        """fn(channel, args) -> True: this component drives that Stasis channel."""

    def subscribe(self, prefix: str, fn: Listener) -> Callable[[], None]:
        """fn(topic, body) for every publication whose topic starts with prefix."""

    def database(self, migration: str, schema: str) -> sqlite3.Connection:
        """The component's own tables: `schema` applied once under the name `migration`;
        the connection is the engine's (loop thread only)."""

    def run_steps(self, name: str, steps: Sequence[Step], done: StepsDone,
                  alive: Callable[[], bool] | None = None, server: str | None = None) -> None:
        """REST requests made on an event, in order on the REST worker thread, each sent once the
        engine has seen what it `needs` (a channel's StasisStart, a bridge); a 409/422 race is
        sent again at the StasisStart; done(None) when all were answered, else done(error):
        the REST error, `StateNotReached` (ari.state_timeout, or the channel went), `Cancelled`
        (alive() false; None: always wanted). `server`: whose state they wait on (a channel the
        steps create, e.g. a snoop, is on no server yet); None: the server holding a channel or
        bridge they name, else the first. Loop thread."""

    def submit_rest(self, work: Callable[[], Any], done: Done | None = None) -> None:
        """Run work() on the engine's REST worker thread, in order; done(result, error) on the
        loop thread."""

    def offer(self, name: str, fn: Callable[[], Any]) -> None:
        """Make `view(name)` answer fn() (a component's part of `status`)."""
