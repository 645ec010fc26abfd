"""Named states of the engine's records and their legal transitions (no dependencies).

A call is RINGING until one of its channels is answered (UP), then ENDED; a call that is never
answered goes from RINGING to ENDED. `call_next` returns the next state or raises
IllegalTransition, so a handler bug shows up as an error, not as a call that came back to life.
"""

from __future__ import annotations

CALL_RINGING = "ringing"
CALL_UP = "up"
CALL_ENDED = "ended"

_CALL_NEXT: dict[str, frozenset[str]] = {
    CALL_RINGING: frozenset({CALL_UP, CALL_ENDED}),
    CALL_UP: frozenset({CALL_ENDED}),
    CALL_ENDED: frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, what: str, current: str, target: str):
        super().__init__(f"{what}: illegal transition {current} -> {target}")
        self.current = current
        self.target = target


def call_next(current: str, target: str) -> str:
    """The state after `current` when `target` is asked for; raises IllegalTransition."""
    if target not in _CALL_NEXT.get(current, ()):
        raise IllegalTransition("call", current, target)
    return target


# Endpoint registration state, as ARI reports it (Endpoint.state).
ENDPOINT_ONLINE = "online"
ENDPOINT_OFFLINE = "offline"
ENDPOINT_UNKNOWN = "unknown"
ENDPOINT_STATES = (ENDPOINT_ONLINE, ENDPOINT_OFFLINE, ENDPOINT_UNKNOWN)

# Why a call ended.
END_HANGUP = "hangup"
END_LOST = "lost during outage"  # ARI no longer has it after an outage
# Asterisk died or restarted under it: ended when Asterisk was last seen alive, cause unknown (0)
END_ASTERISK_GONE = "Asterisk went away"
# up when the engine stopped (stop, crash, kill -9) and gone from Asterisk at the next start
END_ENGINE_DOWN = "ended while arimonitor was down"

# Direction, from the PBX's point of view.
DIRECTION_INTERNAL = "internal"      # one of our endpoints to another
DIRECTION_OUTBOUND = "outbound"      # an endpoint to something that is not one (trunk, number)
DIRECTION_INBOUND = "inbound"        # something else to one of our endpoints
DIRECTION_ORIGINATED = "originated"  # placed by Asterisk on request (originate, click-to-call)
DIRECTION_UNKNOWN = "unknown"

# Recording states (ARI LiveRecording.state, simplified).
RECORDING_RECORDING = "recording"
RECORDING_DONE = "done"
RECORDING_FAILED = "failed"

# ARI channel states that mean "answered".
CHANNEL_UP = "Up"

# Dial status -> Q.850 cause, for channels that end with cause 0 (shared/ari/NOTES.md).
DIALSTATUS_CAUSE = {
    "BUSY": 17,
    "NOANSWER": 19,
    "CONGESTION": 34,
    "CHANUNAVAIL": 20,
    "CANCEL": 16,
    "ANSWER": 16,
}
CAUSE_TEXT = {
    0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "User alerting, no answer",
    20: "Subscriber absent", 34: "Circuit/channel congestion", 127: "Interworking, unspecified",
}
