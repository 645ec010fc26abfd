"""A bench-only ARI stand-in: WebSocket /ari/events sends N unique frames once a client is
connected, plus the four REST answers the engine's resync needs. aiohttp, in its own process.

    python bench/ws_blaster.py PORT COUNT [RATE]   # RATE: frames/s, sleep-paced; default flat out
    python bench/ws_blaster.py PORT COUNT 0 stasis # the realistic mix: whole calls into Stasis

In the stasis mode COUNT is rounded down to whole calls; `POST /ari/channels/{id}/continue`
answers 204 the first time and 409 after (a channel leaves Stasis once, as in Asterisk), and
`GET /continued` says how many channels were continued and how many twice.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import STASIS_EVENTS, frames, stasis_call_frames

INFO = {"system": {"version": "22.10.1", "entity_id": "02:fc:00:00:00:01"},
        "status": {"startup_time": "2026-11-24T21:21:10.138+0000"}}


async def main(port: int, count: int, rate: float = 0.0, mode: str = "") -> None:
    if mode == "stasis":
        count -= count % STASIS_EVENTS
        data = [f.decode() for f in frames(count, make=stasis_call_frames)]
    else:
        data = [f.decode() for f in frames(count)]
    go = asyncio.Event()
    continued: set[str] = set()
    twice = [0]

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        await go.wait()
        t0 = time.perf_counter()
        for i, frame in enumerate(data):
            if rate:
                ahead = t0 + i / rate - time.perf_counter()
                if ahead > 0.0005:  # sleep-paced, not a busy loop: the others need the cores
                    await asyncio.sleep(ahead)
            await ws.send_str(frame)
            if not i % 2000:
                await asyncio.sleep(0)
        while not ws.closed:
            await asyncio.sleep(0.5)
        return ws

    async def start(_request: web.Request) -> web.Response:
        go.set()
        return web.json_response({"ok": True})

    async def info(_r):
        return web.json_response(INFO)

    async def empty(_r):
        return web.json_response([])

    async def continue_(request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        if channel in continued:
            twice[0] += 1
            return web.json_response({"message": "Channel not in Stasis application"}, status=409)
        continued.add(channel)
        return web.Response(status=204)

    async def count_continued(_r):
        return web.json_response({"continued": len(continued), "twice": twice[0]})

    app = web.Application()
    app.router.add_get("/ari/events", events)
    app.router.add_post("/start", start)
    app.router.add_post("/ari/channels/{channel}/continue", continue_)
    app.router.add_get("/continued", count_continued)
    app.router.add_get("/ari/asterisk/info", info)
    for path in ("/ari/endpoints", "/ari/channels", "/ari/bridges"):
        app.router.add_get(path, empty)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0,
                     sys.argv[4] if len(sys.argv) > 4 else ""))
