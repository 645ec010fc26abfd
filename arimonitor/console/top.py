"""`arictl top`: a live full-screen view of the engine, like `top`.

    arictl top [--client C] [--interval 2s] [--count N] [--plain]

Fed by the engine's PUB stream (endpoint, call, c2c and link events, applied as they come) and
by `status`, `stats`, `calls` and `jobs` every interval (`list` every LIST_EVERY s: 10,000
endpoints are a large reply, and the events keep it current in between); see topmodel.py.

On a terminal it draws with rich's Live on the alternate screen; keys: `q` quit, `c` next
client, `a` all clients, `/` type a client then Enter (Esc cancels). When stdout is not a
terminal (a pipe, cron, a log) or with `--plain`, it prints a plain table every interval;
`--count N` stops after N of them. rich is imported only here, and pyzmq only when the feed
opens (`zmtp.Subscription`), so arictl's other commands start as fast as before.
"""

from __future__ import annotations

import os
import select
import sys
import time
from typing import Any, Self

from arimonitor import datatypes, protocol
from arimonitor.commands import render
from arimonitor.console.topmodel import TopModel

LIST_EVERY = 30.0
C2C_SEED = ["--limit", "200"]
TOPICS = (f"{protocol.TOPIC_ENDPOINT}.", f"{protocol.TOPIC_CALL}.", protocol.TOPIC_C2C_FINAL,
          f"{protocol.TOPIC_LINK}.")
USAGE = "usage: arictl top [--client C] [--interval 2s] [--count N] [--plain]"
KEYS = "q quit  c next client  a all clients  / type a client"


class TopArgs:
    def __init__(self) -> None:
        self.client: str | None = None
        self.interval = 2.0
        self.count = 0
        self.plain = False


def parse_args(words: list[str]) -> TopArgs:
    args, i = TopArgs(), 0
    while i < len(words):
        word = words[i]
        if word == "--plain":
            args.plain = True
        elif word in ("--client", "--interval", "--count") and i + 1 < len(words):
            value = words[i + 1]
            i += 1
            if word == "--client":
                args.client = value
            elif word == "--interval":
                args.interval = max(0.2, datatypes.seconds(value))
            else:
                args.count = datatypes.positive_integer(value)
        else:
            raise ValueError(f"unknown or incomplete option {word!r}")
        i += 1
    return args


class Feed:
    """The engine as top sees it: one REQ session for the periodic queries, one SUB."""

    def __init__(self, found: Any) -> None:
        from arimonitor.console.client import Session
        from arimonitor.console.zmtp import Subscription

        self.session = Session(found.control, min(found.timeout, 2.0))
        self.sub = Subscription(found.publish, list(TOPICS))
        self.listed_at = 0.0
        self.seeded = False  # the recent click-to-call finals are read once, at start

    def refresh(self, model: TopModel) -> None:
        """The periodic queries; a failure is shown in the view, never raised."""
        from arimonitor.console.client import ApiMismatch
        from arimonitor.console.zmtp import ProtocolError, Unreachable

        words = ["status", "stats", "calls", "jobs"]
        if time.monotonic() - self.listed_at >= LIST_EVERY:
            words.append("list")
        if not self.seeded:
            words.append("c2c")
        try:
            for word in words:
                reply = self.session.call(word, C2C_SEED if word == "c2c" else None)
                if reply.get("status") == "ok":
                    model.take(word, reply.get("data"))
                elif word == "jobs":
                    model.take("jobs", None)  # no transcoder pool in this engine
            if "list" in words:
                self.listed_at = time.monotonic()
            self.seeded = True
            model.engine_error = ""
        except (Unreachable, ProtocolError, ApiMismatch) as exc:
            model.engine_error = f"engine not answering: {exc}"

    def drain(self, model: TopModel, wait: float) -> None:
        """Apply the events that come within `wait` seconds (all that are already there)."""
        import json

        parts = self.sub.receive(wait)
        while parts is not None:
            try:
                model.on_event(parts[0].decode("utf-8", "replace"), json.loads(parts[-1]))
            except ValueError:
                pass
            parts = self.sub.receive(0)

    def close(self) -> None:
        self.session.close()
        self.sub.close()


