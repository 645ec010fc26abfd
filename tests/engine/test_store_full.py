"""SQLite not writable (a full disk): ended calls are kept in memory, shown, and written later."""

from __future__ import annotations

import sqlite3

from arimonitor import health
from arimonitor.commands.engine_state import _store_line
from arimonitor.engine.handlers import Handlers
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.outputs import EngineEffects
from arimonitor.engine.state import State
from arimonitor.engine.store import Store
from tests.engine.replay import replay


def test_history_rows_wait_in_memory_until_sqlite_takes_them(tmp_path):
    store = Store(tmp_path / "engine.sqlite")
    state = State("asterisk1")
    notifier = Notifier(None)
    ended = []
    notifier.subscribe("call.ended", lambda _t, body: ended.append(body["id"]))
    fx = EngineEffects(store, notifier, state.counters, lambda _cid: None)
    handlers = Handlers(state, fx)
    (pages,) = store.connection.execute("PRAGMA page_count").fetchone()
    # SQLite's own "database or disk is full", as on a full disk: fill the calls table up to
    # a page limit, so the next new row finds no room.
    store.connection.execute(f"PRAGMA max_page_count={pages + 8}")
    n = 0
    try:
        while True:
            store.save_call({"server": "x", "id": f"fill-{n}", "created": 0.0, "channels": [],
                             "client": "c" * 200})
            n += 1
    except sqlite3.OperationalError as exc:
        assert "full" in str(exc)
    replay(handlers, "failures.jsonl")
    assert ended, "the trace ended no call"
    view = fx.store_view()
    assert view["error"] and "full" in view["error"] and view["unsaved"] > 0
    assert _store_line(view).startswith("store:      NOT WRITABLE")
    assert health.store_problem(view).startswith("store: NOT WRITABLE (")  # status exits 1
    fx.flush_ips()  # an idle second proves nothing: still not writable
    assert fx.store_view()["error"]
    assert state.counters.handler_error == 0
    fx.save_unsaved()
    assert fx.store_view()["unsaved"] == view["unsaved"], "still full: nothing written"
    store.connection.execute("PRAGMA max_page_count=1073741823")  # space again
    fx.flush_ips()  # the engine's every-second timer
    assert fx.store_view() == {"error": "", "unsaved": 0, "dropped": 0,
                               "kept": {"active call rows": 0, "remote IPs": 0,
                                        "ended-while-down filings": 0}}
    assert _store_line(fx.store_view()) == "store:      ok"
    assert health.store_problem(fx.store_view()) is None
    saved = {row["id"] for row in store.history(limit=1000)}
    assert set(ended) <= saved
    store.close()


class _FullDisk:
    """The engine's Store with every write refused while `full` (as SQLite refuses a write on
    a full disk: "database or disk is full"); reads go through."""

    _WRITES = ("save_call", "save_calls", "save_active", "save_remote_ip", "touch_remote_ips",
               "prune_active")

    def __init__(self, store: Store) -> None:
        self.store, self.full = store, True

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if name in self._WRITES and self.full:
            def refused(*_args, **_kwargs):
                raise sqlite3.OperationalError("database or disk is full")
            return refused
        return attr


def _engine_on_a_full_disk():
    from arimonitor.engine.state import Call, RemoteIp

    store = Store(":memory:")
    disk = _FullDisk(store)
    state = State("asterisk1")
    fx = EngineEffects(disk, Notifier(None), state.counters, lambda _cid: None, server="asterisk1")
    return store, disk, fx, Call, RemoteIp


def test_active_call_rows_and_their_deletions_wait_in_memory_until_sqlite_takes_them():
    store, disk, fx, Call, _RemoteIp = _engine_on_a_full_disk()
    disk.full = False
    done = Call("done", "asterisk1", 1.0)
    done.channels = {"done"}
    fx.call_started(done)  # saved while there was room
    disk.full = True
    talking = Call("talking", "asterisk1", 2.0)
    talking.channels = {"talking"}
    fx.call_started(talking)
    talking.answered = 3.0
    fx.call_answered(talking)
    fx.call_ended(done)  # its active row must go, its history row come
    view = fx.store_view()
    assert view["error"] and view["kept"]["active call rows"] == 2 and view["unsaved"] == 1
    assert health.store_problem(view).endswith(
        "1 ended call(s), 2 active call rows kept in memory")
    assert "2 active call rows kept in memory" in _store_line(view)
    fx.flush_ips()
    assert fx.store_view()["kept"]["active call rows"] == 2, "still full: nothing written"
    assert [r["id"] for r in store.load_active("asterisk1")] == ["done"]
    disk.full = False
    fx.flush_ips()  # the engine's every-second timer
    assert fx.store_view() == {"error": "", "unsaved": 0, "dropped": 0,
                               "kept": {"active call rows": 0, "remote IPs": 0,
                                        "ended-while-down filings": 0}}
    (row,) = store.load_active("asterisk1")
    assert (row["id"], row["answered"]) == ("talking", 3.0)
    assert [r["id"] for r in store.history()] == ["done"]


