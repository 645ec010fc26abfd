"""SQLite (stdlib, WAL): what only arimonitor knows, written before it is reported anywhere.

Tables: call history, active calls as last announced (restored after a restart), the
remote-IP registry (v2.7 REMOTEIPS), counters that must survive a restart, outages, the
engine's last-alive mark (`meta`), the settings `set` saved (`runtime_settings`), and `migrations`, through which other components add their own tables:

    store.migrate("transcode-1", "CREATE TABLE IF NOT EXISTS transcode_jobs (...)")
    store.connection.execute(...)          # loop thread only

WAL with synchronous=NORMAL: a commit survives the engine being killed (-9) because it sits in
the OS page cache; only a power cut can lose the last commits. The connection belongs to the
engine's loop thread; a worker thread that must read opens its own with `reader()`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from arimonitor import walbound

_CORE = [
    ("core-1", """
CREATE TABLE IF NOT EXISTS calls (
    server TEXT NOT NULL, id TEXT NOT NULL, client TEXT, origin TEXT, destination TEXT,
    direction TEXT, created REAL, answered REAL, ended REAL, hangup_cause INTEGER,
    cause_txt TEXT, end_reason TEXT, dial_status TEXT, duration REAL, billsec REAL,
    recording TEXT, recording_state TEXT, channels TEXT, adopted INTEGER,
    PRIMARY KEY (server, id));
CREATE INDEX IF NOT EXISTS calls_ended ON calls (ended);
CREATE INDEX IF NOT EXISTS calls_client ON calls (client, ended);
CREATE TABLE IF NOT EXISTS remote_ips (
    ip TEXT PRIMARY KEY, first_seen REAL, last_seen REAL, endpoints TEXT,
    whitelist INTEGER NOT NULL DEFAULT 0, source TEXT);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER, updated REAL);
CREATE TABLE IF NOT EXISTS outages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, server TEXT, disconnected REAL, resynced REAL,
    unseen REAL, reason TEXT, changes TEXT);
"""),
    # Active calls as last announced (ringing / up): a restarted engine that adopts their
    # channels again restores the true created/answered times instead of the adoption time.
    ("core-2", """
CREATE TABLE IF NOT EXISTS active_calls (
    server TEXT NOT NULL, id TEXT NOT NULL, created REAL, answered REAL, client TEXT,
    origin TEXT, destination TEXT, direction TEXT, dial_status TEXT, channels TEXT,
    updated REAL, PRIMARY KEY (server, id));
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value REAL);
"""),
    # The channel that answered, when the destination shown is the number dialled (a call the
    # dialplan sent on through Local/ringanswer@lab is "to 5551234", as in Asterisk's CDR).
    ("core-3", "ALTER TABLE calls ADD COLUMN answered_by TEXT;"),
    # Raw values `set` saved (name as before, when the console owned this table).
    ("console-settings-1", """
