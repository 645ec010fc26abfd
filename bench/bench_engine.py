"""Engine benchmarks: throughput (vs the raw WebSocket limit), latency, memory, resync.

    .venv/bin/python bench/bench_engine.py [--quick] [--only pipeline,mix] [--compare TREE]

`pipeline`: pre-encoded frames of plain dialplan calls; `mix`: the realistic mix, whole
inbound calls into Stasis(arimonitor) (14 events each, every call needing a `continue` from
the engine and a history row), done only when every call is continued and in SQLite.
`bus`: the mix with the events bus off, then on against the local RabbitMQ (the bus process
fed by the engine's PUB): the engine's CPU per event as a ratio, and the bus process's own. `servers`: the same frames from one server, then from two blasting at
once (two stand-ins, two readers, one engine): rate and engine CPU per event as ratios.

Figures are noisy on 2 shared cores: compare the ratios printed within one run (PERF.md).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq
from measure import cpu_seconds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from frames import STASIS_EVENTS, call_frames, frames

from arimonitor import protocol
from arimonitor.config import load_config

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp: Path, ari_url: str = "http://127.0.0.1:9/ari", sections: str = "",
                 **extra: str) -> Path:
    files = ROOT / "tests" / "data" / "fixtures" / "v27"
    text = (f"[ari]\nurl = {ari_url}\nuser = bench\npassword = bench\nping_interval = 5s\n"
            f"probe_interval = 60s\n[paths]\nvar = {tmp}/var\n"
            f"[files]\nendpoints = {extra.get('endpoints', files / 'endpoints_pjsip.def')}\n"
            f"clients = {files / '__CLIENTES__.DEF'}\nmqservers = {files / '__MQSERVERS__.DEF'}\n"
            "[logging]\nlevel = WARNING\nmetrics_interval = 3600s\n" + sections)
    path = tmp / "arimonitor.ini"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def ctl(address: str, cmd: str, timeout: float = 5.0) -> dict:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    try:
        sock.send(protocol.request("b", cmd))
        if not sock.poll(timeout * 1000):
            raise TimeoutError(cmd)
        return json.loads(sock.recv())
    finally:
        sock.close(0)


def wait_for(check, timeout: float = 30.0, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (TimeoutError, KeyError, OSError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{check} never became true")


# ---- 1. handlers in-process ------------------------------------------------------------------

def bench_in_process(n: int) -> float:
    """Handlers with the real outputs (SQLite, PUB, calls log), fed as the intake feeds them."""
    from arimonitor.engine.handlers import Handlers
    from arimonitor.engine.intake import FRAME_BUDGET
    from arimonitor.engine.notifier import Notifier
    from arimonitor.engine.outputs import EngineEffects
    from arimonitor.engine.state import State
    from arimonitor.engine.store import Store
    from arimonitor.logs import setup_line_log

    data = frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(write_config(Path(tmp)))
        state = State()
        store = Store(Path(tmp) / "db.sqlite")
        pub = zmq.Context.instance().socket(zmq.PUB)
        pub.bind(f"ipc://{tmp}/pub.sock")
        effects = EngineEffects(store, Notifier(pub), state.counters, lambda c: None,
                                setup_line_log("calls", cfg))
        handlers = Handlers(state, effects)
        t0 = time.perf_counter()
        for start in range(0, n, FRAME_BUDGET):
            effects.hold()
            for frame in data[start:start + FRAME_BUDGET]:
                handlers.apply(frame, 1.0)
            effects.release()
        elapsed = time.perf_counter() - t0
        assert state.counters.applied + state.counters.duplicate == n, state.counters.as_dict()
        assert not state.calls or len(state.calls) <= 1
        pub.close(0)
        store.close()
    return n / elapsed


# ---- 2. the whole pipeline: WebSocket -> reader -> PUSH/PULL -> engine -----------------------
#
# Three busy processes share the machine's cores: the stand-in Asterisk (ws_blaster, aiohttp),
# the reader and the engine (plus each one's ZeroMQ I/O thread). CPU seconds of each are read
# from /proc over the measured interval, so the figures say who spends what per event and what
# rate the cores could carry at best (cores / total CPU per event), not only the rate seen.

def bench_pipeline(n: int, tree: Path = ROOT, mode: str = "", sections: str = "",
                   servers: int = 1) -> dict:
    """Frames through the real processes of `tree` (a checkout: compare before/after).

    mode "stasis": whole calls into Stasis; done when every frame is applied, every call
    continued (the fake ARI counts) and every history row is in SQLite. `sections`: more of
    arimonitor.ini (e.g. `[bus] enabled`: then done also when the bus has every event confirmed).
    `servers` > 1: as many Asterisk stand-ins ([ari], [ari:pbx2]...), each with its reader,
    blasting n / servers frames each, at once."""
    if mode == "stasis":
        n -= n % (STASIS_EVENTS * servers)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ports = [free_port() for _ in range(servers)]
        procs = {(f"blaster{k}" if k else "blaster"): subprocess.Popen(
            [PY, str(HERE / "ws_blaster.py"), str(port), str(n // servers), "0", mode])
            for k, port in enumerate(ports)}
        port = ports[0]
        try:
            for p in ports:
                wait_for(lambda p=p: socket.create_connection(("127.0.0.1", p), 0.2).close() or True, 10)
            more = "".join(f"[ari:pbx{k + 1}]\nurl = http://127.0.0.1:{p}/ari\n"
                           for k, p in enumerate(ports) if k)
            ini = write_config(tmp, f"http://127.0.0.1:{port}/ari", sections + more)
            env = {**os.environ, "ARIMONITOR_CONFIG": str(ini)}
            out = open(tmp / "procs.out", "ab")  # noqa: SIM115 - lives as long as the processes
            procs["engine"] = subprocess.Popen([PY, str(tree / "procs" / "call_engine.py")], env=env,
                                               stdout=out, stderr=subprocess.STDOUT)
            if "[bus]" in sections:  # the bus process, as supervisord runs it with [bus] enabled
                procs["bus"] = subprocess.Popen([PY, str(tree / "procs" / "bus.py")], env=env,
                                                stdout=out, stderr=subprocess.STDOUT)
            for k in range(servers):
                procs[f"reader{k}" if k else "reader"] = subprocess.Popen(
                    [PY, str(tree / "procs" / "ari_reader.py"), *(["--server", str(k)] if k else [])],
                    env=env, stdout=out, stderr=subprocess.STDOUT)
            address = f"ipc://{tmp}/var/run/control.sock"
            wait_for(lambda: ctl(address, "status", 1)["data"]["link"]["state"] == "connected", 20)
            if servers > 1:
                time.sleep(2)  # the other readers' links: no per-server link view to wait on here
            import requests
            cpu0 = {name: cpu_seconds(p.pid) for name, p in procs.items()}
            for p in ports:
                requests.post(f"http://127.0.0.1:{p}/start", timeout=5)
            first = wait_for(lambda: ctl(address, "stats", 1)["data"]["counters"]["received"] > 0, 20, 0.001)
            t0 = time.perf_counter()
            wait_for(lambda: ctl(address, "stats", 1)["data"]["counters"]["received"] >= n, 120, 0.05)
            if mode == "stasis":
                calls = n // STASIS_EVENTS
                database = load_config(ini)["paths.database"]
                wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/continued", timeout=5)
                         .json()["continued"] >= calls, 120, 0.02)
                wait_for(lambda: history_rows(database) >= calls, 120, 0.02)
            # the engine's work is done here (its PUB sends included); bus on: the bus process
            # may still be confirming, which the figure at `cpu` (after the flush) counts too
            cpu_done = {name: cpu_seconds(p.pid) - cpu0[name] for name, p in procs.items()}
            if "[bus]" in sections:
                done_at = time.time()  # a report from before the end may look flushed
                wait_for(lambda: bus_flushed(ctl(address, "stats", 1)["data"].get("bus") or {}, done_at),
                         120, 0.02)
            elapsed = time.perf_counter() - t0
            cpu = {name: cpu_seconds(p.pid) - cpu0[name] for name, p in procs.items()}
            data = ctl(address, "stats")["data"]
            counters = data["counters"]
            assert counters["malformed"] == 0 and counters["frames_lost"] == 0, counters
            problem = ""
            aside = (data.get("intake") or {}).get("other_servers")
            if aside:
                problem = f"the engine set other servers' messages aside: {aside}"
            if mode == "stasis":
                done = requests.get(f"http://127.0.0.1:{port}/continued", timeout=5).json()
                rows = history_rows(database)
                if done["twice"] or counters["continue_failed"] or rows != calls:
                    # e.g. an overloaded engine lost its link: the blaster sends everything
                    # again on the new connection. A finding about that tree, not a figure.
                    problem = (f"continued twice {done['twice']}, failed {counters['continue_failed']}, "
                               f"history rows {rows} for {calls} calls, link_up {counters['link_up']}")
            engine_rate = (n - 1) / elapsed if first else 0.0
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(10)
    intake = data["intake"]
    per_message = intake["frames"] / intake["messages"] if intake.get("messages") else 1.0
    cpu_us = {name: seconds / n * 1e6 for name, seconds in cpu.items()}
    for role in ("blaster", "reader"):  # all servers' stand-ins and readers as one figure
        cpu_us[role] = sum(v for k, v in cpu_us.items() if k.startswith(role))
    return {"rate": engine_rate, "elapsed": elapsed, "per_message": per_message, "problem": problem,
            "cpu_us": cpu_us, "cpu_done_us": {name: seconds / n * 1e6 for name, seconds in cpu_done.items()},
            "bus": data.get("bus") or {}}


def bus_flushed(bus: dict, after: float) -> bool:
    """Every event the bus process took from the engine is confirmed by the broker, in a report
    made after `after` (the bus process reports every few seconds)."""
    return ((bus.get("reported") or 0) > after and bus.get("appended", 0) > 0
            and bus.get("confirmed", 0) >= bus["appended"])


def bench_bus(n: int, pairs: int = 3) -> dict:
    """The Stasis mix with the events bus off, then on against the real local RabbitMQ (its own
    exchange and queue, deleted after): the engine's CPU per event, in one run. `pairs` times
    off then on, interleaved: on two shared cores one pair's ratio swings by +-20% (two off
    runs differ that much), so the figure is the median of the pairs' ratios."""
    import uuid

    import pika

    name = f"bench-bus-{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    ch = conn.channel()
    ch.exchange_declare(name, exchange_type="topic", durable=True)
    ch.queue_declare(name)
    ch.queue_bind(name, name, routing_key="#")
    runs = []
    try:
        for _ in range(pairs):
            ch.queue_purge(name)
            off = bench_pipeline(n, mode="stasis")
            on = bench_pipeline(n, mode="stasis", sections=f"[bus]\nenabled = yes\nexchange = {name}\n")
            delivered = ch.queue_declare(name, passive=True).method.message_count
            runs.append({"off": off, "on": on, "delivered": delivered})
    finally:
        ch.queue_delete(name)
        ch.exchange_delete(name)
        conn.close()
    return runs


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def history_rows(database: str) -> int:
    import sqlite3
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        conn.close()


