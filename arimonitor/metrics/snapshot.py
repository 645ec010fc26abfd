"""One snapshot of the engine for a scrape, in two halves, read through the engine's door.

`Snapshots.endpoints_in_loop()` and `in_loop()` run in the engine's loop thread, as two
callbacks: `count_endpoints()`, then `count_calls()` (small dicts, no views), the counters and
the link (each ~1 ms for 10,000 endpoints and 2,000 calls; bench/bench_metrics.py), so a scrape
never holds the loop. `from_database()` runs in
the HTTP thread on its own read-only SQLite connection: recordings and the transcode backlog
are rows there, and a table scan must not happen on the loop.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from arimonitor import health
from arimonitor.engine.api import EngineApi
from arimonitor.metrics.readings import Tallies

BACKLOG_STATES = ("pending", "sent")  # transcode jobs not finished yet (transcode/jobtables.py)
C2C_IN_FLIGHT = "clicktocall_in_flight"  # views other components offer (api.offer)
TRANSCODERS = "transcoders"
BUS = "bus"  # the events bus counters (bus/component.py, from the bus process's report)


class Snapshots:
    def __init__(self, api: EngineApi, tallies: Tallies) -> None:
        self.api = api
        self.tallies = tallies
        self.started = time.time()  # built with the engine: its start, to the second
        # Restarts are seen when a process's own counters go back to zero between two looks:
        # each server's reader by its own `connects`.
        self._reader_connects: dict[str, int] = {}
        self.reader_restarts: dict[str, int] = {}

    def endpoints_in_loop(self) -> dict[tuple[str, str], int]:
        """The largest count (10,000 endpoints), in a loop callback of its own: events and
        commands queued meanwhile run between it and `in_loop`."""
        return self.api.count_endpoints()

    def in_loop(self) -> dict[str, Any]:
        """Everything else of the snapshot, but `endpoints` (see endpoints_in_loop)."""
        api = self.api
        link = api.link()
        reader = link.pop("reader", {}) or {}
        for server, view in (link.get("servers") or {}).items():
            self._note_reader(server, view.get("reader") or {})
        stats = api.stats()
        return {
            "t": time.time(),
            "server": api.cfg["ari.server_id"],
            "started": self.started,
            "calls": api.count_calls(),
            "counters": stats.get("counters", {}),
            "link": link,
            "probe": stats.get("probe", {}),
            "store": health.with_kept(stats.get("store"), api.view),
            "last_event_age": (stats.get("intake") or {}).get("last_event_age"),
            "reader": reader,
            "reader_restarts": dict(self.reader_restarts),
            "outage_open_since": link.get("outage_open_since"),
            "transcoders": api.view(TRANSCODERS),
            "clicktocall": [dict(r) for name, r in sorted(api.process_reports().items())
                            if name != BUS],  # the bus process reports too: its view is "bus"
            # what the shared health rule (arimonitor/health.py) needs beyond the above
            "transcoders_expected": api.cfg.transcoder_workers(),
            "clicktocall_expected": bool(api.cfg["clicktocall.enabled"]),
            "file_problems": health.file_problems(api.tables()),
            "c2c_in_flight": api.view(C2C_IN_FLIGHT),
            "bus": api.view(BUS),
            "tallies": self.tallies.view(),
            "servers": _servers(link, stats),
        }


    def _note_reader(self, server: str, reader: dict[str, Any]) -> None:
        connects = reader.get("connects")
        if isinstance(connects, int):
            seen = self._reader_connects.get(server)
            if seen is not None and connects < seen:
                self.reader_restarts[server] = self.reader_restarts.get(server, 0) + 1
            self._reader_connects[server] = connects


def _servers(link: dict[str, Any], stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each configured server's link, probe, own counters, reader and last event, in config
    order (the first = [ari]): the per-server families are exported for every one."""
    lanes = (stats.get("intake") or {}).get("servers") or {}
    per_server = stats.get("servers") or {}
    return {name: {"link": view, "probe": (per_server.get(name) or {}).get("probe") or {},
                   "counters": (per_server.get(name) or {}).get("counters") or {},
                   "reader": view.get("reader") or {},
                   "outage_open_since": view.get("outage_open_since"),
                   "last_event_age": (lanes.get(name) or {}).get("last_event_age")}
            for name, view in (link.get("servers") or {}).items()}


def from_database(connect: Callable[[], sqlite3.Connection]) -> dict[str, Any]:
    """Recordings by state and the transcode backlog (jobs, audio seconds); off the loop.

    Tables a component has not created (no transcoder pool) read as empty."""
    out: dict[str, Any] = {"recordings": {}, "backlog_jobs": 0, "backlog_audio_seconds": 0.0}
    try:
        conn = connect()
    except sqlite3.Error:
        return out
    try:
        out["recordings"] = {row[0]: row[1] for row in conn.execute(
            "SELECT COALESCE(state, ''), COUNT(*) FROM recording_log GROUP BY 1")}
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
