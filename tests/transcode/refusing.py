"""A stand-in for SQLite on a full disk, for the transcoder's unit tests."""

from __future__ import annotations

import sqlite3


class RefusingDisk:
    """The job book's connection, refusing every write while `full`, as SQLite does on a full
    disk (reads still work)."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.full = conn, False

    def _check(self, sql: str) -> None:
        if self.full and sql.lstrip().upper().startswith(self.WRITES):
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql, *args):
        self._check(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql, *args):
        self._check(sql)
        return self.conn.executemany(sql, *args)

    def __getattr__(self, name):
        return getattr(self.conn, name)