def bench_raw(n: int, mode: str = "") -> float:
    """The raw limit, same machine, same frames: one process receives and discards."""
    if mode == "stasis":
        n -= n % STASIS_EVENTS
    port = free_port()
    blaster = subprocess.Popen([PY, str(HERE / "ws_blaster.py"), str(port), str(n), "0", mode])
    try:
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), 0.2).close() or True, 10)
        raw = subprocess.run([PY, str(HERE / "raw_reader.py"), f"ws://127.0.0.1:{port}/ari/events",
                              f"http://127.0.0.1:{port}/start", str(n)],
                             capture_output=True, text=True, timeout=120, check=True)
        return float(raw.stdout.strip())
    finally:
        blaster.terminate()
        blaster.wait(10)


def report_pipeline(label: str, result: dict, raw_rate: float) -> None:
    cpu = result["cpu_us"]
    total = cpu["blaster"] + cpu["reader"] + cpu["engine"]
    cores = os.cpu_count() or 1
    print(f"websocket->reader->engine {label}:{result['rate']:10,.0f} events/s = "
          f"{result['rate'] / raw_rate:.0%} of raw ({result['per_message']:.1f} frames per message)")
    if result.get("problem"):
        print(f"    NOT VALID: {result['problem']}")
    print(f"    CPU per event: blaster {cpu['blaster']:.1f} us, reader {cpu['reader']:.1f} us, "
          f"engine {cpu['engine']:.1f} us = {total:.1f} us -> {cores} cores carry at most "
          f"{cores / total * 1e6:,.0f}/s; the engine alone on one core {1e6 / cpu['engine']:,.0f}/s")


