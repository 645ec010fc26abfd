"""A tiny fake ARI for the consumer's tests and benchmark (until the simulator's harness lands).

Only what the consumer touches, with the real answers of traces/rest_errors.txt:
  GET  /ari/endpoints/PJSIP/{id}  -> 200 {technology, resource, state, channel_ids} | 404
  POST /ari/channels              -> 200 channel | 409 channelId reused |
                                     500 {"error": "Allocation failed"} (unregistered/unknown)
Runs aiohttp on its own loop in a thread; `stop()` then `start()` again (same port) plays
"Asterisk down, then up".
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support import free_port


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    json: Any
    t: float = field(default_factory=time.monotonic)


class FakeAri:
    def __init__(self, user: str = "arimonitor", password: str = "test-secret",
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/ari"
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.endpoints: dict[str, str] = {}  # id -> online|offline; absent = unknown to Asterisk
        self.channels: dict[str, dict] = {}
        self.seen: list[Seen] = []
        self.fail_next = 0  # answer this many originates with 503
        self.originate_delay = 0.0  # seconds each originate takes (in-flight work for SIGTERM)
        self.fail_alloc: set[str] = set()  # online for GET, yet the originate fails (500)
        # Originates after the first `hold_after` wait (in flight, unanswered) until release():
        # a test can stop the consumer with work in flight whatever the machine's speed.
        self.hold_after: int | None = None
        self.held = 0  # originates waiting at that gate now
        self._admitted = 0
        self._released = threading.Event()
        self.lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # ---- control --------------------------------------------------------------------------

    def register(self, *ids: str, state: str = "online") -> None:
        with self.lock:
            for endpoint in ids:
                self.endpoints[endpoint] = state

    def originates(self, channel_id: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == "POST" and s.path == "/ari/channels"
                    and (channel_id is None or s.params.get("channelId") == channel_id)]

    def release(self) -> None:
        """Let the held originates (and every later one) go on."""
        self._released.set()

    def hangup_all(self) -> None:
        with self.lock:
            self.channels.clear()

    # ---- server ---------------------------------------------------------------------------

    def start(self) -> FakeAri:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_get("/ari/endpoints/{tech}/{resource}", self._endpoint)
            app.router.add_post("/ari/channels", self._originate)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fake-ari", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake ARI did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    # ---- handlers -------------------------------------------------------------------------

    def _record(self, request: web.Request, body: Any) -> bool:
        with self.lock:
            self.seen.append(Seen(request.method, request.path, dict(request.query), body))
        return request.headers.get("Authorization") == self._auth

    async def _endpoint(self, request: web.Request) -> web.Response:
        if not self._record(request, None):
            return web.json_response({"message": "Authentication required"}, status=401)
        resource = request.match_info["resource"]
        with self.lock:
            state = self.endpoints.get(resource)
            channel_ids = [c for c, ch in self.channels.items() if ch["endpoint"] == resource]
        if state is None:
            return web.json_response({"message": "Endpoint not found"}, status=404)
        return web.json_response({"technology": request.match_info["tech"], "resource": resource,
                                  "state": state, "channel_ids": channel_ids})

    async def _gate(self) -> None:
        if self.hold_after is None or self._released.is_set():
            return
        with self.lock:
            self._admitted += 1
            hold = self._admitted > self.hold_after
            self.held += hold
        if not hold:
            return
        try:
            while not self._released.is_set():
                await asyncio.sleep(0.01)
        finally:
            with self.lock:
                self.held -= 1

    async def _originate(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        if self.originate_delay:
            await asyncio.sleep(self.originate_delay)
        await self._gate()
        if not self._record(request, body):
            return web.json_response({"message": "Authentication required"}, status=401)
        params = request.query
        tech, _, resource = params.get("endpoint", "").partition("/")
        channel_id = params.get("channelId") or f"{time.time():.6f}"
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return web.json_response({"message": "Service Unavailable"}, status=503)
            if channel_id in self.channels:
                return web.json_response({"message": "Channel with given unique ID already exists"},
                                         status=409)
            if (tech != "PJSIP" or self.endpoints.get(resource) != "online"
                    or resource in self.fail_alloc):
                return web.json_response({"error": "Allocation failed"}, status=500)
            channel = {"id": channel_id, "name": f"PJSIP/{resource}-00000001", "state": "Down",
                       "endpoint": resource}
            self.channels[channel_id] = channel
        return web.json_response({k: v for k, v in channel.items() if k != "endpoint"})
