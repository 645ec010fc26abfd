"""Click-to-call outcomes in the engine's SQLite: what `arictl c2c` shows.

One row per request, updated at each event (so a request in progress shows where it is);
the final row holds result, reason, cause and duration. Written on the engine's loop thread
through the engine's own connection; `reader` connections serve slow commands.

An outcome SQLite refuses (a full disk) is kept in memory, in order (keptwrites.py: 10,000,
the oldest dropped and counted beyond that), written again by the next one and by `flush()` every second,
and shown by `status` ("store: NOT WRITABLE ...; N c2c outcomes kept in memory"). A kept final
is in `finals()` meanwhile, so the consumer's catch-up still finds it. Flow rows are kept the
same way (FlowStore), each call's last write only (keptwrites.py).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from arimonitor import protocol
from arimonitor.keptwrites import KeptWrites

MIGRATION = "clicktocall-1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS c2c_outcomes (
    request_id TEXT PRIMARY KEY,
    client TEXT,
    origin TEXT,
    destination TEXT,
    state TEXT NOT NULL,
    result TEXT,
    reason TEXT,
    text TEXT,
    cause INTEGER,
    cause_txt TEXT,
    duration REAL,
    recording TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    events TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS c2c_outcomes_updated ON c2c_outcomes (updated);
"""

# The flow's calls in progress (flow.FlowCall as JSON), so an engine restart can finish them.
FLOWS_MIGRATION = "clicktocall-2-flows"
FLOWS_SCHEMA = """
CREATE TABLE IF NOT EXISTS c2c_flows (
    request_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
"""

_FIELDS = ("client", "origin", "destination", "result", "reason", "text", "cause", "cause_txt",
           "duration", "recording", "server")
MAX_EVENTS = 20

log = logging.getLogger(__name__)


class OutcomeStore:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.kept: KeptWrites[dict[str, Any]] = KeptWrites("c2c outcomes", self._write,
                                                            logger=log)
        # `server` (the Asterisk of the call, issue 14): added to a table made before it
        columns = {row[1] for row in connection.execute("PRAGMA table_info(c2c_outcomes)")}
        if "server" not in columns:
            connection.execute("ALTER TABLE c2c_outcomes ADD COLUMN server TEXT")

    def record(self, body: dict[str, Any]) -> None:
        """Store one outcome body; kept in memory (never raised) if SQLite refuses it."""
        self.kept.put(body)

    def flush(self) -> int:
        """Write the kept outcomes, oldest first; how many went."""
        return self.kept.flush()

    def view(self) -> dict[str, Any]:
        """For `status`: {"error", "kept", "dropped"}."""
        return self.kept.view()

    def _write(self, body: dict[str, Any]) -> None:
        """Upsert the request's row with one outcome body (event name, time, fields)."""
        rid, event, t = body["request_id"], body["event"], body.get("t") or 0.0
        row = self.connection.execute("SELECT events FROM c2c_outcomes WHERE request_id = ?",
                                      (rid,)).fetchone()
        events = json.loads(row[0]) if row else []
        events = (events + [[event, t]])[-MAX_EVENTS:]
        values = {k: body.get(k) for k in _FIELDS}
        if row is None:
            self.connection.execute(
                f"INSERT INTO c2c_outcomes (request_id, state, created, updated, events, "
                f"{', '.join(_FIELDS)}) VALUES (?, ?, ?, ?, ?, {', '.join('?' * len(_FIELDS))})",
                (rid, event, t, t, json.dumps(events), *values.values()))
            return
        # COALESCE: a later event without a field (progress) never erases what an earlier said.
        sets = ", ".join(f"{k} = COALESCE(?, {k})" for k in _FIELDS)
        self.connection.execute(
            f"UPDATE c2c_outcomes SET state = ?, updated = ?, events = ?, {sets} "
            "WHERE request_id = ?", (event, t, json.dumps(events), *values.values(), rid))

    def get(self, request_id: str, conn: sqlite3.Connection | None = None) -> dict[str, Any] | None:
        cur = (conn or self.connection).execute("SELECT * FROM c2c_outcomes WHERE request_id = ?",
                                                (request_id,))
        row = cur.fetchone()
        return _row(cur, row) if row else None

    def finals(self, request_ids: list[str],
               conn: sqlite3.Connection | None = None) -> list[dict[str, Any]]:
        """The final outcome bodies stored for these requests (those that ended), for the
        consumer's catch-up: what it may have missed on the PUB while it or we restarted."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(request_ids), 200):
            chunk = request_ids[start:start + 200]
            cur = (conn or self.connection).execute(
                "SELECT request_id, updated, " + ", ".join(_FIELDS) + " FROM c2c_outcomes "
                f"WHERE state = 'final' AND request_id IN ({', '.join('?' * len(chunk))})", chunk)
            for row in cur.fetchall():
                fields = dict(zip(_FIELDS, row[2:]))
                out.append({"type": protocol.C2C_OUTCOME_TYPE, "version": 1, "request_id": row[0],
                            "event": "final", "final": True, "t": row[1], **fields,
                            "billsec": fields["duration"]})
        wanted, found = set(request_ids), {body["request_id"] for body in out}
        out += [body for body in self.kept if body.get("event") == "final"
                and body["request_id"] in wanted and body["request_id"] not in found]
        return out

    def recent(self, limit: int = 20, conn: sqlite3.Connection | None = None) -> list[dict[str, Any]]:
        cur = (conn or self.connection).execute(
            "SELECT * FROM c2c_outcomes ORDER BY updated DESC LIMIT ?", (limit,))
        return [_row(cur, r) for r in cur.fetchall()]


class FlowStore:
    """c2c_flows: one row per call in progress, written at each step, deleted at its final.

    A write SQLite refuses (a full disk) is kept in memory, the call's last one only (10,000
    calls, the oldest dropped and counted beyond that), written again by the next one and by
    `flush()` every second, and shown by `status` ("N c2c flow rows kept in memory")."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.kept: KeptWrites[tuple[str, str | None, float]] = KeptWrites(
            "c2c flow rows", self._write, logger=log)

    def save(self, request_id: str, state: dict[str, Any], t: float) -> None:
        self.kept.put((request_id, json.dumps(state), t), key=request_id)

    def delete(self, request_id: str) -> None:
        self.kept.put((request_id, None, 0.0), key=request_id)

    def flush(self) -> int:
        return self.kept.flush()

    def view(self) -> dict[str, Any]:
        return self.kept.view()

    def _write(self, row: tuple[str, str | None, float]) -> None:
        request_id, state, t = row
        if state is None:
            self.connection.execute("DELETE FROM c2c_flows WHERE request_id = ?", (request_id,))
            return
        self.connection.execute(
            "INSERT INTO c2c_flows (request_id, state, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (request_id) DO UPDATE SET state = excluded.state, "
            "updated = excluded.updated", (request_id, state, t))

    def load(self) -> list[dict[str, Any]]:
        out = []
        for (text,) in self.connection.execute("SELECT state FROM c2c_flows ORDER BY updated"):
            try:
                out.append(json.loads(text))
            except ValueError:
                continue
        return out


def _row(cur: sqlite3.Cursor, row: Any) -> dict[str, Any]:
    names = [d[0] for d in cur.description]
    out = dict(zip(names, tuple(row)))
    out["events"] = json.loads(out["events"])
    return out
