"""One loop turn = one SQLite transaction: history rows committed before the calls are
announced, `continue`s sent only after the commit (outputs.py)."""

from __future__ import annotations

import sqlite3

from arimonitor.engine.handlers import Handlers
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.outputs import EngineEffects
from arimonitor.engine.state import State
from arimonitor.engine.store import Store

TS = "2026-11-24T21:21:49.846+0000"


def stasis_call(n: int) -> list[dict]:
    ch = {"id": f"in.{n}", "name": f"PJSIP/100{n}-{n:08x}", "state": "Ring",
          "caller": {"name": "", "number": f"100{n}"}, "connected": {"name": "", "number": ""},
          "accountcode": "", "creationtime": TS, "language": "en",
          "dialplan": {"context": "from-endpoints", "exten": "555", "priority": 2,
                       "app_name": "Stasis", "app_data": "arimonitor"}}
    return [{"type": "ChannelCreated", "channel": ch},
            {"type": "StasisStart", "args": [], "channel": ch},
            {"type": "ChannelStateChange", "channel": {**ch, "state": "Up"}},
            {"type": "StasisEnd", "channel": {**ch, "state": "Up"}},
            {"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing",
             "channel": {**ch, "state": "Up"}}]


class Engine:
    """EngineEffects on a real SQLite; records the order of commits, announcements, continues."""

    def __init__(self, tmp_path) -> None:
        self.store = Store(tmp_path / "engine.sqlite")
        self.order: list[tuple] = []
        save_calls = self.store.save_calls

        def counting(views, active=(), gone=()):
            save_calls(views, active, gone)
            self.order.append(("commit", tuple(v["id"] for v in views)))

        self.store.save_calls = counting  # type: ignore[method-assign]
        notifier = Notifier(None)
        notifier.subscribe("call.ended", self.announced)
        self.state = State("asterisk1")
        self.fx = EngineEffects(self.store, notifier, self.state.counters,
                                lambda cid: self.order.append(("continue", cid)), None, "asterisk1")
        self.handlers = Handlers(self.state, self.fx)
        self.db = sqlite3.connect(tmp_path / "engine.sqlite")

    def announced(self, _topic: str, body: dict) -> None:
        # Another connection: sees only what is committed.
        rows = self.db.execute("SELECT count(*) FROM calls WHERE id=?", (body["id"],)).fetchone()
        self.order.append(("ended", body["id"], rows[0]))


def test_a_turn_commits_once_then_announces_then_continues(tmp_path):
    e = Engine(tmp_path)
    e.fx.hold()
    for n in range(3):
        for event in stasis_call(n):
            e.handlers.apply_event(event, 1.0)
    assert e.order == [], "nothing leaves the process during the turn"
    e.fx.release()
    commits = [o for o in e.order if o[0] == "commit"]
    assert len(commits) == 1 and len(commits[0][1]) == 3, e.order
    assert e.order[0][0] == "commit"
    ended = [o for o in e.order if o[0] == "ended"]
    assert len(ended) == 3 and all(rows == 1 for _k, _id, rows in ended), "announced before commit"
    continues = [o[1] for o in e.order if o[0] == "continue"]
    assert continues == ["in.0", "in.1", "in.2"]
    assert e.order.index(("continue", "in.0")) > e.order.index(commits[0])
    assert e.store.count_calls() == 3


def test_outside_a_turn_each_call_is_written_before_it_is_announced(tmp_path):
    e = Engine(tmp_path)
    for event in stasis_call(7):
        e.handlers.apply_event(event, 1.0)
    kinds = [o[0] for o in e.order]
    assert kinds.count("continue") == 1
    assert [o for o in e.order if o[0] == "ended"] == [("ended", "in.7", 1)]
    assert kinds.index("commit") < kinds.index("ended")


def test_a_call_ringing_in_one_turn_and_ending_in_the_next_leaves_no_active_row(tmp_path):
    e = Engine(tmp_path)
    events = stasis_call(1)
    e.fx.hold()
    for event in events[:3]:
        e.handlers.apply_event(event, 1.0)
    e.fx.release()
    assert [r["id"] for r in e.store.load_active("asterisk1")] == [e.state.call_of("in.1").id]
    e.fx.hold()
    for event in events[3:]:
        e.handlers.apply_event(event, 2.0)
    e.fx.release()
    assert e.store.load_active("asterisk1") == []
    assert e.store.count_calls() == 1
