#!/usr/bin/env python3
"""Click-to-call benchmark: RabbitMQ queue -> consumer process -> originate accepted by the sim.

    .venv/bin/python bench/bench_clicktocall.py [--requests 3000] [--rate 100] [--seconds 10]

Runs the real processes: the ARI simulator (procs/ari_sim.py) and the consumer
(procs/clicktocall.py), against the RabbitMQ on 127.0.0.1:5672, with unique queue names that
are deleted at the end. Measures:
  1. baseline: raw pika publish -> consume -> ack with no work (same broker, same run);
  2. throughput: a pre-filled queue drained by the consumer; originates/s as the simulator
     received them (first to last POST /channels);
  3. latency at a paced rate: publish time -> the simulator receiving the originate, p50/p99.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measure import cpu_seconds, percentile

from arimonitor.clicktocall import broker
from arimonitor.sim.testing import Control
from tests.support import free_port

ORIGINS = [f"90000{i:02d}" for i in range(50)]
PASSWORD = uuid.uuid4().hex


def write_files(tmp: Path, queue: str) -> dict[str, str]:
    (tmp / "__CLIENTES__.DEF").write_text("[900]\nnome=Bench\nmax_chamadas=1000000\nativo=S\n")
    (tmp / "endpoints_pjsip.def").write_text("".join(
        f"#include pjsip/{e}.pjsip ; Endpoint:{e} CLI:900 TYPE:apartamento\n"
        for e in ORIGINS + ["1123000"]))
    (tmp / "__MQSERVERS__.DEF").write_text(
        f"[principal]\nhost=127.0.0.1\nport=5672\nuser=guest\npassword=guest\nvhost=/\nqueue={queue}\n")
    (tmp / "arimonitor.ini").write_text(f"[paths]\nvar = {tmp / 'var'}\n")
    return {
        "ARIMONITOR_CONFIG": str(tmp / "arimonitor.ini"),
        "ARIMONITOR_FILES_MQSERVERS": str(tmp / "__MQSERVERS__.DEF"),
        "ARIMONITOR_FILES_CLIENTS": str(tmp / "__CLIENTES__.DEF"),
        "ARIMONITOR_FILES_ENDPOINTS": str(tmp / "endpoints_pjsip.def"),
        "ARIMONITOR_ARI_PASSWORD": PASSWORD,
        "ARIMONITOR_ZMQ_PUBLISH": f"ipc://{tmp}/publish.sock",
        "ARIMONITOR_SIM_DEMO_TRAFFIC": "no",
    }


def start(script: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "procs" / script)],
                            env={**os.environ, **env}, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, RuntimeError, ValueError):  # not up yet
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def request(rid: str, i: int) -> bytes:
    return json.dumps({"request_id": rid, "client": "900", "origin": ORIGINS[i % len(ORIGINS)],
                       "destination": "1123000", "timeout": 60}).encode()


def originates(control: Control) -> list[dict]:
    return [r for r in control.requests() if r["method"] == "POST" and r["path"] == "/channels"]


def baseline(channel, n: int) -> float:
    """Raw pika: n messages published, then consumed and acked one by one; messages/s."""
    queue = f"bench-raw-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, durable=True)
    for i in range(n):
        channel.basic_publish("", queue, request(f"raw-{i}", i), pika.BasicProperties(delivery_mode=2))
    channel.basic_qos(prefetch_count=50)
    got = 0
    started = time.perf_counter()

    def on_message(ch, method, _props, _body):
        nonlocal got
        ch.basic_ack(method.delivery_tag)
        got += 1
        if got == n:
            ch.stop_consuming()

    channel.basic_consume(queue, on_message)
    channel.start_consuming()
    rate = n / (time.perf_counter() - started)
    channel.queue_delete(queue)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-c2c-"))
    queue = f"bench-c2c-{uuid.uuid4().hex[:8]}"
    topology = broker.Topology.for_queue(queue, f"{queue}.results")
    env = write_files(tmp, queue)
    sim_port = free_port()
    env.update({"ARIMONITOR_SIM_PORT": str(sim_port), "ARIMONITOR_SIM_AMI_PORT": str(free_port()),
                "ARIMONITOR_ARI_URL": f"http://127.0.0.1:{sim_port}/ari"})
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    ch = conn.channel()
    broker.declare(ch, topology)
    sim = start("ari_sim.py", env, tmp / "sim.log")
    consumer = None
    try:
        control = Control(f"http://127.0.0.1:{sim_port}")
        wait_for(control.state, 15, "the simulator")
        for endpoint in ORIGINS + ["1123000"]:
            control.register(endpoint)
            # Ring for a long time: calls stay up (409 stays meaningful) and cost the sim little.
            control.behaviour(endpoint, mode="noanswer")

        raw = baseline(ch, args.requests)
        print(f"baseline raw pika publish->consume->ack: {raw:8.0f} msg/s ({args.requests} msgs)")

        # ---- throughput: pre-filled queue ------------------------------------------------------
        props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        for i in range(args.requests):
            ch.basic_publish("", queue, request(f"tp-{i}", i), props)
        control.clear_requests()
        sim_cpu = cpu_seconds(sim.pid)
        consumer = start("clicktocall.py", env, tmp / "clicktocall.log")
        got = wait_for(lambda: (o := originates(control)) and len(o) >= args.requests and o,
                       120, f"{args.requests} originates")
        span = got[-1]["t"] - got[0]["t"]
        rate = (len(got) - 1) / span if span > 0 else float("inf")
        print(f"click-to-call queue->originate accepted:  {rate:8.0f} req/s "
              f"({len(got)} originates in {span:.2f} s; {rate / raw:.2f} x baseline)")
        print(f"  CPU during the drain: consumer {cpu_seconds(consumer.pid):.1f} s (incl. start-up), "
              f"simulator {cpu_seconds(sim.pid) - sim_cpu:.1f} s")

        # ---- latency at a paced rate -----------------------------------------------------------
        control.clear_requests()
        total = int(args.rate * args.seconds)
        published: dict[str, float] = {}
        started = time.perf_counter()
        for i in range(total):
            due = started + i / args.rate
            while (now := time.perf_counter()) < due:
                time.sleep(min(0.002, due - now))
            rid = f"lat-{i}"
            published[rid] = time.time()
            ch.basic_publish("", queue, request(rid, i), props)
        got = wait_for(lambda: (o := originates(control)) and len(o) >= total and o, 60,
                       f"{total} paced originates")
        latencies = [(r["t"] - published[r["params"]["channelId"][4:-2]]) * 1000 for r in got]
        print(f"latency at {args.rate:.0f}/s ({total} requests): p50 {percentile(latencies, 50):.1f} ms"
              f"  p99 {percentile(latencies, 99):.1f} ms  max {max(latencies):.1f} ms")
        ledger = tmp / "var" / "clicktocall.sqlite"
        print(f"(consumer log and ledger in {tmp}; ledger {ledger.stat().st_size // 1024} KiB)")
    finally:
        if consumer is not None:
            stop(consumer)
        stop(sim)
        broker.delete_topology(ch, topology)
        conn.close()


if __name__ == "__main__":
    main()
