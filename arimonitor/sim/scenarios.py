"""Traffic: the demo mode, the load mode and the pre-encoded blast for benchmarks.

All choices come from the PBX's seeded random generator, so a run is repeatable.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from arimonitor.sim.shapes import ari_time
from arimonitor.sim.state import ANSWER, BUSY, NOANSWER, AriError, Behaviour, Channel

if TYPE_CHECKING:
    from arimonitor.sim.server import Sim

DEMO_ENDPOINTS = [f"10130{i:02d}" for i in range(10, 30)]


class Demo:
    """Steady, varied traffic for `arimonitor demo`: registrations, IP changes, calls answered,
    busy or unanswered, calls into the Stasis app (which the engine may record)."""

    def __init__(self, sim: Sim, mean_interval: float = 1.5) -> None:
        self.sim = sim
        self.mean_interval = mean_interval
        self.task: asyncio.Task | None = None
        self.actions = 0

    def start(self) -> None:
        if not self.sim.pbx.endpoints:
            for resource in DEMO_ENDPOINTS:
                self.sim.pbx.add_endpoint(resource, f"Demo {resource}")
        self.task = self.sim.spawn(self._run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _ip(self) -> tuple[str, int]:
        rng = self.sim.pbx.rng
        return f"10.{rng.randrange(1, 20)}.{rng.randrange(0, 255)}.{rng.randrange(2, 254)}", rng.choice(
            [5060, 5062, 5080, 34567])

    async def _run(self) -> None:
        pbx = self.sim.pbx
        rng = pbx.rng
        # most phones are already up when the demo starts
        for ep in list(pbx.endpoints.values()):
            if rng.random() < 0.7 and not ep.registered:
                pbx.register(ep.resource, *self._ip())
                await asyncio.sleep(0.05 * pbx.time_scale)
        while True:
            await asyncio.sleep(rng.uniform(0.3, 2 * self.mean_interval) * pbx.time_scale)
            try:
                self._step()
            except AriError:
                pass  # e.g. a phone that went away between choice and call
            self.actions += 1

    def _step(self) -> None:
        pbx = self.sim.pbx
        rng = pbx.rng
        online = [e for e in pbx.endpoints.values() if e.registered]
        offline = [e for e in pbx.endpoints.values() if not e.registered]
        roll = rng.random()
        if roll < 0.12 and offline:
            pbx.register(rng.choice(offline).resource, *self._ip())
        elif roll < 0.18 and len(online) > 3:
            pbx.unregister(rng.choice(online).resource)
        elif roll < 0.22 and online:
            pbx.register(rng.choice(online).resource, *self._ip())  # the phone moved
        elif roll < 0.35 and online:
            caller = rng.choice(online)
            cid = self.sim.dialplan.into_stasis(caller.resource, str(rng.randrange(5550000, 5559999)),
                                                pbx.default_app)
            pbx.later(rng.uniform(8, 25), self._caller_leaves, cid)
        elif len(online) >= 2:
            caller, callee = rng.sample(online, 2)
            mode = rng.choices([ANSWER, BUSY, NOANSWER], [6, 2, 2])[0]
            callee.behaviour = Behaviour(mode=mode, answer_after=rng.uniform(1, 6),
                                         talk=rng.uniform(5, 40))
            caller.behaviour.talk = callee.behaviour.talk
            self.sim.dialplan.dial_endpoint(caller.resource, callee.resource)

    def _caller_leaves(self, channel_id: str) -> None:
        if channel_id in self.sim.pbx.channels:
            self.sim.calls.remote_hangup(channel_id, 16)


class Load:
    """N registered endpoints and M dialplan calls per second between random pairs."""

    def __init__(self, sim: Sim, endpoints: int, calls_per_second: float, talk: float = 2.0) -> None:
        self.sim = sim
        self.n = endpoints
        self.rate = calls_per_second
        self.talk = talk
        self.calls = 0
        self.skipped = 0
        self.started = 0.0
        self.task: asyncio.Task | None = None

    def describe(self) -> dict[str, Any]:
        return {"endpoints": self.n, "calls_per_second": self.rate, "calls": self.calls,
                "skipped": self.skipped}

    def start(self) -> None:
        pbx = self.sim.pbx
        self.names = [f"9{i:06d}" for i in range(self.n)]
        for i, name in enumerate(self.names):
            pbx.add_endpoint(name, f"Load {i}")
            ep = pbx.endpoints[name]
            ep.behaviour = Behaviour(mode=ANSWER, answer_after=0.2, talk=self.talk)
            if not ep.registered:
                pbx.register(name, f"10.99.{i // 250}.{i % 250 + 2}", 5060)
        self.started = time.monotonic()
        self.task = self.sim.spawn(self._run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        rng = self.sim.pbx.rng
        tick = 0.01
        while True:
            await asyncio.sleep(tick)
            due = int((time.monotonic() - self.started) * self.rate) - self.calls
            if due > self.rate * 0.1:
                # the loop is saturated: skip the backlog rather than starve REST and control
                self.skipped += due
                self.started = time.monotonic() - self.calls / self.rate
                due = max(1, int(self.rate * tick))
            for _ in range(max(0, due)):
                caller, callee = rng.sample(self.names, 2)
                try:
                    self.sim.dialplan.dial_endpoint(caller, callee)
                except AriError:
                    pass
                self.calls += 1


def blast_frames(app: str, entity_id: str, calls: int = 50) -> list[str]:
    """Pre-encoded frames of realistic ARI events (a dialplan call's life), for benchmarks."""
    frames = []
    for n in range(calls):
        ch = Channel(id=f"1795555000.{n}", name=f"PJSIP/90000{n % 10}-{n:08x}", tech="PJSIP",
                     resource=f"90000{n % 10}", state="Ring", protocol_id=f"{n}-4242@10.0.0.1",
                     context="from-endpoints", exten="5551234")
        bodies = [("ChannelCreated", {}), ("ChannelVarset", {"variable": "SIPDOMAIN", "value": "10.0.0.1"}),
                  ("ChannelDialplan", {"dialplan_app": "NoOp", "dialplan_app_data": "Call"}),
                  ("ChannelStateChange", {}), ("ChannelHangupRequest", {"cause": 16}),
                  ("ChannelDestroyed", {"cause": 16, "cause_txt": "Normal Clearing"})]
        for kind, fields in bodies:
            if kind == "ChannelStateChange":
                ch.state = "Up"
            body = {"type": kind, "timestamp": ari_time(), **fields, "channel": ch.json(),
                    "asterisk_id": entity_id, "application": app}
            frames.append(json.dumps(body, separators=(",", ":")))
    return frames


async def blast(sim: Sim, count: int, app: str | None = None) -> int:
    """Send `count` pre-encoded frames to every connection (of `app`), with back-pressure."""
    hub = sim.pbx.hub
    conns = [c for c in hub.connections if c.active and (app is None or c.app == app)]
    if not conns:
        return 0
    frames = blast_frames(conns[0].app, hub.entity_id)
    sent = 0
    while sent < count:
        for conn in conns:
            while conn.queue.qsize() > 20000 and conn.active:
                await asyncio.sleep(0.002)
        batch = min(5000, count - sent)
        for i in range(sent, sent + batch):
            frame = frames[i % len(frames)]
            for conn in conns:
                conn.queue.put_nowait(frame)
        sent += batch
        await asyncio.sleep(0)
    return sent
