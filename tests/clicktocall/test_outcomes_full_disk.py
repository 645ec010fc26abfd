"""Click-to-call outcomes and flow rows on a full disk: kept in memory, in order, shown, written later."""

from __future__ import annotations

from arimonitor import health
from arimonitor.clicktocall import outcomes
from arimonitor.clicktocall.history import (
    FLOWS_MIGRATION,
    FLOWS_SCHEMA,
    MIGRATION,
    SCHEMA,
    FlowStore,
    OutcomeStore,
)
from arimonitor.engine.store import Store


def _status(view, name):
    """What `status` says of the store when only the component's view `name` keeps writes."""
    return health.store_problem(health.with_kept({"error": "", "unsaved": 0, "dropped": 0},
                                                 lambda asked: view if asked == name else None))


def test_outcomes_sqlite_refuses_are_kept_in_order_found_by_the_catch_up_and_written_later(tmp_path):
    engine_store = Store(tmp_path / "engine.sqlite")
    engine_store.migrate(MIGRATION, SCHEMA)
    conn = engine_store.connection
    store = OutcomeStore(conn)
    rid = "req-1"
    conn.execute("PRAGMA query_only=1")  # SQLite refuses every write, as on a full disk
    store.record({**outcomes.outcome(rid, "101", "progress", origin="1013010"), "t": 1.0})
    store.record({**outcomes.outcome(rid, "101", "final", result="completed", duration=4.0),
                  "t": 2.0})  # never raised into the flow
    assert store.view()["kept"] == 2 and store.view()["error"]
    # the consumer's catch-up finds the final while it waits in memory
    (final,) = store.finals([rid, "req-other"])
    assert (final["request_id"], final["result"]) == (rid, "completed")
    assert _status(store.view(), "clicktocall_store").endswith(
        "0 ended call(s), 2 c2c outcomes kept in memory")
    assert store.flush() == 0 and store.view()["kept"] == 2  # still refused: nothing lost
    conn.execute("PRAGMA query_only=0")  # room again
    assert store.flush() == 2
    assert store.view() == {"error": "", "kept": 0, "dropped": 0}
    row = store.get(rid)
    assert (row["state"], row["result"], row["origin"], row["duration"]) == (
        "final", "completed", "1013010", 4.0)
    assert [e for e, _t in row["events"]] == ["progress", "final"]
    assert health.store_problem(health.with_kept(
        {"error": "", "unsaved": 0, "dropped": 0}, lambda name: store.view())) is None


def test_flow_rows_sqlite_refuses_are_kept_shown_and_written_later(tmp_path):
    engine_store = Store(tmp_path / "engine.sqlite")
    engine_store.migrate(FLOWS_MIGRATION, FLOWS_SCHEMA)
    conn = engine_store.connection
    flows = FlowStore(conn)
    flows.save("ended", {"request_id": "ended", "step": 1}, 1.0)  # written before the disk fills
    conn.execute("PRAGMA query_only=1")  # SQLite refuses every write, as on a full disk
    flows.save("talk", {"request_id": "talk", "step": 1}, 2.0)  # never raised into the flow
    flows.save("talk", {"request_id": "talk", "step": 2}, 3.0)  # the call's last state wins
    flows.delete("ended")
    assert flows.view()["kept"] == 2 and flows.view()["error"]
    assert _status(flows.view(), "clicktocall_flows").endswith(
        "0 ended call(s), 2 c2c flow rows kept in memory")
    assert flows.flush() == 0 and flows.view()["kept"] == 2  # still refused: nothing lost
    conn.execute("PRAGMA query_only=0")  # room again
    assert flows.flush() == 2
    assert flows.view() == {"error": "", "kept": 0, "dropped": 0}
    assert flows.load() == [{"request_id": "talk", "step": 2}]  # what a restart finds
