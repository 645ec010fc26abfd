"""Faults on request: slow or failing REST, malformed WebSocket frames, failed recordings."""

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


class Faults:
    def __init__(self) -> None:
        self.rest: list[RestFault] = []

    def clear(self) -> None:
        self.rest.clear()

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
        return [dict(f.__dict__) for f in self.rest]
