"""A real broker restart under the click-to-call consumer (issue 13): RabbitMQ `stop_app` /
`start_app` in the middle of a flood, through the real processes (simulator, engine, reader,
clicktocall).

The shared broker on 5672 is never stopped: this module starts its own RabbitMQ node
(tests/rabbit_node.py) and points the consumer's __MQSERVERS__.DEF at it. The web system
(this test) publishes with publisher confirms and publishes again what the broker never
confirmed, as a careful publisher does. Asserted: every request message gets exactly one final
reply (repeats dropped by message_id), none lost, including the accepted requests the
broker took back unacked (the consumer holds their acks ACK_DELAY s, a test-only switch), no request rings twice (POST /channels per
channel id in the simulator), and the consumer is still the same running process.
"""

from __future__ import annotations

import threading

import pytest

from arimonitor.clicktocall.consumer import TEST_ACK_DELAY_ENV
from tests.engine.stack import outputs
from tests.hostile import c2c_world
from tests.hostile.flood import Flood
from tests.support import eventually

pytestmark = pytest.mark.timeout(300)

FLOOD, RATE = 200, 20.0
RESTART_AT = 20    # the request before which `stop_app` is asked (it takes seconds to act)
AFTER = 50         # requests kept for after the broker went down: the restart is mid-flood
ACK_DELAY = "2"    # accepted requests stay unacked 2 s, so the stop catches some in flight


def test_a_broker_restart_mid_flood_loses_nothing_and_places_nothing_twice(tmp_path, node,
                                                                             monkeypatch):
    monkeypatch.setenv(TEST_ACK_DELAY_ENV, ACK_DELAY)  # read by the consumer only
    figures: dict[str, float] = {}
    with Flood(tmp_path, node, "restart", RATE, phones=40, record=False) as flood:
        flood.start()
        restart = threading.Thread(target=c2c_world.restart_broker, args=(node, figures, flood.stop),
                                   daemon=True)
        for i in range(FLOOD):
            if i == RESTART_AT:
                restart.start()
            if i == FLOOD - AFTER:
                eventually(flood.publisher.down, timeout=60, interval=0.2,
                           message="the broker never went down")
            flood.send(i)
        restart.join(120)
        assert not restart.is_alive(), "the broker restart never finished"
        got = flood.measure(wait=90, recordings_wait=0)
        log = tmp_path / "var" / "log" / "clicktocall.log"
        log_text = log.read_text(errors="replace") if log.exists() else ""
        sessions = log_text.count(f"consuming {flood.topology.queue}")
        publisher = flood.publisher
        got.extra = {"at": f"{RATE:.0f}/s", "stop_app asked before": f"#{RESTART_AT}",
                     "down at": f"#{publisher.down_at} (stop_app {figures['stop_app']:.1f} s, "
                                f"start_app {figures['start_app']:.1f} s, outage {figures['outage']:.1f} s)",
                     "republished": publisher.republished, "consumer sessions": sessions}
        summary = got.line("broker restart")
        print(summary)
        (tmp_path / "figures.txt").write_text(summary + "\n")
        assert sessions >= 2, f"the consumer never reconnected?\n{summary}\n{outputs(tmp_path)}"
        assert flood.started["clicktocall"].poll() is None, f"the consumer exited\n{outputs(tmp_path)}"
        # the outage is a line or two (logged once, then counted), not a traceback a retry
        assert "Traceback" not in log_text, log_text[-3000:]
        assert len(got.placed) >= FLOOD // 2, summary  # the flood really rang phones
        assert (got.lost, got.doubled, got.rang_twice) == ([], [], []), f"{summary}\n{outputs(tmp_path)}"
