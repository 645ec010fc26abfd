"""Where each endpoint is registered, across the watched servers: one endpoint online on two
servers at once is a warning.

The v2.7 files do not say which Asterisk an endpoint belongs to: it belongs to the one it
registers on. A phone registered on two at once (a copied config, a failover left behind)
has calls and a click-to-call origin on both: the operator must hear of it. One warning per
episode (logged, published on `warning.endpoint_two_servers`, counted, listed by `status`);
the episode ends when the endpoint is online on one server or none. Loop thread only; the
tables hold at most one entry per endpoint online somewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from arimonitor.engine import states as S

log = logging.getLogger(__name__)

WARNING = "endpoint_two_servers"
SHOWN = 50  # endpoints listed by `status` at most; the count says the rest

Warn = Callable[[str, str, dict[str, Any]], None]


class Registrations:
    def __init__(self, warn: Warn) -> None:
        self.warn = warn                          # (kind, text, data): publish + log
        self.online: dict[str, list[str]] = {}    # endpoint id -> servers it is online on
        self.doubles: dict[str, float] = {}       # endpoint id -> since when on two or more
        self.warnings = 0

    def changed(self, server: str, endpoint_id: str, state: str, t: float) -> None:
        """An endpoint's state changed on `server` (EngineEffects.endpoint_state)."""
        servers = self.online.get(endpoint_id)
        if state == S.ENDPOINT_ONLINE:
            if servers is None:
                self.online[endpoint_id] = [server]
                return
            if server in servers:
                return
            servers.append(server)
            if endpoint_id not in self.doubles:
                self.doubles[endpoint_id] = t
                self.warnings += 1
                self.warn(WARNING, f"endpoint {endpoint_id} is registered on {len(servers)} "
                          f"servers at once: {', '.join(servers)}",
                          {"endpoint": endpoint_id, "servers": list(servers), "server": server})
            return
        if servers is None or server not in servers:
            return
        servers.remove(server)
        if not servers:
            del self.online[endpoint_id]
        if len(servers) < 2 and self.doubles.pop(endpoint_id, None) is not None:
            log.info("endpoint %s is registered on one server or none again (%s)", endpoint_id,
                     ", ".join(servers) or "none")

    def servers_of(self, endpoint_id: str) -> list[str]:
        return self.online.get(endpoint_id) or []

    def view(self) -> dict[str, Any]:
        shown = list(self.doubles.items())[:SHOWN]
        return {"count": len(self.doubles), "warnings": self.warnings,
                "endpoints": [{"endpoint": ep, "servers": list(self.online.get(ep) or ()),
                               "since": since} for ep, since in shown]}
