"""What a console command receives as `ctx` (and what components get from the engine).

    ctx.cfg        Config (read-only; `cfg.display(name)` masks secrets)
    ctx.state      State: endpoints, channels, bridges, calls, remote_ips, counters (loop thread)
    ctx.services   Services: queries and operations (see engine/services.py)
    ctx.store      Store: SQLite (history, remote IPs, counters; `migrate`, `connection`)
    ctx.notifier   Notifier: publish(topic, body), subscribe(prefix, fn)
    ctx.counters   the Counters of the state
    ctx.registry   the command Registry (for help and completion)
    ctx.engine     the Engine (composition root), for components
    ctx.tables     the current v2.7 Tables snapshot (or None)

Fast commands run in the loop thread and may read `state` directly. Slow commands run in a
worker thread: they must not touch `state` or sockets; use `services.call_in_loop(fn)` to read,
`services.recover()` to resync, and `store.reader()` for their own SQLite connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arimonitor.config import Config
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.services import Services
from arimonitor.engine.state import Counters, State
from arimonitor.engine.store import Store


@dataclass
class EngineContext:
    cfg: Config
    state: State
    services: Services
    store: Store
    notifier: Notifier
    counters: Counters
    registry: Any
    engine: Any

    @property
    def tables(self) -> Any:
        return self.services.tables
