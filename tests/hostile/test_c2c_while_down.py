"""A click-to-call connected when arimonitor stops, hung up while it is down: at the next start
it is ended "ended while arimonitor was down" (talk time up to the last-alive mark), counted,
shown by `c2c`, and its final reaches reply_to once. Real processes: the simulator over
HTTP/WebSocket (Asterisk keeps running while arimonitor is down), engine, reader, clicktocall,
RabbitMQ."""

from __future__ import annotations

import json
import os
import signal
import uuid

import pika
import pytest

from arimonitor.clicktocall import broker, reasons
from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, outputs, start_stack
from tests.hostile import c2c_world
from tests.support import Processes, eventually

pytestmark = pytest.mark.timeout(180)

ORIGIN, DESTINATION = "9010001", "9020001"


def test_a_call_connected_at_stop_and_ended_while_down_gets_one_final_with_a_reason(tmp_path):
    uid = uuid.uuid4().hex[:10]
    topology = broker.Topology.for_queue(f"down-{uid}", f"down-results-{uid}")
    files = c2c_world.write_files(tmp_path, topology, "[901]\nnome=Down\ngravar=N\nmax_chamadas=10\n",
                                  [ORIGIN, DESTINATION])
    conn, channel, reply_queue = c2c_world.declare(topology, f"down-replies-{uid}")
    procs = Processes()
    replies: list[tuple[str, dict]] = []

    def drain() -> list[tuple[str, dict]]:
        while (got := channel.basic_get(reply_queue, auto_ack=True))[0] is not None:
            replies.append((got[1].message_id, json.loads(got[2])))
        return replies

    try:
        with SimServer(endpoints=[ORIGIN, DESTINATION], time_scale=0.1) as sim:
            ini = c2c_world.config(tmp_path, sim, files, topology, default_timeout="30s",
                                   retry_delay="500ms")
            extra = (("clicktocall.py",),)
            started = start_stack(procs, ini, tmp_path, extra=extra)
            address = control_address(tmp_path)

            def linked() -> bool:
                try:
                    return ctl(address, "status", timeout=1)["data"]["link"]["state"] == "connected"
                except TimeoutError:
                    return False
            eventually(linked, timeout=30, interval=0.2)
            for n, ep in enumerate((ORIGIN, DESTINATION)):
                sim.control.register(ep, ip=f"10.9.1.{n + 1}", port=5060)
            eventually(lambda: channel.queue_declare(topology.queue, passive=True).method.consumer_count,
                       timeout=30, interval=0.2)
            rid = f"down-{uid}"
            channel.basic_publish("", topology.queue, json.dumps(
                {"request_id": rid, "client": "901", "origin": ORIGIN, "destination": DESTINATION}).encode(),
                pika.BasicProperties(reply_to=reply_queue, correlation_id=rid, delivery_mode=2))
            eventually(lambda: any(c["request_id"] == rid and c["connected"] for c in
                                   ctl(address, "c2c")["data"]["in_progress"]),
                       timeout=60, interval=0.3, message="the call never connected")

            # arimonitor stops (every program of it); Asterisk goes on, and the call ends there
            for proc in started.values():
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in started.values():
                proc.wait(20)
            for which in ("a", "b"):  # both people hang up (nobody to hang up the other leg)
                sim.control.hangup(f"c2c-{rid}-{which}")
            eventually(lambda: not [c for c in sim.control.state()["channels"]
                                    if str(c.get("id") if isinstance(c, dict) else c).startswith("c2c-")],
                       timeout=20, interval=0.2)
            assert not [r for _m, r in drain() if r.get("result")], "a final before the restart?"

            start_stack(procs, ini, tmp_path, extra=extra)
            eventually(lambda: [r for _m, r in drain() if r.get("result")], timeout=60, interval=0.3,
                       message=f"no final reached reply_to\n{outputs(tmp_path)}")
            detail = eventually(lambda: (row := ctl(address, "c2c", rid)["data"])["result"] and row,
                                timeout=10, interval=0.3)
            listing = ctl(address, "c2c")
            # the consumer's ledger closed the request: no catch-up will send it again
            eventually(lambda: not [c for c in ctl(address, "c2c")["data"]["in_progress"]
                                    if c["request_id"] == rid], timeout=10, interval=0.3)
    finally:
        c2c_world.clean_up(procs, conn, channel, topology, reply_queue)
    finals = [(mid, r) for mid, r in replies if r.get("result")]
    assert len({mid for mid, _r in finals}) == 1, finals
    final = finals[0][1]
    assert (final["result"], final["reason"]) == ("completed", reasons.ENDED_WHILE_DOWN), final
    assert final.get("duration"), f"completed with no talk time: {final} {detail}"
    assert (detail["result"], detail["reason"]) == ("completed", reasons.ENDED_WHILE_DOWN)
    assert detail["duration"] and detail["duration"] > 0
    assert listing["data"]["ended_while_down"] == 1
    assert "ended while arimonitor was down" in json.dumps(listing)
