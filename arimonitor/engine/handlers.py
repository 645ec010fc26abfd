"""ARI event -> state. One table from event type to handler; handlers named after the events.

`Handlers.apply(frame, t)` is the hot path: drop byte-identical repeats (real Asterisk sends
some events twice), json.loads, look up the handler, run it, then run the raw-event listeners
components registered (`on_event`). Every handler is idempotent: an event that changes
nothing returns False and is counted as a duplicate. A frame that is not JSON, or lacks a
field a handler needs, is counted and logged with the frame; it never stops the loop.

The handlers are grouped in two bases, call_handlers.py (channels, bridges, recordings) and
endpoint_handlers.py (endpoints, contacts); the table is built here from all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from arimonitor import jsonfast
from arimonitor.engine import states as S
from arimonitor.engine.call_handlers import CallHandlers
from arimonitor.engine.effects import Effects
from arimonitor.engine.endpoint_handlers import EndpointHandlers
from arimonitor.engine.handler_support import IGNORED, LogLimiter, excerpt
from arimonitor.engine.state import Channel, State

log = logging.getLogger(__name__)

EventListener = Callable[[dict, float], None]
# (channel, stasis args) -> True if the component drives this channel
Claimer = Callable[[Channel, tuple], bool]

_decode = jsonfast.loads  # every ARI event: several times the json module's speed
_DEDUP_WINDOW = 256  # frames per generation; repeats arrive back to back


class Handlers(CallHandlers, EndpointHandlers):
    """The dispatch: the handlers themselves are in call_handlers.py and endpoint_handlers.py."""

    def __init__(self, state: State, effects: Effects) -> None:
        self.state = state
        self.server = state.server  # every event handed on carries it: event["server"]
        self.fx = effects
        self.counters = state.counters
        self.listeners: dict[str, list[EventListener]] = {}
        self.claimers: list[tuple[str, Claimer]] = []
        self._recent: set[bytes] = set()
        self._older: set[bytes] = set()
        self._limiter = LogLimiter()
        self.table = self._table()

    def _table(self) -> dict[str, Callable[[dict, float], Any]]:
        """The one table from ARI event type to handler: every ARI message type (api-docs
        events.json) is here, handled or deliberately ignored (tests/engine/test_handler_table.py)."""
        table: dict[str, Callable[[dict, float], Any]] = {
            # the application (here)
            "ApplicationReplaced": self.on_ApplicationReplaced,
            # channels, calls, Stasis (call_handlers.py)
            "ChannelCreated": self.on_ChannelCreated,
            "ChannelStateChange": self.on_ChannelStateChange,
            "ChannelHangupRequest": self.on_ChannelHangupRequest,
            "ChannelDestroyed": self.on_ChannelDestroyed,
            "Dial": self.on_Dial,
            "StasisStart": self.on_StasisStart,
            "StasisEnd": self.on_StasisEnd,
            # bridges (call_handlers.py)
            "BridgeCreated": self.on_BridgeCreated,
            "BridgeDestroyed": self.on_BridgeDestroyed,
            "ChannelEnteredBridge": self.on_ChannelEnteredBridge,
            "ChannelLeftBridge": self.on_ChannelLeftBridge,
            "BridgeMerged": self.on_BridgeMerged,
            # recordings (call_handlers.py)
            "RecordingStarted": self.on_RecordingStarted,
            "RecordingFinished": self.on_RecordingFinished,
            "RecordingFailed": self.on_RecordingFailed,
            # endpoints and contacts (endpoint_handlers.py)
            "PeerStatusChange": self.on_PeerStatusChange,
            "EndpointStateChange": self.on_EndpointStateChange,
            "ContactStatusChange": self.on_ContactStatusChange,
        }
        for name in IGNORED:
            table[name] = self._ignore
        return table

    # ---- extension points ---------------------------------------------------------------

    def on_event(self, event_type: str, fn: EventListener) -> None:
        """Call fn(event, t) after the core handler applied an event of this type."""
        self.listeners.setdefault(event_type, []).append(fn)

    def add_claimer(self, name: str, fn: Claimer) -> None:
        """fn(channel, args) -> True claims a channel entering Stasis (it is not continued)."""
        self.claimers.append((name, fn))

    # ---- the hot path -------------------------------------------------------------------

    def apply(self, frame: bytes, t: float, where: str = "") -> None:
        c = self.counters
        c.received += 1
        if frame in self._recent or frame in self._older:
            c.duplicate += 1
            return
        try:
            event = _decode(frame)
        except ValueError as exc:  # invalid UTF-8 too
            self._bad(frame, where, f"not JSON: {exc}")
            return
        if type(event) is not dict:
            self._bad(frame, where, "not a JSON object")
            return
        # Only frames that parsed are remembered: the same bad frame sent 300 times is 300
        # malformed, not 1 malformed and 299 duplicates.
        recent = self._recent
        recent.add(frame)
        if len(recent) > _DEDUP_WINDOW:
            self._older, self._recent = recent, set()
        self.apply_event(event, t, frame, where)

    def apply_event(self, event: dict, t: float, frame: bytes | None = None, where: str = "") -> None:
        c = self.counters
        event["server"] = self.server  # the Asterisk it came from, for listeners and components
        event_type = event.get("type")
        handler = self.table.get(event_type)  # type: ignore[arg-type]
        if handler is None:
            if isinstance(event_type, str):
                c.unknown_type += 1
                if self._limiter.allow():
                    log.info("unknown event type %r ignored%s", event_type, where and f" ({where})")
            else:
                self._bad(frame, where, "no 'type' string", event)
            return
        try:
            changed = handler(event, t)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            self._bad(frame, where, f"{event_type}: missing or bad field {exc!r}", event)
            return
        except S.IllegalTransition as exc:
            c.illegal_transitions += 1
            log.warning("%s ignored: %s", event_type, exc)
            return
        except Exception:  # a handler bug must not stop the loop
            c.handler_error += 1
            log.exception("handler for %s failed on %s", event_type, excerpt(frame, event))
            return
        if changed is False:
            c.duplicate += 1
        else:
            c.applied += 1
        listeners = self.listeners.get(event_type)  # type: ignore[arg-type]
        if listeners:
            for fn in listeners:
                try:
                    fn(event, t)
                except Exception:
                    c.handler_error += 1
                    log.exception("listener %r for %s failed", fn, event_type)

    def _bad(self, frame: bytes | None, where: str, why: str, event: Any = None) -> None:
        self.counters.malformed += 1
        if frame is not None:  # a bad frame seen again is malformed again, not a duplicate
            self._recent.discard(frame)
            self._older.discard(frame)
        if self._limiter.allow():
            log.warning("malformed frame%s: %s: %s", where and f" at {where}", why,
                        excerpt(frame, event))

    def _ignore(self, event: dict, t: float) -> None:
        return None

    # ---- the application ----------------------------------------------------------------

    def on_ApplicationReplaced(self, event: dict, t: float) -> bool:
        # Another WebSocket took our app: StasisStart would no longer reach us (NOTES.md).
        self.fx.warning("app_replaced", f"ARI application {event.get('application')!r} was "
                        "taken over by another connection")
        return True
