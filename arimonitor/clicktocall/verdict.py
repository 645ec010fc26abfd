"""Why a leg that never connected ended: the true reason from Dial status, cause and timing.

Asterisk reports cause 0 "Unknown" on originate and dial timeouts (asterisk/asterisk#963),
and a /channels/create + /dial to a busy phone may give no BUSY Dial event at all; so the
Dial status wins when there is one, then the cause, then "it ended when its ring time was up".
"""

from __future__ import annotations

BUSY, NO_ANSWER, OFFLINE, FAILED = "busy", "no_answer", "offline", "failed"

# Q.850 causes seen (NOTES.md) and their close relatives.
_BUSY_CAUSES = {17}
_NO_ANSWER_CAUSES = {18, 19}
_OFFLINE_CAUSES = {1, 3, 20, 27}
# The ring timer fires a little late or early against our arrival-time clock.
TIMING_SLACK = 1.0


def leg_verdict(dial_status: str, cause: int, elapsed: float, timeout: float) -> str:
    """BUSY, NO_ANSWER, OFFLINE or FAILED for a leg that ended before it was answered."""
    status = (dial_status or "").upper()
    if status == "BUSY" or cause in _BUSY_CAUSES:
        return BUSY
    if status == "NOANSWER" or cause in _NO_ANSWER_CAUSES:
        return NO_ANSWER
    if status == "CHANUNAVAIL" or cause in _OFFLINE_CAUSES:
        return OFFLINE
    if status == "CONGESTION":
        return FAILED
    if cause in (0, 16) and timeout > 0 and elapsed >= timeout - TIMING_SLACK:
        return NO_ANSWER  # the timeout case of asterisk#963: cause 0, no status, time is up
    return FAILED


# What a leg that ended with cause 0 "Unknown" (the timeout case) really ended with.
_CAUSE_OF = {BUSY: (17, "User busy"), NO_ANSWER: (19, "User alerting, no answer"),
             OFFLINE: (20, "Subscriber absent")}


def leg_cause(verdict: str, cause: int, cause_txt: str) -> dict[str, object]:
    """`cause`/`cause_txt` of a final: the leg's own, or, for cause 0, the verdict's."""
    if cause == 0 and verdict in _CAUSE_OF:
        cause, cause_txt = _CAUSE_OF[verdict]
    return {"cause": cause, "cause_txt": cause_txt}
