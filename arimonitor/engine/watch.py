"""One watched Asterisk server: its state and the parts that keep that state true.

The engine keeps state per server (issue 14): each `[ari]` / `[ari:NAME]` server has its own
tables (`State`), handlers, readiness, link monitor, resyncer (its own ARI REST and AMI or
contacts), REST probe and `continue` pool. So an outage or a resync of one server never ends
or changes the calls of another. What is one for the engine stays shared: the store, the
notifier, the REST worker, the loop, the remote-IP table and the two-server registrations
(registrations.py). The intake hands each message to its server's lane (intake.py); the door
and the queries look across the watches (door.py, queries.py). Built by engineproc/app.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arimonitor.engine.handlers import Handlers
from arimonitor.engine.link import LinkMonitor
from arimonitor.engine.readiness import Readiness
from arimonitor.engine.resyncer import Resyncer
from arimonitor.engine.state import State


@dataclass(slots=True)
class Watch:
    server: str
    cfg: Any                 # the engine's Config with this server's ari.*/ami.* (for_server)
    state: State
    effects: Any             # outputs.EngineEffects of this server
    handlers: Handlers
    readiness: Readiness
    link: LinkMonitor
    resyncer: Resyncer
    probe: Any = None        # probe.Probe of this server's ARI REST
    continue_pool: Any = None  # rest_pool.RestPool on this server's ARI

    def link_view(self) -> dict[str, Any]:
        """Its link as `link` and `status` show it: state, since, reason, outage open."""
        return {**self.link.link, "server": self.server,
                "outage_open_since": self.resyncer.outage_started}
