"""One snapshot of the engine for a scrape, in two halves.

`Snapshots.in_loop()` runs in the engine's loop thread: it counts endpoints and calls into
small dicts and copies a few counters (~2 ms for 10,000 endpoints and 2,000 calls; see
bench/bench_metrics.py), so a scrape never holds the loop. `from_database()` runs in the HTTP
thread on its own read-only SQLite connection: recordings and the transcode backlog are rows
there, and a table scan must not happen on the loop.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from typing import Any

from arimonitor.metrics.readings import EngineReadings, Tallies

BACKLOG_STATES = ("pending", "sent")  # transcode jobs not finished yet (transcode/jobviews.py)


class Snapshots:
    def __init__(self, readings: EngineReadings, tallies: Tallies) -> None:
        self.readings = readings
        self.tallies = tallies
        # Restarts are seen when a process's own counters go back to zero between two looks.
        self._reader_connects: int | None = None
        self.reader_restarts = 0

    def in_loop(self) -> dict[str, Any]:
        r = self.readings
        reader = r.reader_stats()
        connects = reader.get("connects")
        if isinstance(connects, int):
            if self._reader_connects is not None and connects < self._reader_connects:
                self.reader_restarts += 1
            self._reader_connects = connects
        return {
            "t": time.time(),
            "server": r.server(),
            "started": r.started(),
            "endpoints": Counter(r.endpoint_states()),
            "calls": Counter(r.active_calls()),
            "counters": r.counters(),
            "link": r.link(),
            "probe": r.probe(),
            "last_event_age": r.last_event_age(),
            "reader": reader,
            "reader_restarts": self.reader_restarts,
            "outage_open_since": r.outage_open_since(),
            "transcoders": r.transcoders(),
            "clicktocall": r.clicktocall_reports(),
            "c2c_in_flight": r.clicktocall_in_flight(),
            "tallies": self.tallies.view(),
        }


def from_database(path: str) -> dict[str, Any]:
    """Recordings by state and the transcode backlog (jobs, audio seconds); off the loop.

    Tables a component has not created (no transcoder pool) read as empty."""
    out: dict[str, Any] = {"recordings": {}, "backlog_jobs": 0, "backlog_audio_seconds": 0.0}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return out
    try:
        out["recordings"] = dict(conn.execute(
            "SELECT COALESCE(state, ''), COUNT(*) FROM recording_log GROUP BY 1").fetchall())
        marks = ",".join("?" * len(BACKLOG_STATES))
        jobs, audio = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(COALESCE(wav_duration, est_seconds, 0)), 0)"
            f" FROM transcode_jobs WHERE state IN ({marks})", BACKLOG_STATES).fetchone()
        out["backlog_jobs"], out["backlog_audio_seconds"] = int(jobs), float(audio)
    except sqlite3.Error:
        pass  # no transcode tables in this engine: nothing to show
    finally:
        conn.close()
    return out