# ---- plain text: a pipe, a log, cron ---------------------------------------------------------

def header_line(view: dict[str, Any]) -> str:
    link = view["link"]
    since = f" for {render.duration(view['now'] - link['since'])}" if link["since"] else ""
    outages = f", {link['outages']} outage(s)" if link["outages"] is not None else ""
    if link["last_unseen"] is not None:
        outages += f" (last {link['last_unseen']:.1f} s unseen)"
    if link["open_since"]:
        outages += f", UNSEEN for {render.duration(view['now'] - link['open_since'])}"
    age = link["last_event_age"]
    event = f", last event {age:.1f} s ago" if age is not None else ""
    return (f"{time.strftime('%H:%M:%S', time.localtime(view['now']))}  server {link['server']}: "
            f"link {link['state']}{since}{outages}{event}  [client: {view['client'] or 'all'}]")


def c2c_line(c2c: dict[str, Any]) -> str:
    last = ", ".join(f"{r} {n}" for r, n in sorted(c2c["last_minute"].items())) or "none"
    text = f"click-to-call: {c2c['per_minute']:.1f}/min (last minute: {last})"
    if c2c["outcomes"]:
        text += "; recent: " + ", ".join(
            f"{result}{'/' + reason if reason else ''} {n}" for (result, reason), n in c2c["outcomes"][:6])
    if c2c["reported"]:
        text += f"; consumer {'STALE' if c2c['stale'] else 'on ' + str(c2c['broker'] or 'no broker')}"
    return text


def transcoder_line(t: dict[str, Any] | None) -> str:
    if t is None:
        return "transcoder: not running in this engine"
    left = f", ~{render.duration(t['seconds_left'])} to clear" if t["seconds_left"] else ""
    return (f"transcoder: {t['alive']} worker(s) alive, backlog {t['backlog']} job(s){left}, "
            f"{t['per_minute'] or 0:g} done/min, {t['failed'] or 0} failed")


def plain_text(view: dict[str, Any], rows: int = 20) -> str:
    lines = ["arimonitor top  " + header_line(view)]
    if view["engine_error"]:
        lines.append(view["engine_error"])
    endpoints = view["endpoints"]
    lines.append(render.table(endpoints[:rows], ("CLIENT", "ONLINE", "OFFLINE", "UNKNOWN"),
                              title="endpoints", align="lrrr"))
    if len(endpoints) > rows:
        lines.append(f"... {len(endpoints) - rows} more client(s)")
    calls = view["calls"]
    lines.append(render.table(
        [(c["client"], c["from"], c["to"], c["state"], c["direction"], render.duration(c["for"]))
         for c in calls[:rows]], ("CLIENT", "FROM", "TO", "STATE", "DIRECTION", "FOR"),
        title="calls now", empty="no active calls"))
    if len(calls) > rows:
        lines.append(f"... {len(calls) - rows} more call(s)")
    lines += [c2c_line(view["c2c"]), transcoder_line(view["transcoder"])]
    return "\n".join(lines)


def run_plain(feed: Feed, model: TopModel, args: TopArgs) -> int:
    shown = 0
    while True:
        feed.refresh(model)
        sys.stdout.write(plain_text(model.view(args.client)) + "\n\n")
        sys.stdout.flush()
        shown += 1
        if args.count and shown >= args.count:
            return 0
        deadline = time.monotonic() + args.interval
        while (left := deadline - time.monotonic()) > 0:
            feed.drain(model, left)


# ---- the terminal ----------------------------------------------------------------------------

