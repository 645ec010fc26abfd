"""A click-to-call flood through the whole real tree (simulator, engine, reader, clicktocall,
one transcoder when the calls are recorded) on a private RabbitMQ node, and what came of it:
shared by the fault run (kill -9 of each program and a broker restart), the broker restart
alone and the full-disk run.

    with Flood(tmp_path, node, "fault") as flood:
        flood.start()
        for i in range(n):
            flood.send(i)          # paced at `rate` per second
        figures = flood.measure(wait=90)

Every request message is expected to get exactly one final reply (repeats dropped by
message_id), no request rings twice, every call placed is one history row of the real call
(origin -> destination when it talked), every recording becomes an MP3.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pika

from arimonitor.clicktocall import broker
from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, start_stack
from tests.hostile import c2c_world
from tests.rabbit_node import RabbitNode
from tests.support import Processes, eventually

CLIENT = "[901]\nnome=Flood\ngravar={record}\nmax_chamadas=1000\n"
TRANSCODER = ("transcoder.py", "--name", "transcoder_00")
SCRIPTS = {"engine": ("call_engine.py",), "reader": ("ari_reader.py",),
           "clicktocall": ("clicktocall.py",), "transcoder": TRANSCODER}


@dataclass
class Figures:
    requests: int
    placed: dict[str, int]
    results: dict[str, int]
    lost: list[str]
    doubled: list[str]
    rang_twice: list[str]
    wrong: dict[str, str]          # leg A id -> what is wrong with its history row(s)
    wavs: list[str]
    unconverted: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self, title: str) -> str:
        extra = "".join(f", {k} {v}" for k, v in self.extra.items())
        return (f"{title}: {self.requests} requests{extra}, {len(self.placed)} placed, "
                f"results {dict(self.results)}, lost {len(self.lost)}, doubled replies "
                f"{len(self.doubled)}, rang twice {len(self.rang_twice)}, not exactly one history "
                f"row {len(self.wrong)}, recordings {len(self.wavs)}, unconverted {len(self.unconverted)}")

    def wrong_lines(self) -> str:
        return "".join(f"{k}: {why}\n" for k, why in sorted(self.wrong.items()))


def unconverted(database: Path, wavs: list[str]) -> list[str]:
    """The finished recordings (WAVs) with no MP3 job done for them."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        done = {row[0] for row in db.execute("SELECT wav FROM transcode_jobs WHERE state='done'")}
    finally:
        db.close()
    return [w for w in wavs if w not in done]


def history_problems(rows: list[dict], legs_a: list[str], truth: dict) -> dict[str, str]:
    """Leg A id -> what is wrong with its call in history: not exactly one row (a row under
    either leg, or holding either as a member), or, for a call that talked, not origin ->
    destination."""
    found = defaultdict(list)
    for row in rows:
        members = row.get("channels") or []
        members = json.loads(members) if isinstance(members, str) else members
        for cid in {c if c.endswith("-a") else c[:-2] + "-a" for c in set(members) | {row.get("id") or ""}
                    if c.startswith("c2c-")}:
            found[cid].append(row)
    wrong = {}
    for leg_a in legs_a:
        origin, destination, talked = truth[leg_a]
        got = found.get(leg_a, [])
        if len(got) != 1:
            wrong[leg_a] = f"{len(got)} row(s): " + ", ".join(
                f"{r.get('id')} {r.get('origin')} -> {r.get('destination')}" for r in got)
        elif talked and (got[0].get("origin"), got[0].get("destination")) != (origin, destination):
            wrong[leg_a] = (f"{got[0].get('origin')} -> {got[0].get('destination')} "
                            f"({got[0].get('end_reason')}), truth {origin} -> {destination}")
    return wrong


