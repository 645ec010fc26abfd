"""An in-process ARI simulator for tests of any arimonitor part.

    from arimonitor.sim.testing import SimServer

    with SimServer(endpoints=["1013010", "1123000"], password="s3cret") as sim:
        sim.url            # "http://127.0.0.1:PORT/ari"  (REST base, as in ari.url)
        sim.ws_url         # "ws://127.0.0.1:PORT/ari/events?app=arimonitor&subscribeAll=true"
        sim.user, sim.password, sim.app, sim.ami_port, sim.recordings (Path)
        c = sim.control    # a Control: the /_sim/ API over HTTP
        c.register("1013010", ip="10.0.0.5", port=5060, qualify=False)
        c.unregister("1013010"); c.reachable("1013010", False)
        c.behaviour("1123000", mode="busy")   # answer | busy | noanswer | dead; answer_after=, timeout_cause=, talk=
        cid = c.call("1013010", "1123000")    # dialplan call (never in Stasis); returns caller channel id
        cid = c.call("1013010", "5551234")    # any other number: into the Stasis app
        c.hangup(cid, cause=16)               # the phone hangs up
        c.requests()                          # REST requests received: t, method, path, params, status, body
        c.events()                            # events emitted (without asterisk_id/application)
        c.push_event({"type": "ChannelCreated", ...})
        c.drop_websocket(); c.restart(down_for=0.5); c.malformed("not_json", count=1)
        c.restart(down_for=0.3, shutting_down=1.0, booting=0.1, wait=False)  # 503 phases first
        c.stasis_delay(0.5, count=1, channel="c2c-")  # StasisStart comes late: the race
        c.rest_fault(status=503, count=2, path="/channels"); c.rest_fault(seconds=2.0)  # slow
        c.recording_fail(count=1); c.clear_faults()
        c.load(endpoints=100, calls_per_second=20); c.load_stop(); c.blast(100000)
        c.demo(True); c.config(time_scale=0.05); c.state(); c.reset()

The server runs on its own event loop in a daemon thread and binds to 127.0.0.1 only. With
`ami=True` it also answers AMI PJSIPShowContacts on `ami_port` (same user and password).
`time_scale` shrinks every sim-side delay (ring times, Wait(), originate timeouts).
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any, Self

import requests

from arimonitor.sim.ami import AmiServer
from arimonitor.sim.server import Sim


class Control:
    """Client of the sim's control API (/_sim/), for a SimServer or a real sim process."""

    def __init__(self, base: str, timeout: float = 10.0) -> None:
        self.base = base.rstrip("/")  # http://127.0.0.1:PORT
        self.http = requests.Session()
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.base}/_sim/{path}", json=body, timeout=self.timeout)
        if response.status_code >= 400:
            raise RuntimeError(f"sim control {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")

    def reset(self) -> None:
        self._call("POST", "reset")

    def config(self, **settings: Any) -> None:
        self._call("POST", "config", settings)

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "requests")

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def events(self) -> list[dict[str, Any]]:
        return self._call("GET", "events")

    def push_event(self, *events: dict[str, Any]) -> None:
        self._call("POST", "events", list(events))

    def add_endpoint(self, resource: str, cli: str = "") -> None:
        self._call("POST", "endpoints", {"resource": resource, "cli": cli})

    def register(self, resource: str, ip: str = "127.0.0.1", port: int = 5060, qualify: bool = False,
                 user_agent: str = "arimonitor-sim") -> dict[str, Any]:
        return self._call("POST", f"endpoints/{resource}/register",
                          {"ip": ip, "port": port, "qualify": qualify, "user_agent": user_agent})

    def unregister(self, resource: str) -> dict[str, Any]:
        return self._call("POST", f"endpoints/{resource}/unregister")

    def reachable(self, resource: str, reachable: bool) -> dict[str, Any]:
        return self._call("POST", f"endpoints/{resource}/reachable", {"reachable": reachable})

    def behaviour(self, resource: str, **behaviour: Any) -> dict[str, Any]:
        return self._call("POST", f"endpoints/{resource}/behaviour", behaviour)

    def call(self, source: str, number: str, app: str | None = None) -> str:
        body = {"from": source, "to": number}
        if app:
            body["app"] = app
        return self._call("POST", "calls", body)["channel_id"]

    def hangup(self, channel_id: str, cause: int = 16) -> None:
        self._call("POST", f"channels/{channel_id}/hangup", {"cause": cause})

    def drop_websocket(self) -> int:
        return self._call("POST", "faults", {"kind": "drop_websocket"})["dropped"]

    def restart(self, down_for: float = 0.5, shutting_down: float = 0.0, booting: float = 0.0,
                wait: bool = True) -> str | None:
        """Restart; `wait=False` returns at once (entity id None) so a test sees each phase."""
        return self._call("POST", "faults", {"kind": "restart", "down_for": down_for,
                                             "shutting_down": shutting_down, "booting": booting,
                                             "wait": wait})["entity_id"]

    def stasis_delay(self, seconds: float, count: int = -1, channel: str = "") -> None:
        """StasisStart of channels (ids starting with `channel`) comes `seconds` late."""
        self._call("POST", "faults", {"kind": "stasis_delay", "seconds": seconds, "count": count,
                                      "channel": channel})

    def malformed(self, frame: str = "not_json", count: int = 1) -> int:
        return self._call("POST", "faults", {"kind": "malformed", "frame": frame, "count": count})["sent"]

    def rest_fault(self, status: int = 0, seconds: float = 0.0, count: int = -1, path: str = "") -> None:
        kind = "rest_error" if status else "rest_delay"
        self._call("POST", "faults", {"kind": kind, "status": status, "seconds": seconds,
                                      "count": count, "path": path})

    def recording_fail(self, count: int = 1) -> None:
        self._call("POST", "faults", {"kind": "recording_fail", "count": count})

    def clear_faults(self) -> None:
        self._call("POST", "faults", {"kind": "clear"})

    def load(self, endpoints: int = 100, calls_per_second: float = 10, talk: float = 2.0) -> dict:
        return self._call("POST", "load", {"endpoints": endpoints, "calls_per_second": calls_per_second,
                                           "talk": talk})

    def load_stop(self) -> dict:
        return self._call("DELETE", "load")

    def blast(self, events: int, app: str | None = None) -> None:
        self._call("POST", "blast", {"events": events, "app": app})

    def demo(self, enabled: bool = True) -> None:
        self._call("POST", "demo", {"enabled": enabled})


