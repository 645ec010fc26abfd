"""Composition root: the PBX, its REST and WebSocket front, the control API, start and stop."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web

from arimonitor.sim import control, rest
from arimonitor.sim.calls import Calls
from arimonitor.sim.core import Pbx
from arimonitor.sim.dialplan import Dialplan
from arimonitor.sim.faults import Faults
from arimonitor.sim.hub import writer
from arimonitor.sim.media import Media
from arimonitor.sim.state import AriError

log = logging.getLogger("arimonitor.sim")
ENDPOINT_ID = re.compile(r"Endpoint:\s*([^\s;]+)", re.IGNORECASE)
CLI = re.compile(r"CLI:\s*([^\s;]+)", re.IGNORECASE)
BAD_REQUEST_HTML = ('<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n'
                    "<title>400 Bad Request</title>\r\n</head><body>\r\n<h1>Bad Request</h1>\r\n"
                    "<p>Invalid application provided in route.</p>\r\n<hr />\r\n</body></html>\r\n")


def endpoints_from_def(path: str | Path) -> list[tuple[str, str]]:
    """(endpoint id, CLI) from a v2.7 endpoints_pjsip.def; the full loader lives in arimonitor.v27."""
    found: list[tuple[str, str]] = []
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        match = ENDPOINT_ID.search(line)
        if match:
            cli = CLI.search(line)
            found.append((match.group(1), cli.group(1) if cli else ""))
    return found


class Sim:
    """One simulated Asterisk: ARI REST + /ari/events + /_sim control on one port."""

    def __init__(self, user: str, password: str, app: str = "arimonitor",
                 recordings: str | Path = "recordings", endpoints: list[Any] | None = None,
                 seed: int = 1, time_scale: float = 1.0) -> None:
        self.user, self.password = user, password
        self.initial = {"app": app, "recordings": recordings, "endpoints": list(endpoints or []),
                            "seed": seed, "time_scale": time_scale}
        self.requests: deque[dict[str, Any]] = deque(maxlen=20000)
        self.faults = Faults()
        self.runner: web.AppRunner | None = None
        self.site: web.TCPSite | None = None
        self.host, self.port = "127.0.0.1", 0
        self.tasks: set[asyncio.Task] = set()
        self.demo = None
        self.load = None
        self.phase = ""  # "" | rest.SHUTTING_DOWN | DOWN | BOOTING: a restart's phases
        self._build()

    def _build(self) -> None:
        init = self.initial
        self.pbx = Pbx(init["app"], init["recordings"], seed=init["seed"], time_scale=init["time_scale"])
        for item in init["endpoints"]:
            resource, cli = (item, "") if isinstance(item, str) else tuple(item)
            self.pbx.add_endpoint(resource, cli)
        self.media = Media(self.pbx)
        self.calls = Calls(self.pbx, self.media)
        self.calls.stasis_delay = self.faults.stasis_delay
        self.dialplan = Dialplan(self.pbx, self.calls)

    def reset(self) -> None:
        """Back to the state at start; WebSockets stay connected."""
        old = self.pbx
        old.restart()
        hub = old.hub
        self.stop_scenarios()
        self._build()
        hub.log.clear()
        hub.entity_id = self.pbx.entity_id
        self.pbx.hub = hub  # keep the connected WebSockets
        self.requests.clear()
        self.faults.clear()

    def stop_scenarios(self) -> None:
        for name in ("demo", "load"):
            scenario = getattr(self, name)
            if scenario is not None:
                scenario.stop()
                setattr(self, name, None)

    def spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # ---- applications ------------------------------------------------------------------
    def application_json(self, name: str) -> dict[str, Any]:
        if name not in self.pbx.hub.apps:
            raise AriError(404, "Application not found")
        channels = [c.id for c in self.pbx.channels.values() if c.app == name]
        bridges = [b.id for b in self.pbx.bridges.values() if b.app == name]
        return self.pbx.hub.apps[name].json(channels, bridges)

    def subscription(self, name: str, source: str | None, add: bool) -> dict[str, Any]:
        if name not in self.pbx.hub.apps:
            raise AriError(404, "Application not found")
        if not source:
            raise AriError(400, "Missing parameter eventSource")
        for item in source.split(","):
            scheme, _, rest_ = item.partition(":")
            if scheme not in ("channel", "bridge", "endpoint", "deviceState"):
                raise AriError(400, "Invalid event source URI scheme")
            exists = {
                "channel": rest_ in self.pbx.channels,
                "bridge": rest_ in self.pbx.bridges,
                "endpoint": rest_.upper() == "PJSIP" or rest_.split("/", 1)[-1] in self.pbx.endpoints,
                "deviceState": bool(rest_),
            }[scheme]
            if not exists:
                raise AriError(422, "Event source does not exist")
            subs = self.pbx.hub.apps[name].subscriptions
            if add:
                subs.add(item)
            else:
                subs.discard(item)
        return self.application_json(name)

    # ---- WebSocket ---------------------------------------------------------------------
    async def events(self, request: web.Request) -> web.StreamResponse:
        if not rest.authorized(self, request):
            return rest.unauthorized()
        app = request.query.get("app", "")
        if not app:
            return web.Response(status=400, text=BAD_REQUEST_HTML, content_type="text/html")
        subscribe_all = request.query.get("subscribeAll", "").lower() in ("true", "1", "yes")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        conn = self.pbx.hub.attach(ws, app.split(",")[0], subscribe_all)
        log.info("WebSocket for app %s (subscribeAll=%s)", conn.app, subscribe_all)
        write = asyncio.get_running_loop().create_task(writer(conn))
        try:
            async for _msg in ws:
                pass  # Asterisk ignores what clients send on /ari/events
        finally:
            conn.queue.put_nowait(None)
            self.pbx.hub.detach(conn)
            await write
        return ws

    # ---- lifecycle -----------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[control.loopback_only, rest.make_middleware(self)])
        app.router.add_get("/ari/events", self.events)
        app.on_response_prepare.append(_server_header)
        app.add_routes(control.routes(self))
        app.add_routes(rest.routes(self))
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await self.runner.setup()
        self.host = host
        await self._listen(port)
        return self.port

    async def _listen(self, port: int) -> None:
        self.site = web.TCPSite(self.runner, self.host, port, reuse_address=True)
        await self.site.start()
        sockets = self.site._server.sockets if self.site._server else []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def restart(self, down_for: float = 0.5, shutting_down: float = 0.0,
                      booting: float = 0.0) -> None:
        """Asterisk restarts: sockets close, nothing listens for `down_for` s, state is new.

        `core restart now` on a real Asterisk 22 with calls up: REST answers 503 "Shutdown in
        progress" (an HTML page) for about a second while the WebSocket stays open, then
        connections are refused, then for a moment 503 {"message": "Asterisk not booted"}.
        `shutting_down` and `booting` are those two phases, in seconds (0: skipped).
        """
        if shutting_down > 0:
            self.phase = rest.SHUTTING_DOWN
            await asyncio.sleep(shutting_down)
        await self.pbx.hub.drop_all()
        self.pbx.restart()
        self.phase = rest.DOWN
        if self.site is not None:
            await self.site.stop()
        await asyncio.sleep(down_for)
        self.phase = rest.BOOTING if booting > 0 else ""
        await self._listen(self.port)
        if booting > 0:
            await asyncio.sleep(booting)
            self.phase = ""

    async def stop(self) -> None:
        self.stop_scenarios()
        self.pbx.restart()
        await self.pbx.hub.drop_all()
        for task in list(self.tasks):
            task.cancel()
        if self.runner is not None:
            await self.runner.cleanup()


async def _server_header(_request: web.Request, response: web.StreamResponse) -> None:
    # Asterisk names itself on every HTTP answer; the engine and reader use it to tell
    # "this is Asterisk, refusing us" from "this is some other server on the port".
    response.headers["Server"] = "Asterisk/22.10.1 (arimonitor simulator)"
