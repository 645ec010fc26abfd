"""The consumer's own memory of requests: exactly-once, call counts, where replies go.

One SQLite file (WAL) in [paths] var, written before anything is acked, so it survives a
kill -9 of the consumer:
- a request id seen before is recognised before any originate (a redelivered message after a
  crash between originate and ack is acked as a duplicate without touching Asterisk; the
  deterministic channelId and Asterisk's 409 cover the case where the ledger missed it);
- the calls of a client still up (rows not final and whose `live_until` has not passed) are
  counted against its max_chamadas, atomically with the reservation of a new one;
- every request *message* leaves its route (reply_to, correlation_id) in `replies`: the final
  outcome goes to each route once, marked sent only once RabbitMQ confirmed it (unsent ones are
  sent again after a reconnect and by the periodic sweep), and to the results exchange once;
- the first final outcome stored wins: a final the engine publishes again (catch-up after a
  restart, `catchup.py`) finds the routes already sent and sends nothing.

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

from arimonitor import walbound
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
-- One row per request message (route): '' when the message had no reply_to/correlation_id.
CREATE TABLE IF NOT EXISTS replies (
    request_id TEXT NOT NULL,
    reply_to TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, reply_to, correlation_id)
);
CREATE INDEX IF NOT EXISTS replies_unsent ON replies (sent, request_id);
"""
# `requests.reply_sent` now means "the final went to the results exchange"; routes of a ledger
# written before `replies` existed are carried over once.
_CARRY_OVER = """
INSERT OR IGNORE INTO replies (request_id, reply_to, correlation_id, sent)
SELECT request_id, reply_to, COALESCE(correlation_id, ''), reply_sent FROM requests
WHERE reply_to IS NOT NULL AND reply_to != ''
"""


@dataclass(frozen=True)
class Route:
    """Where one request message's outcome goes."""

    request_id: str
    client: str
    reply_to: str | None
    correlation_id: str | None


@dataclass(frozen=True)
class Final:
    """A stored final outcome and where it has still to go."""

    request_id: str
    client: str
    outcome: dict
    routes: tuple[Route, ...]   # request messages not yet answered
    results_sent: bool          # already on the results exchange
    server: str = ""            # the Asterisk the call was placed on ("" if never placed)