class Keys:
    """stdin in cbreak mode (keys arrive one by one, unechoed) for the life of the view."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin.isatty() else None
        self.saved: Any = None

    def __enter__(self) -> Self:
        if self.fd is not None:
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None and self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def read(self) -> str:
        if self.fd is None or not select.select([self.fd], [], [], 0)[0]:
            return ""
        return os.read(self.fd, 64).decode("utf-8", "replace")


class Filter:
    """The client filter and the keys that move it."""

    def __init__(self, client: str | None) -> None:
        self.client = client
        self.typing: str | None = None  # text typed after '/', until Enter or Esc

    def key(self, char: str, clients: list[str]) -> bool:
        """Apply one key; False means quit."""
        if self.typing is not None:
            if char in ("\r", "\n"):
                self.client, self.typing = (self.typing or None), None
            elif char == "\x1b":
                self.typing = None
            elif char in ("\x7f", "\b"):
                self.typing = self.typing[:-1]
            elif char.isprintable():
                self.typing += char
            return True
        if char in ("q", "Q", "\x03"):
            return False
        if char == "c" and clients:
            at = clients.index(self.client) + 1 if self.client in clients else 0
            self.client = clients[at % len(clients)]
        elif char == "a":
            self.client = None
        elif char == "/":
            self.typing = ""
        return True


def rich_view(view: dict[str, Any], height: int, typing: str | None) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    link = view["link"]
    colour = "green" if link["state"] == "connected" and not link["open_since"] else "red"
    parts: list[Any] = [Text.assemble(("arimonitor top  ", "bold"), (header_line(view), colour))]
    if view["engine_error"]:
        parts.append(Text(view["engine_error"], style="bold red"))
    budget = max(4, (height - 12) // 2)
    endpoints = Table(title="endpoints per client", title_justify="left", expand=False)
    for name, justify in (("CLIENT", "left"), ("ONLINE", "right"), ("OFFLINE", "right"), ("UNKNOWN", "right")):
        endpoints.add_column(name, justify=justify)  # type: ignore[arg-type]
    for client, online, offline, unknown in view["endpoints"][:budget]:
        endpoints.add_row(client, str(online), Text(str(offline), style="red" if offline else ""),
                          str(unknown))
    if len(view["endpoints"]) > budget:
        endpoints.caption = f"… {len(view['endpoints']) - budget} more client(s): / or c to pick one"
    calls = Table(title=f"calls now ({len(view['calls'])})", title_justify="left")
    for name in ("CLIENT", "FROM", "TO", "STATE", "DIRECTION", "FOR"):
        calls.add_column(name, justify="right" if name == "FOR" else "left")
    for c in view["calls"][:budget]:
        calls.add_row(c["client"], c["from"], c["to"],
                      Text(c["state"], style="green" if c["state"] == "up" else "yellow"),
                      c["direction"], render.duration(c["for"]))
    if len(view["calls"]) > budget:
        calls.caption = f"… {len(view['calls']) - budget} more call(s)"
    parts += [endpoints, calls, Text(c2c_line(view["c2c"])), Text(transcoder_line(view["transcoder"]))]
    prompt = f"client: {typing}_" if typing is not None else KEYS
    parts.append(Text(prompt, style="reverse"))
    return Group(*parts)


def run_live(feed: Feed, model: TopModel, args: TopArgs) -> int:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    chosen = Filter(args.client)
    with Keys() as keys, Live(console=console, screen=True, auto_refresh=False) as live:
        next_refresh = 0.0
        while True:
            if time.monotonic() >= next_refresh:
                feed.refresh(model)
                next_refresh = time.monotonic() + args.interval
            for char in keys.read():
                if not chosen.key(char, model.clients()):
                    return 0
            live.update(rich_view(model.view(chosen.client), console.size.height, chosen.typing),
                        refresh=True)
            feed.drain(model, min(0.25, max(0.0, next_refresh - time.monotonic())))


def run_top(found: Any, words: list[str]) -> int:
    from arimonitor.console.client import ApiMismatch, unreachable_message
    from arimonitor.console.zmtp import Unreachable

    try:
        args = parse_args(words)
    except ValueError as exc:
        sys.stderr.write(f"arictl top: {exc}\n{USAGE}\n")
        return 2
    feed = Feed(found)
    try:
        try:
            feed.session.call("version")
        except Unreachable as exc:
            sys.stderr.write(unreachable_message(found.control, str(exc), found.config_path) + "\n")
            return 3
        except ApiMismatch as exc:
            sys.stderr.write(f"arictl top: {exc}\n")
            return 1
        model = TopModel()
        if args.plain or not sys.stdout.isatty():
            return run_plain(feed, model, args)
        return run_live(feed, model, args)
    except KeyboardInterrupt:
        return 0
    finally:
        feed.close()