CREATE TABLE IF NOT EXISTS runtime_settings (
    name TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
"""),
    # `base`: the file's (environment's, default's) raw value when the set was made. If the
    # file says something else at a later start, the operator edited it after the set: it wins.
    ("console-settings-2", "ALTER TABLE runtime_settings ADD COLUMN base TEXT"),
]

_ACTIVE_COLUMNS = ("server", "id", "created", "answered", "client", "origin", "destination",
                   "direction", "dial_status", "channels", "updated")

_CALL_COLUMNS = ("server", "id", "client", "origin", "destination", "direction", "created",
                 "answered", "ended", "hangup_cause", "cause_txt", "end_reason", "dial_status",
                 "duration", "billsec", "recording", "recording_state", "channels", "adopted",
                 "answered_by")

_INSERT_CALL = (f"INSERT OR REPLACE INTO calls ({','.join(_CALL_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(_CALL_COLUMNS))})")


def _call_row(view: dict[str, Any]) -> list[Any]:
    row = {**view, "channels": json.dumps(view.get("channels", [])),
           "adopted": int(bool(view.get("adopted")))}
    return [row.get(c) for c in _CALL_COLUMNS]


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        self.connection.row_factory = sqlite3.Row
        walbound.configure(self.connection)  # WAL, NORMAL, the WAL file's size bound
        self.connection.execute("PRAGMA busy_timeout=5000")
        # No checkpoint inside a commit on the loop thread (it syncs: milliseconds of stall);
        # `checkpoint()` runs from a timer on a connection of its own, off the loop.
        self.connection.execute("PRAGMA wal_autocheckpoint=0")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL)")
        for name, sql in _CORE:
            self.migrate(name, sql)

    def migrate(self, name: str, sql: str) -> bool:
        """Run `sql` (a script) once, ever, under `name`; True if it ran now."""
        done = self.connection.execute("SELECT 1 FROM migrations WHERE name=?", (name,)).fetchone()
        if done:
            return False
        with self.transaction():
            for statement in _statements(sql):
                self.connection.execute(statement)
            self.connection.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
        return True

    def transaction(self) -> _Transaction:
        return _Transaction(self.connection)

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL into the database (PASSIVE: never waits for, nor blocks, the writer),
        and cut a WAL grown past its bound back (walbound.py).

        Opens its own connection, so it may run in any thread."""
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            return walbound.checkpoint(conn, self.path)
        finally:
            conn.close()

    def bound_wal(self) -> bool:
        """On the writer's own connection (the loop thread): a WAL past WAL_LIMIT is copied
        into the database now, so the next commit starts it again from the top and cuts the
        file back (journal_size_limit). True if it ran; raises sqlite3.Error (a full disk).

        Why on the writer: the periodic checkpoint runs on a connection of its own, and under
        a burst of commits it never catches up with the writer. Once a full disk had room
        again, the click-to-call requests held back meanwhile were placed at once and the WAL
        grew 16 MB/s, filled the room back in a second, and no checkpoint could then grow the
        database: the disk stayed full for good. Costs a checkpoint's copy on the loop thread,
        only past the bound."""
        if walbound.wal_size(self.path) <= walbound.WAL_LIMIT:
            return False
        self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return True

    def reader(self) -> sqlite3.Connection:
        """A separate connection for a worker thread (read-only use)."""
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    # ---- calls ------------------------------------------------------------------------------

    def save_call(self, view: dict[str, Any]) -> None:
        self.connection.execute(_INSERT_CALL, _call_row(view))

    def save_calls(self, views: list[dict[str, Any]], active: Iterable[tuple] = (),
                   gone: Iterable[tuple[str, str]] = ()) -> None:
        """One transaction for a loop turn: ended calls' history rows, and the active-call
        rows changed meanwhile (as save_active). All or nothing."""
        with self.transaction():
            self.connection.executemany(_INSERT_CALL, map(_call_row, views))
            self._write_active(active, gone)

    def history(self, client: str | None = None, since: float | None = None,
                limit: int = 50, conn: sqlite3.Connection | None = None,
                server: str | None = None) -> list[dict[str, Any]]:
        """Ended calls, newest first."""
        where, params = _history_filter(client, since, server)
        sql = "SELECT * FROM calls" + where + " ORDER BY ended DESC LIMIT ?"
        params.append(limit)
        rows = (conn or self.connection).execute(sql, params).fetchall()
        out = []
        for row in rows:
            item = dict(row)
            item["channels"] = json.loads(item["channels"] or "[]")
            item["adopted"] = bool(item["adopted"])
            item["state"] = "ended"
            out.append(item)
        return out

    def count_calls(self, client: str | None = None, since: float | None = None,
                    server: str | None = None) -> int:
        """Ended calls in the history (for that filter): `history` says "20 of 59"."""
        where, params = _history_filter(client, since, server)
        return self.connection.execute("SELECT COUNT(*) FROM calls" + where, params).fetchone()[0]

    # ---- active calls (restored after a restart) -------------------------------------------

    def save_active(self, rows: Iterable[tuple], gone: Iterable[tuple[str, str]]) -> None:
        """One transaction: upsert `rows` (values in _ACTIVE_COLUMNS order), delete `gone`
        ((server, id) pairs)."""
        with self.transaction():
            self._write_active(rows, gone)

    def _write_active(self, rows: Iterable[tuple], gone: Iterable[tuple[str, str]]) -> None:
        self.connection.executemany(
            f"INSERT OR REPLACE INTO active_calls ({','.join(_ACTIVE_COLUMNS)}) "
            f"VALUES ({','.join('?' * len(_ACTIVE_COLUMNS))})", rows)
        self.connection.executemany("DELETE FROM active_calls WHERE server=? AND id=?", gone)

    def load_active(self, server: str) -> list[dict[str, Any]]:
        rows = self.connection.execute("SELECT * FROM active_calls WHERE server=?", (server,))
        return [{**dict(r), "channels": json.loads(r["channels"] or "[]")} for r in rows]

    def prune_active(self, server: str, keep: Iterable[str], ended: float, reason: str) -> int:
        """Calls a previous run announced as active and Asterisk no longer has (they ended while
        the engine was down): moved to the history as ended at `ended` (the last moment the
        engine was seen alive) for `reason`, never dropped. Returns how many."""
        keep = set(keep)
        rows = [dict(r) for r in self.connection.execute(
            "SELECT * FROM active_calls WHERE server=?", (server,)) if r["id"] not in keep]
        if not rows:
            return 0
        history = []
        for row in rows:
            created, answered = row["created"], row["answered"]
            end = max(ended, created or ended)
            history.append({
                **{c: row.get(c) for c in _CALL_COLUMNS}, "ended": end, "end_reason": reason,
                "duration": end - created if created else None,
                "billsec": end - answered if answered else 0.0})
        with self.transaction():
            # a call the previous run did finish (crash between two writes) keeps its own row
            self.connection.executemany(
                f"INSERT OR IGNORE INTO calls ({','.join(_CALL_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(_CALL_COLUMNS))})", [[h.get(c) for c in _CALL_COLUMNS] for h in history])
            self.connection.executemany("DELETE FROM active_calls WHERE server=? AND id=?",
                                        [(server, r["id"]) for r in rows])
        return len(rows)

    # ---- liveness mark (the unseen window of an engine restart) --------------------------

    def mark_alive(self, t: float) -> None:
        self.connection.execute("INSERT OR REPLACE INTO meta VALUES ('engine_alive', ?)", (t,))

    def last_alive(self) -> float | None:
        row = self.connection.execute("SELECT value FROM meta WHERE name='engine_alive'").fetchone()
        return row[0] if row else None

    # ---- remote IPs -------------------------------------------------------------------------

    def save_remote_ip(self, view: dict[str, Any]) -> None:
        self.connection.execute(
            "INSERT INTO remote_ips (ip, first_seen, last_seen, endpoints, whitelist, source) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(ip) DO UPDATE SET last_seen=excluded.last_seen, "
            "endpoints=excluded.endpoints, whitelist=excluded.whitelist",
            (view["ip"], view["first_seen"], view["last_seen"], json.dumps(view["endpoints"]),
             int(view["whitelist"]), view["source"]))

    def touch_remote_ips(self, seen: Iterable[tuple[str, float]]) -> None:
        """Batch of (ip, last_seen): refreshed every second, not on every contact event."""
        with self.transaction():
            self.connection.executemany("UPDATE remote_ips SET last_seen=max(last_seen, ?) "
                                        "WHERE ip=?", [(t, ip) for ip, t in seen])

    def load_remote_ips(self) -> list[dict[str, Any]]:
        rows = self.connection.execute("SELECT * FROM remote_ips ORDER BY ip").fetchall()
        return [{**dict(r), "endpoints": json.loads(r["endpoints"] or "[]"),
                 "whitelist": bool(r["whitelist"])} for r in rows]

    # ---- counters and outages ---------------------------------------------------------------

    def save_counters(self, values: dict[str, int]) -> None:
        now = time.time()
        with self.transaction():
            self.connection.executemany(
                "INSERT OR REPLACE INTO counters VALUES (?,?,?)",
                [(name, value, now) for name, value in values.items()])

    def load_counters(self) -> dict[str, int]:
        return {r["name"]: r["value"] for r in self.connection.execute("SELECT * FROM counters")}

    def add_outage(self, server: str, disconnected: float | None, resynced: float,
                   reason: str, changes: dict[str, Any]) -> None:
        unseen = resynced - disconnected if disconnected else None
        self.connection.execute(
            "INSERT INTO outages (server, disconnected, resynced, unseen, reason, changes) "
            "VALUES (?,?,?,?,?,?)", (server, disconnected, resynced, unseen, reason,
                                     json.dumps(changes)))

    def outages(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.connection.execute("SELECT * FROM outages ORDER BY id DESC LIMIT ?", (limit,))
        return [{**dict(r), "changes": json.loads(r["changes"] or "{}")} for r in rows]

    # ---- settings saved by `set` --------------------------------------------------------------

    def save_setting(self, name: str, raw: str, base: str | None = None) -> None:
        self.connection.execute("INSERT OR REPLACE INTO runtime_settings (name, value, updated, base) "
                                "VALUES (?, ?, ?, ?)", (name, raw, time.time(), base))

    def forget_setting(self, name: str) -> bool:
        """`unset`: True if a saved value was there."""
        return self.connection.execute("DELETE FROM runtime_settings WHERE name=?", (name,)).rowcount > 0

    def saved_setting_names(self) -> set[str]:
        return {r[0] for r in self.connection.execute("SELECT name FROM runtime_settings")}

    def close(self) -> None:
        self.connection.close()


def saved_settings(database: str | Path) -> dict[str, tuple[str, str | None]]:
    """name -> (raw value saved by `set`, the file's value then), read before the engine opens
    its Store ({} if none)."""
    if str(database) == ":memory:" or not Path(database).exists():
        return {}
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        try:
            rows = conn.execute("SELECT name, value, base FROM runtime_settings").fetchall()
        except sqlite3.OperationalError:  # saved before `base` existed
            rows = [(n, v, None) for n, v in conn.execute("SELECT name, value FROM runtime_settings")]
    except sqlite3.OperationalError:  # the table does not exist yet: nothing was ever set
        return {}
    finally:
        conn.close()
    return {name: (value, base) for name, value, base in rows}


def _history_filter(client: str | None, since: float | None,
                    server: str | None = None) -> tuple[str, list[Any]]:
    where, params = [], []
    if server:
        where.append("server = ?")
        params.append(server)
    if client:
        where.append("client = ?")
        params.append(client)
    if since is not None:
        where.append("ended >= ?")
        params.append(since)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


class _Transaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN")
        return self.connection

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.connection.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.connection.in_transaction:  # SQLite may have rolled back itself (disk full)
            self.connection.execute("ROLLBACK")


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
