"""Engine benchmarks: throughput (vs the raw WebSocket limit), latency, memory, resync.

    .venv/bin/python bench/bench_engine.py [--quick]

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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from frames import call_frames, frames

from arimonitor import protocol
from arimonitor.config import load_config

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp: Path, ari_url: str = "http://127.0.0.1:9/ari", **extra: str) -> Path:
    files = ROOT.parent / "shared" / "fixtures" / "v27"
    text = (f"[ari]\nurl = {ari_url}\nuser = bench\npassword = bench\nping_interval = 5s\n"
            f"probe_interval = 60s\n[paths]\nvar = {tmp}/var\n"
            f"[files]\nendpoints = {extra.get('endpoints', files / 'endpoints_pjsip.def')}\n"
            f"clients = {files / '__CLIENTES__.DEF'}\nmqservers = {files / '__MQSERVERS__.DEF'}\n"
            "[logging]\nlevel = WARNING\nmetrics_interval = 3600s\n")
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
    from arimonitor.engine.effects import RecordingEffects  # noqa: F401 - shape reference
    from arimonitor.engine.handlers import Handlers
    from arimonitor.engine.notifier import Notifier
    from arimonitor.engine.outputs import EngineEffects
    from arimonitor.engine.state import State
    from arimonitor.engine.store import Store

    data = frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        state = State()
        store = Store(Path(tmp) / "db.sqlite")
        pub = zmq.Context.instance().socket(zmq.PUB)
        pub.bind(f"ipc://{tmp}/pub.sock")
        handlers = Handlers(state, EngineEffects(store, Notifier(pub), state.counters, lambda c: None))
        t0 = time.perf_counter()
        for frame in data:
            handlers.apply(frame, 1.0)
        elapsed = time.perf_counter() - t0
        assert state.counters.applied + state.counters.duplicate == n, state.counters.as_dict()
        assert not state.calls or len(state.calls) <= 1
        pub.close(0)
        store.close()
    return n / elapsed


# ---- 2. the whole pipeline: WebSocket -> reader -> PUSH/PULL -> engine -----------------------

def bench_pipeline(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        blaster = subprocess.Popen([PY, str(HERE / "ws_blaster.py"), str(port), str(n)])
        procs = [blaster]
        try:
            wait_for(lambda: socket.create_connection(("127.0.0.1", port), 0.2).close() or True, 10)
            ini = write_config(tmp, f"http://127.0.0.1:{port}/ari")
            env = {**os.environ, "ARIMONITOR_CONFIG": str(ini)}
            out = open(tmp / "procs.out", "ab")  # noqa: SIM115 - lives as long as the processes
            for proc in ("call_engine.py", "ari_reader.py"):
                procs.append(subprocess.Popen([PY, str(ROOT / "procs" / proc)], env=env,
                                              stdout=out, stderr=subprocess.STDOUT))
            address = f"ipc://{tmp}/var/run/control.sock"
            wait_for(lambda: ctl(address, "status", 1)["data"]["link"]["state"] == "connected", 20)
            import requests
            requests.post(f"http://127.0.0.1:{port}/start", timeout=5)
            first = wait_for(lambda: ctl(address, "stats", 1)["data"]["counters"]["received"] > 0, 20, 0.001)
            t0 = time.perf_counter()
            wait_for(lambda: ctl(address, "stats", 1)["data"]["counters"]["received"] >= n, 120, 0.02)
            elapsed = time.perf_counter() - t0
            counters = ctl(address, "stats")["data"]["counters"]
            assert counters["malformed"] == 0 and counters["frames_lost"] == 0, counters
            engine_rate = (n - 1) / elapsed if first else 0.0
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(10)
        # the raw limit, same machine, same frames: receive and discard
        port = free_port()
        blaster = subprocess.Popen([PY, str(HERE / "ws_blaster.py"), str(port), str(n)])
        try:
            wait_for(lambda: socket.create_connection(("127.0.0.1", port), 0.2).close() or True, 10)
            raw = subprocess.run([PY, str(HERE / "raw_reader.py"), f"ws://127.0.0.1:{port}/ari/events",
                                  f"http://127.0.0.1:{port}/start", str(n)],
                                 capture_output=True, text=True, timeout=120, check=True)
            raw_rate = float(raw.stdout.strip())
        finally:
            blaster.terminate()
            blaster.wait(10)
    return engine_rate, raw_rate


# ---- 3. latency, frame received by the reader -> state applied, at a fixed rate ----------------

SENDER = r"""
import sys, time, zmq, json
sys.path[:0] = [sys.argv[1]]
from frames import frames
from arimonitor import protocol
addr, rate, count = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
data = frames(count)
sock = zmq.Context().socket(zmq.PUSH); sock.connect(addr)
time.sleep(0.5)
t0 = time.perf_counter()
for i, frame in enumerate(data, 1):
    target = t0 + i / rate
    ahead = target - time.perf_counter()
    if ahead > 0.0005:  # sleep-paced (not a busy loop: the engine needs the other core)
        time.sleep(ahead)
    sock.send_multipart(protocol.ari_frame("bench", 1, i, frame, time.time()))
