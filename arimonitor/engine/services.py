"""Operations and queries on the engine: what console commands and components call.

Loop thread (fast, non-blocking):
    services.status() / stats() / active_calls(client) / endpoints(client, state)
    services.remote_ips() / history(client, since, limit) / outages(limit)
    services.start()                     # the engine starts: restart outage, first resync
    services.request_resync(reason)      # async; result logged, counted, published
    services.heartbeat()                 # every second: the last-alive mark in SQLite
    services.continue_channel(channel_id)
    services.recording_meta(name) / recording_live(name)   # for the transcoder's tags
    services.load_files(tables)          # swap in a v2.7 Tables snapshot
Any other thread (a `slow` command):
    services.recover(timeout)            # resync now and wait; returns the result dict
    services.call_in_loop(fn, timeout)   # run fn() in the loop thread and wait for its value
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from arimonitor import protocol
from arimonitor.ari.rest import AriAuthError, AriError, AriHttpError, AriNotAsterisk
from arimonitor.engine import resync as R
from arimonitor.engine import states as S
from arimonitor.engine.handlers import Handlers
from arimonitor.engine.loop import Loop, Worker
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.probe import ProbeStats
from arimonitor.engine.state import State
from arimonitor.engine.store import Store
from arimonitor.repeats import STARTUP_GRACE, RepeatedFailure

log = logging.getLogger(__name__)

# What a resync changed, kept with each outage (store `outages.changes`, `status`).
# The reason of a resync that retries a failed one (never nested: "retry after: retry after: ...").
RETRY = "retry after: "
OUTAGE_CHANGES = ("adopted", "restored", "ended", "dropped_channels", "changed", "addresses")


def load_files(state: State, tables: Any) -> dict[str, int]:
    """Copy the v2.7 endpoints (client, type, GUID) into the state; unflag the ones dropped."""
    listed = tables.endpoints
    added = 0
    for ep_id, meta in listed.items():
        ep = state.endpoint("PJSIP", ep_id)
        added += not ep.in_files
        ep.client, ep.type, ep.guid, ep.in_files = meta.client, meta.type or "", meta.guid or "", True
    dropped = 0
    for ep in state.endpoints.values():
        if ep.in_files and ep.id not in listed:
            ep.in_files, ep.client, ep.type, ep.guid = False, "", "", ""
            dropped += 1
    return {"listed": len(listed), "added": added, "dropped": dropped}


class Services:
    def __init__(self, *, state: State, handlers: Handlers, store: Store, notifier: Notifier,
                 loop: Loop, app: str, snapshot: Callable[[], R.Snapshot],
                 rest_worker: Worker | None = None, rest_call: Callable[..., Any] | None = None,
                 stall_after: float = 2.0) -> None:
        self.state = state
        self.handlers = handlers
        self.store = store
        self.notifier = notifier
        self.loop = loop
        self.app = app
        self.snapshot = snapshot            # worker-thread callable: one REST sweep
        self.rest_worker = rest_worker
        self.rest_call = rest_call          # rest_call(method_name, *args) in the worker
        self.stall_after = stall_after
        self.tables: Any = None
        self.started = time.time()
        self.probe = ProbeStats()
        self.link: dict[str, Any] = {"state": "unknown", "server": state.server, "epoch": None,
                                     "since": None, "reason": ""}
        self.reader_stats: dict[str, Any] = {}
        self.outage_started: float | None = None
        self.last_outage: dict[str, Any] | None = None
        self.resync_running = False
        self.resync_pending = ""
        self.last_resync: dict[str, Any] = {}
        self._waiters: list[Callable[[dict[str, Any] | None, str], None]] = []
        self.intake: Any = None             # set by the app: last event age, lag, batch
        # an outage retries every 2 s: logged once, then counted (arimonitor/repeats.py)
        self.resync_failures = RepeatedFailure(log, "resync with Asterisk", grace=STARTUP_GRACE)

    # ---- files ------------------------------------------------------------------------------

    def load_files(self, tables: Any) -> dict[str, int]:
        self.tables = tables
        result = load_files(self.state, tables)
        for problem in getattr(tables, "problems", ()):
            log.warning("%s", problem)
        return result

    # ---- life -------------------------------------------------------------------------------

    def start(self) -> None:
        """The engine starts: the time since the previous run's last-alive mark is an outage
        (kill -9, crash, stop): closed, with what the first resync changed, like a link's."""
        alive = self.store.last_alive()
        if alive is not None and self.outage_started is None:
            self.outage_started = alive
        self.heartbeat()
        self.request_resync("engine start")

    def heartbeat(self) -> None:
        self.store.mark_alive(time.time())

    # ---- the reader's link ------------------------------------------------------------------

    def on_link(self, notice: dict[str, Any]) -> None:
        state, reason = notice.get("state"), notice.get("reason", "")
        t = notice.get("t") or time.time()
        self.link.update({"state": state, "epoch": notice.get("epoch"), "since": t,
                          "reason": reason, "server": notice.get("server")})
        if state == protocol.LINK_CONNECTED:
            self.state.counters.link_up += 1
            log.info("reader connected to Asterisk (epoch %s)", notice.get("epoch"))
            self.notifier.publish("link.connected", dict(self.link))
            self.request_resync("reader connected")
        elif state == protocol.LINK_DISCONNECTED:
            self.state.counters.link_down += 1
            if self.outage_started is None:
                self.outage_started = t
            if reason == "stopping":  # the reader is being stopped (arimonitor stop): no news
                log.info("reader stopping; link to Asterisk closed")
            else:
                log.warning("reader lost Asterisk: %s", reason or "no reason given")
            self.notifier.publish("link.disconnected", dict(self.link))
        else:
            log.warning("link notice with unknown state %r ignored", state)

    def on_new_epoch(self, server: str | None, epoch: Any, t: float) -> None:
        """Frames of a connection we had no notice of: it is up (the notice was lost)."""
        if self.link.get("epoch") != epoch:
            self.on_link({"state": protocol.LINK_CONNECTED, "epoch": epoch, "server": server,
                          "t": t, "reason": "learnt from its first frame"})

    def on_reader_stats(self, stats: dict[str, Any]) -> None:
        self.reader_stats = stats
        # A notice sent while the engine was down is lost (the reader never queues for a dead
        # engine); the stats carry the link state, so the engine catches up from them.
        connected = bool(stats.get("connected_since"))
        if connected and (self.link.get("state") != protocol.LINK_CONNECTED
                          or self.link.get("epoch") != stats.get("epoch")):
            self.on_link({"state": protocol.LINK_CONNECTED, "epoch": stats.get("epoch"),
                          "server": stats.get("server"), "t": stats.get("connected_since"),
                          "reason": "learnt from reader stats"})
        elif not connected and self.link.get("state") == protocol.LINK_CONNECTED:
            self.on_link({"state": protocol.LINK_DISCONNECTED, "epoch": stats.get("epoch"),
                          "server": stats.get("server"), "t": stats.get("t"),
                          "reason": "learnt from reader stats"})

    def on_frames_lost(self, count: int, where: str) -> None:
        self.state.counters.frames_lost += count
        log.warning("%d frame(s) lost between reader and engine (%s): resynchronising", count, where)
        self.request_resync(f"{count} frame(s) lost")

    # ---- resync -----------------------------------------------------------------------------

    def request_resync(self, reason: str,
                       waiter: Callable[[dict[str, Any] | None, str | AriError], None] | None = None) -> bool:
        """Start a resync (loop thread); if one runs, another follows it. True if started now."""
        if waiter is not None:
            self._waiters.append(waiter)
        if self.resync_running:
            self.resync_pending = self.resync_pending or reason
            return False
        self.resync_running = True
        self.state.touched = set()
        started = time.time()
        # a retry every 2 s during an outage is not news: only the first attempt at INFO
        log.log(logging.DEBUG if reason.startswith(RETRY) else logging.INFO, "resync started: %s", reason)
        self.loop.run_in_thread(self.snapshot, lambda snap, err: self._resync_done(snap, err, reason, started),
                                name="resync")
        return True

    def _resync_done(self, snap: R.Snapshot | None, error: BaseException | None, reason: str,
                     started: float) -> None:
        self.resync_running = False
        waiters, self._waiters = self._waiters, []
        if error is not None or snap is None:
            self.state.touched = None
            self.state.counters.resync_failures += 1
            text = str(error) if isinstance(error, AriError) else repr(error)
            self.probe.last_error = text
            self.probe.not_asterisk = isinstance(error, AriNotAsterisk)
            if isinstance(error, AriAuthError):
                # Asterisk is there and says no: an operator's fix, not an outage.
                self.auth_failure(text)
            else:
                first = self.resync_failures.count == 0
                self.resync_failures.failed(f"{text} ({reason.removeprefix(RETRY)})")
                if first:
                    self.notifier.publish("warning.resync", {"text": f"resync failed: {text}",
                                                             "reason": reason})
            for waiter in waiters:
                # the error itself when ARI said why, so `recovery` can tell auth from outage
                waiter(None, error if isinstance(error, AriError) else text)
            # Keep trying: state we cannot trust must not stay silently (slower on bad auth).
            retry = 10.0 if isinstance(error, AriAuthError) else 2.0
            self.loop.call_later(retry, lambda: self.request_resync(RETRY + reason.removeprefix(RETRY)))
            return
        self.resync_failures.succeeded()
        self.auth_ok()
        fx = self.handlers.fx
        # Rows of active calls a previous run announced: read only if ARI has channels we do
        # not know (after an engine restart), to restore their true times when adopted.
        persisted = (self.store.load_active(self.state.server)
                     if any(obj.get("id") not in self.state.channels for obj in snap.channels)
                     else [])
        fx.hold()  # adopted calls' rows and log lines: one write
        try:
            result = R.reconcile(self.handlers, snap, self.app, persisted=persisted)
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
        self.last_resync = result
        log.info("resync done (%s): adopted %d call(s) (%d with their times restored), ended %d, "
                 "endpoints changed %d, addresses %d; fetch %.3f s, engine %.3f s", reason,
                 result["adopted"], result["restored"], result["ended"], result["changed"],
                 result["addresses"], result["fetch_seconds"], result["engine_seconds"])
        if self.outage_started is not None:
            changes = {k: result[k] for k in OUTAGE_CHANGES}
            self.store.add_outage(self.state.server, self.outage_started, result["at"], reason,
                                  changes)
            result["unseen_seconds"] = round(result["at"] - self.outage_started, 3)
            self.state.counters.outages += 1
            self.last_outage = {"disconnected": self.outage_started, "resynced": result["at"],
                                "unseen": result["unseen_seconds"], "reason": reason,
                                "changes": changes}
            log.info("outage closed: %.3f s unseen (%s); %s", result["unseen_seconds"], reason,
                     ", ".join(f"{k} {v}" for k, v in changes.items()))
            self.outage_started = None
        self.notifier.publish("link.resynced", dict(result))
        for waiter in waiters:
            waiter(result, "")
        if self.resync_pending:
            pending, self.resync_pending = self.resync_pending, ""
            self.request_resync(pending)

    def recover(self, timeout: float = 30.0) -> dict[str, Any]:
        """Resync now and wait for the result (call from a worker thread, never the loop)."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def waiter(result: dict[str, Any] | None, error: str | AriError) -> None:
            box["result"], box["error"] = result, error
            done.set()

        self.loop.call_soon_threadsafe(self.request_resync, "requested by operator", waiter)
        if not done.wait(timeout):
            raise TimeoutError(f"no resync result within {timeout:g} s")
        if box["result"] is None:
            error = box["error"]
            raise error if isinstance(error, AriError) else AriError(error)
        return box["result"]

    def call_in_loop(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run fn() in the loop thread and return its value (from a worker thread)."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc
                if not isinstance(exc, Exception):
                    raise  # KeyboardInterrupt, SystemExit: the loop thread must see them too
            finally:
                done.set()  # whatever happened, the caller is not left waiting for its timeout

        self.loop.call_soon_threadsafe(run)
        if not done.wait(timeout):
            raise TimeoutError(f"the engine loop did not answer within {timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["value"]

    # ---- probe ------------------------------------------------------------------------------

    def on_probe(self, ok: bool, latency: float, info: dict[str, Any] | None, error: str,
                 auth_failed: bool = False, http_status: int | None = None,
                 not_asterisk: bool = False) -> None:
        p = self.probe
        p.last_latency = latency
        p.max_latency = max(p.max_latency, latency)
        p.not_asterisk = not_asterisk
        if auth_failed:
            # Asterisk answered, and refused us: not a stall, not "unavailable".
            p.failed += 1
            p.last_error = error
            p.stalled = False
            self.auth_failure(error)
            return
        if http_status is not None:
            # Asterisk answered, with an error (a 500): an error, not a stall.
            p.failed += 1
            p.last_error = error
            p.stalled = False
            if not p.http_error:
                self.handlers.fx.warning("rest_error", f"ARI REST answers an error ({error[:200]})",
                                         {"status": http_status})
            p.http_error = error[:200]
            return
        p.http_error = ""  # fine, or no answer at all (a stall, below)
        if ok:
            self.auth_ok()
        stalled = not ok or latency > self.stall_after
        if ok:
            p.ok += 1
            p.last_ok_at = time.time()
        else:
            p.failed += 1
            p.last_error = error
        if stalled and not p.stalled:
            p.stalls += 1
            link_up = self.link.get("state") == protocol.LINK_CONNECTED
            text = (f"ARI REST {'failed' if not ok else 'slow'} ({error or f'{latency:.2f} s'})"
                    + ("; the WebSocket is still up" if link_up else ""))
            self.handlers.fx.warning("rest_stall", text, {"latency": latency, "link_up": link_up})
        p.stalled = stalled
        if ok and info:
            entity, startup = R.asterisk_identity(info)
            if self.state.asterisk_startup and startup and startup != self.state.asterisk_startup:
                self.on_asterisk_restart(entity, startup)

    def auth_failure(self, text: str) -> None:
        """ARI REST answered 401/403 (probe or resync): warn once per episode, show in status."""
        p = self.probe
        p.auth_error = text
        if not p.auth_failed:
            p.auth_failed = True
            self.state.counters.auth_failures += 1
            self.handlers.fx.warning("ari_auth", f"ARI authentication failed: {text}",
                                     {"error": text})

    def auth_ok(self) -> None:
        p = self.probe
        if p.auth_failed:
            p.auth_failed, p.auth_error = False, ""
            log.info("ARI REST accepts our credentials again")

    def on_asterisk_restart(self, entity: str, startup: str) -> None:
        ended = R.end_all_calls(self.handlers, S.END_LOST, time.time())
        self.state.counters.asterisk_restarts += 1
        self.state.asterisk_id, self.state.asterisk_startup = entity, startup
        self.handlers.fx.warning("asterisk_restart", f"Asterisk restarted at {startup}; "
                                 f"{ended} call(s) ended as lost", {"ended": ended})
        self.request_resync("Asterisk restarted")

    # ---- operations -------------------------------------------------------------------------

    def continue_channel(self, channel_id: str) -> None:
        """Send a channel back to the dialplan (REST in the worker; result counted here)."""
        if self.rest_worker is None or self.rest_call is None:
            return

        def done(_result: Any, error: BaseException | None) -> None:
            if error is None:
                self.state.counters.continued += 1
            elif isinstance(error, AriHttpError) and error.status == 404:
                log.debug("channel %s gone before continue", channel_id)
            else:
                self.state.counters.continue_failed += 1
                log.warning("continue of channel %s failed: %s", channel_id, error)

        self.rest_worker.submit(lambda: self.rest_call("continue_in_dialplan", channel_id), done)

    # ---- queries ----------------------------------------------------------------------------

    def active_calls(self, client: str | None = None) -> list[dict[str, Any]]:
        return [dict(c.view(), line=c.line()) for c in self.state.active_calls(client)]

    def endpoints(self, client: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        return [e.view() for e in self.state.endpoints.values()
                if (client is None or e.client == client) and (state is None or e.state == state)]

    def remote_ips(self) -> list[dict[str, Any]]:
        return [r.view() for r in sorted(self.state.remote_ips.values(), key=lambda r: r.ip)]

    def recording_meta(self, name: str) -> dict[str, Any] | None:
        """The call a recording belongs to: call_id, client, origin, destination, created."""
        meta = self.state.recording_calls.get(name)
        return dict(meta) if meta else None

    def recording_live(self, name: str) -> bool:
        """True while Asterisk is still writing this recording."""
        return name in self.state.recordings

    def history(self, client: str | None = None, since: float | None = None,
                limit: int = 50) -> list[dict[str, Any]]:
        return self.store.history(client, since, limit)

    def outages(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.store.outages(limit)

    def status(self) -> dict[str, Any]:
        intake = self.intake
        return {"uptime": round(time.time() - self.started, 1), "link": dict(self.link),
                "state": self.state.summary(), "probe": self.probe.view(),
                "last_event_age": intake.last_event_age() if intake else None,
                "resync_running": self.resync_running, "last_resync": self.last_resync,
                "outage_open_since": self.outage_started,
                "last_outage": self.last_outage or next(iter(self.store.outages(1)), None)}

    def stats(self) -> dict[str, Any]:
        intake = self.intake
        return {"counters": self.state.counters.as_dict(),
                "intake": intake.view() if intake else {},
                "reader": self.reader_stats, "probe": self.probe.view(),
                "publish": {"published": self.notifier.published, "dropped": self.notifier.dropped},
                "continue_pending": self.rest_worker.pending if self.rest_worker else 0}
