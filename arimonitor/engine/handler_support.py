"""Small pieces of the event handlers: the no-op event list, built-in claims, log limiting."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from arimonitor.engine.state import Channel

log = logging.getLogger("arimonitor.engine.handlers")

# Known ARI events that change nothing the engine tracks: applied as no-ops, not "unknown".
IGNORED = ("DeviceStateChanged", "ChannelVarset", "ChannelDialplan", "ChannelCallerId",
            "ChannelConnectedLine", "ChannelDtmfReceived", "ChannelTalkingStarted",
            "ChannelTalkingFinished", "ChannelHold", "ChannelUnhold", "ChannelUserevent",
            "ChannelToneDetected", "ChannelTransfer", "PlaybackStarted", "PlaybackContinuing",
            "PlaybackFinished", "BridgeVideoSourceChanged", "BridgeBlindTransfer",
            "BridgeAttendedTransfer", "TextMessageReceived", "ApplicationRegistered",
            "ApplicationUnregistered", "ApplicationMoveFailed", "CallBroadcast", "CallClaimed",
            "RESTResponse", "MissingParams")


def builtin_claimer(channel: Channel, args: tuple) -> str:
    """Channels the monitor drives itself, whether or not a component is loaded for them."""
    if channel.snoop:
        return "snoop"
    if args and args[0] == "click2call":
        return "clicktocall"
    return ""


class LogLimiter:
    """At most `burst` log lines per `period`; the rest are counted, then summarised."""

    def __init__(self, burst: int = 10, period: float = 10.0):
        self.burst, self.period = burst, period
        self.window_start = 0.0
        self.in_window = 0
        self.suppressed = 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now - self.window_start > self.period:
            if self.suppressed:
                log.warning("%d more bad frames were not logged", self.suppressed)
            self.window_start, self.in_window, self.suppressed = now, 0, 0
        self.in_window += 1
        if self.in_window > self.burst:
            self.suppressed += 1
            return False
        return True


def excerpt(frame: bytes | None, event: Any = None, limit: int = 300) -> str:
    if frame is not None:
        text = frame[:limit].decode("utf-8", errors="replace")
        return repr(text + ("…" if len(frame) > limit else ""))
    return repr(json.dumps(event, default=str)[:limit])
