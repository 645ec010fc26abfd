"""The interactive `ARIMONITOR> ` prompt: readline history, tab completion, never dies on errors.

Completion data is the registry's own description (`_describe`), fetched once per session (and
again after the engine was unreachable), so a command added on the engine side completes here
without any change to arictl.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from typing import Any

from arimonitor.console.client import (
    ApiMismatch,
    Session,
    print_reply,
    unreachable_message,
)
from arimonitor.console.zmtp import Unreachable

PROMPT = "ARIMONITOR> "
LOCAL = ("quit", "exit")
# run by arictl itself, not sent to the engine (which declares it, for help and completion)
WATCH = "watch"
HISTORY_LENGTH = 2000


def history_path() -> str:
    return os.environ.get("ARIMONITOR_HISTORY") or os.path.expanduser("~/.arimonitor_history")


class Completer:
    """readline completer over the `_describe` data: names, aliases, arg choices, options."""

    def __init__(self, commands: list[dict] | None = None, values: dict[str, list[str]] | None = None):
        self.set_commands(commands or [], values)
        self._matches: list[str] = []

    def set_commands(self, commands: list[dict], values: dict[str, list[str]] | None = None) -> None:
        # values: what an argument marked `complete` ("setting", "client", "process") offers
        self.values = values or {}
        self.commands = {c["name"]: c for c in commands}
        self.words = {c["name"]: c["name"] for c in commands}
        for c in commands:
            for alias in c.get("aliases", ()):
                self.words[alias] = c["name"]

    def candidates(self, line: str, text: str) -> list[str]:
        """Completions for `text`, the word being typed at the end of `line`."""
        try:
            before = shlex.split(line[: len(line) - len(text)])
        except ValueError:  # an open quote: nothing sensible to offer
            return []
        if not before:
            return sorted(w for w in (*self.words, *LOCAL) if w.startswith(text))
        name = self.words.get(before[0].lower())
        if name is None:
            return []
        if name == "help":
            return sorted(w for w in self.words if w.startswith(text)) if len(before) == 1 else []
        spec = self.commands[name]
        options = {o["name"]: o for o in spec.get("options", ())}
        words = before[1:]
        if words and words[-1].startswith("--") and words[-1][2:] in options:
            option = options[words[-1][2:]]
            if not option.get("flag"):
                return [c for c in option.get("choices", ()) if c.startswith(text)]
        if text.startswith("-"):
            return [f"--{o}" for o in options if f"--{o}".startswith(text)]
        # which positional argument is being typed: count the words that are not options
        position, i = 0, 0
        while i < len(words):
            word = words[i]
            if word.startswith("--") and word[2:] in options:
                i += 1 if options[word[2:]].get("flag") else 2
                continue
            position += 1
            i += 1
        args = spec.get("args", ())
        if args and position >= len(args) and args[-1].get("rest"):
            position = len(args) - 1  # `watch call c2c ...`: every word is the last argument
        if position < len(args):
            arg = args[position]
            offered = arg.get("choices") or self.values.get(arg.get("complete") or "", ())
            return [c for c in offered if c.startswith(text)]
        return []

    def complete(self, text: str, state: int) -> str | None:
        if state == 0:
            import readline

            self._matches = self.candidates(readline.get_line_buffer()[: readline.get_endidx()], text)
        return self._matches[state] + " " if state < len(self._matches) else None


def _setup_readline(completer: Completer) -> Any:
    try:
        import readline
    except ImportError:  # Python built without readline: a plain prompt still works
        return None
    readline.set_completer_delims(" \t\n")
    readline.set_completer(completer.complete)
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(history_path())
    except FileNotFoundError:
        pass
    except OSError as exc:
        sys.stderr.write(f"arictl: cannot read history {history_path()}: {exc}\n")
    return readline


def _save_history(readline: Any) -> None:
    if readline is None:
        return
    path = history_path()
    try:
        readline.write_history_file(path)
        os.chmod(path, 0o600)  # commands may name clients and numbers: keep them private
    except OSError as exc:
        sys.stderr.write(f"arictl: cannot save history {path}: {exc}\n")


def _describe(session: Session, completer: Completer) -> bool:
    """Fetch the registry description; checks the API version. False if unreachable."""
    reply = session.raw("_describe")
    data = reply.get("data") if isinstance(reply.get("data"), dict) else {}
    session.check_api(data.get("api"))
    completer.set_commands(data.get("commands") or [], data.get("values") or {})
    return True


def run_prompt(session: Session, as_json: bool, config_path: str | None,
               watch: Callable[[list[str]], int] | None = None) -> int:
    """`watch(topics)`: arictl's own watch, until Ctrl-C, then back to the prompt."""
    completer = Completer()
    readline = _setup_readline(completer)
    sys.stdout.write("arimonitor console: 'help' lists commands, Tab completes, 'quit' or Ctrl-D leaves\n")
    try:
        try:
            described = _describe(session, completer)
        except ApiMismatch as exc:
            sys.stderr.write(f"arictl: {exc}\n")
            return 1
        except Unreachable as exc:
            sys.stderr.write(unreachable_message(session.endpoint, str(exc), config_path) + "\n")
            described = False
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                sys.stdout.write("\n")
                return 0
            except KeyboardInterrupt:  # Ctrl-C drops the line being typed, like a shell
                sys.stdout.write("^C\n")
                continue
            try:
                words = shlex.split(line)
            except ValueError as exc:
                sys.stderr.write(f"error: {exc}\n")
                continue
            if not words:
                continue
            if words[0].lower() in LOCAL:
                return 0
            if words[0].lower() == WATCH and watch is not None:
                try:
                    watch(words[1:])
                except KeyboardInterrupt:  # Ctrl-C before the watch was under way: same end
                    sys.stdout.write("\n")
                continue
            try:
                if not described:  # the engine was away: completion data may be new
                    try:
                        described = _describe(session, completer)
                    except Unreachable:
                        pass  # the command below reports it
                print_reply(session.call(words[0], words[1:]), as_json)
            except ApiMismatch as exc:
                sys.stderr.write(f"arictl: {exc}\n")
                return 1
            except Unreachable as exc:
                sys.stderr.write(unreachable_message(session.endpoint, str(exc), config_path) + "\n")
                described = False
            except KeyboardInterrupt:  # stop waiting for a slow reply, keep the session
                session.close()
                sys.stdout.write("^C (reply abandoned)\n")
            sys.stdout.flush()
    finally:
        session.close()
        _save_history(readline)
