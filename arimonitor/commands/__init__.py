"""Every console command module, wired into one Registry.

Each module has `register(registry)` that declares its commands with `@registry.command(...)`.
Adding a command is one decorated function in one of these modules; nothing else.
"""

from __future__ import annotations

from arimonitor.commands import (
    core,
    endpoints,
    engine_state,
    ips,
    processes,
    reload,
    settings,
)
from arimonitor.commands.registry import Registry

MODULES = [core, engine_state, endpoints, ips, processes, reload, settings]


def build_registry() -> Registry:
    registry = Registry()
    for module in MODULES:
        module.register(registry)
    return registry