class Ledger:
    """Thread-safe (one lock): worker threads reserve, the connection thread finishes."""

    def __init__(self, path: str | Path, clock=time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # NORMAL: a commit survives a process crash (our failure model); an OS crash may lose
        # the last rows, and then Asterisk's 409 still guards the live calls.
        walbound.configure(self._db)
        self._path = str(path)
        self._db.executescript(_SCHEMA)
        _add_server_column(self._db)
        try:
            with self._db:
                if not self._db.execute("SELECT 1 FROM replies LIMIT 1").fetchone():
                    self._db.execute(_CARRY_OVER)
            self.prune()
        except sqlite3.Error:
            pass  # a full disk: housekeeping waits; the consumer must still start and defer

    def prune(self) -> int:
        """Delete rows not touched for KEEP_FINAL seconds (at start, and from the consumer's
        periodic work); returns how many."""
        with self._lock, self._db:
            removed = self._db.execute("DELETE FROM requests WHERE updated < ?",
                                       (self._clock() - KEEP_FINAL,)).rowcount
            self._db.execute("DELETE FROM replies WHERE request_id NOT IN "
                             "(SELECT request_id FROM requests)")
            return removed

    def checkpoint(self) -> tuple[int, int, int]:
        """Bound the WAL (walbound.py); from the consumer's periodic work."""
        with self._lock:
            return walbound.checkpoint(self._db, self._path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def reserve(self, req: ClickToCallRequest, max_calls: int | None,
                redelivered: bool = False) -> str:
        """NEW/RESUME: go and originate; DUPLICATE: done before; FOREIGN: id of another client;
        LIMIT: the client's calls are all up.

        `redelivered`: the broker's flag. A redelivered message whose route already holds a
        final (refused before a crash let the ack go) is that same message: a DUPLICATE, so it
        gets one reply, never a second verdict."""
        now = self._clock()
        route = _route_key(req.reply_to, req.correlation_id)
        with self._lock, self._db:
            row = self._db.execute("SELECT client, state, outcome FROM requests "
                                   "WHERE request_id = ?", (req.request_id,)).fetchone()
            if row is not None and row[0] != req.client:
                return FOREIGN
            # A refused request was never placed: the same id may be tried again.
            retry_refused = row is not None and row[1] == FINAL and _refused(row[2])
            if retry_refused and redelivered and self._has_route(req.request_id, route):
                retry_refused = False
            if row is not None and row[1] != ORIGINATING and not retry_refused:
                # This message wants the answer too (once): its own route, its own reply.
                self._add_route(req.request_id, route, reset=False)
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
            self._add_route(req.request_id, route, reset=True)
            return RESUME if row is not None else NEW

    def _has_route(self, request_id: str, route: tuple[str, str] | None) -> bool:
        return route is not None and self._db.execute(
            "SELECT 1 FROM replies WHERE request_id = ? AND reply_to = ? AND correlation_id = ?",
            (request_id, *route)).fetchone() is not None

    def _add_route(self, request_id: str, route: tuple[str, str] | None, reset: bool) -> None:
        """reset: a new verdict is coming for this route (a new attempt), so it is unsent again."""
        if route is None:
            return
        action = "UPDATE SET sent = 0" if reset else "NOTHING"
        self._db.execute("INSERT INTO replies (request_id, reply_to, correlation_id) VALUES "
                         f"(?, ?, ?) ON CONFLICT (request_id, reply_to, correlation_id) DO {action}",
                         (request_id, *route))

    def _live(self, client: str, exclude: str, now: float) -> int:
        (count,) = self._db.execute(
            "SELECT count(*) FROM requests WHERE client = ? AND state != ? AND live_until > ? "
            "AND request_id != ?", (client, FINAL, now, exclude)).fetchone()
        return count

    def live_calls(self, client: str) -> int:
        with self._lock:
            return self._live(client, "", self._clock())

    def accepted(self, request_id: str, server: str = "") -> None:
        """Asterisk has the call, on `server` (its server_id)."""
        with self._lock, self._db:
            self._db.execute("UPDATE requests SET state = ?, server = ?, updated = ? "
                             "WHERE request_id = ?", (ACCEPTED, server, self._clock(), request_id))

    def release(self, request_id: str) -> None:
        """The originate did not happen for sure (Asterisk unreachable): stop counting it, but
        keep the row, so a retry is a RESUME and any late 409 is understood."""
        with self._lock, self._db:
            self._db.execute("UPDATE requests SET live_until = 0, updated = ? WHERE request_id = ?",
                             (self._clock(), request_id))

    def progress(self, request_id: str, event: str) -> str | None:
        """An engine progress event; the request's client, None if the request is not ours (or
        already final).

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
            if cur.rowcount == 0:
                return None
            (client,) = self._db.execute("SELECT client FROM requests WHERE request_id = ?",
                                         (request_id,)).fetchone()
            return client

    def open_requests(self, after: float = 0.0, older_than: float = 2.0,
                      limit: int = 200) -> list[tuple[str, float]]:
        """(request_id, created) of requests with no final yet that may have been up in
        Asterisk in the last MAX_CALL, created after `after`, oldest first, not touched for
        `older_than` seconds: the catch-up asks the engine for their finals, page by page."""
        now = self._clock()
        with self._lock:
            return [(r[0], r[1]) for r in self._db.execute(
                "SELECT request_id, created FROM requests WHERE state != ? AND updated < ? "
                "AND created > ? ORDER BY created LIMIT ?",
                (FINAL, now - older_than, max(after, now - MAX_CALL), limit))]

    def finish(self, request_id: str, outcome: dict, route: Route | None = None) -> Final | None:
        """Store the final outcome; returns it with the routes still to answer (None if the
        request is not ours). An engine final (no `route`) for a request already final keeps
        the first outcome: a final published twice is answered once.

        `route` is given for refusals by the consumer (the outcome of that message).
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
                    "outcome = excluded.outcome, reply_sent = 0",
                    (request_id, route.client, outcome.get("origin") or "",
                     outcome.get("destination") or "", route.reply_to, route.correlation_id,
                     FINAL, now, now, body))
                self._add_route(request_id, _route_key(route.reply_to, route.correlation_id),
                                reset=True)
            else:
                row = self._db.execute("SELECT state FROM requests WHERE request_id = ?",
                                       (request_id,)).fetchone()
                if row is None:
                    return None
                if row[0] != FINAL:
                    self._db.execute("UPDATE requests SET state = ?, live_until = 0, updated = ?, "
                                     "outcome = ? WHERE request_id = ?",
                                     (FINAL, now, body, request_id))
            return self._final(request_id)

    def _final(self, request_id: str) -> Final | None:
        row = self._db.execute("SELECT client, outcome, reply_sent, server FROM requests "
                               "WHERE request_id = ? AND state = ? AND outcome IS NOT NULL",
                               (request_id, FINAL)).fetchone()
        if row is None:
            return None
        routes = tuple(Route(request_id, row[0], r[0], r[1] or None) for r in self._db.execute(
            "SELECT reply_to, correlation_id FROM replies WHERE request_id = ? AND sent = 0",
            (request_id,)))
        return Final(request_id, row[0], json.loads(row[1]), routes, bool(row[2]), row[3] or "")

    def sent(self, route: Route) -> None:
        """RabbitMQ confirmed the reply to this route."""
        key = _route_key(route.reply_to, route.correlation_id)
        if key is None:
            return
        with self._lock, self._db:
            self._db.execute("UPDATE replies SET sent = 1 WHERE request_id = ? AND reply_to = ? "
                             "AND correlation_id = ?", (route.request_id, *key))

    def answered(self, route: Route) -> bool:
        """This request message already got its final reply (confirmed by RabbitMQ)."""
        key = _route_key(route.reply_to, route.correlation_id)
        if key is None:
            return False
        with self._lock:
            return self._db.execute("SELECT 1 FROM replies WHERE request_id = ? AND reply_to = ? "
                                    "AND correlation_id = ? AND sent = 1",
                                    (route.request_id, *key)).fetchone() is not None

    def results_sent(self, request_id: str) -> None:
        """RabbitMQ confirmed the final on the results exchange."""
        with self._lock, self._db:
            self._db.execute("UPDATE requests SET reply_sent = 1 WHERE request_id = ?",
                             (request_id,))

    def unsent(self, limit: int = 500) -> list[Final]:
        """Final outcomes RabbitMQ has not confirmed everywhere (sent again after a reconnect)."""
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT request_id FROM requests WHERE state = ? AND (reply_sent = 0 OR "
                "request_id IN (SELECT request_id FROM replies WHERE sent = 0)) "
                "ORDER BY updated LIMIT ?", (FINAL, limit))]
            finals = [self._final(rid) for rid in ids]
        return [f for f in finals if f is not None]

    def final(self, request_id: str) -> Final | None:
        """The stored final outcome of a finished request, with its unanswered routes."""
        with self._lock:
            return self._final(request_id)

    def get(self, request_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT client, state, outcome, reply_sent, server FROM requests "
                                   "WHERE request_id = ?", (request_id,)).fetchone()
        if row is None:
            return None
        return {"client": row[0], "state": row[1], "outcome": json.loads(row[2]) if row[2] else None,
                "reply_sent": bool(row[3]), "server": row[4] or None}


def _add_server_column(db: sqlite3.Connection) -> None:
    """`requests.server` (where the call was placed): added to a ledger made before it."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
    if "server" not in columns:
        db.execute("ALTER TABLE requests ADD COLUMN server TEXT")


def _route_key(reply_to: str | None, correlation_id: str | None) -> tuple[str, str] | None:
    """A request message's route; None when it asked for no reply."""
    return (reply_to, correlation_id or "") if reply_to else None


def _refused(outcome: str | None) -> bool:
    try:
        body = json.loads(outcome) if outcome else {}
        # Never placed, so the same id may go again: refusals, and retries that ran out.
        return body.get("result") == "refused" or body.get("reason") == "retries_exhausted"
    except (ValueError, AttributeError):
        return False
