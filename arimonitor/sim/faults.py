"""Faults on request: slow or failing REST, late StasisStart, malformed frames, failed recordings."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from arimonitor.sim.state import AriError

MALFORMED = {
    "not_json": "this is not JSON {",
    "missing_fields": json.dumps({"type": "ChannelCreated"}),  # no timestamp, no channel
    "no_type": json.dumps({"timestamp": "2026-11-24T21:21:13.798+0000", "application": "x"}),
    "unknown_type": json.dumps({"type": "NoSuchEvent", "timestamp": "2026-11-24T21:21:13.798+0000",
                                "application": "x"}),
    "not_object": json.dumps(["a", "list"]),
    "empty": "",
}


@dataclass
class RestFault:
    delay: float = 0.0
    status: int = 0
    count: int = -1  # -1: until cleared
    path: str = ""  # only requests whose path starts with this

    def applies(self, path: str) -> bool:
        return self.count != 0 and path.startswith(self.path)


@dataclass
class StasisDelay:
    """A channel enters Stasis `seconds` after the request that put it there returned.

    Asterisk does the same on a thread of its own (issue 16): `/channels/create` and
    `/channels/{id}/snoop` answer 200, and until StasisStart a `record` answers 409 and an
    `addChannel` 422. The sim is otherwise instant, so a test turns this on to meet that race.
    """
    seconds: float
    count: int = -1  # -1: until cleared
    channel: str = ""  # only channels whose id starts with this

    def applies(self, channel_id: str) -> bool:
        return self.count != 0 and channel_id.startswith(self.channel)


class Faults:
    def __init__(self) -> None:
        self.rest: list[RestFault] = []
        self.stasis: list[StasisDelay] = []

    def clear(self) -> None:
        self.rest.clear()
        self.stasis.clear()

    def add_stasis_delay(self, seconds: float, count: int = -1, channel: str = "") -> None:
        if seconds <= 0:
            raise ValueError("stasis_delay needs seconds > 0")
        self.stasis.append(StasisDelay(seconds, count, channel))

    def stasis_delay(self, channel_id: str) -> float:
        """Seconds the StasisStart of this channel waits (0: at once); uses up one count."""
        for fault in self.stasis:
            if fault.applies(channel_id):
                if fault.count > 0:
                    fault.count -= 1
                return fault.seconds
        return 0.0

    def add_rest(self, delay: float = 0.0, status: int = 0, count: int = -1, path: str = "") -> None:
        self.rest.append(RestFault(delay, status, count, path))

    async def before_rest(self, path: str) -> None:
        for fault in list(self.rest):
            if not fault.applies(path):
                continue
            if fault.count > 0:
                fault.count -= 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                raise AriError(fault.status, "sim: injected failure")

    def describe(self) -> list[dict[str, Any]]:
        return ([dict(f.__dict__) for f in self.rest]
                + [dict(f.__dict__, kind="stasis_delay") for f in self.stasis])