# ---- 3. latency, frame received by the reader -> state applied, at a fixed rate ----------------
#
# The real path: a paced ws_blaster, the real ari-reader process, and the engine in this process
# (so each applied frame can be timed). Latency = applied time - the reader's receive time `t`
# (for a batch: the receive time of its first frame, so later frames of a batch count a little
# long, never short).

def bench_latency(rate: float, seconds: float) -> tuple[float, float, float, int, float]:
    from arimonitor.engineproc.app import Engine

    count = int(rate * seconds)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        blaster = subprocess.Popen([PY, str(HERE / "ws_blaster.py"), str(port), str(count), str(rate)])
        procs = [blaster]
        try:
            wait_for(lambda: socket.create_connection(("127.0.0.1", port), 0.2).close() or True, 10)
            ini = write_config(tmp, f"http://127.0.0.1:{port}/ari")
            cfg = load_config(ini)
            engine = Engine(cfg)
            engine.start()
            latencies: list[float] = []
            handlers = engine.handlers
            original = handlers.apply

            def apply(frame: bytes, t: float, where=()) -> None:
                original(frame, t, where)
                latencies.append(time.time() - t)

            handlers.apply = apply  # type: ignore[method-assign]
            out = open(tmp / "reader.out", "ab")  # noqa: SIM115 - lives as long as the process
            procs.append(subprocess.Popen([PY, str(ROOT / "procs" / "ari_reader.py")],
                                          env={**os.environ, "ARIMONITOR_CONFIG": str(ini)},
                                          stdout=out, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 20
            engine.loop.run(lambda: engine.link.link.get("state") == "connected"
                            or time.monotonic() > deadline)
            import requests
            requests.post(f"http://127.0.0.1:{port}/start", timeout=5)
            deadline = time.monotonic() + seconds + 30
            engine.loop.run(lambda: len(latencies) >= count or time.monotonic() > deadline)
            per_message = engine.intake.frames / max(1, engine.intake.messages)
            engine.close()
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(10)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return pick(0.50), pick(0.99), latencies[-1] * 1000, len(latencies), per_message


# ---- 4. memory: 10,000 endpoints and 2,000 concurrent calls -------------------------------------

MEMORY = r"""
import sys, os, tempfile
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from bench_engine import write_config
from frames import call_frames, contact_frame
from arimonitor.config import load_config
from arimonitor.engineproc.app import Engine
endpoints, calls = int(sys.argv[3]), int(sys.argv[4])
tmp = Path(tempfile.mkdtemp())
lines = [f"#include pjsip/{1000000 + i}.pjsip ; Endpoint:{1000000 + i} CLI:{100 + i % 50} TYPE:apartamento PW:x{i} GUID:{i:08x}-0e48-492d-9aa9-4b5b905180d0" for i in range(endpoints)]
(tmp / "eps.def").write_text("\n".join(lines) + "\n")
engine = Engine(load_config(write_config(tmp, endpoints=tmp / "eps.def")))
from arimonitor.v27.tables import load_all
cfg = engine.cfg
engine.ctx.load_files(load_all(cfg["files.endpoints"], cfg["files.clients"], cfg["files.mqservers"]))
apply = engine.handlers.apply
for i in range(endpoints):
    apply(contact_frame(str(1000000 + i), f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", 5060), 1.0)
for n in range(calls):
    for frame in call_frames(n, endpoints)[:13]:   # up to both legs in the bridge: talking
        apply(frame, 2.0)
assert len(engine.state.calls) == calls, len(engine.state.calls)
assert len(engine.state.endpoints) >= endpoints
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
print(rss / 1024)
"""


def bench_memory(endpoints: int, calls: int) -> float:
    done = subprocess.run([PY, "-c", MEMORY, str(ROOT), str(HERE), str(endpoints), str(calls)],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return float(done.stdout.strip().splitlines()[-1])


# ---- 5. resync: 10,000 endpoints and 2,000 channels -------------------------------------------

def bench_resync(endpoints: int, channels: int) -> dict:
    from arimonitor.engine import resync as R
    from arimonitor.engine.handlers import Handlers
    from arimonitor.engine.state import State
    from tests.engine.fakes import RecordingEffects

    eps = [{"technology": "PJSIP", "resource": str(1000000 + i),
            "state": "online" if i % 3 else "offline", "channel_ids": []} for i in range(endpoints)]
    chans, bridges = [], []
    for n in range(channels // 2):
        created = [json.loads(f) for f in call_frames(n, endpoints)[:13]]
        a, b = created[0]["channel"], created[3]["channel"]
        chans += [{**a, "state": "Up"}, {**b, "state": "Up"}]
        bridges.append({"id": f"bridge-{n}", "technology": "simple_bridge", "bridge_type": "mixing",
                        "bridge_class": "basic", "creator": "", "name": "",
                        "channels": [a["id"], b["id"]], "creationtime": "", "video_mode": "talker"})
    info = {"system": {"entity_id": "x"}, "status": {"startup_time": "t0"}}
    payload = json.dumps([eps, chans, bridges]).encode()
    t0 = time.perf_counter()
    json.loads(payload)
    parse = time.perf_counter() - t0
    handlers = Handlers(State(), RecordingEffects())
    snap = R.Snapshot(time.time(), info, eps, chans, bridges)
    first = R.reconcile(handlers, snap, "arimonitor")
    again = R.reconcile(handlers, R.Snapshot(time.time(), info, eps, chans, bridges), "arimonitor")
    assert first["adopted"] == channels // 2 and again["adopted"] == 0 and again["ended"] == 0
    return {"parse_s": parse, "adopt_all_s": first["engine_seconds"],
            "steady_s": again["engine_seconds"], "bytes": len(payload)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--only", default="",
                        help="comma list of: inproc,pipeline,mix,bus,servers,latency,memory,resync")
    parser.add_argument("--compare", type=Path, metavar="TREE",
                        help="also run the pipeline on another checkout (before/after in one run)")
    args = parser.parse_args()
    n = 50_000 if args.quick else 200_000
    only = (set(filter(None, args.only.split(",")))
            or {"inproc", "pipeline", "mix", "bus", "servers", "latency", "memory", "resync"})

    if "inproc" in only:
        rate = bench_in_process(n)
        print(f"handlers in-process:      {rate:10,.0f} events/s  ({n:,} frames, SQLite + PUB + calls log on)")
    if "pipeline" in only:
        raw_rate = bench_raw(n)
        print(f"raw ws recv-and-discard:  {raw_rate:10,.0f} frames/s  (one process, nothing forwarded)")
        if args.compare:
            report_pipeline(f"[{args.compare}]", bench_pipeline(n, args.compare.resolve()), raw_rate)
        report_pipeline("", bench_pipeline(n), raw_rate)
    if "mix" in only:
        # The realistic mix: its own raw figure (its frames are smaller), each call needing a
        # `continue` and a history row before it counts as done.
        raw_mix = bench_raw(n, "stasis")
        print(f"raw ws recv, Stasis mix:  {raw_mix:10,.0f} frames/s")
        if args.compare:
            report_pipeline(f"Stasis mix [{args.compare}]",
                            bench_pipeline(n, args.compare.resolve(), "stasis"), raw_mix)
        report_pipeline("Stasis mix", bench_pipeline(n, mode="stasis"), raw_mix)
    if "bus" in only:
        runs = bench_bus(n, 2 if args.quick else 3)
        for k, r in enumerate(runs, 1):
            off, on = r["off"]["cpu_us"]["engine"], r["on"]["cpu_us"]["engine"]
            bus = r["on"]["bus"]
            valid = "" if not (r["off"]["problem"] or r["on"]["problem"]) else "  NOT VALID: " + (
                r["off"]["problem"] or r["on"]["problem"])
            print(f"events bus, pair {k}:      engine {off:.1f} -> {on:.1f} us CPU/event = {on / off:.2f}x; "
                  f"{bus.get('confirmed', 0):,} bus events confirmed, {r['delivered']:,} in the queue, "
                  f"{bus.get('dropped', 0)} dropped, {bus.get('missed', 0)} missed; the bus process "
                  f"{r['on']['cpu_us'].get('bus', 0):.1f} us/event; rate {r['off']['rate']:,.0f} -> "
                  f"{r['on']['rate']:,.0f} events/s{valid}")
        ratios = [r["on"]["cpu_us"]["engine"] / r["off"]["cpu_us"]["engine"] for r in runs]
        done = [r["on"]["cpu_done_us"]["engine"] / r["off"]["cpu_done_us"]["engine"] for r in runs]
        offs = [r["off"]["cpu_us"]["engine"] for r in runs]
        print(f"events bus, Stasis mix:   engine CPU per event with the bus on = {median(ratios):.2f}x "
              f"off (median of {len(runs)} pairs, {min(ratios):.2f}-{max(ratios):.2f}; goal < 1.10x); "
              f"{median(done):.2f}x when the engine is done, before the bus has every event confirmed; "
              f"the off runs alone spread {min(offs):.1f}-{max(offs):.1f} us")
    if "servers" in only:
        # two servers blasting at once against one: the same n frames in total, same run
        one, two = bench_pipeline(n), bench_pipeline(n, servers=2)
        raw_rate = bench_raw(n)
        report_pipeline("one server", one, raw_rate)
        report_pipeline("two servers", two, raw_rate)
        print(f"two servers at once:      {two['rate']:10,.0f} events/s = {two['rate'] / one['rate']:.2f}x "
              f"one server's {one['rate']:,.0f} (goal >= 0.8x); engine CPU per event "
              f"{two['cpu_us']['engine']:.1f} us vs {one['cpu_us']['engine']:.1f} us: the engine alone "
              f"applies {one['cpu_us']['engine'] / two['cpu_us']['engine']:.2f}x its single-server rate"
              + (f"  NOT VALID: {two['problem']}" if two["problem"] else ""))
    if "latency" in only:
        p50, p99, worst, count, per_message = bench_latency(5000, 3 if args.quick else 10)
        print(f"latency at 5,000/s:       p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {worst:.2f} ms  "
              f"({count:,} frames, reader receive -> state applied, {per_message:.2f} frames per message)")
    if "memory" in only:
        rss = bench_memory(10_000, 2_000)
        print(f"memory 10k endpoints + 2k calls: {rss:.1f} MB RSS (whole engine process)")
    if "resync" in only:
        r = bench_resync(10_000, 2_000)
        print(f"resync 10k endpoints + 2k channels: engine {r['adopt_all_s'] * 1000:.0f} ms adopting all, "
              f"{r['steady_s'] * 1000:.0f} ms when equal; JSON parse {r['parse_s'] * 1000:.0f} ms "
              f"(worker thread, {r['bytes'] / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
