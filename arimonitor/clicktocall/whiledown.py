"""Click-to-call calls in flight when arimonitor stopped (a stop, a crash, a kill -9).

The flow's state of such a call is restored from SQLite at the next start (flowstate.restore);
if the first resync finds its legs gone, the call ended while nobody watched. It is ended with
the reason `ended_while_down` ("ended while arimonitor was down"), like the engine's history
rows of that moment: a connected call is `completed` with its talk time up to the last-alive
mark (when the engine knows it), never a bare "completed" with no talk time. Its final is
stored and published as any other, so the consumer's catch-up (`_c2c_finals`) delivers it to
reply_to once even if the PUB was missed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from arimonitor.clicktocall.request import parse_channel_id

if TYPE_CHECKING:
    from arimonitor.clicktocall.flowstate import Flow

log = logging.getLogger("arimonitor.clicktocall.flow")


def last_alive(resynced: dict[str, Any]) -> float | None:
    """When the engine was last alive, from a `link.resynced` body that closed the outage of the
    start (None when the outage is still open: the reader not back yet)."""
    at, unseen = resynced.get("at"), resynced.get("unseen_seconds")
    if isinstance(at, (int, float)) and isinstance(unseen, (int, float)):
        return float(at) - float(unseen)
    return None


def end_calls_of_the_stop(flow: Flow, restored: Iterable[str], channels: Iterable[dict],
                          down_since: float | None, now: float) -> set[str]:
    """End the restored calls whose legs went away while arimonitor was down; their request
    ids (a leg of theirs still in `channels` is hung up by the flow: the caller leaves it out
    of the reconcile that follows, or it would be adopted as a call never known).
    A call with both legs still up, or a leg A still waiting for its destination to be dialled,
    is left to the flow and `reconcile`: its own events or the next step end it."""
    legs: dict[str, set[str]] = {}
    for channel in channels:
        parsed = parse_channel_id(channel.get("id", ""))
        if parsed is not None:
            legs.setdefault(parsed[0], set()).add(parsed[1])
    ended: set[str] = set()
    for rid in restored:
        call = flow.calls.get(rid)
        if call is None or call.final or flow.setting_up(rid):
            continue
        found = legs.get(rid, set())
        if {"a", "b"} <= found or ("a" in found and not call.b_dial):
            continue
        # no last-alive mark only on a first start, where nothing can be restored: now, then
        flow.ended_unseen(call, now, now if down_since is None else down_since)
        ended.add(rid)
    if ended:
        log.info("c2c: %d call(s) in flight when arimonitor stopped ended while it was down",
                 len(ended))
    return ended