class SimServer:
    """Context manager: a Sim on an ephemeral loopback port, in a background thread."""

    def __init__(self, port: int = 0, endpoints: list[Any] | None = None, password: str | None = None,
                 user: str = "arimonitor", app: str = "arimonitor", recordings: str | Path | None = None,
                 seed: int = 1, time_scale: float = 1.0, ami: bool = False) -> None:
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.app = app
        self._tmp = None
        if recordings is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="arisim-rec-")
            recordings = self._tmp.name
        self.recordings = Path(recordings)
        self.sim = Sim(user, self.password, app, self.recordings, endpoints, seed, time_scale)
        self._want_port, self._want_ami = port, ami
        self.port = 0
        self.ami_port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ari"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ari/events?app={self.app}&subscribeAll=true"

    def start(self) -> SimServer:
        self._thread = threading.Thread(target=self._main, name="arisim", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error:
            raise RuntimeError(f"simulator did not start: {self._error!r}")
        self.control = Control(self.base)
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.port = await self.sim.start("127.0.0.1", self._want_port)
        ami = None
        if self._want_ami:
            ami = AmiServer(lambda: self.sim.pbx, self.user, self.password)
            self.ami_port = await ami.start("127.0.0.1", 0)
        self._ready.set()
        await self._stop.wait()
        if ami is not None:
            await ami.stop()
        await self.sim.stop()

    def call_in_loop(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the sim's loop (direct state access for white-box tests)."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
