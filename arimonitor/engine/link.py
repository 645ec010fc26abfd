"""The link monitor: is Asterisk there, and does it answer?

Two views of one Asterisk: the reader's WebSocket (link notices, reader stats, lost frames,
all through the intake) and ARI REST (the probe, every `ari.probe_interval` and at once when
the WebSocket drops; anything but a quick 200 is a problem with its status and reason). Anything that
means the state may be stale asks the resyncer for a resync; an Asterisk restart ends every
call we hold. Authentication failures (probe or resync) are one episode each (`AriAuth`).
Loop thread only.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from arimonitor import protocol
from arimonitor.engine import probe as P
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
                          "reason": reason, "server": self.state.server})
        if state == protocol.LINK_CONNECTED:
            self.state.counters.link_up += 1
            log.info("reader connected to Asterisk (epoch %s)", notice.get("epoch"))
            self.notifier.publish(protocol.TOPIC_LINK_CONNECTED, dict(self.link))
            self.resyncer.request("reader connected")
        elif state == protocol.LINK_DISCONNECTED:
            self.state.counters.link_down += 1
            self.resyncer.outage_from(t)
            if reason == "stopping":  # the reader is being stopped (arimonitor stop): no news
                log.info("reader stopping; link to Asterisk closed")
            else:
                log.warning("reader lost Asterisk: %s", reason or "no reason given")
            self.notifier.publish(protocol.TOPIC_LINK_DISCONNECTED, dict(self.link))
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
                 kind: str | None = None, reason: str = "") -> None:
        """A probe's result (probe.py): anything but a quick 200 is a problem, named for `status`."""
        p = self.probe
        p.last_latency = latency
        p.max_latency = max(p.max_latency, latency)
        if kind is None:  # a caller that does not classify
            kind = P.AUTH if auth_failed else P.HTTP if http_status is not None else "" if ok else P.NO_ANSWER
            reason = error
        if ok and latency > self.stall_after:
            kind, reason = P.SLOW, f"slow answer ({latency:.2f} s)"
        p.not_asterisk = False  # the probe's own kind says it from now on
        if ok:
            p.ok += 1
            p.last_ok_at = time.time()
            self.auth.ok()
        else:
            p.failed += 1
            p.last_error = error
        was = p.problem
        if p.note(kind, http_status, reason, time.time()):
            self._warn_rest(kind, http_status, reason, latency)
        elif was and not kind:
            log.info("ARI REST answers again (was: %s)", was)
        if kind == P.AUTH:
            self.auth.failed(error)
        if ok and info:
            entity, startup = R.asterisk_identity(info)
            if self.state.asterisk_startup and startup and startup != self.state.asterisk_startup:
                self.on_asterisk_restart(entity, startup)

    def _warn_rest(self, kind: str, status: int | None, reason: str, latency: float) -> None:
        """Once per problem episode (and when its kind changes); auth warns on its own."""
        link_up = self.link.get("state") == protocol.LINK_CONNECTED
        still = "; the WebSocket is still up" if link_up else ""
        if kind == P.HTTP:
            self.handlers.fx.warning("rest_error", f"ARI REST answers an error ({reason}){still}",
                                     {"status": status, "link_up": link_up})
        elif kind in P.STALLS:
            self.probe.stalls += 1
            self.handlers.fx.warning("rest_stall", f"ARI REST {'slow' if kind == P.SLOW else 'failed'} "
                                     f"({reason}){still}", {"latency": latency, "link_up": link_up})
        elif kind != P.AUTH:
            self.handlers.fx.warning("rest_down", f"ARI REST unreachable ({reason}){still}",
                                     {"link_up": link_up})

    def connected(self) -> bool:
        return self.link.get("state") == protocol.LINK_CONNECTED

    def on_asterisk_restart(self, entity: str, startup: str) -> None:
        # Its calls went with it: they end when it was last seen alive (the link's loss), so
        # no billsec counts time nobody saw.
        lost_at = self.resyncer.outage_started
        ended = R.end_all_calls(self.handlers, S.END_ASTERISK_GONE,
                                lost_at if lost_at is not None else time.time())
        self.state.counters.asterisk_restarts += 1
        self.state.asterisk_id, self.state.asterisk_startup = entity, startup
        self.handlers.fx.warning("asterisk_restart", f"Asterisk restarted at {startup}; "
                                 f"{ended} call(s) ended as lost", {"ended": ended})
        self.resyncer.request("Asterisk restarted")
