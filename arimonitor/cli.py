"""`arimonitor`: start, stop, watch and tail the process tree; run the demo or the simulator.

Exit codes follow supervisorctl's LSB habit: 0 ok, 1 error, 2 bad arguments, 3 not running.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from arimonitor.config import ConfigError, load_config

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3

NEXT_STEPS = """\
arimonitor is running against the built-in ARI simulator.

Try, in another terminal:
  {bin}/arictl status            what is connected, counters
  {bin}/arictl list 101          endpoints of client 101
  {bin}/arictl calls             calls up right now
  {bin}/arictl watch             live events until Ctrl-C
  {bin}/arictl                   the interactive console (help, tab completion)
  {bin}/arimonitor tail engine   the engine's log
Press Ctrl-C here to stop everything.
"""


def _tree(args, demo: bool = False):
    from arimonitor.supervision import Tree

    cfg = load_config(args.config)
    return Tree(cfg, demo=demo)


def cmd_start(args) -> int:
    from arimonitor.supervision import start

    tree = _tree(args, demo=args.demo)
    ok, message = start(tree)
    print(message, file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_ERROR


def cmd_stop(args) -> int:
    from arimonitor.supervision import stop

    ok, message = stop(_tree(args))
    print(message, file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_ERROR


def cmd_status(args) -> int:
    tree = _tree(args)
    if tree.supervisord_pid() is None:
        print("arimonitor is not running")
        return EXIT_NOT_RUNNING
    processes = tree.processes()
    demo = any(p["name"] == "ari-sim" and p["statename"] == "RUNNING" for p in processes)
    tree.demo = demo
    expected = set(tree.expected())
    width = max((len(p["name"]) for p in processes), default=8)
    print(f"{'PROGRAM'.ljust(width)}  {'STATE':<9} {'PID':>7}  UPTIME")
    for p in sorted(processes, key=lambda p: p["name"]):
        uptime = _uptime(p["now"] - p["start"]) if p["statename"] == "RUNNING" else p.get("spawnerr") or "-"
        print(f"{p['name'].ljust(width)}  {p['statename']:<9} {p['pid'] or '-':>7}  {uptime}")
    healthy = all(p["statename"] == "RUNNING" for p in processes if p["name"] in expected)
    return EXIT_OK if healthy else EXIT_ERROR


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours:02d}:{minutes:02d}:{secs:02d}" if days else f"{hours:02d}:{minutes:02d}:{secs:02d}"


def cmd_tail(args) -> int:
    from arimonitor.tail import follow

    cfg = load_config(args.config)
    return follow(Path(cfg["paths.log"]), args.names, lines=args.lines, forever=not args.no_follow)


def cmd_demo(args) -> int:
    from arimonitor.supervision import start, stop
    from arimonitor.tail import follow

    tree = _tree(args, demo=True)
    ok, message = start(tree)
    if not ok:
        print(message, file=sys.stderr)
        stop(tree)
        return EXIT_ERROR
    bin_dir = Path(sys.executable).parent if Path(sys.argv[0]).name == "arimonitor" and \
        (Path(sys.executable).parent / "arictl").exists() else tree.cfg.home / "bin"
    print(NEXT_STEPS.format(bin=os.path.relpath(bin_dir)))
    stopping = {"now": False}

    def interrupt(_sig, _frame):
        stopping["now"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    requester = None
    if tree.cfg["clicktocall.enabled"]:
        from arimonitor.demo_requests import DemoRequester

        requester = DemoRequester(tree.cfg, lambda line: print(f"{'demo'.ljust(6)} | {line}", flush=True))
        requester.start()
    try:
        follow(Path(tree.cfg["paths.log"]), ["calls", "engine"], lines=0, forever=True)
    except KeyboardInterrupt:
        pass
    if requester is not None:
        requester.stop()
    print("\nstopping arimonitor ...")
    ok, message = stop(tree)
    print(message)
    return EXIT_OK if ok else EXIT_ERROR


def cmd_sim(args) -> int:
    from arimonitor.procmain import main

    return main("ari-sim", ["--config", args.config] if args.config else [])


def cmd_ctl(args) -> int:
    """supervisorctl on this tree's socket, wherever [paths] var points."""
    tree = _tree(args)
    argv = [sys.executable, "-m", "supervisor.supervisorctl", "-s", f"unix://{tree.socket}", *args.words]
    os.execvpe(argv[0], argv, tree.environment())
    return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arimonitor", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="arimonitor.ini (default: $ARIMONITOR_CONFIG or conf/arimonitor.ini)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("start", help="start every process under supervisord and wait until RUNNING")
    p.add_argument("--demo", action="store_true", help="run against the built-in ARI simulator")
    p.set_defaults(func=cmd_start)
    sub.add_parser("stop", help="stop everything and wait until no process is left").set_defaults(func=cmd_stop)
    sub.add_parser("status", help="programs and their states; exit 0 only if all RUNNING").set_defaults(
        func=cmd_status)
    p = sub.add_parser("tail", help="follow the logs of one or several processes, each line prefixed")
    p.add_argument("names", nargs="*", help="engine, ari-reader_00, transcoder_00, clicktocall, ari-sim, calls, "
                                            "metrics (default: all)")
    p.add_argument("-n", "--lines", type=int, default=10, help="lines of history first (default 10)")
    p.add_argument("--no-follow", action="store_true", help="print the history and exit")
    p.set_defaults(func=cmd_tail)
    sub.add_parser("demo", help="start --demo in the foreground, showing live activity; Ctrl-C stops").set_defaults(
        func=cmd_demo)
    sub.add_parser("sim", help="run the ARI simulator alone in the foreground").set_defaults(func=cmd_sim)
    p = sub.add_parser("ctl", help="supervisorctl for this tree (e.g. arimonitor ctl tail -f arimonitor:engine)")
    p.add_argument("words", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_ctl)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"arimonitor: configuration error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
