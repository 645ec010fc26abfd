"""Keep every SQLite WAL file bounded (engine store, click-to-call ledger).

A WAL file never shrinks by itself: it keeps its high-water mark, and under steady writes with
readers about, PASSIVE checkpoints alone let it sit at hundreds of MB beside a database of a
few MB. Two bounds:
- `journal_size_limit` on the writing connection: each time the WAL restarts from the top
  (after a complete checkpoint), the file is cut back to WAL_LIMIT;
- `checkpoint()`: PASSIVE (never waits), and when that copied everything but the file is
  still over WAL_LIMIT, a TRUNCATE with a short busy timeout (it may hold a writer back for at
  most that long; if it cannot run now, the next timer tries again).
"""

from __future__ import annotations

import os
import sqlite3

WAL_LIMIT = 8 * 1024 * 1024   # bytes a WAL file is cut back to
TRUNCATE_WAIT_MS = 100        # longest a TRUNCATE checkpoint waits for readers and the writer


def configure(conn: sqlite3.Connection) -> None:
    """WAL, synchronous NORMAL (a commit survives a process crash), WAL size bound."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")


def wal_size(path: str) -> int:
    try:
        return os.path.getsize(f"{path}-wal")
    except OSError:
        return 0


def checkpoint(conn: sqlite3.Connection, path: str) -> tuple[int, int, int]:
    """(busy, WAL frames, frames checkpointed) of the last checkpoint run on `conn`."""
    result = tuple(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
    busy, frames, done = result
    if not busy and frames == done and wal_size(path) > WAL_LIMIT:
        conn.execute(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")
        result = tuple(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    return result
