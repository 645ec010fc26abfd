"""The transcoders the job book has heard from: their hellos, heartbeats, and who went silent.

A worker says hello every `interval` seconds (transcode/worker.py) and any message of its counts
as a heartbeat; three missed hellos and it is gone. What becomes of a gone worker's jobs is the
book's business (jobs.py); the roster only knows who is there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class WorkerSeen:
    name: str
    pid: int
    last_seen: float
    interval: float
    busy: str | None = None
    done: int = 0
    failed: int = 0
    encoders: tuple[str, ...] = ()
    speed: Mapping[str, float] | None = None
    gone: bool = False  # declared gone (its jobs resent); any later traffic makes it alive again

    def alive(self, now: float) -> bool:
        return now - self.last_seen < 3 * self.interval  # three missed hellos: gone


class WorkerRoster(dict[str, WorkerSeen]):
    """The workers by name; a plain mapping to the views that list them."""

    def live(self, now: float) -> list[WorkerSeen]:
        return [w for w in self.values() if w.alive(now)]

    def hello(self, body: dict, now: float) -> tuple[WorkerSeen | None, WorkerSeen]:
        """Record a worker's hello; returns what was known of it before (None: new) and now."""
        name, pid = str(body["worker"]), int(body.get("pid", 0))
        seen = WorkerSeen(name, pid, now, float(body.get("interval", 2.0)), body.get("busy"),
                          int(body.get("done", 0)), int(body.get("failed", 0)),
                          tuple(body.get("encoders") or ()), body.get("speed") or {})
        old = self.get(name)
        self[name] = seen
        return old, seen

    def heard_from(self, name: str, now: float) -> None:
        """Any message from a worker counts as a heartbeat."""
        seen = self.get(name)
        if seen is not None:
            seen.last_seen = now
            seen.gone = False

    def fell_silent(self, now: float) -> list[WorkerSeen]:
        """The workers three heartbeats silent, each returned once (then marked gone)."""
        silent = [w for w in self.values() if not w.gone and not w.alive(now)]
        for w in silent:
            w.gone = True
        return silent
