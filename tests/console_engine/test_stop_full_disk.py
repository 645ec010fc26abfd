"""An engine stopped while SQLite refuses writes (a full disk) says what is lost, in one line."""

from __future__ import annotations

import logging
import threading

from tests.console_engine.engine_here import EngineHere


def test_an_engine_stopped_on_a_full_disk_names_what_is_lost_instead_of_a_traceback(caplog):
    caplog.set_level(logging.INFO)
    crashed: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: crashed.append(args.exc_value)
    here = EngineHere()
    try:
        # what SQLite answers every write on a full disk; reads still work
        here.in_loop(lambda: here.engine.store.connection.execute("PRAGMA query_only = ON"))
    finally:
        here.close()
        threading.excepthook = previous
    assert not here.thread.is_alive()
    assert crashed == []
    stopped = [r for r in caplog.records if "engine stopped while its database cannot be written"
               in r.getMessage()]
    assert len(stopped) == 1 and stopped[0].levelno == logging.ERROR
    assert "counters not saved" in stopped[0].getMessage()
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.ERROR)
    assert any("engine closed at" in r.getMessage() for r in caplog.records)