def test_history_rows_beyond_the_bound_drop_the_oldest_and_count_it():
    """Bounded as documented: the oldest kept row goes (before: counted, yet all kept)."""
    store, disk, fx, Call, _RemoteIp = _engine_on_a_full_disk()
    fx.unsaved.limit = 3  # MAX_UNSAVED (10,000) in small
    for n in range(5):
        fx.call_ended(Call(f"c{n}", "asterisk1", float(n)))
    view = fx.store_view()
    assert (view["unsaved"], view["dropped"]) == (3, 2)
    disk.full = False
    fx.flush_ips()
    assert sorted(r["id"] for r in store.history()) == ["c2", "c3", "c4"]


def test_remote_ips_and_their_last_seen_times_wait_in_memory_until_sqlite_takes_them():
    store, disk, fx, _Call, RemoteIp = _engine_on_a_full_disk()
    disk.full = False
    known = RemoteIp("10.0.0.1", 1.0, 1.0, {"1013010"}, source="event")
    fx.remote_ip(known, new_link=True)
    disk.full = True
    new = RemoteIp("10.0.0.2", 5.0, 5.0, {"1013020"}, source="event")
    fx.remote_ip(new, new_link=True)  # no exception into the handler: kept
    known.last_seen = 7.0
    fx.remote_ip(known, new_link=False)
    fx.flush_ips()
    view = fx.store_view()
    assert view["error"] and view["kept"]["remote IPs"] == 2
    assert health.store_problem(view).endswith("0 ended call(s), 2 remote IPs kept in memory")
    fx.flush_ips()  # still full: nothing lost
    assert fx.store_view()["kept"]["remote IPs"] == 2
    disk.full = False
    fx.flush_ips()
    assert fx.store_view()["error"] == "" and fx.store_view()["kept"]["remote IPs"] == 0
    rows = {r["ip"]: r for r in store.load_remote_ips()}
    assert rows["10.0.0.2"]["endpoints"] == ["1013020"] and rows["10.0.0.1"]["last_seen"] == 7.0


def test_calls_gone_while_the_engine_was_down_are_filed_once_sqlite_takes_writes_again():
    """A resync on a full disk: the saved rows of calls Asterisk no longer has go to the
    history later, ended when the engine was last alive; calls saved since stay active."""
    store, disk, fx, Call, _RemoteIp = _engine_on_a_full_disk()
    disk.full = False
    gone = Call("gone", "asterisk1", 1.0)
    gone.channels = {"gone"}
    fx.call_started(gone)  # the previous run's row
    disk.full = True
    assert fx.prune_active(set(), 50.0, "ended while arimonitor was down") == 0  # no raise
    view = fx.store_view()
    assert view["error"] and view["kept"]["ended-while-down filings"] == 1
    new = Call("new", "asterisk1", 60.0)
    new.channels = {"new"}
    fx.call_started(new)  # after the resync, while still full
    fx.flush_ips()
    assert store.history() == []
    disk.full = False
    fx.flush_ips()
    assert fx.store_view()["error"] == ""
    (row,) = store.history()
    assert (row["id"], row["ended"], row["end_reason"]) == ("gone", 50.0,
                                                            "ended while arimonitor was down")
    assert [r["id"] for r in store.load_active("asterisk1")] == ["new"]


def test_an_outage_closed_on_a_full_disk_is_written_by_a_later_heartbeat(caplog):
    from arimonitor.engine.loop import Loop
    from arimonitor.engine.resyncer import Resyncer
    from tests.engine.replay import new_engine_state

    store = Store(":memory:")
    disk = _FullDisk(store)
    _state, _fx, handlers = new_engine_state()
    loop = Loop()
    try:
        resyncer = Resyncer(handlers=handlers, store=disk, notifier=Notifier(None), loop=loop,
                            app="arimonitor", snapshot=lambda: None, auth=None)
        disk._WRITES += ("add_outage", "mark_alive")
        resyncer.outage_started = 100.0
        resyncer._close_outage({"at": 130.0}, "reader connected")  # no raise
        for _ in range(3):
            resyncer.heartbeat()  # no raise: one warning, then counted
        assert store.outages() == []
        refused = [r for r in caplog.records if "SQLite writes" in r.getMessage()]
        assert len(refused) == 1, [r.getMessage() for r in refused]
        disk.full = False
        resyncer.heartbeat()
        (outage,) = store.outages()
        assert (outage["disconnected"], outage["resynced"], outage["unseen"]) == (100.0, 130.0, 30.0)
        assert store.last_alive() is not None
    finally:
        loop.close()
