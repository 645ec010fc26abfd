"""The WAL of every SQLite file stays bounded, even while a reader holds old snapshots."""

from __future__ import annotations

import json
import os

from arimonitor import walbound
from arimonitor.clicktocall import ledger as L
from arimonitor.clicktocall.request import parse_request
from arimonitor.engine.store import Store

BLOB = "x" * 4000


def test_engine_store_wal_is_cut_back_after_a_burst(tmp_path, monkeypatch):
    monkeypatch.setattr(walbound, "WAL_LIMIT", 256 * 1024)
    path = tmp_path / "engine.sqlite"
    store = Store(path)
    store.connection.execute(f"PRAGMA journal_size_limit={walbound.WAL_LIMIT}")
    store.connection.execute("CREATE TABLE t (v TEXT)")
    reader = store.reader()
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM t").fetchone()  # a snapshot pins the WAL
        for _ in range(800):
            store.connection.execute("INSERT INTO t VALUES (?)", (BLOB,))
        assert walbound.wal_size(str(path)) > 2 * 1024 * 1024
        store.checkpoint()  # the reader still pins it: nothing can be cut yet
        assert walbound.wal_size(str(path)) > walbound.WAL_LIMIT
        reader.execute("COMMIT")
        store.checkpoint()
        assert walbound.wal_size(str(path)) <= walbound.WAL_LIMIT
        # and it stays bounded through more bursts
        for _ in range(3):
            for _ in range(300):
                store.connection.execute("INSERT INTO t VALUES (?)", (BLOB,))
            store.checkpoint()
            assert walbound.wal_size(str(path)) <= walbound.WAL_LIMIT
    finally:
        reader.close()
        store.close()


def test_the_writer_bounds_its_own_wal_under_a_burst_no_checkpointer_catches(tmp_path, monkeypatch):
    """No periodic checkpoint at all (under a burst it never catches the writer): the loop's
    look every 0.1 s (Store.bound_wal) alone keeps the WAL near its bound."""
    monkeypatch.setattr(walbound, "WAL_LIMIT", 256 * 1024)
    path = tmp_path / "engine.sqlite"
    store = Store(path)
    store.connection.execute(f"PRAGMA journal_size_limit={walbound.WAL_LIMIT}")
    store.connection.execute("CREATE TABLE t (v TEXT)")
    try:
        most = ran = 0
        for i in range(2000):  # ~8 MB of rows: 32 times the bound
            store.connection.execute("INSERT INTO t VALUES (?)", (BLOB,))
            if i % 20 == 19:  # a look every 20 commits
                ran += store.bound_wal()
            most = max(most, walbound.wal_size(str(path)))
        # left alone it would be ~12 MB; bounded: the limit plus one look's worth of commits
        assert ran >= 20 and most <= 2.5 * walbound.WAL_LIMIT, most
    finally:
        store.close()


def test_ledger_wal_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(walbound, "WAL_LIMIT", 128 * 1024)
    ledger = L.Ledger(tmp_path / "ledger.sqlite")
    try:
        for i in range(1500):
            body = {"request_id": f"r{i}", "client": "101", "origin": "1013010",
                    "destination": "1123000", "variables": {"V": "y" * 500}}
            ledger.reserve(parse_request(json.dumps(body).encode(), "q", f"c{i}"), None)
        assert os.path.getsize(tmp_path / "ledger.sqlite-wal") > walbound.WAL_LIMIT
        ledger.checkpoint()
        assert os.path.getsize(tmp_path / "ledger.sqlite-wal") <= walbound.WAL_LIMIT
    finally:
        ledger.close()
