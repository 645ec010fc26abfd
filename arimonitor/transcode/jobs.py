"""The engine's book of transcode jobs, in SQLite, and how results are applied.

States: pending -> sent -> done | failed (pending again after a retryable error or a lost
job). Rules that keep a recording from being lost or converted twice:
- A job is inserted (committed) before it is ever sent; one job per WAV (UNIQUE), so
  Asterisk's duplicated RecordingFinished or a rescan cannot add a second.
- A sent job with no result by its deadline is sent again with the next attempt number.
- A worker silent for three heartbeat intervals (or restarted under the same name) is gone:
  its started job is sent again at once (counted as a failure: it may be what killed it), and
  so is every job not started yet (not counted). PUSH round-robin gives no way to tell which
  worker's pipe held an unstarted job, so those queued in a live worker run twice; the first
  ok result wins and the other is a duplicate.
- A result is applied once: `done` is final for any later result; an error result counts only
  for the attempt in flight (a late error of an older attempt is stale).
- Errors retry with exponential backoff up to `max_attempts`, then `failed` with the reason;
  a full disk (`disk_full`) waits `backoff` between tries without spending them.
  `abandoned` (a worker stopping) goes back at once and is not counted.
- At most `window_per_worker` jobs per live worker are in flight, so a PUSH never queues many
  jobs behind a long one in one worker's pipe.

The tables and the job states are in jobtables.py; the read side (views, stats, the recording
log) is in jobviews.py, which `JobBook` inherits; the workers heard from (hellos, heartbeats,
silence) are in roster.py.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping

from arimonitor import protocol
from arimonitor.transcode.errors import DiskFull
from arimonitor.transcode.jobtables import DONE, FAILED, PENDING, SENT
from arimonitor.transcode.jobviews import JobViews
from arimonitor.transcode.roster import WorkerRoster

log = logging.getLogger(__name__)


class JobBook(JobViews):
    def __init__(self, conn: sqlite3.Connection, send: Callable[[list[bytes]], bool], *,
                 deadline: float = 120.0, max_attempts: int = 5, backoff: float = 5.0,
                 backoff_cap: float = 600.0, window_per_worker: int = 3,
                 clock: Callable[[], float] = time.time,
                 notify: Callable[[str, dict], None] | None = None) -> None:
        self.db = conn
        self.send = send
        self.deadline = deadline
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.window_per_worker = window_per_worker
        self.clock = clock
        self.notify = notify or (lambda topic, body: None)
        self.workers = WorkerRoster()
        self.counters = {"submitted": 0, "sent": 0, "resent": 0, "done": 0, "failed": 0,
                         "retried": 0, "duplicate_results": 0, "stale_results": 0,
                         "unknown_results": 0, "malformed": 0, "abandoned": 0,
                         "workers_gone": 0, "resent_worker_gone": 0, "disk_full_waits": 0}
        self._recent: deque[tuple[float, float]] = deque()  # (finished, audio seconds)

    # ---- submitting -------------------------------------------------------------------------

    def has_job(self, wav: str) -> bool:
        return self.db.execute("SELECT 1 FROM transcode_jobs WHERE wav=?", (wav,)).fetchone() is not None

    def submit(self, wav: str, mp3: str, *, tags: Mapping[str, str] | None = None,
               source: str = "ari", bitrate: int = 32, sample_rate: int | None = None,
               delete_wav: bool = False, mp3_root: str | None = None, server: str | None = None,
               fetch: str = "") -> str | None:
        """Insert (commit) a job, then send what the window allows; None if the WAV has a job.
        `fetch`: the recording's name on `server`, whose WAV the worker fetches over ARI."""
        tags = dict(tags or {})
        job_id = uuid.uuid4().hex[:16]
        now = self.clock()
        try:
            est = os.path.getsize(wav) / 16000  # 8 kHz 16-bit mono; only scales the deadline
        except OSError:
            est = 0.0
        cur = self.db.execute(
            "INSERT OR IGNORE INTO transcode_jobs (job_id, wav, mp3, mp3_root, client, call_id, tags,"
            " source, bitrate, sample_rate, delete_wav, state, next_try, created, est_seconds,"
            " server, fetch) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (job_id, wav, mp3, mp3_root, tags.get("client", ""), tags.get("call_id", ""),
             json.dumps(tags), source, bitrate, sample_rate, int(delete_wav), PENDING, now, now, est,
             server, fetch))
        if cur.rowcount == 0:
            return None
        self.counters["submitted"] += 1
        self.pump()
        return job_id

    # ---- sending ----------------------------------------------------------------------------

    def in_flight(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM transcode_jobs WHERE state=?", (SENT,)).fetchone()[0]

    def pump(self) -> int:
        """Send due pending jobs while the window has room; return how many were sent."""
        now = self.clock()
        workers = len(self.live_workers(now))
        if workers == 0:
            return 0  # nobody would take them; a PUSH with no peer would only block
        room = workers * self.window_per_worker - self.in_flight()
        if room <= 0:
            return 0
        rows = self.db.execute(
            "SELECT * FROM transcode_jobs WHERE state=? AND next_try<=? ORDER BY next_try, created"
            " LIMIT ?", (PENDING, now, room)).fetchall()
        sent = 0
        for row in rows:
            if not self._send(row, now):
                break
            sent += 1
        return sent

    def _send(self, row: sqlite3.Row, now: float) -> bool:
        attempt = row["attempt"] + 1
        body = {"job_id": row["job_id"], "attempt": attempt, "wav": row["wav"], "mp3": row["mp3"],
                "mp3_root": row["mp3_root"], "bitrate": row["bitrate"],
                "sample_rate": row["sample_rate"], "tags": json.loads(row["tags"] or "{}"),
                "delete_wav": bool(row["delete_wav"])}
        if row["fetch"]:
            body["fetch"] = {"server": row["server"], "name": row["fetch"]}
        # Recorded before the send: on a full disk the UPDATE fails and nothing goes out (sent
        # first, a job SQLite could not mark would go out again at every tick). A crash between
        # the two leaves a job marked sent that never went: its deadline sends it again.
        deadline = now + self.deadline + (row["est_seconds"] or 0) / 100
        self.db.execute("UPDATE transcode_jobs SET state=?, attempt=?, sent_at=?, deadline=?,"
                        " worker=NULL WHERE job_id=?", (SENT, attempt, now, deadline, row["job_id"]))
        if not self.send(protocol.transcode_message(protocol.KIND_JOB, body)):
            self.db.execute("UPDATE transcode_jobs SET state=?, attempt=?, sent_at=?, deadline=?"
                            " WHERE job_id=?", (PENDING, row["attempt"], row["sent_at"],
                                                row["deadline"], row["job_id"]))
            return False
        self.counters["sent"] += 1
        if attempt > 1:
            self.counters["resent"] += 1
        return True

    # ---- timers -----------------------------------------------------------------------------

    def tick(self) -> None:
        """Declare silent workers gone, expire lost jobs, then send. Call every ~0.5 s."""
        now = self.clock()
        for w in self.workers.fell_silent(now):
            self._worker_gone(w.name, f"worker {w.name} (pid {w.pid}) silent for"
                                      f" {now - w.last_seen:.1f}s, 3 heartbeats missed")
        rows = self.db.execute("SELECT job_id, attempt FROM transcode_jobs WHERE state=? AND"
                               " deadline<=?", (SENT, now)).fetchall()
        for row in rows:
            self._lost(row["job_id"], row["attempt"], f"no result within the deadline"
                       f" (attempt {row['attempt']})")
        self.pump()

    def _worker_gone(self, name: str, reason: str) -> None:
        """Everything the worker may have held goes out again now, not at its deadline."""
        self.counters["workers_gone"] += 1
        rows = self.db.execute("SELECT job_id, attempt, worker FROM transcode_jobs WHERE state=?"
                               " AND (worker=? OR worker IS NULL)", (SENT, name)).fetchall()
        started = [r for r in rows if r["worker"] == name]
        queued = [r for r in rows if r["worker"] is None]
        log.warning("%s: sending again its %d started job(s) and the %d not started anywhere yet",
                    reason, len(started), len(queued))
        for row in started:
            self._lost(row["job_id"], row["attempt"], reason)
        now = self.clock()
        # maybe in the dead worker's pipe, maybe in a live one's: not the job's fault, not counted
        self.db.executemany("UPDATE transcode_jobs SET state=?, next_try=?, worker=NULL"
                            " WHERE job_id=? AND state=?", [(PENDING, now, r["job_id"], SENT) for r in queued])
        self.counters["resent_worker_gone"] += len(rows)

    def _lost(self, job_id: str, attempt: int, reason: str) -> None:
        log.warning("job %s attempt %d lost: %s; sending again", job_id, attempt, reason)
        self._failure(job_id, "lost", reason, retry=True, backoff=False)

    # ---- incoming ---------------------------------------------------------------------------

    def on_message(self, frames: list[bytes]) -> None:
        """One message from the results socket; never raises on bad input."""
        try:
            kind, body = frames[0], protocol.loads(frames[1])
            if len(frames) != 2 or not isinstance(body, dict):
                raise ValueError("expected [kind, json object]")
            if kind == protocol.KIND_RESULT:
                self.apply_result(body)
            elif kind == protocol.KIND_STARTED:
                self._started(body)
            elif kind == protocol.KIND_HELLO:
                self._hello(body)
            else:
                raise ValueError(f"unknown kind {kind[:20]!r}")
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            self.counters["malformed"] += 1
            log.warning("malformed message on the results socket: %s", exc)

    def _hello(self, body: dict) -> None:
        now = self.clock()
        old, seen = self.workers.hello(body, now)
        restarted = old is not None and old.pid != seen.pid
        if restarted and not old.gone:
            # supervisord restarted it under the same name: what the old one held is lost
            self._worker_gone(seen.name, f"worker {seen.name} restarted (pid {old.pid} -> {seen.pid})")
        elif old is not None and old.gone and not restarted:
            log.warning("worker %s is back after %.1fs of silence; late results are applied once",
                        seen.name, now - old.last_seen)
        if restarted or old is None or old.gone or not old.alive(now):
            self.pump()  # new capacity, or jobs to send again

    def _started(self, body: dict) -> None:
        self.db.execute("UPDATE transcode_jobs SET worker=? WHERE job_id=? AND attempt=? AND state=?",
                        (str(body["worker"]), str(body["job_id"]), int(body["attempt"]), SENT))
        self.workers.heard_from(str(body["worker"]), self.clock())

    def apply_result(self, body: dict) -> str:
        """'applied', 'duplicate', 'stale' or 'unknown'."""
        job_id, attempt = str(body["job_id"]), int(body.get("attempt", 0))
        row = self.db.execute("SELECT * FROM transcode_jobs WHERE job_id=?", (job_id,)).fetchone()
        self.workers.heard_from(str(body.get("worker")), self.clock())
        if row is None:
            self.counters["unknown_results"] += 1
            log.warning("result for unknown job %s ignored", job_id)
            return "unknown"
        if row["state"] == DONE:
            self.counters["duplicate_results"] += 1
            return "duplicate"
        if body.get("ok") is True:
            self._done(row, body)
            return "applied"
        if row["state"] != SENT or attempt != row["attempt"]:
            self.counters["stale_results"] += 1
            return "stale"
        code = str(body.get("code") or "error")
        if code == "abandoned":
            self.counters["abandoned"] += 1
            self.db.execute("UPDATE transcode_jobs SET state=?, next_try=?, worker=NULL WHERE job_id=?",
                            (PENDING, self.clock(), job_id))
            self.pump()
            return "applied"
        self._failure(job_id, code, str(body.get("reason") or code), bool(body.get("retry")),
                      worker=str(body.get("worker") or ""))
        return "applied"

    def _done(self, row: sqlite3.Row, body: dict) -> None:
        now = self.clock()
        self.db.execute(
            "UPDATE transcode_jobs SET state=?, finished=?, worker=?, duration=?, wav_duration=?,"
            " seconds=?, encoder=?, notes=?, code='', reason='' WHERE job_id=?",
            (DONE, now, body.get("worker"), body.get("duration"), body.get("wav_duration"),
             body.get("seconds"), body.get("encoder"), json.dumps(body.get("notes") or []),
             row["job_id"]))
        self.counters["done"] += 1
        for note in body.get("notes") or []:
            log.warning("job %s done with a warning: %s (%s)", row["job_id"], note, row["wav"])
        self._recent.append((now, float(body.get("wav_duration") or 0.0)))
        self._trim_recent(now)  # bounded to a window's worth of jobs even if no one asks
        self.notify("recording.mp3", {"job_id": row["job_id"], "server": row["server"],
                                      "client": row["client"],
                                      "call_id": row["call_id"], "mp3": body.get("mp3"),
                                      "duration": body.get("duration"),
                                      "wav_deleted": bool(body.get("wav_deleted"))})
        self.pump()

    def _failure(self, job_id: str, code: str, reason: str, retry: bool, backoff: bool = True,
                 worker: str = "") -> None:
        row = self.db.execute("SELECT failures, client, call_id, wav, server FROM transcode_jobs"
                              " WHERE job_id=?",
                              (job_id,)).fetchone()
        failures = row["failures"] + 1
        now = self.clock()
        if code == DiskFull.code:
            # Space comes back when someone frees it, however many tries that takes: a full
            # disk delays a recording's MP3, it never fails it for good (nor spends its tries).
            self.db.execute("UPDATE transcode_jobs SET state=?, next_try=?, code=?, reason=?,"
                            " worker=NULL WHERE job_id=?",
                            (PENDING, now + self.backoff, code, reason, job_id))
            self.counters["disk_full_waits"] += 1
            return
        if retry and failures < self.max_attempts:
            delay = min(self.backoff * 2 ** (failures - 1), self.backoff_cap) if backoff else 0.0
            self.db.execute("UPDATE transcode_jobs SET state=?, failures=?, next_try=?, code=?,"
                            " reason=?, worker=NULL WHERE job_id=?",
                            (PENDING, failures, now + delay, code, reason, job_id))
            self.counters["retried"] += 1
            return
        self.db.execute("UPDATE transcode_jobs SET state=?, failures=?, finished=?, code=?, reason=?,"
                        " worker=COALESCE(NULLIF(?, ''), worker) WHERE job_id=?",
                        (FAILED, failures, now, code, reason, worker, job_id))
        self.counters["failed"] += 1
        log.error("job %s failed for good (%s): %s; WAV kept: %s", job_id, code, reason, row["wav"])
        self.notify("recording.mp3_failed", {"job_id": job_id, "server": row["server"],
                                             "client": row["client"],
                                             "call_id": row["call_id"], "code": code,
                                             "reason": reason, "wav": row["wav"]})

    # ---- operator actions (the views are in jobviews.py) --------------------------------------

    def retry(self, which: str, bitrate: int | None = None, delete_wav: bool | None = None) -> list[str]:
        """Failed job(s) back to pending with a fresh attempt budget: a job id, or 'failed'.
        `bitrate`/`delete_wav`: today's settings, which the retried jobs take (a job that failed
        on a bad bitrate must not fail again on the value stored with it)."""
        if which == "failed":
            rows = self.db.execute("SELECT job_id FROM transcode_jobs WHERE state=?", (FAILED,)).fetchall()
        else:
            rows = self.db.execute("SELECT job_id FROM transcode_jobs WHERE job_id=? AND state=?",
                                   (which, FAILED)).fetchall()
        ids = [r["job_id"] for r in rows]
        now = self.clock()
        self.db.executemany("UPDATE transcode_jobs SET state=?, failures=0, next_try=?, "
                            "bitrate=COALESCE(?, bitrate), delete_wav=COALESCE(?, delete_wav) WHERE job_id=?",
                            [(PENDING, now, bitrate, None if delete_wav is None else int(delete_wav), i)
                             for i in ids])
        self.pump()
        return ids
