"""The job book's read side: views, stats, the recording log.

`JobBook` (jobs.py) moves jobs through their states; this base holds what only reads
`transcode_jobs` (the operator's views, per-state and per-worker stats, the recent-rate window)
and the `recording_log` table, which records recordings as Asterisk reported them. The tables
and the job states are in jobtables.py.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arimonitor.transcode.jobtables import DONE, FAILED, PENDING, SENT, STATES

if TYPE_CHECKING:
    from arimonitor.transcode.roster import WorkerRoster, WorkerSeen
RATE_WINDOW = 60.0  # seconds of finished jobs the rates look at (and all that is kept of them)


class JobViews:
    """Read side of `JobBook`; the attributes below are set by `JobBook.__init__`."""

    db: sqlite3.Connection
    clock: Callable[[], float]
    workers: WorkerRoster
    counters: dict[str, int]
    _recent: deque[tuple[float, float]]  # (finished, audio seconds), appended by JobBook._done

    def live_workers(self, now: float | None = None) -> list[WorkerSeen]:
        return self.workers.live(self.clock() if now is None else now)

    # ---- views ------------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM transcode_jobs WHERE job_id=?", (job_id,)).fetchone()
        return dict(row) if row else None

    def jobs(self, client: str | None = None, state: str | None = None, limit: int = 50) -> list[dict]:
        where, params = [], []
        if client:
            where.append("client=?")
            params.append(client)
        if state:
            where.append("state=?")
            params.append(state)
        sql = "SELECT * FROM transcode_jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self.db.execute(sql + " ORDER BY created DESC LIMIT ?", (*params, limit)).fetchall()
        return [dict(r) for r in rows]

    def stats(self, window: float = RATE_WINDOW) -> dict[str, Any]:
        now = self.clock()
        self._trim_recent(now, window)
        by_state = dict.fromkeys(STATES, 0)
        for row in self.db.execute("SELECT state, COUNT(*) n FROM transcode_jobs GROUP BY state"):
            by_state[row["state"]] = row["n"]
        per_worker: dict[str, dict[str, Any]] = {}
        for row in self.db.execute(
                "SELECT worker, state, COUNT(*) n, COALESCE(SUM(wav_duration), 0) audio,"
                " COALESCE(SUM(seconds), 0) busy FROM transcode_jobs WHERE worker IS NOT NULL"
                " AND state IN (?, ?, ?) GROUP BY worker, state", (DONE, FAILED, SENT)):
            entry = per_worker.setdefault(row["worker"], {"done": 0, "failed": 0, "running": 0,
                                                          "audio_seconds": 0.0, "busy_seconds": 0.0})
            key = {DONE: "done", FAILED: "failed", SENT: "running"}[row["state"]]
            entry[key] = row["n"]
            if row["state"] == DONE:
                entry["audio_seconds"] = round(row["audio"], 1)
                entry["busy_seconds"] = round(row["busy"], 2)
        for w in self.workers.values():
            entry = per_worker.setdefault(w.name, {"done": 0, "failed": 0, "running": 0,
                                                   "audio_seconds": 0.0, "busy_seconds": 0.0})
            alive = w.alive(now)
            entry.update(alive=alive, state="alive" if alive else "gone", pid=w.pid, busy=w.busy,
                         encoders=list(w.encoders), last_seen=round(now - w.last_seen, 1),
                         last_seen_at=w.last_seen, interval=w.interval)
        audio = sum(a for _, a in self._recent)
        backlog = by_state[PENDING] + by_state[SENT]
        per_second = self._jobs_per_second(now)
        return {"pending": by_state[PENDING], "running": by_state[SENT], "done": by_state[DONE],
                "failed": by_state[FAILED], "workers_alive": len(self.live_workers(now)),
                "rate": {"window_seconds": window, "jobs_per_minute": round(len(self._recent) * 60 / window, 1),
                         "jobs_per_second": round(per_second, 2),
                         "audio_seconds_per_second": round(audio / window, 2)},
                "backlog": {"jobs": backlog, "jobs_per_second": round(per_second, 2),
                            "seconds_left": round(backlog / per_second, 1) if per_second > 0 else None},
                "per_worker": per_worker, "counters": dict(self.counters)}

    def backlog(self) -> int:
        """Jobs not finished yet: pending + in flight."""
        return self.db.execute("SELECT COUNT(*) FROM transcode_jobs WHERE state IN (?, ?)",
                               (PENDING, SENT)).fetchone()[0]

    def jobs_per_second(self, window: float = RATE_WINDOW) -> float:
        now = self.clock()
        self._trim_recent(now, window)
        return self._jobs_per_second(now)

    def _trim_recent(self, now: float, window: float = RATE_WINDOW) -> None:
        """Forget jobs finished more than `window` seconds ago (the rates look no further)."""
        while self._recent and self._recent[0][0] < now - window:
            self._recent.popleft()

    def _jobs_per_second(self, now: float) -> float:
        """Jobs done per second since the oldest one still in the window (not the whole window:
        a backlog that started 5 s ago must not look twelve times slower than it is)."""
        if not self._recent:
            return 0.0
        return len(self._recent) / max(now - self._recent[0][0], 1.0)

    # ---- recordings (RecordingStarted/Finished/Failed as Asterisk reported them) -------------

    def note_recording(self, name: str, state: str, *, client: str = "", call_id: str = "",
                       target: str = "", reason: str = "", job_id: str | None = None,
                       server: str | None = None) -> None:
        now = self.clock()
        self.db.execute(
            "INSERT INTO recording_log (name, client, call_id, target, state, reason, started, updated,"
            " job_id, server) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET"
            " state=excluded.state, server=COALESCE(excluded.server, server),"
            " reason=excluded.reason, updated=excluded.updated,"
            " job_id=COALESCE(excluded.job_id, job_id),"
            " client=COALESCE(NULLIF(excluded.client, ''), client),"
            " call_id=COALESCE(NULLIF(excluded.call_id, ''), call_id)",
            (name, client, call_id, target, state, reason, now, now, job_id, server))

    def interrupt_recordings(self, reason: str) -> int:
        """At engine start: recordings still 'recording' from the previous run are 'interrupted'
        (with why), never 'recording' forever; a RecordingFinished that still comes (only the
        engine restarted) sets its true state again. Their WAVs are found by the rescan."""
        cursor = self.db.execute("UPDATE recording_log SET state='interrupted', reason=?, updated=? "
                                 "WHERE state='recording'", (reason, self.clock()))
        return cursor.rowcount

    def recordings(self, client: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        sql = ("SELECT r.*, j.state AS job_state, j.mp3, j.code AS job_code, j.reason AS job_reason"
               " FROM recording_log r LEFT JOIN transcode_jobs j ON j.job_id = r.job_id")
        params: tuple = ()
        if client:
            sql += " WHERE r.client=?"
            params = (client,)
        rows = self.db.execute(sql + " ORDER BY r.updated DESC LIMIT ?", (*params, limit)).fetchall()
        return [dict(r) for r in rows]
