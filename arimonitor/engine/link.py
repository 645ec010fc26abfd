"""The link monitor: is Asterisk there, and does it answer?

Two views of one Asterisk: the reader's WebSocket (link notices, reader stats, lost frames,
all through the intake) and ARI REST (the probe, every `ari.probe_interval`). Anything that
means the state may be stale asks the resyncer for a resync; an Asterisk restart ends every
call we hold. Authentication failures (probe or resync) are one episode each (`AriAuth`).
Loop thread only.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from arimonitor import protocol
from arimonitor.engine import resync as R
from arimonitor.engine import states as S
from arimonitor.engine.handlers import Handlers
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.probe import ProbeStats
from arimonitor.engine.resyncer import Resyncer

log = logging.getLogger(__name__)


class AriAuth:
    """ARI REST answered 401/403 (probe or resync): warned once per episode, shown in status."""

    def __init__(self, probe: ProbeStats, handlers: Handlers) -> None:
        self.probe = probe
        self.handlers = handlers

    def failed(self, text: str) -> None:
        p = self.probe
        p.auth_error = text
        if not p.auth_failed:
            p.auth_failed = True
            self.handlers.counters.auth_failures += 1
            self.handlers.fx.warning("ari_auth", f"ARI authentication failed: {text}",
                                     {"error": text})

    def ok(self) -> None:
        p = self.probe
        if p.auth_failed:
            p.auth_failed, p.auth_error = False, ""
            log.info("ARI REST accepts our credentials again")


class LinkMonitor:
    def __init__(self, *, handlers: Handlers, notifier: Notifier, resyncer: Resyncer,
                 auth: AriAuth, stall_after: float = 2.0) -> None:
        self.state = handlers.state
        self.handlers = handlers
        self.notifier = notifier
        self.resyncer = resyncer
        self.auth = auth
        self.probe = auth.probe
        self.stall_after = stall_after
        self.link: dict[str, Any] = {"state": "unknown", "server": self.state.server,
                                     "epoch": None, "since": None, "reason": ""}
        self.reader_stats: dict[str, Any] = {}

    # ---- the reader's WebSocket ---------------------------------------------------------------

    def on_link(self, notice: dict[str, Any]) -> None:
        state, reason = notice.get("state"), notice.get("reason", "")
        t = notice.get("t") or time.time()
        self.link.update({"state": state, "epoch": notice.get("epoch"), "since": t,
                          "reason": reason, "server": notice.get("server")})
        if state == protocol.LINK_CONNECTED:
            self.state.counters.link_up += 1
            log.info("reader connected to Asterisk (epoch %s)", notice.get("epoch"))
            self.notifier.publish(f"{protocol.TOPIC_LINK}.connected", dict(self.link))
            self.resyncer.request("reader connected")
        elif state == protocol.LINK_DISCONNECTED:
            self.state.counters.link_down += 1
            self.resyncer.outage_from(t)
            if reason == "stopping":  # the reader is being stopped (arimonitor stop): no news
                log.info("reader stopping; link to Asterisk closed")
            else:
                log.warning("reader lost Asterisk: %s", reason or "no reason given")
            self.notifier.publish(f"{protocol.TOPIC_LINK}.disconnected", dict(self.link))
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
        self.resyncer.request(f"{count} frame(s) lost")

    # ---- ARI REST (the probe) -----------------------------------------------------------------

    def on_probe(self, ok: bool, latency: float, info: dict[str, Any] | None, error: str,
                 auth_failed: bool = False, http_status: int | None = None,
                 not_asterisk: bool = False) -> None:
        p = self.probe
        p.last_latency = latency
        p.max_latency = max(p.max_latency, latency)
        p.not_asterisk = not_asterisk
        if auth_failed or http_status is not None:
            self._answered_no(error, auth_failed, http_status)
            return
        p.http_error = ""  # fine, or no answer at all (a stall, below)
        if ok:
            self.auth.ok()
            p.ok += 1
            p.last_ok_at = time.time()
        else:
            p.failed += 1
            p.last_error = error
        stalled = not ok or latency > self.stall_after
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

    def _answered_no(self, error: str, auth_failed: bool, http_status: int | None) -> None:
        """Asterisk answered, with a refusal (401/403) or an error (a 500): not a stall."""
        p = self.probe
        p.failed += 1
        p.last_error = error
        p.stalled = False
        if auth_failed:
            self.auth.failed(error)
            return
        if not p.http_error:
            self.handlers.fx.warning("rest_error", f"ARI REST answers an error ({error[:200]})",
                                     {"status": http_status})
        p.http_error = error[:200]

    def on_asterisk_restart(self, entity: str, startup: str) -> None:
        ended = R.end_all_calls(self.handlers, S.END_LOST, time.time())
        self.state.counters.asterisk_restarts += 1
        self.state.asterisk_id, self.state.asterisk_startup = entity, startup
        self.handlers.fx.warning("asterisk_restart", f"Asterisk restarted at {startup}; "
                                 f"{ended} call(s) ended as lost", {"ended": ended})
        self.resyncer.request("Asterisk restarted")
