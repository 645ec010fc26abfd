"""The engine's components through the real processes: recording policy + transcoder pool,
click-to-call from RabbitMQ to the reply queue, `arictl watch`, the manager port.

One stack for the module (sim in-process with time_scale, engine, reader, transcoder_00,
clicktocall), each test on its own endpoints so they do not see each other's calls.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mutagen.mp3
import pika
import pytest

from arimonitor.clicktocall import broker
from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, outputs, start_stack, write_config
from tests.support import (
    PYTHON,
    ROOT,
    Processes,
    eventually,
    eventually_assert,
    free_port,
)

pytestmark = pytest.mark.timeout(90)

ENDPOINTS = {
    "101": ["1013010", "1013015", "1013020", "1013030", "1013031"],  # gravar=S
    "120": ["1203000", "1203001", "1203002", "1203003"],            # gravar=N
}
CLIENTS = "[101]\nnome=Grava Sempre\ngravar=S\nmax_chamadas=8\n\n[120]\nnome=Nunca Grava\ngravar=N\n"
OFFLINE = "1013020"  # listed, never registered


@dataclass
class World:
    sim: SimServer
    tmp: Path
    ini: Path
    address: str
    cfg: dict[str, str]
    topology: broker.Topology
    channel: Any
    reply_queue: str

    def ctl(self, cmd: str, *args: str) -> Any:
        reply = ctl(self.address, cmd, *args)
        assert reply["status"] == "ok", reply
        return reply["data"]

    def logs(self) -> str:
        return outputs(self.tmp)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("it")
    uid = uuid.uuid4().hex[:10]
    topology = broker.Topology.for_queue(f"it-c2c-{uid}", f"it-c2c-results-{uid}")
    (tmp / "__CLIENTES__.DEF").write_text(CLIENTS, encoding="utf-8")
    (tmp / "endpoints_pjsip.def").write_text("".join(
        f"#include pjsip/{e}.pjsip ; Endpoint:{e} CLI:{client} TYPE:apartamento PW:pw{e}\n"
        for client, ids in ENDPOINTS.items() for e in ids), encoding="utf-8")
    (tmp / "__MQSERVERS__.DEF").write_text(
        f"[principal]\nhost=127.0.0.1\nport=5672\nuser=guest\npassword=guest\nvhost=/\nqueue={topology.queue}\n",
        encoding="utf-8")
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    channel = conn.channel()
    broker.declare(channel, topology)
    reply_queue = channel.queue_declare("", exclusive=True).method.queue
    procs = Processes()
    all_ids = [e for ids in ENDPOINTS.values() for e in ids]
    try:
        with SimServer(endpoints=all_ids, time_scale=0.2) as sim:
            manager_port = free_port()
            ini = write_config(
                tmp, sim,
                paths={"recordings": str(sim.recordings)},
                files={"endpoints": str(tmp / "endpoints_pjsip.def"), "clients": str(tmp / "__CLIENTES__.DEF"),
                       "mqservers": str(tmp / "__MQSERVERS__.DEF")},
                console={"manager_port": str(manager_port)},
                clicktocall={"results_exchange": topology.results_exchange, "default_timeout": "10s"})
            start_stack(procs, ini, tmp, extra=(("transcoder.py", "--name", "transcoder_00"), ("clicktocall.py",)))
            w = World(sim, tmp, ini, control_address(tmp), {"manager_port": str(manager_port),
                                                             "mp3": str(tmp / "var" / "mp3")},
                      topology, channel, reply_queue)

            def ready() -> bool:
                try:
                    status = ctl(w.address, "status", timeout=1)["data"]
                except TimeoutError:
                    return False  # not bound yet (imports take a while on a loaded machine)
                jobs = ctl(w.address, "jobs", timeout=1)["data"]
                consumers = channel.queue_declare(topology.queue, passive=True).method.consumer_count
                return status["link"]["state"] == "connected" and jobs["workers_alive"] >= 1 and consumers >= 1

            try:
                eventually(ready, timeout=30, interval=0.2)
            except (AssertionError, TimeoutError) as exc:
                raise AssertionError(f"stack not ready: {exc}\n{outputs(tmp)}") from None
            for n, ep in enumerate(all_ids):
                if ep != OFFLINE:
                    sim.control.register(ep, ip=f"10.1.0.{n + 1}", port=5060)

            def registered() -> None:
                states = {e["id"]: e["state"] for e in ctl(w.address, "_engine_endpoints")["data"]}
                assert [e for e, s in states.items() if s != "online"] == [OFFLINE], states
            eventually_assert(registered, timeout=10)
            yield w
    finally:
        procs.kill_all()
        try:
            broker.delete_topology(channel, topology)
        finally:
            conn.close()


def history_row(world: World, caller_channel: str) -> dict:
    def ended() -> dict:
        rows = [r for r in world.ctl("history") if caller_channel in r["channels"] or r["id"] == caller_channel]
        assert rows, "call not in history yet"
        return rows[0]
    return eventually_assert(ended, timeout=15)


def rest_paths(world: World, call_id: str) -> list[str]:
    return [r["path"] for r in world.sim.control.requests() if call_id in r["path"] or
            call_id in json.dumps(r.get("params") or {})]


# ---- 1. recording policy + transcoder pool ----------------------------------------------------

def test_gravar_S_call_ends_as_a_tagged_mp3_and_gravar_N_call_is_not_recorded(world):
    c = world.sim.control
    c.behaviour("1013010", talk=10.0)  # 2 s of wall time at time_scale 0.2
    caller = c.call("1013010", "1013015")
    row = history_row(world, caller)
    call_id = row["id"]
    assert (row["client"], row["origin"], row["destination"]) == ("101", "1013010", "1013015")

    def listed() -> dict:
        recs = [r for r in world.ctl("recordings", "101")["recordings"] if call_id in r["name"]]
        assert recs and recs[0]["job_state"] == "done", (recs, world.ctl("jobs"))
        return recs[0]
    rec = eventually_assert(listed, timeout=20)
    mp3 = Path(rec["mp3"])
    assert mp3.is_file() and mp3.is_relative_to(world.cfg["mp3"]), rec
    assert mp3.relative_to(world.cfg["mp3"]).parts[0] == "101"
    # snooped (the dialplan call never enters Stasis), spy=both, into our app
    snoops = [r for r in c.requests() if r["path"].endswith("/snoop")]
    assert any(r["params"].get("spy") == "both" and r["params"].get("app") == world.sim.app
               and r["status"] == 200 and caller in r["path"] for r in snoops), snoops

    audio = mutagen.mp3.MP3(mp3)
    assert audio.info.length == pytest.approx(row["billsec"], abs=0.6), (audio.info.length, row)
    tags = {f.desc: str(f.text[0]) for f in audio.tags.getall("TXXX")}
    assert tags["client"] == "101" and tags["call_id"] == call_id
    assert (tags["origin"], tags["destination"]) == ("1013010", "1013015")
    assert str(audio.tags["TIT2"]) == "1013010 -> 1013015"
    # artist/album: the client's nome=, and the date with the time of the call
    assert str(audio.tags["TPE1"]) == str(audio.tags["TALB"]) == "Grava Sempre"  # 101 nome= here
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", str(audio.tags["TDRC"]))

    # gravar=N: the call goes through, nothing is asked of Asterisk, nothing is written
    caller_n = c.call("1203000", "1203001")
    row_n = history_row(world, caller_n)
    assert row_n["client"] == "120" and row_n["billsec"] > 0
    assert not [p for p in rest_paths(world, row_n["id"]) if "snoop" in p or "record" in p]
    jobs = world.ctl("jobs", "--state", "done")["jobs"] + world.ctl("jobs", "--state", "pending")["jobs"]
    assert not [j for j in jobs if j["client"] == "120" or row_n["id"] in j["wav"]], jobs
    assert not list(Path(world.sim.recordings).rglob(f"*{row_n['id']}*"))
    assert not list(Path(world.cfg["mp3"]).rglob("120*")) and not (Path(world.cfg["mp3"]) / "120").exists()
    assert world.ctl("recordings", "120")["recordings"] == []


# ---- 2. click-to-call from RabbitMQ to the reply queue -----------------------------------------

def publish(world: World, body: dict, correlation_id: str) -> None:
    props = pika.BasicProperties(reply_to=world.reply_queue, correlation_id=correlation_id,
                                 delivery_mode=2, content_type="application/json")
    world.channel.basic_publish("", world.topology.queue, json.dumps(body).encode(), props)


def reply_for(world: World, correlation_id: str, timeout: float = 20) -> dict:
    got: dict[str, dict] = {}

    def arrived() -> dict:
        while True:
            method, props, body = world.channel.basic_get(world.reply_queue, auto_ack=True)
            if method is None:
                break
            got[props.correlation_id] = json.loads(body)
        assert correlation_id in got, f"no reply for {correlation_id} yet ({sorted(got)})"
        return got[correlation_id]
    try:
        return eventually_assert(arrived, timeout=timeout, interval=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{world.logs()}") from None


def test_click_to_call_end_to_end_and_a_refusal(world):
    rid, corr = f"it-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    publish(world, {"request_id": rid, "client": "101", "origin": "1013030", "destination": "1013031"}, corr)

    def connected() -> dict:
        data = world.ctl("c2c", rid)
        assert "connected" in [e[0] for e in data["events"]], data
        return data
    eventually_assert(connected, timeout=15)
    world.sim.control.hangup(f"c2c-{rid}-a")

    final = reply_for(world, corr)
    assert (final["request_id"], final["event"], final["result"]) == (rid, "final", "completed"), final
    assert final["duration"] is not None and final["duration"] >= 0
    shown = world.ctl("c2c", rid)
    assert shown["result"] == "completed"
    assert [e[0] for e in shown["events"]][-2:] == ["connected", "final"]
    assert (shown["origin"], shown["destination"]) == ("1013030", "1013031")
    listing = ctl(world.address, "c2c")["text"]
    row = next(line for line in listing.splitlines() if rid in line)
    assert "1013030" in row and "1013031" in row and "completed" in row

    # gravar=S: the flow recorded its own bridge; the recording policy stayed out of it
    assert final["recording"] and final["recording"].endswith(f"c2c-{rid}")
    assert not [r for r in world.sim.control.requests()
                if r["path"].endswith("/snoop") and f"c2c-{rid}" in r["path"]]
    names = [r["name"] for r in world.ctl("recordings", "101")["recordings"] if rid in r["name"]]
    assert names == [final["recording"]], names

    # origin not registered: refused by the consumer, the reply still comes back
    rid2, corr2 = f"it-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    publish(world, {"request_id": rid2, "client": "101", "origin": OFFLINE, "destination": "1013031"}, corr2)
    refused = reply_for(world, corr2)
    assert (refused["request_id"], refused["result"]) == (rid2, "refused"), refused
    assert "offline" in refused["reason"] or "unreachable" in refused["reason"], refused
    assert not [r for r in world.sim.control.requests()
                if r["method"] == "POST" and r["path"] == "/ari/channels" and rid2 in json.dumps(r["params"])]


# ---- 3. arictl watch ----------------------------------------------------------------------------

class Watch:
    def __init__(self, ini: Path, *args: str) -> None:
        self.proc = subprocess.Popen([PYTHON, str(ROOT / "bin" / "arictl"), *args], cwd=ROOT,
                                     env={"ARIMONITOR_CONFIG": str(ini), "PATH": "/usr/bin:/bin"},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors)):
            threading.Thread(target=lambda s=stream, k=sink: [k.append(x.rstrip("\n")) for x in s],
                             daemon=True).start()

    def stop(self) -> int:
        self.proc.send_signal(2)
        try:
            return self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def test_arictl_watch_prints_a_readable_line_for_a_real_call(world):
    watch = Watch(world.ini, "watch", "call")
    try:
        eventually(lambda: any(e.startswith("watching") for e in watch.errors), timeout=10)
        # the SUB joins asynchronously: a call that rings for a moment lets it connect first
        world.sim.control.behaviour("1203003", answer_after=2.5)
        caller = world.sim.control.call("1203002", "1203003")
        row = history_row(world, caller)

        def seen() -> list[str]:
            ended = [x for x in watch.lines if " call.ended " in f" {x} " and row["id"] in x]
            assert ended, watch.lines
            return ended
        (line,) = eventually_assert(seen, timeout=10)
        assert line[:8].count(":") == 2  # HH:MM:SS
        assert " call.ended 120 1203002 -> 1203003 " in line, line
        assert "cause=16" in line and "reason=hangup" in line and "created=" not in line, line
        up = [x for x in watch.lines if " call.up 120 1203002 -> 1203003" in x]
        assert up and "duration" not in up[0], watch.lines
    finally:
        assert watch.stop() == 0


# ---- 4. manager port ----------------------------------------------------------------------------

def test_manager_port_of_the_real_engine_answers_status(world):
    with socket.create_connection(("127.0.0.1", int(world.cfg["manager_port"])), timeout=5) as sock:
        sock.sendall(b"status\n")
        data = b""
        deadline = time.monotonic() + 10
        while b"--END COMMAND--" not in data and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    text = data.decode()
    assert text.startswith("OK\n"), text
    assert "--END COMMAND--" in text and "connected" in text, text


def test_status_sees_the_transcoder_and_clicktocall_processes(world):
    # status reports every other process: the worker's hellos and the consumer's _report
    def seen():
        text = ctl(world.address, "status")["text"]
        return "transcoder: 1 alive (transcoder_00)" in text and "clicktocall: seen" in text and text
    eventually(seen, timeout=20)
