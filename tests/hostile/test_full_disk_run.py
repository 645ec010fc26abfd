"""The full-disk run through the real processes: a click-to-call flood while `var/` (both
SQLite files, the logs, the MP3s) is a small tmpfs that fills to the last byte for a while and
then has room again. Nothing is lost, nothing placed twice, nothing crashes: each request
gets one final reply, each call placed one history row, each recording one MP3, and the
engine says while it lasts that it is keeping writes in memory.

Scaled to a CI run: FLOOD requests at RATE/s, the disk full from the first quarter to the last
quarter of the flood. The issue's scale runs by hand: ARIMONITOR_TEST_DISK_FLOOD=1800
ARIMONITOR_TEST_DISK_RATE=15 pytest -s tests/hostile/test_full_disk_run.py. Skips, saying why,
where this machine cannot mount a tmpfs.
"""

from __future__ import annotations

import os

import pytest

from tests.engine.stack import ctl, outputs
from tests.hostile.disk import fill, free, small_disk
from tests.hostile.flood import Flood

FLOOD = int(os.environ.get("ARIMONITOR_TEST_DISK_FLOOD", "80"))
RATE = float(os.environ.get("ARIMONITOR_TEST_DISK_RATE", "4"))
pytestmark = pytest.mark.timeout(240 + 3 * FLOOD / RATE)


def _kept(flood: Flood) -> int:
    """What the engine holds in memory for want of disk (ended calls and other writes)."""
    try:
        store = ctl(flood.address, "status", timeout=2)["data"]["store"]
    except TimeoutError:
        return 0
    return store.get("unsaved", 0) + sum((store.get("kept") or {}).values())


def test_a_full_disk_under_the_whole_tree_loses_nothing_and_places_nothing_twice(tmp_path, node):
    with small_disk(tmp_path / "var", "32m") as var, Flood(tmp_path, node, "disk", RATE) as flood:
        flood.start()
        full_from, full_to = FLOOD // 4, 3 * FLOOD // 4
        kept_most = 0
        for i in range(FLOOD):
            if i == full_from:
                fill(var)
            if i == full_to:
                free(var)
            if full_from <= i < full_to:
                kept_most = max(kept_most, _kept(flood))
            flood.send(i)
        got = flood.measure(wait=90, recordings_wait=60)
        alive = {name: proc.poll() is None for name, proc in flood.started.items()}
        got.extra = {"at": f"{RATE:g}/s", "disk full for": f"{(full_to - full_from) / RATE:g} s",
                     "most kept in memory by the engine": kept_most}
        figures = got.line("full-disk run")
        print(figures)
        (tmp_path / "figures.txt").write_text(figures + "\n" + got.wrong_lines())
        assert kept_most > 0, f"the engine never noticed the full disk\n{figures}"
        assert all(alive.values()), f"a program died: {alive}\n{outputs(tmp_path)}"
        assert len(got.placed) >= FLOOD // 2, figures
        assert (got.lost, got.doubled, got.rang_twice) == ([], [], []), f"{figures}\n{outputs(tmp_path)}"
        assert got.wrong == {}, f"{figures}\n{got.wrong}"
        assert got.wavs and got.unconverted == [], f"{figures}\n{got.unconverted}"
