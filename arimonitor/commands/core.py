"""Commands about the console itself: help, version, and the description arictl completes from."""

from __future__ import annotations

from typing import Any

from arimonitor import API_VERSION, __version__, protocol
from arimonitor.commands.registry import Arg, CommandError, Registry, Reply
from arimonitor.config import SETTINGS_BY_NAME


def register(registry: Registry) -> None:
    @registry.command("help", category="console", summary="list commands, or explain one",
                      aliases=("?",), args=[Arg("command", "a command name or alias", optional=True)],
                      examples=["help", "help list"])
    def help_(ctx, command=None) -> Reply:
        if command is None:
            groups = registry.by_category()
            width = max(len(c.name) for cmds in groups.values() for c in cmds)
            lines = []
            for category, cmds in groups.items():
                lines.append(f"{category.upper()}")
                lines += [f"  {c.name.ljust(width)}  {c.summary}" for c in cmds]
            lines.append("\n'help COMMAND' shows usage, aliases and examples.")
            data = {cat: [c.name for c in cmds] for cat, cmds in groups.items()}
            return Reply(data, "\n".join(lines))
        cmd = registry.find(command)
        if cmd is None:
            hint = registry.closest(command)
            more = f"; did you mean: {', '.join(hint)}?" if hint else ""
            raise CommandError(protocol.E_UNKNOWN_COMMAND, f"no command {command!r}{more}",
                               data={"suggestions": hint})
        return Reply(cmd.describe(), cmd.help_text())

    @registry.command("version", category="console", summary="arimonitor and API versions",
                      examples=["version"])
    def version(ctx) -> Reply:
        data = {"version": __version__, "api": API_VERSION}
        return Reply(data, f"arimonitor {__version__} (console API {API_VERSION})")

    @registry.command("watch", category="console",
                      summary="live events until Ctrl-C (in arictl: watch [TOPIC...])",
                      args=[Arg("topics", "call endpoint recording c2c warning link progress", optional=True,
                                rest=True, complete="topic")],
                      examples=["watch", "watch call c2c"])
    def watch(ctx, topics=None) -> Reply:
        # arictl runs it itself (a SUB socket on the engine's PUB); a request here comes from
        # the manager port, which has no way to stream
        raise CommandError(protocol.E_BAD_ARGUMENTS,
                           "watch streams events: run it in arictl ('arictl watch call', or 'watch' at "
                           "the ARIMONITOR> prompt)")

    @registry.command("_describe", category="console", summary="registry for arictl completion",
                      hidden=True)
    def describe(ctx) -> Reply:
        return Reply({"api": API_VERSION, "version": __version__,
                      "commands": [c.describe() for c in registry.commands.values() if not c.hidden],
                      "values": completion_values(ctx)})


def completion_values(ctx: Any) -> dict[str, list[str]]:
    """What Tab offers for an argument marked `complete=`: today's settings, clients, processes."""
    topics = [t for t in protocol.TOPICS if t != protocol.TOPIC_CONTROL]
    if ctx is None:  # a test registry with no engine behind it
        return {"setting": sorted(SETTINGS_BY_NAME), "topic": topics}
    tables = ctx.tables()
    clients = set(getattr(tables, "clients", None) or {}) | {e["client"] for e in ctx.endpoints() if e["client"]}
    workers = [f"transcoder_{n:02d}" for n in range(ctx.cfg.transcoder_workers())]
    return {"setting": sorted(SETTINGS_BY_NAME), "client": sorted(clients), "topic": topics,
            "process": ["all", "engine", "ari-reader", "transcoder", *workers, "clicktocall", "bus"]}
