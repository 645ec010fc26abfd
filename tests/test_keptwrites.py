"""KeptWrites: what SQLite refuses waits in memory, in order, bounded, and is written later."""

from __future__ import annotations

import sqlite3

from arimonitor.keptwrites import KeptWrites


class _Table:
    """A write function that refuses while `full`, as SQLite on a full disk."""

    def __init__(self) -> None:
        self.rows: list[object] = []
        self.full = False

    def write(self, row: object) -> None:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        self.rows.append(row)


def test_refused_writes_wait_in_order_and_go_once_there_is_room(caplog):
    table = _Table()
    kept = KeptWrites("rows", table.write)
    kept.put(1)
    table.full = True
    kept.put(2)
    kept.put(3)  # after 2, even once there is room for it
    assert (list(kept), kept.view()["kept"], table.rows) == ([2, 3], 2, [1])
    assert "full" in kept.error
    assert kept.flush() == 0 and kept.error  # an idle second proves nothing
    table.full = False
    kept.put(4)  # the next write takes the kept ones first
    assert table.rows == [1, 2, 3, 4]
    assert kept.view() == {"error": "", "kept": 0, "dropped": 0}
    errors = [r for r in caplog.records if "not writable" in r.getMessage()]
    assert len(errors) == 1, "one line an episode, not one a refusal"
    assert any("writable again" in r.getMessage() for r in caplog.records)


def test_beyond_the_limit_the_oldest_goes_and_is_counted():
    table = _Table()
    table.full = True
    kept = KeptWrites("rows", table.write, limit=3)
    for n in range(5):
        kept.put(n)
    assert list(kept) == [2, 3, 4] and kept.dropped == 2
    table.full = False
    assert kept.flush() == 3 and table.rows == [2, 3, 4]


def test_a_write_kept_under_a_key_replaces_the_one_kept_before():
    table = _Table()
    table.full = True
    kept = KeptWrites("rows", table.write)
    kept.put(("a", 1), key="a")
    kept.put(("b", 1), key="b")
    kept.put(("a", 2), key="a")
    assert list(kept) == [("b", 1), ("a", 2)] and kept.dropped == 0
    table.full = False
    assert kept.flush() == 2 and table.rows == [("b", 1), ("a", 2)]


def test_an_owner_with_its_own_error_hands_in_its_refused():
    table = _Table()
    table.full = True
    kept = KeptWrites("rows", table.write)
    kept.keep(1)
    seen: list[str] = []
    assert kept.flush(lambda exc: seen.append(str(exc))) == 0
    assert seen == ["database or disk is full"] and kept.error == "" and len(kept) == 1
