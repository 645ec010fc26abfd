"""The resyncer: when and how the engine resynchronises with Asterisk, and the outages it closes.

A resync (`request`) fetches one snapshot in a thread (`resync.fetch_snapshot`) and reconciles
it in the loop (`resync.reconcile`, in endpoint / channel / bridge steps); one runs at a time,
another asked for meanwhile follows it. The window from a lost link (or the previous run's
last-alive mark) to the resync that closes it is an outage: stored with what the resync
changed, counted, shown by `status`. `ask`/`recover` are the same from a worker thread, waiting.
Loop thread, except `ask` and `recover`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from arimonitor import protocol
from arimonitor.ari.rest import AriAuthError, AriError, AriNotAsterisk
from arimonitor.engine import resync as R
from arimonitor.engine import states as S
from arimonitor.engine.handlers import Handlers
from arimonitor.engine.loop import Loop
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.store import Store
from arimonitor.keptwrites import KeptWrites
from arimonitor.repeats import STARTUP_GRACE, RepeatedFailure

log = logging.getLogger(__name__)
# The reason of a resync that retries a failed one (never nested: "retry after: retry after: ...").
RETRY = "retry after: "

# What a resync changed, kept with each outage (store `outages.changes`, `status`).
OUTAGE_CHANGES = ("adopted", "restored", "ended", "dropped_channels", "changed", "addresses")

# waiter(result, "") after a resync; waiter(None, error) when it failed
Waiter = Callable[[dict[str, Any] | None, "str | AriError"], None]


class Resyncer:
    def __init__(self, *, handlers: Handlers, store: Store, notifier: Notifier, loop: Loop,
                 app: str, snapshot: Callable[[], R.Snapshot], auth: Any) -> None:
        self.state = handlers.state
        self.handlers = handlers
        self.store = store
        self.notifier = notifier
        self.loop = loop
        self.app = app
        self.snapshot = snapshot            # worker-thread callable: one REST sweep
        self.auth = auth                    # failed(text) / ok(): link.AriAuth
        self.outage_started: float | None = None
        self.last_outage: dict[str, Any] | None = None
        self.running = False
        self.pending = ""
        self.last: dict[str, Any] = {}
        self._waiters: list[Waiter] = []
        self.intake: Any = None             # set by the app: frames older than a snapshot are dropped
        # an outage retries every 2 s: logged once, then counted (arimonitor/repeats.py)
        self.failures = RepeatedFailure(log, "resync with Asterisk", grace=STARTUP_GRACE)
        self.mark_failures = RepeatedFailure(
            log, "the engine's own SQLite writes (last-alive mark, outage rows)")
        # outage rows SQLite refused (the store is looked up at each write, as the effects do)
        self.unsaved_outages: KeptWrites[tuple] = KeptWrites(
            "outage rows", lambda row: self.store.add_outage(*row), 1000, log)
        self.probe: Any = None              # set by the app: a failed resync says why there too
        # set by the app (LinkMonitor.connected): an outage closes only with the WebSocket back
        self.link_up: Callable[[], bool] = lambda: True
        self.outage_changes: dict[str, int] = {}  # what the resyncs of the open outage changed

    # ---- life ---------------------------------------------------------------------------------

    def start(self, alive: Any = "read") -> None:
        """The engine starts: the time since the previous run's last-alive mark is an outage
        (kill -9, crash, stop): closed, with what the first resync changed, like a link's.
        `alive`: that mark, read by the caller when every server's resyncer starts from it."""
        if alive == "read":
            alive = self.store.last_alive()
        if alive is not None:
            self.outage_from(alive)
        self.heartbeat()
        self.request("engine start")

    def _save_outages(self) -> None:
        """The outages closed and not yet in SQLite (a full disk keeps them here, in order)."""
        self.unsaved_outages.flush(lambda exc: self.mark_failures.failed(f"outage row: {exc}"))

    def heartbeat(self) -> None:
        """Every second: the last-alive mark the next run measures its outage from, and the
        outage rows SQLite refused."""
        self._save_outages()
        try:
            self.store.mark_alive(time.time())
        except sqlite3.Error as exc:
            # A full disk: only the newest mark matters, and the next second's write carries
            # it; `status` names the full disk (outputs.py). Logged once, then counted.
            self.mark_failures.failed(str(exc))
            return
        if self.mark_failures.count:
            self.mark_failures.succeeded()

    def outage_from(self, t: float) -> None:
        """Asterisk unseen since t (kept if an outage is already open)."""
        if self.outage_started is None:
            self.outage_started = t

    # ---- a resync -----------------------------------------------------------------------------

    def request(self, reason: str, waiter: Waiter | None = None) -> bool:
        """Start a resync (loop thread); if one runs, another follows it. True if started now."""
        if waiter is not None:
            self._waiters.append(waiter)
        if self.running:
            self.pending = self.pending or reason
            return False
        self.running = True
        self.state.touched = set()
        started = time.time()
        # a retry every 2 s during an outage is not news: only the first attempt at INFO
        log.log(logging.DEBUG if reason.startswith(RETRY) else logging.INFO, "resync started: %s", reason)
        self.loop.run_in_thread(self.snapshot, lambda snap, err: self._done(snap, err, reason, started),
                                name="resync")
        return True

    def _done(self, snap: R.Snapshot | None, error: BaseException | None, reason: str,
              started: float) -> None:
        self.running = False
        waiters, self._waiters = self._waiters, []
        if error is not None or snap is None:
            self._failed(error, reason, waiters)
            return
        result = self._apply(snap, reason, started)
        self.notifier.publish(protocol.TOPIC_LINK_RESYNCED, {**result, "server": self.state.server})
        for waiter in waiters:
            waiter(result, "")
        if self.pending:
            pending, self.pending = self.pending, ""
            self.request(pending)

    def _failed(self, error: BaseException | None, reason: str, waiters: list[Waiter]) -> None:
        self.state.touched = None
        self.state.counters.resync_failures += 1
        text = str(error) if isinstance(error, AriError) else repr(error)
        if self.probe is not None:  # `status` and `arimonitor start` say why before the first probe
            self.probe.last_error = text
            self.probe.not_asterisk = isinstance(error, AriNotAsterisk)
        if isinstance(error, AriAuthError):
            # Asterisk is there and says no: an operator's fix, not an outage.
            self.auth.failed(text)
        else:
            first = self.failures.count == 0
            self.failures.failed(f"{text} ({reason.removeprefix(RETRY)})")
            if first:
                self.notifier.publish(protocol.TOPIC_WARNING_RESYNC, {"text": f"resync failed: {text}",
                                                                      "reason": reason,
                                                                      "server": self.state.server})
        for waiter in waiters:
            # the error itself when ARI said why, so `recovery` can tell auth from outage
            waiter(None, error if isinstance(error, AriError) else text)
        # Keep trying: state we cannot trust must not stay silently (slower on bad auth).
        retry = 10.0 if isinstance(error, AriAuthError) else 2.0
        self.loop.call_later(retry, lambda: self.request(RETRY + reason.removeprefix(RETRY)))

    def _apply(self, snap: R.Snapshot, reason: str, started: float) -> dict[str, Any]:
        self.failures.succeeded()
        self.auth.ok()
        fx = self.handlers.fx
        # Rows of active calls a previous run announced: read only if ARI has channels we do
        # not know (after an engine restart), to restore their true times when adopted.
        persisted = (self.store.load_active(self.state.server)
                     if any(obj.get("id") not in self.state.channels for obj in snap.channels)
                     else [])
        fx.hold()  # adopted calls' rows and log lines: one write
        try:
            result = R.reconcile(self.handlers, snap, self.app, persisted=persisted,
                                 last_alive=self.outage_started)
        finally:
            self.state.touched = None
            fx.release()
        prune = getattr(fx, "prune_active", None)
        if prune is not None:
            # in flight when the engine stopped: ended, with a reason, counted, in the history
            lost = prune(set(self.state.calls), self.outage_started or time.time(), S.END_ENGINE_DOWN)
            result["pruned"] = lost
            if lost:
                self.state.counters.calls_lost += lost
                self.state.counters.calls_ended += lost
                result["ended"] += lost
                log.info("%d call(s) up when the engine last stopped are gone from Asterisk: in the "
                         "history as '%s'", lost, S.END_ENGINE_DOWN)
        if self.intake is not None:
            self.intake.superseded_before = snap.started
        self.state.counters.resyncs += 1
        result.update({"reason": reason, "at": time.time(),
                       "total_seconds": round(time.time() - started, 4)})
        self.last = result
        log.info("resync done (%s): adopted %d call(s) (%d with their times restored), ended %d, "
                 "endpoints changed %d, addresses %d; fetch %.3f s, engine %.3f s", reason,
                 result["adopted"], result["restored"], result["ended"], result["changed"],
                 result["addresses"], result["fetch_seconds"], result["engine_seconds"])
        if self.outage_started is not None:
            for key in OUTAGE_CHANGES:
                self.outage_changes[key] = self.outage_changes.get(key, 0) + result[key]
            if self.link_up():
                # closed only once the WebSocket is back too: a resync while the reader is
                # still away (the probe saw Asterisk return first) leaves events unseen
                self._close_outage(result, reason)
        return result

    def _close_outage(self, result: dict[str, Any], reason: str) -> None:
        # what every resync of the open outage changed, not only the one that closes it
        changes, self.outage_changes = self.outage_changes, {}
        self.unsaved_outages.keep((self.state.server, self.outage_started, result["at"], reason,
                                     changes))
        self._save_outages()
        result["unseen_seconds"] = round(result["at"] - self.outage_started, 3)
        self.state.counters.outages += 1
        self.last_outage = {"disconnected": self.outage_started, "resynced": result["at"],
                            "unseen": result["unseen_seconds"], "reason": reason,
                            "changes": changes}
        log.info("outage closed: %.3f s unseen (%s); %s", result["unseen_seconds"], reason,
                 ", ".join(f"{k} {v}" for k, v in changes.items()))
        self.outage_started = None

    # ---- from a worker thread -----------------------------------------------------------------

    def recover(self, timeout: float = 30.0) -> dict[str, Any]:
        """Resync now and wait for the result (call from a worker thread, never the loop)."""
        return self.ask()(timeout)

    def ask(self) -> Callable[[float], dict[str, Any]]:
        """Ask for a resync now; returns `wait(timeout)`, which gives its result or raises
        (TimeoutError, AriError). Asking every server first, then waiting, lets `recovery`
        resync them all at once rather than one after the other."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def waiter(result: dict[str, Any] | None, error: str | AriError) -> None:
            box["result"], box["error"] = result, error
            done.set()

        self.loop.call_soon_threadsafe(self.request, "requested by operator", waiter)

        def wait(timeout: float) -> dict[str, Any]:
            if not done.wait(timeout):
                raise TimeoutError(f"no resync result within {timeout:g} s")
            if box["result"] is None:
                error = box["error"]
                raise error if isinstance(error, AriError) else AriError(error)
            return box["result"]
        return wait
