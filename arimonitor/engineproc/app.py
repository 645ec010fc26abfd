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
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import zmq

from arimonitor import health, protocol
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
from arimonitor.engine.registrations import Registrations
from arimonitor.engine.rest_pool import RestPool
from arimonitor.engine.resyncer import Resyncer
from arimonitor.engine.state import RemoteIp, State
from arimonitor.engine.store import Store
from arimonitor.engine.watch import Watch
from arimonitor.engineproc.control import ControlServer
from arimonitor.engineproc.metricsline import MetricsLine
from arimonitor.logs import setup_line_log
from arimonitor.metrics.component import MetricsComponent
from arimonitor.repeats import RepeatedFailure
from arimonitor.transcode.wiring import RecordingComponent
from arimonitor.zmqbind import bind_private, tcp_liveness

log = logging.getLogger(__name__)

# One line per component: a factory `(api: EngineApi) -> component`. Order = start order.
COMPONENTS: list[Callable[[Any], Any]] = [
    RecordingComponent,     # transcoder pool + recording policy (transcode/wiring.py)
    ClickToCallComponent,   # click-to-call flow: dial, bridge, outcomes, own bridge recording
    ManagerComponent,       # v2.7 manager port (console.manager_enabled), off the loop thread
    MetricsComponent,       # Prometheus /metrics and /healthz ([metrics] port), off the loop thread
    BusComponent,           # events bus: the bus process's report as `stats` group bus ([bus] enabled)
]