class Flood:
    def __init__(self, tmp_path: Path, node: RabbitNode, name: str, rate: float, *,
                 phones: int = 20, record: bool = True) -> None:
        """`phones` origins calling as many destinations; `record`: every call recorded, and a
        transcoder runs (else neither)."""
        self.tmp, self.node, self.rate = tmp_path, node, rate
        self.origins = [f"90100{i:02d}" for i in range(phones)]
        self.destinations = [f"90200{i:02d}" for i in range(phones)]
        self.record = record
        self.var = tmp_path / "var"  # everything the tree writes (a small disk may be mounted there)
        self.uid = uuid.uuid4().hex[:10]
        self.topology = broker.Topology.for_queue(f"{name}-{self.uid}", f"{name}-results-{self.uid}")
        self.reply_queue = ""
        self.procs = Processes()
        self.stop = threading.Event()
        self.seen: dict[str, set] = defaultdict(set)  # correlation id -> {(message_id, result)}
        self.publisher = c2c_world.Publisher(node, self.topology.queue)
        self.corrs: list[str] = []
        self.sim: Any = None
        self.started: dict[str, Any] = {}
        self.ini = tmp_path / "arimonitor.ini"
        self.address = control_address(tmp_path)
        self.began = 0.0

    def __enter__(self) -> Self:
        try:
            self._set_up()
        except BaseException:
            self.__exit__(None, None, None)  # what was made before the failure goes too
            raise
        return self

    def _set_up(self) -> None:
        files = c2c_world.write_files(self.tmp, self.topology,
                                      CLIENT.format(record="S" if self.record else "N"),
                                      self.origins + self.destinations,
                                      rabbit_port=self.node.port)
        conn, _channel, self.reply_queue = c2c_world.declare(
            self.topology, f"{self.topology.queue}-replies", rabbit_port=self.node.port,
            durable_replies=True)
        conn.close()  # this connection would only die in a broker restart
        self.sim = SimServer(endpoints=self.origins + self.destinations, time_scale=0.1).__enter__()
        self.placements = c2c_world.Placements(self.sim)
        c2c_world.config(self.tmp, self.sim, files, self.topology, default_timeout="10s",
                         retry_delay="500ms", sections={
                             "paths": {"var": str(self.var), "recordings": str(self.sim.recordings)},
                             "transcoder": {"workers": "1"}})

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.publisher.close()
        self.procs.kill_all()
        if self.sim is not None:
            self.sim.__exit__(None, None, None)
        if self.reply_queue:
            c2c_world.drop_topology(self.node, self.topology, self.reply_queue)

    # ---- the run ------------------------------------------------------------------------------

    def start(self) -> None:
        """The tree up, every phone registered, the web system's replies and people at work."""
        self.started = start_stack(self.procs, self.ini, self.tmp,
                                   extra=(("clicktocall.py",), TRANSCODER) if self.record
                                   else (("clicktocall.py",),))

        def ready() -> bool:
            try:
                status = ctl(self.address, "status", timeout=1)["data"]
            except TimeoutError:
                return False
            return (status["link"]["state"] == "connected"
                    and c2c_world.consumers(self.node, self.topology.queue) >= 1)
        eventually(ready, timeout=30, interval=0.2)
        for n, ep in enumerate(self.origins + self.destinations):
            self.sim.control.register(ep, ip=f"10.9.0.{n + 1}", port=5060)
        eventually(lambda: sum(e["state"] == "online" for e in
                               ctl(self.address, "_engine_endpoints")["data"]) == 2 * len(self.origins),
                   timeout=45)
        threading.Thread(target=c2c_world.collect_replies,
                         args=(self.node, self.reply_queue, self.seen, self.stop), daemon=True).start()
        threading.Thread(target=c2c_world.hang_up_connected, args=(self.sim, self.stop),
                         daemon=True).start()
        self.began = time.monotonic()

    def restart(self, name: str) -> None:
        """kill -9 of one program, started again as supervisord would."""
        proc = self.started[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        script, *args = SCRIPTS[name]
        self.started[name] = self.procs.python(f"procs/{script}", *args,
                                               env={"ARIMONITOR_CONFIG": str(self.ini)},
                                               log=self.tmp / "out" / f"{name}.restarted.out")

    def send(self, i: int) -> None:
        """Request i, published with confirms, then wait for the pace."""
        corr = f"m{i}-{uuid.uuid4().hex[:6]}"
        body = {"request_id": f"f{self.uid}-{i}", "client": "901",
                "origin": self.origins[i % len(self.origins)],
                "destination": self.destinations[i % len(self.origins)], "timeout": 5}
        self.publisher.publish(body, pika.BasicProperties(reply_to=self.reply_queue,
                                                          correlation_id=corr, delivery_mode=2))
        self.corrs.append(corr)
        if i % 100 == 99:
            self.placements.look()  # before the simulator's request log turns over
        time.sleep(max(0.0, self.began + (i + 1) / self.rate - time.monotonic()))

    # ---- what came of it ----------------------------------------------------------------------

    def measure(self, wait: float, recordings_wait: float) -> Figures:
        """Wait (up to `wait` s for replies, `recordings_wait` s for MP3s), then count."""
        corrs, seen = self.corrs, self.seen
        try:
            eventually(lambda: all(seen.get(c) for c in corrs), timeout=wait, interval=0.5)
        except AssertionError:
            pass  # the figures say what is missing
        placed = self.placements.look()
        phones = len(self.origins)
        truth = {f"c2c-f{self.uid}-{i}-a": (self.origins[i % phones], self.destinations[i % phones],
                                            any(r.startswith("completed/") for _m, r in seen.get(c, ())))
                 for i, c in enumerate(corrs)}

        def wrong() -> dict[str, str]:
            rows = ctl(self.address, "history", limit="10000")["data"]
            rows = rows if isinstance(rows, list) else rows.get("calls", [])
            return history_problems(rows, [k for k in placed if k in truth], truth)
        # the final reply may go out (leg A gone) a moment before leg B's end files the call
        try:
            eventually(lambda: wrong() == {}, timeout=20, interval=0.5)
        except AssertionError:
            pass
        wavs = sorted(str(w) for w in self.sim.recordings.rglob("*.wav"))
        database = self.var / "arimonitor.sqlite"
        # A recording that finished while the engine was down (its RecordingFinished lost with
        # a kill -9) is found by the rescan after the resync once its WAV has settled (10 s
        # unchanged, looked at every 5 s): up to ~20 s after the restart.
        try:
            eventually(lambda: unconverted(database, wavs) == [], timeout=recordings_wait, interval=0.5)
        except AssertionError:
            pass
        results: dict[str, int] = defaultdict(int)
        for c in corrs:
            for _mid, result in seen.get(c, ()):
                results[result.split("/")[0]] += 1
        return Figures(
            requests=len(corrs), placed=placed, results=results,
            lost=[c for c in corrs if not seen.get(c)],
            doubled=[c for c in corrs if len({mid for mid, _ in seen.get(c, ())}) > 1],
            rang_twice=[k for k, n in placed.items() if n > 1],
            wrong=wrong(), wavs=wavs, unconverted=unconverted(database, wavs))
