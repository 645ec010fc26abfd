"""The engine's metrics line (engineproc/metricsline.py): totals saved, then one line logged."""

import logging
from types import SimpleNamespace

from arimonitor.config import load_config
from arimonitor.engine.probe import ProbeStats
from arimonitor.engine.state import State
from arimonitor.engine.store import Store
from arimonitor.engineproc.metricsline import MetricsLine


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _line(cfg, store: Store, state: State) -> MetricsLine:
    intake = SimpleNamespace(lag=0.002, last_event_age=lambda: None)
    link = SimpleNamespace(probe=ProbeStats(), link={"state": "up"})
    watch = SimpleNamespace(server=state.server, state=state, link=link)
    return MetricsLine(cfg, [watch], store, intake)


def test_a_line_saves_the_totals_first_and_a_new_run_counts_on_from_them(tmp_path):
    cfg = load_config(environ={"ARIMONITOR_HOME": str(tmp_path)})
    store = Store(str(tmp_path / "db.sqlite"))
    state = State("sid")
    state.counters.received = 7
    metrics = _line(cfg, store, state)
    lines = Lines()
    metrics.log.addHandler(lines)
    try:
        metrics.write()
    finally:
        metrics.log.removeHandler(lines)
    assert store.load_counters()["received"] == 7
    assert lines.lines[0].startswith("received=7 ")
    assert "lag_ms=2.0 last_event_age=- " in lines.lines[0]
    assert lines.lines[0].endswith(" link=up")

    again = State("sid")  # the next engine run: its counters start at zero
    again.counters.received = 3
    assert _line(cfg, store, again).totals()["received"] == 10
    store.close()


def test_a_full_disk_skips_the_line_and_warns_once_not_every_interval(tmp_path, caplog):
    import sqlite3

    cfg = load_config(environ={"ARIMONITOR_HOME": str(tmp_path)})
    store = Store(str(tmp_path / "db.sqlite"))
    metrics = _line(cfg, store, State("sid"))
    lines = Lines()
    metrics.log.addHandler(lines)
    real = store.save_counters

    def full(_totals):
        raise sqlite3.OperationalError("database or disk is full")
    try:
        store.save_counters = full
        with caplog.at_level(logging.INFO, logger="arimonitor.engineproc.metricsline"):
            for _ in range(5):
                metrics.write()  # never raises: the loop would log a traceback every interval
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "disk is full" in warnings[0].getMessage()
        assert lines.lines == []  # no line shows a total SQLite lacks
        store.save_counters = real
        metrics.write()
        assert len(lines.lines) == 1 and metrics.save_failures.count == 0
    finally:
        metrics.log.removeHandler(lines)
        store.close()