sock.close(linger=2000)
"""


def bench_latency(rate: float, seconds: float) -> tuple[float, float, float, float]:
    from arimonitor.engine.app import Engine

    count = int(rate * seconds)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cfg = load_config(write_config(tmp))
        engine = Engine(cfg)
        engine.start()
        latencies: list[float] = []
        handlers = engine.handlers
        original = handlers.apply

        def apply(frame: bytes, t: float, where=()) -> None:
            original(frame, t, where)
            latencies.append(time.time() - t)

        handlers.apply = apply  # type: ignore[method-assign]
        sender = subprocess.Popen([PY, "-c", SENDER, str(HERE), cfg["zmq.events"], str(rate), str(count)])
        deadline = time.monotonic() + seconds + 30
        engine.loop.run(lambda: len(latencies) >= count or time.monotonic() > deadline)
        sender.wait(10)
        engine.close()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return pick(0.50), pick(0.99), latencies[-1] * 1000, len(latencies)


# ---- 4. memory: 10,000 endpoints and 2,000 concurrent calls -------------------------------------

MEMORY = r"""
import sys, os, tempfile
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from bench_engine import write_config
from frames import call_frames, contact_frame
from arimonitor.config import load_config
from arimonitor.engine.app import Engine
endpoints, calls = int(sys.argv[3]), int(sys.argv[4])
tmp = Path(tempfile.mkdtemp())
lines = [f"#include pjsip/{1000000 + i}.pjsip ; Endpoint:{1000000 + i} CLI:{100 + i % 50} TYPE:apartamento PW:x{i} GUID:{i:08x}-0e48-492d-9aa9-4b5b905180d0" for i in range(endpoints)]
(tmp / "eps.def").write_text("\n".join(lines) + "\n")
engine = Engine(load_config(write_config(tmp, endpoints=tmp / "eps.def")))
from arimonitor.v27.tables import load_all
cfg = engine.cfg
engine.services.load_files(load_all(cfg["files.endpoints"], cfg["files.clients"], cfg["files.mqservers"]))
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
    from arimonitor.engine.effects import RecordingEffects
    from arimonitor.engine.handlers import Handlers
    from arimonitor.engine.state import State

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
    args = parser.parse_args()
    n = 50_000 if args.quick else 200_000

    rate = bench_in_process(n)
    print(f"handlers in-process:      {rate:10,.0f} events/s  ({n:,} frames, SQLite + PUB on)")
    engine_rate, raw_rate = bench_pipeline(n)
    print(f"websocket->reader->engine:{engine_rate:10,.0f} events/s  (frame to applied state)")
    print(f"raw ws recv-and-discard:  {raw_rate:10,.0f} frames/s  -> pipeline = {engine_rate / raw_rate:.0%} of raw")
    p50, p99, worst, count = bench_latency(5000, 3 if args.quick else 10)
    print(f"latency at 5,000/s:       p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {worst:.2f} ms  ({count:,} frames)")
    rss = bench_memory(10_000, 2_000)
    print(f"memory 10k endpoints + 2k calls: {rss:.1f} MB RSS (whole engine process)")
    r = bench_resync(10_000, 2_000)
    print(f"resync 10k endpoints + 2k channels: engine {r['adopt_all_s'] * 1000:.0f} ms adopting all, "
          f"{r['steady_s'] * 1000:.0f} ms when equal; JSON parse {r['parse_s'] * 1000:.0f} ms "
          f"(worker thread, {r['bytes'] / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
