"""`--server NAME` of `list`, `calls`, `history`, `status` and `stats`: one rule for all."""

from __future__ import annotations

from typing import Any

from arimonitor import protocol
from arimonitor.commands.registry import CommandError, Option

SERVER_OPTION = Option("server", "only this Asterisk's ([ari] server_id or [ari:NAME])")


def many_servers(ctx: Any) -> bool:
    """A SERVER column only when more than one Asterisk is configured: one server's tables
    stay as they were."""
    return len(ctx.cfg.servers) > 1


def known_server(ctx: Any, server: str | None) -> None:
    if server is not None and server not in ctx.cfg.servers:
        raise CommandError(protocol.E_NOT_FOUND,
                           f"no server {server!r}; servers: {', '.join(ctx.cfg.servers)}")
