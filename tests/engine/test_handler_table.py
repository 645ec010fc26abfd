"""The event table is explicit and complete: every ARI message type is handled or ignored on
purpose, and nothing else is registered (no extension hook taken for an event type)."""

from __future__ import annotations

import json

from arimonitor.engine.handler_support import IGNORED
from tests.engine.replay import new_engine_state
from tests.support import DATA

EVENTS = json.loads((DATA / "ari" / "api-docs" / "events.json").read_text())["models"]


def _message_types() -> set[str]:
    """Concrete message types: Message's subtypes, Event expanded into its own."""
    found, todo = set(), list(EVENTS["Message"]["subTypes"])
    while todo:
        name = todo.pop()
        subtypes = EVENTS[name].get("subTypes")
        if subtypes:
            todo.extend(subtypes)
        else:
            found.add(name)
    return found


def test_every_ari_message_type_is_in_the_table_and_nothing_else():
    _state, _fx, handlers = new_engine_state()
    table = handlers.table
    assert set(table) == _message_types(), (set(table) ^ _message_types())
    assert "event" not in table  # the `on_event` extension hook is not a handler


def test_ignored_types_are_no_ops_and_handled_ones_have_their_own_handler():
    _state, _fx, handlers = new_engine_state()
    ignored = {name for name, fn in handlers.table.items() if fn == handlers._ignore}
    assert ignored == set(IGNORED)
    for name, fn in handlers.table.items():
        if name not in ignored:
            assert fn.__name__ == f"on_{name}", name  # handlers named after their events
