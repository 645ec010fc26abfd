"""Click-to-call with two Asterisk servers through the real processes (issue 14): two
simulators (pbx1 = [ari], pbx2 = [ari:pbx2]), a reader each, the engine and the consumer. A
request whose origin is registered on pbx2 rings, dials and bridges on pbx2 only, and its reply
says `server: pbx2`; one on pbx1 stays on pbx1."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import defaultdict

import pika
import pytest

from arimonitor.clicktocall import broker
from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, outputs, start_stack
from tests.hostile import c2c_world
from tests.support import Processes, eventually

pytestmark = pytest.mark.timeout(180)

CLIENTS = "[901]\nnome=Two\ngravar=N\nmax_chamadas=10\n"
ON_PBX1, ON_PBX2 = ("9050001", "9050002"), ("9060001", "9060002")  # (origin, destination)


def _people(sims: list[SimServer], stop: threading.Event) -> None:
    """Each connected call is hung up by its origin about a second after leg B appears."""
    first_seen: dict[str, float] = {}
    while not stop.wait(0.3):
        for sim in sims:
            with contextlib.suppress(Exception):  # a leg already gone: look again
                for channel in sim.control.state()["channels"]:
                    cid = channel["id"] if isinstance(channel, dict) else channel
                    if cid.startswith("c2c-") and cid.endswith("-b") and \
                            time.monotonic() - first_seen.setdefault(cid, time.monotonic()) > 1.0:
                        sim.control.hangup(cid[:-2] + "-a")


def _c2c_requests(sim: SimServer, rid: str) -> list[str]:
    """`METHOD path` of every REST request this simulator got about request `rid`."""
    return [f"{r['method']} {r['path']}" for r in sim.control.requests()
            if rid in r["path"] or rid in json.dumps(r.get("params") or {})]


def test_each_click_to_call_rings_and_bridges_on_its_origins_server(tmp_path):
    uid = uuid.uuid4().hex[:10]
    topology = broker.Topology.for_queue(f"two-{uid}", f"two-results-{uid}")
    files = c2c_world.write_files(tmp_path, topology, CLIENTS, [*ON_PBX1, *ON_PBX2])
    conn, channel, reply_queue = c2c_world.declare(topology, f"two-replies-{uid}")
    procs = Processes()
    stop = threading.Event()
    try:
        with SimServer(endpoints=list(ON_PBX1), time_scale=0.1) as pbx1, \
                SimServer(endpoints=list(ON_PBX2), time_scale=0.1) as pbx2:
            ini = c2c_world.config(tmp_path, pbx1, files, topology, sections={
                "ari": {"server_id": "pbx1"},
                "ari:pbx2": {"url": pbx2.url, "user": pbx2.user, "password": pbx2.password,
                             "app": pbx2.app}})
            start_stack(procs, ini, tmp_path,
                        extra=(("ari_reader.py", "--server", "1"), ("clicktocall.py",)))
            address = control_address(tmp_path)
            eventually(lambda: channel.queue_declare(topology.queue, passive=True)
                       .method.consumer_count >= 1, timeout=30, interval=0.2)
            for sim, endpoints in ((pbx1, ON_PBX1), (pbx2, ON_PBX2)):
                for n, ep in enumerate(endpoints):
                    sim.control.register(ep, ip=f"10.9.2.{n + 1}", port=5060)

            def online() -> dict[str, str]:
                return {e["id"]: e.get("server") for e in ctl(address, "_engine_endpoints")["data"]
                        if e["state"] == "online"}
            where = {ep: server for server, eps in (("pbx1", ON_PBX1), ("pbx2", ON_PBX2)) for ep in eps}
            eventually(lambda: online() == where, timeout=45, interval=0.3,
                       message="the engine never saw the four endpoints online, each on its server")
            threading.Thread(target=_people, args=([pbx1, pbx2], stop), daemon=True).start()

            rids = {"pbx1": f"t{uid}-1", "pbx2": f"t{uid}-2"}
            for server, (origin, destination) in (("pbx1", ON_PBX1), ("pbx2", ON_PBX2)):
                body = {"request_id": rids[server], "client": "901", "origin": origin,
                        "destination": destination, "timeout": 5}
                channel.basic_publish("", topology.queue, json.dumps(body).encode(),
                                      pika.BasicProperties(reply_to=reply_queue,
                                                           correlation_id=server, delivery_mode=2))
            replies: dict[str, list[dict]] = defaultdict(list)

            def both_answered() -> bool:
                while (got := channel.basic_get(reply_queue, auto_ack=True))[0] is not None:
                    replies[got[1].correlation_id].append(json.loads(got[2]))
                return set(replies) == {"pbx1", "pbx2"}
            eventually(both_answered, timeout=60, interval=0.3,
                       message=f"not every request answered: {dict(replies)}\n{outputs(tmp_path)}")
            for server, sim, other in (("pbx1", pbx1, pbx2), ("pbx2", pbx2, pbx1)):
                (reply,) = replies[server]
                assert (reply["result"], reply["server"]) == ("completed", server), reply
                rid = rids[server]
                here = _c2c_requests(sim, rid)
                assert "POST /channels" in here and "POST /channels/create" in here, here
                assert any(p.startswith("POST /bridges") for p in here), here
                assert _c2c_requests(other, rid) == [], f"{rid} reached the other server"
            # the console's table names each request's server
            listed = ctl(address, "c2c")["text"]
            where = {line.split()[2]: line.split()[3] for line in listed.splitlines()
                     if f"t{uid}-" in line}
            assert where == {rids["pbx1"]: "pbx1", rids["pbx2"]: "pbx2"}, listed
    finally:
        stop.set()
        c2c_world.clean_up(procs, conn, channel, topology, reply_queue)
