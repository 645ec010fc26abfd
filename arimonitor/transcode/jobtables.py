"""The transcode job book's tables and job states: the one home jobs.py, jobviews.py, the
component (its migration) and the tests import them from.

A job goes pending -> sent -> done | failed (jobs.py says when). `recording_log` records the
recordings as Asterisk reported them.
"""

from __future__ import annotations

import sqlite3

PENDING, SENT, DONE, FAILED = "pending", "sent", "done", "failed"
STATES = (PENDING, SENT, DONE, FAILED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS transcode_jobs (
    job_id TEXT PRIMARY KEY, wav TEXT NOT NULL UNIQUE, mp3 TEXT NOT NULL, mp3_root TEXT,
    client TEXT, call_id TEXT, tags TEXT, source TEXT, bitrate INTEGER, sample_rate INTEGER,
    delete_wav INTEGER, state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, next_try REAL, sent_at REAL, deadline REAL,
    worker TEXT, code TEXT, reason TEXT, created REAL, finished REAL, duration REAL,
    wav_duration REAL, seconds REAL, encoder TEXT, notes TEXT, est_seconds REAL);
CREATE INDEX IF NOT EXISTS transcode_jobs_state ON transcode_jobs (state, next_try);
CREATE INDEX IF NOT EXISTS transcode_jobs_client ON transcode_jobs (client, created);
CREATE TABLE IF NOT EXISTS recording_log (
    name TEXT PRIMARY KEY, client TEXT, call_id TEXT, target TEXT, state TEXT, reason TEXT,
    started REAL, updated REAL, job_id TEXT)
"""
MIGRATION = "transcode-1"

# Many Asterisk servers: each job and recording says whose it is (rows from before: NULL, the
# first server's). `fetch`: the stored recording's name when the WAV is fetched over that
# server's ARI (another host) and deleted there once the MP3 is verified; '' for a local WAV.
SERVER_SCHEMA = """
ALTER TABLE transcode_jobs ADD COLUMN server TEXT;
ALTER TABLE transcode_jobs ADD COLUMN fetch TEXT NOT NULL DEFAULT '';
ALTER TABLE recording_log ADD COLUMN server TEXT
"""
SERVER_MIGRATION = "transcode-2-server"

MIGRATIONS = ((MIGRATION, SCHEMA), (SERVER_MIGRATION, SERVER_SCHEMA))


def create_tables(conn: sqlite3.Connection) -> None:
    """For tests and tools without the engine's Store (which runs MIGRATIONS in order)."""
    for _name, script in MIGRATIONS:
        for statement in script.split(";"):
            if statement.strip():
                try:
                    conn.execute(statement)
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):  # tables made by an earlier call
                        raise
