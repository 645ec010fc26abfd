"""The engine program's composition root: builds every part, wires them, runs the loop.

Components (transcoder pool, click-to-call flow, manager port) plug in with one line in
COMPONENTS: a factory `(api) -> component`, where `api` is the engine's door
(`engine/api.py` `EngineApi`, implemented by `engine/door.py`), the same object console
commands get as `ctx`. A component may have `register_commands(registry)`, `start()` and
`close()`.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from arimonitor import protocol
from arimonitor.ari.ami import AmiClient
from arimonitor.ari.contacts import cli_contacts
from arimonitor.ari.rest import AriRest
from arimonitor.bus.component import BusComponent
from arimonitor.clicktocall.ari_http import LeanAri
from arimonitor.clicktocall.component import ClickToCallComponent
from arimonitor.commands import build_registry
from arimonitor.commands.manager import ManagerComponent
from arimonitor.config import Config
from arimonitor.curve import RefusalWatch, secure_engine_socket
from arimonitor.engine import resync as R
from arimonitor.engine.door import EngineDoor
from arimonitor.engine.handlers import Handlers
from arimonitor.engine.intake import Intake
from arimonitor.engine.link import AriAuth, LinkMonitor
from arimonitor.engine.loop import Loop, Worker
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.outputs import EngineEffects, dialplan_continuer
from arimonitor.engine.probe import Probe, ProbeStats
from arimonitor.engine.queries import Queries
from arimonitor.engine.readiness import EVENT_TYPES as READINESS_EVENTS
from arimonitor.engine.readiness import Readiness
from arimonitor.engine.rest_pool import RestPool
from arimonitor.engine.resyncer import Resyncer
from arimonitor.engine.state import RemoteIp, State
from arimonitor.engine.store import Store
from arimonitor.engineproc.control import ControlServer
from arimonitor.engineproc.metricsline import MetricsLine
from arimonitor.logs import setup_line_log
from arimonitor.metrics.component import MetricsComponent
from arimonitor.transcode.wiring import RecordingComponent
from arimonitor.zmqbind import bind_private, tcp_liveness

log = logging.getLogger(__name__)

# One line per component: a factory `(api: EngineApi) -> component`. Order = start order.
COMPONENTS: list[Callable[[Any], Any]] = [
    RecordingComponent,     # transcoder pool + recording policy (transcode/wiring.py)
    ClickToCallComponent,   # click-to-call flow: dial, bridge, outcomes, own bridge recording
    ManagerComponent,       # v2.7 manager port (console.manager_enabled), off the loop thread
    MetricsComponent,       # Prometheus /metrics and /healthz ([metrics] port), off the loop thread
    BusComponent,           # events bus: RabbitMQ topic exchange ([bus] enabled), own thread
]

PUB_HWM = 100_000
# In messages, and a message may be a batch of up to 64 frames (64 KiB): 5,000 bounds a
# backlog to a few hundred MB at worst. Past it the reader drops, counts, and we resync.
EVENTS_HWM = 5_000
# Threads (each one keep-alive connection) sending `continue`: Asterisk answers in well under
# a millisecond, so a few keep up with thousands of Stasis calls a second (bench_engine mix).
CONTINUE_THREADS = 3
CHECKPOINT_EVERY = 10.0  # seconds between WAL checkpoints (off the loop thread)


def contact_reader(cfg: Config) -> R.ContactReader | None:
    """AMI if configured, else the asterisk CLI if configured, else none (address unknown)."""
    if cfg["ami.enabled"]:
        ami = AmiClient(cfg["ami.host"], cfg["ami.port"], cfg["ami.user"], cfg["ami.password"],
                        cfg["ari.rest_timeout"])
        return lambda: (ami.pjsip_show_contacts(), "ami")
    if cfg["contacts.asterisk_cli"]:
        binary = cfg["contacts.asterisk_cli"]
        return lambda: (cli_contacts(binary), "cli")
    return None


class Engine:
    def __init__(self, cfg: Config, *, components: list[Callable[[Any], Any]] | None = None,
                 zmq_context: zmq.Context | None = None) -> None:
        self.cfg = cfg
        self.zctx = zmq_context or zmq.Context.instance()
        self.loop = Loop()
        self.state = State(cfg["ari.server_id"])
        self.store = Store(cfg["paths.database"])
        self.events, self.zap, self.refusals = self._events_socket(cfg)
        self.control_sock = self._socket(zmq.ROUTER, cfg["zmq.control"])
        self.pub = self._socket(zmq.PUB, cfg["zmq.publish"], sndhwm=PUB_HWM)
        self.notifier = Notifier(self.pub)
        self.rest_worker = Worker(self.loop, "ari-rest")
        # `continue` of every channel entering Stasis unclaimed: off the loop, a few at a time.
        self.continue_pool = RestPool(self.loop, "ari-continue", CONTINUE_THREADS, lambda: LeanAri(
            cfg["ari.url"], cfg["ari.user"], cfg["ari.password"], cfg["ari.rest_timeout"]))
        self._build_core(cfg)
        self.metrics_line = MetricsLine(cfg, self.state, self.store, self.intake, self.link)
        self.registry = build_registry()
        self.registry.manager_privileged = cfg["console.manager_changes"]
        # The engine's door: all components and console commands may use (engine/api.py).
        self.ctx = EngineDoor(cfg=cfg, state=self.state, queries=self.queries,
                              resyncer=self.resyncer, link=self.link, store=self.store,
                              notifier=self.notifier, loop=self.loop, handlers=self.handlers,
                              rest_worker=self.rest_worker, zmq_context=self.zctx,
                              totals=self.metrics_line.totals, readiness=self.readiness)
        self.control = ControlServer(self.control_sock, self.loop, self.registry, self.ctx)
        self.probe = Probe(AriRest.from_config(cfg), lambda: self.cfg["ari.probe_interval"],
                           lambda *a: self.loop.call_soon_threadsafe(self.link.on_probe, *a),
                           lambda: self.cfg["ari.rest_timeout"], stats=self.link.probe)
        # The WebSocket dropped: ask REST at once what Asterisk is doing (restarting, down...).
        self.notifier.subscribe(protocol.TOPIC_LINK_DISCONNECTED, lambda _topic, _body: self.probe.wake())
        self.loop.add_socket(self.events, self.intake.on_readable)
        self.loop.add_socket(self.control_sock, self.control.on_readable)
        if self.refusals is not None:
            self.loop.add_socket(self.refusals.monitor, self.refusals.on_readable)
        self.metrics_line.start(self.loop)
        self.loop.every(1.0, self.effects.flush_ips)
        self.loop.every(1.0, self.resyncer.heartbeat)
        self.loop.every(0.5, self.readiness.tick)
        self.notifier.subscribe(protocol.TOPIC_LINK_RESYNCED, lambda _topic, _body: self.readiness.recheck())
        self.checkpoint_worker = Worker(self.loop, "sqlite-checkpoint")
        self.loop.every(CHECKPOINT_EVERY, lambda: self.checkpoint_worker.submit(self.store.checkpoint))
        self.components = [factory(self.ctx)
                           for factory in (COMPONENTS if components is None else components)]
        for component in self.components:
            if hasattr(component, "register_commands"):
                component.register_commands(self.registry)

    def _build_core(self, cfg: Config) -> None:
        """Effects, handlers, resyncer, link monitor, queries, intake: the engine proper."""
        resync_rest = AriRest.from_config(cfg)
        reader = contact_reader(cfg)
        self.effects = EngineEffects(
            self.store, self.notifier, self.state.counters,
            dialplan_continuer(self.continue_pool, self.state.counters),
            setup_line_log("calls", cfg), cfg["ari.server_id"])
        self.handlers = Handlers(self.state, self.effects)
        # Requests made on an event wait for the state they need (issue 16). Its listeners are
        # the first of each event: a waiting step is on its way before any component reacts.
        self.readiness = Readiness(self.state, self.rest_worker.submit,
                                   lambda: self.cfg["ari.state_timeout"])
        for event_type in READINESS_EVENTS:
            self.handlers.on_event(event_type, self.readiness.on_event)
        stall_after = max(0.5, cfg["ari.rest_timeout"] / 2)
        auth = AriAuth(ProbeStats(stall_after), self.handlers)
        self.resyncer = Resyncer(handlers=self.handlers, store=self.store, notifier=self.notifier,
                                 loop=self.loop, app=cfg["ari.app"], auth=auth,
                                 snapshot=lambda: R.fetch_snapshot(resync_rest, reader))
        self.link = LinkMonitor(handlers=self.handlers, notifier=self.notifier,
                                resyncer=self.resyncer, auth=auth,
                                stall_after=stall_after)
        self.queries = Queries(state=self.state, store=self.store, notifier=self.notifier,
                               link=self.link, resyncer=self.resyncer,
                               continue_pool=self.continue_pool)
        self.intake = Intake(self.handlers, self.link)
        self.resyncer.intake = self.queries.intake = self.intake
        self.resyncer.probe = auth.probe  # a failed resync's why shows with the probe's
        self.resyncer.link_up = self.link.connected

    def _socket(self, kind: int, endpoint: str, sndhwm: int = 0, rcvhwm: int = 0,
                secure: Callable[[zmq.Socket], Any] | None = None) -> zmq.Socket:
        sock = self.zctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if sndhwm:
            sock.setsockopt(zmq.SNDHWM, sndhwm)
        if rcvhwm:
            sock.setsockopt(zmq.RCVHWM, rcvhwm)
        if endpoint.startswith("tcp://"):
            tcp_liveness(sock)
        if secure is not None:
            secure(sock)  # before bind: the mechanism is fixed when a peer connects
        bind_private(sock, endpoint)
        return sock

    def _events_socket(self, cfg: Config) -> tuple[zmq.Socket, Any, RefusalWatch | None]:
        """The readers' PULL; with [zmq] curve a CURVE server behind a ZAP allow-list (curve.py)."""
        if not cfg["zmq.curve"]:
            return self._socket(zmq.PULL, cfg["zmq.events"], rcvhwm=EVENTS_HWM), None, None
        zap: list[Any] = []
        sock = self._socket(zmq.PULL, cfg["zmq.events"], rcvhwm=EVENTS_HWM,
                            secure=lambda s: zap.append(secure_engine_socket(s, cfg, self.zctx)))
        return sock, zap[0], RefusalWatch(sock, self.state.counters)

    # ---- life -------------------------------------------------------------------------------

    def start(self) -> None:
        from arimonitor.v27.tables import load_all

        cfg = self.cfg
        tables = load_all(cfg["files.endpoints"], cfg["files.clients"], cfg["files.mqservers"])
        loaded = self.ctx.load_files(tables)
        for row in self.store.load_remote_ips():
            self.state.remote_ips[row["ip"]] = RemoteIp(
                row["ip"], row["first_seen"], row["last_seen"], set(row["endpoints"]),
                row["whitelist"], row["source"] or "")
        log.info("engine ready: %d endpoint(s) from files, %d remote IP(s), %d call(s) in history",
                 loaded["listed"], len(self.state.remote_ips), self.store.count_calls())
        for component in self.components:
            if hasattr(component, "start"):
                component.start()
        self.resyncer.start()  # the restart outage, then the first resync
        self.probe.start()
        # Long-lived start-up objects leave the collector's view: a full collection then walks
        # only what traffic created, which keeps the latency tail short.
        gc.freeze()

    def run(self, stopping: Callable[[], bool]) -> None:
        self.start()
        try:
            self.loop.run(stopping)
        finally:
            self.close()

    def close(self) -> None:
        self.probe.stop()
        self.rest_worker.stop()
        self.continue_pool.stop()
        self.checkpoint_worker.stop()
        for component in self.components:
            if hasattr(component, "close"):
                try:
                    component.close()
                except Exception:
                    log.exception("closing component %r failed", component)
        try:
            self.effects.flush_ips()
            # a clean stop's last-alive mark is now, not up to a second ago: the talk time of a
            # call that ends while arimonitor is down counts up to it (resync, clicktocall)
            self.resyncer.heartbeat()
            self.metrics_line.save()
        finally:
            if self.refusals is not None:
                self.refusals.close()
            for sock in (self.events, self.control_sock, self.pub):
                sock.close(0)
            if self.zap is not None:
                self.zap.stop()
            self.loop.close()
            self.store.checkpoint()
            self.store.close()
        log.info("engine closed at %s", time.strftime("%H:%M:%S"))
