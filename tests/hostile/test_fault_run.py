"""The fault run through the real processes: a click-to-call flood while each program is
killed -9 in turn (and restarted, as supervisord would) and the broker restarts
(`rabbitmqctl stop_app` / `start_app`). Every request message gets exactly one final reply
(dropping repeats by message_id), no request rings twice, every call placed is one history row
of the real call, and every recording becomes an MP3 (tests/hostile/flood.py measures).

The broker is a private RabbitMQ node of this module (tests/rabbit_node.py; the shared one on
5672 is never stopped), and the web system publishes as test_broker_restart.py's does: with
confirms, publishing again what a broker going down never confirmed.

Scaled to a CI run (about a minute): FLOOD requests at RATE/s. The issue's own scale runs by
hand: ARIMONITOR_TEST_FAULT_FLOOD=2000 ARIMONITOR_TEST_FAULT_RATE=20 pytest -s tests/hostile/test_fault_run.py
(the figures line says what happened; figures.txt in the test's temp dir names each wrong call).
"""

from __future__ import annotations

import os
import threading

import pytest

from tests.engine.stack import outputs
from tests.hostile import c2c_world
from tests.hostile.flood import Flood
from tests.support import eventually

FLOOD = int(os.environ.get("ARIMONITOR_TEST_FAULT_FLOOD", "80"))
RATE = float(os.environ.get("ARIMONITOR_TEST_FAULT_RATE", "4"))
pytestmark = pytest.mark.timeout(240 + 3 * FLOOD / RATE)


def test_flood_with_every_program_killed_and_the_broker_restarted_loses_and_doubles_nothing(tmp_path, node):
    broker_figures: dict[str, float] = {}
    with Flood(tmp_path, node, "fault", RATE) as flood:
        flood.start()
        broker_restart = threading.Thread(target=c2c_world.restart_broker,
                                          args=(node, broker_figures, flood.stop), daemon=True)
        faults = {FLOOD // 6: lambda: flood.restart("clicktocall"),
                  2 * FLOOD // 6: lambda: flood.restart("engine"),
                  3 * FLOOD // 6: lambda: flood.restart("reader"),
                  7 * FLOOD // 12: lambda: flood.restart("transcoder"),
                  4 * FLOOD // 6: broker_restart.start,
                  5 * FLOOD // 6: lambda: flood.restart("engine")}
        for i in range(FLOOD):
            if i == 5 * FLOOD // 6:  # the broker restart is mid-flood, among the kills
                eventually(flood.publisher.down, timeout=60, interval=0.2,
                           message="the broker never went down")
            if i in faults:
                faults[i]()
            flood.send(i)
        broker_restart.join(120)
        assert not broker_restart.is_alive(), "the broker restart never finished"
        got = flood.measure(wait=90, recordings_wait=max(60, FLOOD / 10))
        got.extra = {"at": f"{RATE:g}/s", "broker down": f"{broker_figures.get('outage', 0):.1f} s",
                     "republished": flood.publisher.republished}
        figures = got.line("fault run")
        print(figures)
        (tmp_path / "figures.txt").write_text(figures + "\n" + got.wrong_lines())
        assert len(got.placed) >= FLOOD // 2, figures  # the flood really rang phones
        assert (got.lost, got.doubled, got.rang_twice) == ([], [], []), f"{figures}\n{outputs(tmp_path)}"
        # every call is one history row of the real call, across the engine's kill -9s
        assert got.wrong == {}, f"{figures}\n{got.wrong}"
        assert got.wavs, figures  # the calls were recorded, through the transcoder's kill -9
        # every recording converted, also those that finished while the engine was down
        assert got.unconverted == [], f"{figures}\n{got.unconverted}"
