"""The engine's Effects: SQLite first, then PUB/listeners, the calls log, and REST `continue`.

Order matters: an ended call is in SQLite before anyone hears of it, so a crash between the
two loses a notification, never a history row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from arimonitor import protocol
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.state import Call, Channel, Counters, Endpoint, RemoteIp
from arimonitor.engine.store import Store

log = logging.getLogger(__name__)


class EngineEffects:
    def __init__(self, store: Store, notifier: Notifier, counters: Counters,
                 continue_channel: Callable[[str], None], calls_log: logging.Logger | None = None,
                 server: str = "") -> None:
        self.store = store
        self.notifier = notifier
        self.counters = counters
        self.continue_channel = continue_channel
        self.calls_log = calls_log
        self.server = server
        self.dirty_ips: dict[str, float] = {}  # ip -> last_seen, flushed every second

    def _call_event(self, what: str, call: Call) -> None:
        view = call.view()
        self.notifier.publish(f"{protocol.TOPIC_CALL}.{what}", view)
        if self.calls_log is not None:
            self.calls_log.info(
                "%s call=%s client=%s %s direction=%s cause=%s duration=%.1f billsec=%.1f%s",
                what, call.id, call.client or "-", call.line(), call.direction,
                call.hangup_cause if call.hangup_cause is not None else "-", call.duration,
                call.billsec, f" reason={call.end_reason!r}" if call.end_reason else "")

    def call_started(self, call: Call) -> None:
        self._call_event("ringing", call)

    def call_answered(self, call: Call) -> None:
        self._call_event("up", call)

    def call_ended(self, call: Call) -> None:
        self.store.save_call(call.view())
        self._call_event("ended", call)

    def endpoint_state(self, endpoint: Endpoint, old_state: str) -> None:
        body = endpoint.view()
        body["old_state"] = old_state
        self.notifier.publish(f"{protocol.TOPIC_ENDPOINT}.{endpoint.state}", body)

    def endpoint_address(self, endpoint: Endpoint) -> None:
        self.notifier.publish(f"{protocol.TOPIC_ENDPOINT}.address", endpoint.view())

    def remote_ip(self, rip: RemoteIp, new_link: bool) -> None:
        if new_link:
            self.store.save_remote_ip(rip.view())
            self.dirty_ips.pop(rip.ip, None)
        else:
            self.dirty_ips[rip.ip] = rip.last_seen

    def flush_ips(self) -> int:
        if not self.dirty_ips:
            return 0
        batch, self.dirty_ips = self.dirty_ips, {}
        self.store.touch_remote_ips(batch.items())
        return len(batch)

    def stasis_start(self, channel: Channel, event: dict[str, Any]) -> None:
        if channel.claimed_by:
            log.debug("channel %s in Stasis is driven by %s", channel.id, channel.claimed_by)
            return
        # Not ours to drive: back to the dialplan at once, the monitor never holds a call.
        self.continue_channel(channel.id)

    def recording(self, call: Call | None, what: str, recording: dict[str, Any]) -> None:
        body = {"name": recording.get("name"), "format": recording.get("format"),
                "target_uri": recording.get("target_uri"), "duration": recording.get("duration"),
                "call_id": call.id if call else None, "client": call.client if call else None,
                "cause": recording.get("cause")}
        self.notifier.publish(f"{protocol.TOPIC_RECORDING}.{what}", body)

    def warning(self, kind: str, text: str, data: dict[str, Any] | None = None) -> None:
        log.warning("%s: %s", kind, text)
        self.notifier.publish(f"{protocol.TOPIC_WARNING}.{kind}", {"text": text, **(data or {})})
