"""arictl: the operator console client (one-shot, interactive prompt, `watch`).

    arictl [--json] [--timeout T] [--config PATH] [--endpoint ADDR] [COMMAND [ARGS...]]

Exit codes (supervisorctl-style, scripts rely on them): 0 ok, 1 command error, 2 usage error
(bad flags, unknown command, bad arguments), 3 engine unreachable.

Start-up cost matters (the issue measures `arictl status` against `python -c pass`), so this
module imports only json-level stdlib at the top: the transport is stdlib ZMTP
(console/zmtp.py), settings come from a light reader (console/settings.py), and readline,
shlex and pyzmq are imported only by the prompt and `watch`.
"""

from __future__ import annotations

import os
import sys

from arimonitor import API_VERSION, protocol
from arimonitor.console.zmtp import ProtocolError, ReqClient, Unreachable

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_DEGRADED = 1  # `status` answered and named problems
USAGE_CODES = {protocol.E_BAD_ARGUMENTS, protocol.E_UNKNOWN_COMMAND, protocol.E_MALFORMED}

USAGE = """\
usage: arictl [--json] [--timeout T] [--config PATH] [--endpoint ADDR] [COMMAND [ARGS...]]
       (arictl's options may also come after the command: arictl status --json)

  no COMMAND        open the ARIMONITOR> prompt (history, tab completion)
  COMMAND ARGS      run one command and exit ('arictl help' lists them)
  watch [TOPIC...]  print live events until Ctrl-C (topics: call endpoint recording c2c warning link)
  top [--client C]  a live full-screen view (q quits); a plain table every 2 s when piped

  --json            print the whole reply envelope as JSON
  --timeout T       how long to wait for the engine (5, 1.5s, 500ms; default [console] timeout)
  --config PATH     arimonitor.ini to read (default $ARIMONITOR_CONFIG or conf/arimonitor.ini)
  --endpoint ADDR   control socket (ipc://PATH or tcp://127.0.0.1:PORT), overriding the config

exit codes: 0 ok, 1 command error (or `status`: degraded, each problem named), 2 usage error,
3 engine unreachable"""


class UsageError(Exception):
    pass


class ApiMismatch(Exception):
    pass


class Options:
    def __init__(self) -> None:
        self.json = False
        self.timeout: str | None = None
        self.config: str | None = None
        self.endpoint: str | None = None
        self.help = False


GLOBAL_VALUED = ("--timeout", "--config", "--endpoint")


def parse_flags(argv: list[str]) -> tuple[Options, list[str]]:
    """arictl's own options, anywhere on the line (`arictl status --json` as `arictl --json
    status`); everything else goes to the engine. After `--` nothing is taken as arictl's."""
    opts = Options()
    words: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            words += argv[i + 1:]
            break
        name, eq, inline = word.partition("=")
        if name == "--json":
            opts.json = True
        elif name in GLOBAL_VALUED:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"{name} needs a value")
                inline = argv[i]
            setattr(opts, name[2:], inline)
        elif name in ("-h", "--help") and not words:
            opts.help = True
        elif word.startswith("-") and word != "-" and not words:
            raise UsageError(f"unknown option {word}")
        else:
            words.append(word)  # the command, its arguments and its own options
        i += 1
    return opts, words


def unreachable_message(endpoint: str, why: str, config_path: str | None) -> str:
    # circusctl-style: say what happened, then the two things that usually explain it
    where = config_path or "conf/arimonitor.ini"
    return (f"arictl: no answer from the engine at {endpoint} ({why}).\n"
            f"  - is the engine running?          check: arimonitor status\n"
            f"  - is this its control socket?     check [zmq] control in {where}, or --endpoint/--config")


