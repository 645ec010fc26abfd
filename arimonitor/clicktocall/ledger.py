"""The consumer's own memory of requests: exactly-once, call counts, where replies go.

One SQLite file (WAL) in [paths] var, written before anything is acked, so it survives a
kill -9 of the consumer:
- a request id seen before is recognised before any originate (a redelivered message after a
  crash between originate and ack is acked as a duplicate without touching Asterisk; the
  deterministic channelId and Asterisk's 409 cover the case where the ledger missed it);
- the calls of a client still up (rows not final and whose `live_until` has not passed) are
  counted against its max_chamadas, atomically with the reservation of a new one;
- the final outcome published by the engine is matched with reply_to/correlation_id, stored,
  and marked sent only once RabbitMQ confirmed it (unsent ones are sent after a reconnect).

Until the engine reports progress, a call counts for its ring time plus a margin; an answered
call counts until its final outcome or `MAX_CALL` (a guard against a lost final event).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from arimonitor.clicktocall.request import ClickToCallRequest

ORIGINATING = "originating"  # reserved; the originate may or may not have reached Asterisk
ACCEPTED = "accepted"        # Asterisk answered 200 (or 409: it already had the channel)
CONNECTED = "connected"      # the engine said the origin answered
FINAL = "final"

RING_MARGIN = 15.0           # seconds after the ring timeout before an unreported call stops counting
MAX_CALL = 4 * 3600.0
KEEP_FINAL = 7 * 86400.0     # rows older than this are purged at start, then now and then

NEW, RESUME, DUPLICATE, FOREIGN, LIMIT = "new", "resume", "duplicate", "foreign", "limit"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    origin TEXT NOT NULL,
    destination TEXT NOT NULL,
    reply_to TEXT,
    correlation_id TEXT,
    state TEXT NOT NULL,
    live_until REAL NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    outcome TEXT,
    reply_sent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_live ON requests (client, state, live_until);
CREATE INDEX IF NOT EXISTS requests_unsent ON requests (state, reply_sent);
"""


@dataclass(frozen=True)
class Route:
    """Where a request's outcome goes."""

    request_id: str
    client: str
    reply_to: str | None
    correlation_id: str | None