PUB_HWM = 100_000
# In messages, and a message may be a batch of up to 64 frames (64 KiB): 5,000 bounds a
# backlog to a few hundred MB at worst. Past it the reader drops, counts, and we resync.
EVENTS_HWM = 5_000
# Threads (each one keep-alive connection) sending `continue`: Asterisk answers in well under
# a millisecond, so a few keep up with thousands of Stasis calls a second (bench_engine mix).
CONTINUE_THREADS = 3
CHECKPOINT_EVERY = 10.0  # seconds between WAL checkpoints (off the loop thread)
WAL_LOOK_EVERY = 0.1     # seconds between looks at the WAL's size (a stat) from the loop thread


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
        self.store = Store(cfg["paths.database"])
        self.control_sock = self._socket(zmq.ROUTER, cfg["zmq.control"])
        self.pub = self._socket(zmq.PUB, cfg["zmq.publish"], sndhwm=PUB_HWM)
        self.notifier = Notifier(self.pub)
        self.rest_worker = Worker(self.loop, "ari-rest")
        self.calls_log = setup_line_log("calls", cfg)
        # One watch per server (engine/watch.py): its own state, handlers, link, resync, probe.
        self.watches: dict[str, Watch] = {}
        self.registrations = Registrations(self._two_servers_warning)
        for name in cfg.servers:
            self.watches[name] = self._build_watch(name)
        first = next(iter(self.watches.values()))
        # The first server's parts under their old names (one server: exactly as before).
        self.state, self.handlers, self.effects = first.state, first.handlers, first.effects
        self.readiness, self.link, self.resyncer = first.readiness, first.link, first.resyncer
        self.probe, self.continue_pool = first.probe, first.continue_pool
        self.events, self.zap, self.refusals = self._events_socket(cfg)
        self.intake = Intake(first.handlers, first.link)
        first.resyncer.intake = self.intake.first
        for watch in list(self.watches.values())[1:]:
            watch.resyncer.intake = self.intake.add(watch.handlers, watch.link)
        watches = list(self.watches.values())
        self.queries = Queries(watches=watches, store=self.store, notifier=self.notifier,
                               registrations=self.registrations)
        self.queries.intake = self.intake
        self.metrics_line = MetricsLine(cfg, watches, self.store, self.intake)
        self.registry = build_registry()
        self.registry.manager_privileged = cfg["console.manager_changes"]
        # The engine's door: all components and console commands may use (engine/api.py).
        self.ctx = EngineDoor(cfg=cfg, watches=watches, queries=self.queries, store=self.store,
                              notifier=self.notifier, loop=self.loop,
                              rest_worker=self.rest_worker, zmq_context=self.zctx,
                              totals=self.metrics_line.totals)
        self.control = ControlServer(self.control_sock, self.loop, self.registry, self.ctx)
        # The WebSocket dropped: ask that server's REST at once what it is doing (restarting...).
        self.notifier.subscribe(protocol.TOPIC_LINK_DISCONNECTED, self._wake_probe)
        self.loop.add_socket(self.events, self.intake.on_readable)
        self.loop.add_socket(self.control_sock, self.control.on_readable)
        if self.refusals is not None:
            self.loop.add_socket(self.refusals.monitor, self.refusals.on_readable)
        self.metrics_line.start(self.loop)
        for watch in watches:
            self.loop.every(1.0, watch.effects.flush_ips)
            self.loop.every(0.5, watch.readiness.tick)
        self.loop.every(1.0, first.resyncer.heartbeat)  # one last-alive mark for the engine
        self.notifier.subscribe(protocol.TOPIC_LINK_RESYNCED, self._recheck)
        self.checkpoint_worker = Worker(self.loop, "sqlite-checkpoint")
        self.loop.every(CHECKPOINT_EVERY, lambda: self.checkpoint_worker.submit(self.store.checkpoint))
        self.wal_failures = RepeatedFailure(log, "bounding the WAL on the loop thread")
        self.loop.every(WAL_LOOK_EVERY, self._bound_wal)
        self.components = [factory(self.ctx)
                           for factory in (COMPONENTS if components is None else components)]
        for component in self.components:
            if hasattr(component, "register_commands"):
                component.register_commands(self.registry)

    def _build_watch(self, name: str) -> Watch:
        """One server's parts: state, effects, handlers, readiness, resyncer, link, probe, pool."""
        cfg = self.cfg.for_server(name)  # the first server's is the engine's own Config
        first = next(iter(self.watches.values()), None)
        state = State(name, remote_ips=first.state.remote_ips if first else None)
        # `continue` of every channel entering Stasis unclaimed: off the loop, a few at a time.
        pool = RestPool(self.loop, f"ari-continue-{name}" if first else "ari-continue",
                        CONTINUE_THREADS, lambda: LeanAri(cfg["ari.url"], cfg["ari.user"],
                                                          cfg["ari.password"], cfg["ari.rest_timeout"]))
        effects = EngineEffects(self.store, self.notifier, state.counters,
                                dialplan_continuer(pool, state.counters), self.calls_log, name,
                                registrations=self.registrations)
        effects.name_server = len(self.cfg.servers) > 1
        handlers = Handlers(state, effects)
        # Requests made on an event wait for the state they need (issue 16). Its listeners are
        # the first of each event: a waiting step is on its way before any component reacts.
        readiness = Readiness(state, self.rest_worker.submit, lambda: self.cfg["ari.state_timeout"])
        for event_type in READINESS_EVENTS:
            handlers.on_event(event_type, readiness.on_event)
        stall_after = max(0.5, cfg["ari.rest_timeout"] / 2)
        auth = AriAuth(ProbeStats(stall_after), handlers)
        resync_rest = AriRest.from_config(cfg)
        reader = contact_reader(cfg)
        resyncer = Resyncer(handlers=handlers, store=self.store, notifier=self.notifier,
                            loop=self.loop, app=cfg["ari.app"], auth=auth,
                            snapshot=lambda: R.fetch_snapshot(resync_rest, reader))
        link = LinkMonitor(handlers=handlers, notifier=self.notifier, resyncer=resyncer,
                           auth=auth, stall_after=stall_after)
        resyncer.probe = auth.probe  # a failed resync's why shows with the probe's
        resyncer.link_up = link.connected
        probe = Probe(AriRest.from_config(cfg), lambda: self.cfg["ari.probe_interval"],
                      lambda *a: self.loop.call_soon_threadsafe(link.on_probe, *a),
                      lambda: self.cfg["ari.rest_timeout"], stats=link.probe)
        return Watch(name, cfg, state, effects, handlers, readiness, link, resyncer, probe, pool)

    def _two_servers_warning(self, kind: str, text: str, data: dict[str, Any]) -> None:
        watch = self.watches.get(data.get("server") or "") or next(iter(self.watches.values()))
        watch.effects.warning(kind, text, data)

    def _wake_probe(self, _topic: str, body: dict[str, Any]) -> None:
        watch = self.watches.get(body.get("server") or "")
        for each in ([watch] if watch is not None else self.watches.values()):
            each.probe.wake()

    def _recheck(self, _topic: str, _body: dict[str, Any]) -> None:
        """After a resync a waiting request may find what it waits for (any server's)."""
        for watch in self.watches.values():
            watch.readiness.recheck()

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
        for row in self.store.load_remote_ips():  # one table, shared by every server's state
            self.state.remote_ips[row["ip"]] = RemoteIp(
                row["ip"], row["first_seen"], row["last_seen"], set(row["endpoints"]),
                row["whitelist"], row["source"] or "")
        log.info("engine ready: %d endpoint(s) from files, %d remote IP(s), %d call(s) in history",
                 loaded["listed"], len(self.state.remote_ips), self.store.count_calls())
        for component in self.components:
            if hasattr(component, "start"):
                component.start()
        alive = self.store.last_alive()  # the previous run's mark, before anyone writes a new one
        for watch in self.watches.values():
            watch.resyncer.start(alive)  # the restart outage, then the first resync
            watch.probe.start()
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
        for watch in self.watches.values():
            watch.probe.stop()
        self.rest_worker.stop()
        for watch in self.watches.values():
            watch.continue_pool.stop()
        self.checkpoint_worker.stop()
        for component in self.components:
            if hasattr(component, "close"):
                try:
                    component.close()
                except Exception:
                    log.exception("closing component %r failed", component)
        try:
            for watch in self.watches.values():
                watch.effects.flush_ips()
            # a clean stop's last-alive mark is now, not up to a second ago: the talk time of a
            # call that ends while arimonitor is down counts up to it (resync, clicktocall)
            self.resyncer.heartbeat()
            self.metrics_line.save()
        except sqlite3.Error as exc:
            self._stopped_unwritable(exc)
        finally:
            if self.refusals is not None:
                self.refusals.close()
            for sock in (self.events, self.control_sock, self.pub):
                sock.close(0)
            if self.zap is not None:
                self.zap.stop()
            self.loop.close()
            try:
                self.store.checkpoint()
            except sqlite3.Error as exc:  # a full disk: the WAL keeps it, the next start copies it
                log.warning("engine stop: WAL checkpoint not done (%s)", exc)
            self.store.close()
        log.info("engine closed at %s", time.strftime("%H:%M:%S"))

    def _bound_wal(self) -> None:
        """A WAL past its bound is checkpointed by the writer itself (Store.bound_wal)."""
        try:
            self.store.bound_wal()
            self.wal_failures.succeeded()
        except sqlite3.Error as exc:  # a full disk: the database cannot grow yet
            self.wal_failures.failed(str(exc))

    def _stopped_unwritable(self, exc: sqlite3.Error) -> None:
        """Stopped while SQLite refuses writes (a full disk): one line naming what is lost with
        the process (what the effects kept in memory), not a traceback. A restart's resync
        rebuilds what Asterisk still has; the rest is named here."""
        kept = [watch.effects.store_view() for watch in self.watches.values()]
        lost = ", ".join(f"{server}: {health.kept_words(view)}"
                         for server, view in zip(self.watches, kept) if view.get("error")) or "nothing"
        log.error("engine stopped while its database cannot be written (%s): last-alive mark and "
                  "counters not saved; kept in memory and not written: %s", exc, lost)
