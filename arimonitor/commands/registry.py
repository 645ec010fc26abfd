"""The command registry: one place that declares every console command.

Dispatch, `help`, `help CMD`, argument checking and arictl's tab completion all come from
here (model: celery's control decorator, circus's command declarations). A command is one
function registered with a decorator on a Registry object:

    @registry.command("list", category="endpoints", summary="endpoints of a client",
                      aliases=("list_endpoints",),
                      args=[Arg("client", optional=True)],
                      options=[Option("status", choices=("online", "offline"))],
                      examples=["list 101", "list 101 --status offline"])
    def list_endpoints(ctx, client=None, status=None) -> Reply: ...

Handlers get the engine API as `ctx` (engine/api.py EngineApi) and typed keyword arguments,
and return a Reply or raise CommandError.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from arimonitor import protocol

log = logging.getLogger(__name__)


class CommandError(Exception):
    """A refusal an operator should read; never a crash."""

    def __init__(self, code: int, reason: str, data: Any = None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.data = data


@dataclass
class Reply:
    data: Any = None
    text: str = ""
    # only commands that report health: what is not healthy ([] = healthy)
    problems: list[str] | None = None


@dataclass(frozen=True)
class Arg:
    name: str
    help: str = ""
    convert: Callable[[str], Any] = str
    optional: bool = False
    choices: tuple[str, ...] | None = None
    # takes every remaining word (only as the last argument)
    rest: bool = False
    # what arictl's Tab offers here when there are no fixed choices: "setting", "client" or
    # "process" (the engine sends the current values in `_describe`)
    complete: str = ""


@dataclass(frozen=True)
class Option:
    name: str
    help: str = ""
    convert: Callable[[str], Any] = str
    default: Any = None
    choices: tuple[str, ...] | None = None
    # a flag takes no value: present means True
    flag: bool = False


@dataclass
class Command:
    name: str
    handler: Callable[..., Reply]
    category: str
    summary: str
    aliases: tuple[str, ...] = ()
    args: tuple[Arg, ...] = ()
    options: tuple[Option, ...] = ()
    examples: tuple[str, ...] = ()
    # slow commands run off the engine's event loop; their reply is sent when done
    slow: bool = False
    hidden: bool = False
    description: str = ""
    # changes something, or shows secrets: True, or a test of the parsed arguments
    privileged: bool | Callable[[dict[str, Any]], bool] = False

    def is_privileged(self, kwargs: dict[str, Any]) -> bool:
        check = self.privileged
        return bool(check(kwargs) if callable(check) else check)

    @property
    def usage(self) -> str:
        words = [self.name]
        for arg in self.args:
            label = "|".join(arg.choices) if arg.choices else arg.name.upper()
            label = f"{label}..." if arg.rest else label
            words.append(f"[{label}]" if arg.optional else label)
        for opt in self.options:
            if opt.flag:
                words.append(f"[--{opt.name}]")
            else:
                label = "|".join(opt.choices) if opt.choices else opt.name.upper()
                words.append(f"[--{opt.name} {label}]")
        return " ".join(words)

    def describe(self) -> dict:
        """What arictl needs for completion and local help."""
        return {
            "name": self.name, "aliases": list(self.aliases), "category": self.category,
            "summary": self.summary, "usage": self.usage, "examples": list(self.examples),
            "args": [{"name": a.name, "optional": a.optional, "choices": list(a.choices or ()),
                      "complete": a.complete, "rest": a.rest} for a in self.args],
            "options": [{"name": o.name, "flag": o.flag, "choices": list(o.choices or ())}
                        for o in self.options],
        }

    def help_text(self) -> str:
        lines = [f"{self.name} - {self.summary}", "", f"usage: {self.usage}"]
        if self.description:
            lines += ["", self.description]
        if self.aliases:
            lines.append(f"aliases: {', '.join(self.aliases)}")
        details = [(a.name.upper(), a.help) for a in self.args if a.help]
        details += [(f"--{o.name}", o.help) for o in self.options if o.help]
        if details:
            width = max(len(n) for n, _ in details)
            lines += [""] + [f"  {n.ljust(width)}  {h}" for n, h in details]
        if self.examples:
            lines += ["", "examples:"] + [f"  {e}" for e in self.examples]
        if self.privileged:
            lines += ["", ("changes something or shows secrets: not on the manager port unless "
                           "[console] manager_changes = yes")]
        return "\n".join(lines)


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)
    # [console] manager_changes: may the manager port (no login) run privileged commands?
    manager_privileged: bool = False

    def command(self, name: str, *, category: str, summary: str, aliases: Sequence[str] = (),
                args: Sequence[Arg] = (), options: Sequence[Option] = (),
                examples: Sequence[str] = (), slow: bool = False, hidden: bool = False,
                description: str = "",
                privileged: bool | Callable[[dict[str, Any]], bool] = False,
                ) -> Callable[[Callable[..., Reply]], Callable[..., Reply]]:
        def register(handler: Callable[..., Reply]) -> Callable[..., Reply]:
            for word in (name, *aliases):
                if word in self.commands or word in self._aliases:
                    raise ValueError(f"command name {word!r} registered twice")
            self.commands[name] = Command(name, handler, category, summary, tuple(aliases),
                                          tuple(args), tuple(options), tuple(examples), slow,
                                          hidden, description, privileged)
            for alias in aliases:
                self._aliases[alias] = name
            return handler

        return register

    def find(self, word: str) -> Command | None:
        word = word.lower()
        return self.commands.get(self._aliases.get(word, word))

    def closest(self, word: str, n: int = 3) -> list[str]:
        names = [c for c, cmd in self.commands.items() if not cmd.hidden] + list(self._aliases)
        return difflib.get_close_matches(word.lower(), names, n=n, cutoff=0.5)

    def visible(self) -> list[Command]:
        return [c for c in self.commands.values() if not c.hidden]

    def by_category(self) -> dict[str, list[Command]]:
        groups: dict[str, list[Command]] = {}
        for cmd in sorted(self.visible(), key=lambda c: (c.category, c.name)):
            groups.setdefault(cmd.category, []).append(cmd)
        return groups

    # ---- parsing ----------------------------------------------------------------------------

    def parse(self, cmd: Command, words: Iterable[str], opts: dict | None = None) -> dict[str, Any]:
        """Words (as typed) and/or ready opts -> handler keyword arguments; CommandError if bad."""
        kwargs: dict[str, Any] = {o.name.replace("-", "_"): o.default for o in cmd.options}
        by_option = {o.name: o for o in cmd.options}
        positional: list[str] = []
        words = list(words)
        i = 0
        while i < len(words):
            word = words[i]
            if word.startswith("--") and len(word) > 2 and not _is_number(word):
                name, _, inline = word[2:].partition("=")
                option = by_option.get(name)
                if option is None:
                    known = ", ".join(f"--{o}" for o in by_option) or "none"
                    raise CommandError(protocol.E_BAD_ARGUMENTS,
                                       f"{cmd.name}: unknown option --{name} (options: {known})")
                if option.flag:
                    kwargs[name.replace("-", "_")] = True
                else:
                    if not inline:
                        i += 1
                        if i >= len(words):
                            raise CommandError(protocol.E_BAD_ARGUMENTS, f"{cmd.name}: --{name} needs a value")
                        inline = words[i]
                    kwargs[name.replace("-", "_")] = _convert(cmd, f"--{name}", option, inline)
            else:
                positional.append(word)
            i += 1
        for name, value in (opts or {}).items():
            option = by_option.get(name)
            if option is None:
                raise CommandError(protocol.E_BAD_ARGUMENTS, f"{cmd.name}: unknown option --{name}")
            kwargs[name.replace("-", "_")] = (bool(value) if option.flag
                                              else _convert(cmd, f"--{name}", option, str(value)))
        for arg in cmd.args:
            if arg.rest:
                kwargs[arg.name] = [_convert(cmd, arg.name.upper(), arg, w) for w in positional]
                positional = []
                if not kwargs[arg.name] and not arg.optional:
                    raise CommandError(protocol.E_BAD_ARGUMENTS, f"{cmd.name}: missing {arg.name.upper()}; usage: {cmd.usage}")
            elif positional:
                kwargs[arg.name] = _convert(cmd, arg.name.upper(), arg, positional.pop(0))
            elif arg.optional:
                kwargs[arg.name] = None
            else:
                raise CommandError(protocol.E_BAD_ARGUMENTS,
                                   f"{cmd.name}: missing {arg.name.upper()}; usage: {cmd.usage}")
        if positional:
            raise CommandError(protocol.E_BAD_ARGUMENTS,
                               f"{cmd.name}: unexpected {' '.join(positional)!r}; usage: {cmd.usage}")
        return kwargs

    # ---- dispatch ---------------------------------------------------------------------------

    def prepare(self, message: Any) -> tuple[Command, dict[str, Any]]:
        """Check a decoded request and resolve its command and arguments (CommandError if bad)."""
        if not isinstance(message, dict) or not isinstance(message.get("cmd"), str):
            raise CommandError(protocol.E_MALFORMED, "request must be a JSON object with a 'cmd' string")
        args = message.get("args", [])
        opts = message.get("opts", {})
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args) or not isinstance(opts, dict):
            raise CommandError(protocol.E_MALFORMED, "'args' must be a list of strings and 'opts' an object")
        cmd = self.find(message["cmd"])
        if cmd is None:
            hint = self.closest(message["cmd"])
            more = f"; did you mean: {', '.join(hint)}?" if hint else "; type 'help' for the list"
            raise CommandError(protocol.E_UNKNOWN_COMMAND, f"unknown command {message['cmd']!r}{more}",
                               data={"suggestions": hint})
        kwargs = self.parse(cmd, args, opts)
        if (message.get("via") == protocol.VIA_MANAGER and not self.manager_privileged
                and cmd.is_privileged(kwargs)):
            raise CommandError(protocol.E_FORBIDDEN,
                               f"{cmd.name}: not allowed on the manager port, which has no login "
                               f"(it changes something or shows secrets); use arictl, or set "
                               f"[console] manager_changes = yes")
        return cmd, kwargs

    def execute(self, req_id: Any, cmd: Command, kwargs: dict[str, Any], ctx: Any) -> dict:
        """Run a prepared command and wrap its outcome in the reply envelope; never raises."""
        try:
            reply = cmd.handler(ctx, **kwargs)
            if not isinstance(reply, Reply):
                reply = Reply(data=reply, text="" if reply is None else str(reply))
            return protocol.ok(req_id, reply.data, reply.text, reply.problems)
        except CommandError as exc:
            return protocol.error(req_id, exc.code, exc.reason, exc.data)
        except Exception as exc:  # a bad command must never take the engine down
            log.exception("command %s failed", cmd.name)
            return protocol.error(req_id, protocol.E_INTERNAL, f"{cmd.name} failed: {exc}")

    def dispatch(self, message: Any, ctx: Any) -> dict:
        """Prepare and execute in one go (for fast commands and tests)."""
        req_id = message.get("id") if isinstance(message, dict) else None
        try:
            cmd, kwargs = self.prepare(message)
        except CommandError as exc:
            return protocol.error(req_id, exc.code, exc.reason, exc.data)
        return self.execute(req_id, cmd, kwargs, ctx)


def _is_number(word: str) -> bool:
    try:
        float(word)
        return True
    except ValueError:
        return False


def _convert(cmd: Command, label: str, spec: Arg | Option, value: str) -> Any:
    if spec.choices and value not in spec.choices:
        raise CommandError(protocol.E_BAD_ARGUMENTS,
                           f"{cmd.name}: {label} must be one of {', '.join(spec.choices)} (got {value!r})")
    try:
        return spec.convert(value)
    except ValueError as exc:
        raise CommandError(protocol.E_BAD_ARGUMENTS, f"{cmd.name}: bad {label}: {exc}") from None
