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
    assert fx.store_view() == {"error": "", "unsaved": 0, "dropped": 0}
    assert _store_line(fx.store_view()) == "store:      ok"
    assert health.store_problem(fx.store_view()) is None
    saved = {row["id"] for row in store.history(limit=1000)}
    assert set(ended) <= saved
    store.close()
