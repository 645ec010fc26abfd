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
import time
import uuid
from collections import defaultdict

import pika
import pika.exceptions
import pytest

from arimonitor.clicktocall import broker
from arimonitor.clicktocall.consumer import TEST_ACK_DELAY_ENV
from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, outputs, start_stack
from tests.hostile import c2c_world
from tests.support import Processes, eventually

pytestmark = pytest.mark.timeout(300)

FLOOD, RATE = 200, 20.0
RESTART_AT = 20    # the request before which `stop_app` is asked (it takes seconds to act)
AFTER = 50         # requests kept for after the broker went down: the restart is mid-flood
ACK_DELAY = "2"    # accepted requests stay unacked 2 s, so the stop catches some in flight
ORIGINS = [f"90300{i:02d}" for i in range(40)]
DESTINATIONS = [f"90400{i:02d}" for i in range(40)]
CLIENTS = "[901]\nnome=Flood\ngravar=N\nmax_chamadas=1000\n"


def test_a_broker_restart_mid_flood_loses_nothing_and_places_nothing_twice(tmp_path, node,
                                                                             monkeypatch):
    monkeypatch.setenv(TEST_ACK_DELAY_ENV, ACK_DELAY)  # read by the consumer only
    uid = uuid.uuid4().hex[:10]
    topology = broker.Topology.for_queue(f"restart-{uid}", f"restart-results-{uid}")
    files = c2c_world.write_files(tmp_path, topology, CLIENTS, ORIGINS + DESTINATIONS,
                                  rabbit_port=node.port)
    conn, _channel, reply_queue = c2c_world.declare(topology, f"restart-replies-{uid}",
                                                    rabbit_port=node.port, durable_replies=True)
    conn.close()  # this connection would only die in the restart
    procs = Processes()
    stop = threading.Event()
    seen: dict[str, set] = defaultdict(set)
    figures: dict[str, float] = {}
    publisher = c2c_world.Publisher(node, topology.queue)
    try:
        with SimServer(endpoints=ORIGINS + DESTINATIONS, time_scale=0.1) as sim:
            ini = c2c_world.config(tmp_path, sim, files, topology, default_timeout="10s",
                                   retry_delay="500ms")
            started = start_stack(procs, ini, tmp_path, extra=(("clicktocall.py",),))
            address = control_address(tmp_path)

            def ready() -> bool:
                try:
                    link = ctl(address, "status", timeout=1)["data"]["link"]["state"]
                except TimeoutError:
                    return False
                return link == "connected" and c2c_world.consumers(node, topology.queue) >= 1
            eventually(ready, timeout=30, interval=0.2)
            for n, ep in enumerate(ORIGINS + DESTINATIONS):
                sim.control.register(ep, ip=f"10.9.1.{n + 1}", port=5060)
            eventually(lambda: sum(e["state"] == "online" for e in
                                   ctl(address, "_engine_endpoints")["data"]) == 80, timeout=45)

            threading.Thread(target=c2c_world.collect_replies, args=(node, reply_queue, seen, stop),
                             daemon=True).start()
            threading.Thread(target=c2c_world.hang_up_connected, args=(sim, stop), daemon=True).start()
            restart = threading.Thread(target=c2c_world.restart_broker, args=(node, figures, stop),
                                       daemon=True)
            corrs = []
            began = time.monotonic()
            for i in range(FLOOD):
                if i == RESTART_AT:
                    restart.start()
                if i == FLOOD - AFTER:
                    eventually(publisher.down, timeout=60, interval=0.2,
                               message="the broker never went down")
                corr = f"m{i}-{uuid.uuid4().hex[:6]}"
                body = {"request_id": f"r{uid}-{i}", "client": "901",
                        "origin": ORIGINS[i % 40], "destination": DESTINATIONS[i % 40],
                        "timeout": 5}
                publisher.publish(body, pika.BasicProperties(
                    reply_to=reply_queue, correlation_id=corr, delivery_mode=2))
                corrs.append(corr)
                time.sleep(max(0.0, began + (i + 1) / RATE - time.monotonic()))  # the pace
            restart.join(120)
            assert not restart.is_alive(), "the broker restart never finished"

            try:
                eventually(lambda: all(seen.get(c) for c in corrs), timeout=90, interval=0.5)
            except AssertionError:
                pass  # the figures below say what is missing
            lost = [c for c in corrs if not seen.get(c)]
            doubled = [c for c in corrs if len({mid for mid, _ in seen.get(c, ())}) > 1]
            placed = c2c_world.Placements(sim).look()
            rang_twice = [k for k, n in placed.items() if n > 1]
            results: dict[str, int] = defaultdict(int)
            for c in corrs:
                for _mid, result in seen.get(c, ()):
                    results[result] += 1
            log = (tmp_path / "var" / "log" / "clicktocall.log")
            log_text = log.read_text(errors="replace") if log.exists() else ""
            sessions = log_text.count("consuming restart-")
            summary = (f"broker restart: {FLOOD} requests at {RATE:.0f}/s, stop_app asked before #{RESTART_AT}, "
                       f"down at #{publisher.down_at} (stop_app {figures['stop_app']:.1f} s, start_app {figures['start_app']:.1f} s, "
                       f"outage {figures['outage']:.1f} s), republished {publisher.republished}, "
                       f"{len(placed)} placed, results {dict(results)}, lost {len(lost)}, doubled "
                       f"replies {len(doubled)}, rang twice {len(rang_twice)}, consumer sessions {sessions}")
            print(summary)
            (tmp_path / "figures.txt").write_text(summary + "\n")
            assert sessions >= 2, f"the consumer never reconnected?\n{summary}\n{outputs(tmp_path)}"
            assert started["clicktocall"].poll() is None, f"the consumer exited\n{outputs(tmp_path)}"
            # the outage is a line or two (logged once, then counted), not a traceback a retry
            assert "Traceback" not in log_text, log_text[-3000:]
            assert len(placed) >= FLOOD // 2, summary  # the flood really rang phones
            assert (lost, doubled, rang_twice) == ([], [], []), f"{summary}\n{outputs(tmp_path)}"
    finally:
        stop.set()
        publisher.close()
        procs.kill_all()
        c2c_world.drop_topology(node, topology, reply_queue)
