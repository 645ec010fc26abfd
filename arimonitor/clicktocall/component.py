"""The click-to-call flow as an engine component (one line in engineproc/app.py COMPONENTS):

    from arimonitor.clicktocall.component import ClickToCallComponent
    COMPONENTS = [..., ClickToCallComponent]

It creates its SQLite table, listens to the raw ARI events the flow needs (after the core
handlers, which already claim `click2call` channels so they are never continued), runs its
REST steps on the engine's REST worker thread, publishes on the engine's PUB, and registers
the `c2c` console command.
"""

from __future__ import annotations

import logging
from typing import Any

from arimonitor import protocol
from arimonitor.ari.rest import AriRest
from arimonitor.clicktocall.flow import EVENT_TYPES, ClickToCallFlow
from arimonitor.clicktocall.flowstate import SETUP_GRACE, waiting_for_b
from arimonitor.clicktocall.request import parse_channel_id
from arimonitor.clicktocall.whiledown import end_calls_of_the_stop, last_alive
from arimonitor.engine.api import EngineApi

log = logging.getLogger(__name__)
SWEEP_EVERY = 5.0    # seconds between looks for a leg B that never came
SWEEP_GRACE = 20.0   # how long a leg B may take to show up before the call is ended
from arimonitor.clicktocall.history import (
    FLOWS_MIGRATION,
    FLOWS_SCHEMA,
    MIGRATION,
    SCHEMA,
    FlowStore,
    OutcomeStore,
)


class ClickToCallComponent:
    def __init__(self, engine: EngineApi) -> None:
        cfg = engine.cfg
        self.engine = engine
        self.store = OutcomeStore(engine.database(MIGRATION, SCHEMA))
        # One REST session per server, made at its first call, used only from the REST worker
        # thread: a call's requests go to the server its leg A came from.
        self.rests: dict[str, AriRest] = {}
        self.flows = FlowStore(engine.database(FLOWS_MIGRATION, FLOWS_SCHEMA))
        first = cfg.servers[0]
        self.flow = ClickToCallFlow(
            self.rest_for(first), engine.submit_rest, engine.publish, self.store,
            rest_for=self.rest_for, default_server=first,
            app=cfg["ari.app"], trunk_dial=cfg["clicktocall.trunk_dial"],
            default_timeout=cfg["clicktocall.default_timeout"],
            flows=self.flows,
            run_steps=engine.run_steps)
        # Calls a previous engine left in progress: their later events find them again.
        self.flow.restore()
        # ... and those of them the first resync finds gone ended while arimonitor was down.
        self.restored: set[str] | None = set(self.flow.calls)
        self.ended_while_down = 0  # counted, shown by `c2c`
        for event_type in EVENT_TYPES:
            engine.on_event(event_type, self.flow.on_event)
        # After every resync (engine start included): match them with Asterisk's channels.
        engine.subscribe(protocol.TOPIC_LINK_RESYNCED, self.on_resynced)
        # For /metrics: calls placed and not finished (metrics/snapshot.py C2C_IN_FLIGHT).
        engine.offer("clicktocall_in_flight", lambda: len(self.flow.calls))
        # A leg B asked for just before a restart that never came: without this sweep the
        # origin would wait in silence until its person hangs up (no resync may follow).
        engine.every(SWEEP_EVERY, self.sweep)
        # Outcomes and flow rows SQLite refused (a full disk) are written again, and shown by
        # `status` (health.KEPT_VIEWS names these views).
        engine.every(1.0, self.store.flush)
        engine.every(1.0, self.flows.flush)
        engine.offer("clicktocall_store", self.store.view)
        engine.offer("clicktocall_flows", self.flows.view)

    def rest_for(self, server: str) -> AriRest:
        rest = self.rests.get(server)
        if rest is None:
            rest = self.rests[server] = AriRest.from_config(self.engine.cfg.for_server(server))
        return rest

    def sweep(self) -> None:
        if waiting_for_b(self.flow, self.flow.clock(), SWEEP_GRACE):
            self.on_resynced("c2c.sweep", {}, grace=SWEEP_GRACE)

    def on_resynced(self, topic: str, body: dict[str, Any], grace: float = SETUP_GRACE) -> None:
        channels = [{"id": ch["id"], "name": ch["name"], "state": ch["state"],
                     "stasis_args": ch["stasis_args"] if ch["in_stasis"] else [],
                     "server": ch.get("server")}
                    for ch in self.engine.channels("c2c-")]
        if self.restored is not None and topic == protocol.TOPIC_LINK_RESYNCED:
            restored, self.restored = self.restored, None
            # the outage of the start: closed by this resync, or still open (reader not back)
            down_since = last_alive(body) or self.engine.link().get("outage_open_since")
            ended = end_calls_of_the_stop(self.flow, restored, channels, down_since, self.flow.clock())
            self.ended_while_down += len(ended)
            channels = [ch for ch in channels
                        if (parse_channel_id(ch["id"]) or ("",))[0] not in ended]
        result = self.flow.reconcile(channels, self.engine.bridges(), grace=grace)
        if result["adopted"] or result["ended"]:
            log.info("c2c after resync: %d call(s) adopted, %d ended unseen",
                     result["adopted"], result["ended"])

    def register_commands(self, registry: Any) -> None:
        from arimonitor.commands import clicktocall

        clicktocall.register(registry, lambda ctx: self)
        clicktocall.register_catchup(registry, lambda ctx: self)

    def in_progress(self) -> list[dict[str, Any]]:
        return [{"request_id": c.request_id, "client": c.client, "destination": c.destination,
                 "answered": bool(c.a_answered), "connected": bool(c.connected)}
                for c in self.flow.calls.values()]

    def close(self) -> None:
        for rest in self.rests.values():
            rest.close()