class Ledger:
    """Thread-safe (one lock): worker threads reserve, the connection thread finishes."""

    def __init__(self, path: str | Path, clock=time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives a process crash (our failure model); an OS crash may lose
        # the last rows, and then Asterisk's 409 still guards the live calls.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.prune()

    def prune(self) -> int:
        """Delete rows not touched for KEEP_FINAL seconds (at start, and from the consumer's
        periodic work); returns how many."""
        with self._lock, self._db:
            return self._db.execute("DELETE FROM requests WHERE updated < ?",
                                    (self._clock() - KEEP_FINAL,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def reserve(self, req: ClickToCallRequest, max_calls: int | None) -> str:
        """NEW/RESUME: go and originate; DUPLICATE: done before; FOREIGN: id of another client;
        LIMIT: the client's calls are all up."""
        now = self._clock()
        with self._lock, self._db:
            row = self._db.execute("SELECT client, state, outcome FROM requests "
                                   "WHERE request_id = ?", (req.request_id,)).fetchone()
            if row is not None and row[0] != req.client:
                return FOREIGN
            # A refused request was never placed: the same id may be tried again.
            retry_refused = row is not None and row[1] == FINAL and _refused(row[2])
            if row is not None and row[1] != ORIGINATING and not retry_refused:
                # Keep the newest reply address: a client that re-sends wants the answer.
                self._db.execute("UPDATE requests SET reply_to = COALESCE(?, reply_to), "
                                 "correlation_id = COALESCE(?, correlation_id) WHERE request_id = ?",
                                 (req.reply_to, req.correlation_id, req.request_id))
                return DUPLICATE
            if max_calls is not None and self._live(req.client, req.request_id, now) >= max_calls:
                return LIMIT
            live_until = now + req.timeout + RING_MARGIN
            self._db.execute(
                "INSERT INTO requests (request_id, client, origin, destination, reply_to, "
                "correlation_id, state, live_until, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (request_id) DO UPDATE SET live_until = excluded.live_until, "
                "updated = excluded.updated, reply_to = excluded.reply_to, "
                "correlation_id = excluded.correlation_id, state = excluded.state, "
                "outcome = NULL, reply_sent = 0",
                (req.request_id, req.client, req.origin, req.destination, req.reply_to,
                 req.correlation_id, ORIGINATING, live_until, now, now))
            return RESUME if row is not None else NEW

    def _live(self, client: str, exclude: str, now: float) -> int:
        (count,) = self._db.execute(
            "SELECT count(*) FROM requests WHERE client = ? AND state != ? AND live_until > ? "
            "AND request_id != ?", (client, FINAL, now, exclude)).fetchone()
        return count

    def live_calls(self, client: str) -> int:
        with self._lock:
            return self._live(client, "", self._clock())

    def accepted(self, request_id: str) -> None:
        self._set_state(request_id, ACCEPTED)

    def release(self, request_id: str) -> None:
        """The originate did not happen for sure (Asterisk unreachable): stop counting it, but
        keep the row, so a retry is a RESUME and any late 409 is understood."""
        with self._lock, self._db:
            self._db.execute("UPDATE requests SET live_until = 0, updated = ? WHERE request_id = ?",
                             (self._clock(), request_id))

    def progress(self, request_id: str, event: str) -> bool:
        """An engine progress event; False if the request is not ours (or already final).

        Once the origin answered, the call counts until its final outcome (or MAX_CALL)."""
        answered = event in ("origin_answered", "destination_ringing", "connected")
        with self._lock, self._db:
            now = self._clock()
            if answered:
                cur = self._db.execute("UPDATE requests SET state = ?, live_until = ?, updated = ? "
                                       "WHERE request_id = ? AND state != ?",
                                       (CONNECTED, now + MAX_CALL, now, request_id, FINAL))
            else:
                cur = self._db.execute("UPDATE requests SET updated = ? WHERE request_id = ? "
                                       "AND state != ?", (now, request_id, FINAL))
            return cur.rowcount > 0

    def _set_state(self, request_id: str, state: str) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE requests SET state = ?, updated = ? WHERE request_id = ?",
                             (state, self._clock(), request_id))

    def finish(self, request_id: str, outcome: dict, route: Route | None = None) -> Route | None:
        """Store the final outcome; returns where to send it (None if the request is not ours).

        `route` is given for refusals of requests that never got a row (bad tables, limit).
        """
        now = self._clock()
        body = json.dumps(outcome, separators=(",", ":"), ensure_ascii=False)
        with self._lock, self._db:
            if route is not None:
                self._db.execute(
                    "INSERT INTO requests (request_id, client, origin, destination, reply_to, "
                    "correlation_id, state, live_until, created, updated, outcome) "
                    "VALUES (?,?,?,?,?,?,?,0,?,?,?) ON CONFLICT (request_id) DO UPDATE SET "
                    "state = excluded.state, live_until = 0, updated = excluded.updated, "
                    "outcome = excluded.outcome",
                    (request_id, route.client, outcome.get("origin") or "",
                     outcome.get("destination") or "", route.reply_to, route.correlation_id,
                     FINAL, now, now, body))
                return route
            row = self._db.execute("SELECT client, reply_to, correlation_id FROM requests "
                                   "WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE requests SET state = ?, live_until = 0, updated = ?, "
                             "outcome = ? WHERE request_id = ?", (FINAL, now, body, request_id))
            return Route(request_id, row[0], row[1], row[2])

    def sent(self, request_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE requests SET reply_sent = 1 WHERE request_id = ?", (request_id,))

    def unsent(self, limit: int = 500) -> list[tuple[Route, dict]]:
        """Final outcomes not yet confirmed by RabbitMQ (sent again after a reconnect)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT request_id, client, reply_to, correlation_id, outcome FROM requests "
                "WHERE state = ? AND reply_sent = 0 ORDER BY updated LIMIT ?", (FINAL, limit)
            ).fetchall()
        return [(Route(r[0], r[1], r[2], r[3]), json.loads(r[4])) for r in rows]

    def final(self, request_id: str) -> tuple[Route, dict] | None:
        """Route and stored outcome of a finished request."""
        with self._lock:
            row = self._db.execute(
                "SELECT request_id, client, reply_to, correlation_id, outcome FROM requests "
                "WHERE request_id = ? AND state = ? AND outcome IS NOT NULL",
                (request_id, FINAL)).fetchone()
        return None if row is None else (Route(row[0], row[1], row[2], row[3]), json.loads(row[4]))

    def get(self, request_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT client, state, outcome, reply_sent FROM requests "
                                   "WHERE request_id = ?", (request_id,)).fetchone()
        if row is None:
            return None
        return {"client": row[0], "state": row[1], "outcome": json.loads(row[2]) if row[2] else None,
                "reply_sent": bool(row[3])}


def _refused(outcome: str | None) -> bool:
    try:
        body = json.loads(outcome) if outcome else {}
        # Never placed, so the same id may go again: refusals, and retries that ran out.
        return body.get("result") == "refused" or body.get("reason") == "retries_exhausted"
    except (ValueError, AttributeError):
        return False
