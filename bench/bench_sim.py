#!/usr/bin/env python3
"""How fast the simulator's load can feed an ARI reader, against a baseline in the same run.

Baseline: a bare aiohttp WebSocket server sending the same pre-encoded frames in a loop, read by
websocket-client (skip_utf8_validation, as the ari-reader does) and discarded. Then the sim's
blast (pre-encoded realistic events through its hub and per-connection writer) and its load
mode (real call state machine: registrations, dialplan calls) read the same way. Each server
runs in its own process (one core); the reader in this one.

    .venv/bin/python bench/bench_sim.py [--events 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import websocket

from arimonitor.sim.scenarios import blast_frames
from tests.sim.wsclient import basic_auth

PASSWORD = "bench-" + os.urandom(6).hex()


def _baseline_server(port_q: multiprocessing.Queue, count: int) -> None:
    from aiohttp import web

    frames = blast_frames("arimonitor", "02:fc:00:00:00:01")

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for i in range(count):
            await ws.send_str(frames[i % len(frames)])
        await ws.close()
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ari/events", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_q.put(site._server.sockets[0].getsockname()[1])
        await asyncio.sleep(3600)

    asyncio.run(main())


def _sim_server(port_q: multiprocessing.Queue) -> None:
    from arimonitor.sim.testing import SimServer

    server = SimServer(password=PASSWORD, time_scale=0.01).start()
    port_q.put(server.port)
    time.sleep(3600)


def _read(url: str, count: int, user: str = "arimonitor", start=None) -> float:
    ws = websocket.create_connection(url, header={"Authorization": basic_auth(user, PASSWORD)},
                                     skip_utf8_validation=True, timeout=30)
    if start:
        start()
    got = 0
    first = 0.0
    while got < count:
        frame = ws.recv()
        if not frame:
            break
        if got == 0:
            first = time.perf_counter()
        got += 1
    elapsed = time.perf_counter() - first
    ws.close()
    return got / elapsed if elapsed > 0 else 0.0


def _spawn(target, *args) -> tuple[multiprocessing.Process, int]:
    q: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=target, args=(q, *args), daemon=True)
    proc.start()
    return proc, q.get(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--load-seconds", type=float, default=3.0)
    args = parser.parse_args()
    n = args.events

    proc, port = _spawn(_baseline_server, n)
    base = _read(f"ws://127.0.0.1:{port}/ari/events?app=arimonitor", n)
    proc.terminate()

    proc, port = _spawn(_sim_server)
    from arimonitor.sim.testing import Control

    control = Control(f"http://127.0.0.1:{port}")
    url = f"ws://127.0.0.1:{port}/ari/events?app=arimonitor&subscribeAll=true"
    blast = _read(url, n, start=lambda: control.blast(n))

    # load mode: the real state machine, as many calls per second as it can take
    ws = websocket.create_connection(url, header={"Authorization": basic_auth("arimonitor", PASSWORD)},
                                     skip_utf8_validation=True, timeout=5)
    control.load(endpoints=1000, calls_per_second=1000, talk=0.5)
    got, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.load_seconds:
        ws.recv()
        got += 1
    load_rate = got / (time.perf_counter() - t0)
    control.load_stop()
    ws.close()
    proc.terminate()

    print(f"baseline  aiohttp send_str -> websocket-client recv : {base:>10,.0f} events/s")
    print(f"sim blast (pre-encoded, through the hub)            : {blast:>10,.0f} events/s "
          f"({blast / base:.0%} of baseline)")
    print(f"sim load mode (call state machine, 1000 endpoints)  : {load_rate:>10,.0f} events/s "
          f"({load_rate / base:.0%} of baseline)")
    print(f"target: >= 50,000 events/s from one core -> {'met' if blast >= 50_000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