class Session:
    """Requests to one engine; checks the console API version before the first command."""

    def __init__(self, endpoint: str, timeout: float):
        self.endpoint = endpoint
        self.timeout = timeout
        self.client = ReqClient(endpoint)
        self.api_checked = False

    def close(self) -> None:
        self.client.close()

    def raw(self, cmd: str, args: list[str] | None = None) -> dict:
        """One round trip; Unreachable or ProtocolError if it could not be had."""
        req_id = self.client.next_id()
        body = self.client.call(protocol.request(req_id, cmd, args), self.timeout)
        try:
            reply = protocol.loads(body)
        except ValueError:
            raise ProtocolError("the engine sent a reply that is not JSON") from None
        if not isinstance(reply, dict) or reply.get("id") != req_id:
            got = reply.get("id") if isinstance(reply, dict) else None
            raise ProtocolError(f"reply is for request {got!r}, not {req_id!r}")
        return reply

    def check_api(self, server_api: object) -> None:
        self.api_checked = True
        if server_api != API_VERSION:
            raise ApiMismatch(f"arictl speaks console API {API_VERSION} but the engine at {self.endpoint} "
                              f"speaks API {server_api}; use the arictl installed with that engine")

    def call(self, cmd: str, args: list[str] | None = None) -> dict:
        if not self.api_checked:
            reply = self.raw("version")
            data = reply.get("data") if isinstance(reply.get("data"), dict) else {}
            self.check_api(data.get("api"))
        reply = self.raw(cmd, args)
        if reply.get("code") == protocol.E_API_VERSION:
            raise ApiMismatch(reply.get("reason") or "API version mismatch")
        return reply


def exit_code(reply: dict) -> int:
    if reply.get("status") == protocol.STATUS_OK:
        # a health report that names problems: the command worked, the system is degraded
        return EXIT_DEGRADED if reply.get("problems") else EXIT_OK
    return EXIT_USAGE if reply.get("code") in USAGE_CODES else EXIT_ERROR


def print_reply(reply: dict, as_json: bool) -> int:
    if as_json:
        sys.stdout.write(protocol.dumps(reply).decode() + "\n")
    else:
        text = reply.get("text") or ""
        if reply.get("status") != protocol.STATUS_OK and not text:
            text = f"error: {reply.get('reason') or 'failed'}"
        stream = sys.stdout if reply.get("status") == protocol.STATUS_OK else sys.stderr
        if text:
            stream.write(text if text.endswith("\n") else text + "\n")
    return exit_code(reply)


def print_failure(message: str, as_json: bool, unreachable: bool) -> None:
    if as_json:
        sys.stdout.write(protocol.dumps({"id": None, "status": protocol.STATUS_ERROR, "code": None,
                                         "reason": message, "unreachable": unreachable}).decode() + "\n")
    sys.stderr.write(message + "\n")


def one_shot(session: Session, words: list[str], as_json: bool, config_path: str | None) -> int:
    try:
        reply = session.call(words[0], words[1:])
    except ApiMismatch as exc:
        print_failure(f"arictl: {exc}", as_json, unreachable=False)
        return EXIT_ERROR
    except Unreachable as exc:
        print_failure(unreachable_message(session.endpoint, str(exc), config_path), as_json, unreachable=True)
        return EXIT_UNREACHABLE
    finally:
        session.close()
    return print_reply(reply, as_json)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts, words = parse_flags(argv)
    except UsageError as exc:
        sys.stderr.write(f"arictl: {exc}\n{USAGE}\n")
        return EXIT_USAGE
    if opts.help:
        sys.stdout.write(USAGE + "\n")
        return EXIT_OK
    from arimonitor.console import settings

    try:
        found = settings.resolve(opts.config, opts.endpoint, opts.timeout, os.environ)
    except ValueError as exc:
        sys.stderr.write(f"arictl: {exc}\n")
        return EXIT_USAGE
    try:
        if words and words[0] == "watch":
            from arimonitor.console.watch import run_watch

            return run_watch(found, words[1:], opts.json)
        if words and words[0] == "top":
            from arimonitor.console.top import run_top  # rich, pyzmq: only here

            return run_top(found, words[1:])
        session = Session(found.control, found.timeout)
        if not words:
            from arimonitor.console.prompt import run_prompt
            from arimonitor.console.watch import run_watch

            return run_prompt(session, opts.json, found.config_path,
                              watch=lambda topics: run_watch(found, topics, opts.json))
        return one_shot(session, words, opts.json, found.config_path)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `arictl list 101 | head` closed our stdout
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
