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


def _tree(args, demo: bool = False, check_files: bool = True):
    """check_files=False: stop/status/restart must work even where start would refuse a file."""
    from arimonitor.supervision import Tree

    cfg = load_config(args.config, check_private=check_files)
    if getattr(args, "role", None):
        cfg = cfg.with_overrides({"host.role": args.role})
    if getattr(args, "server", None):
        # an unknown name is a ConfigError here, before anything starts
        cfg = cfg.with_overrides({"host.servers": ",".join(args.server)})
    if cfg["host.servers"] and cfg["host.role"] == "central":
        raise ConfigError(f"[host] servers = {', '.join(cfg['host.servers'])} picks readers, and "
                          f"role central runs none here")
    return Tree(cfg, demo=demo)


def cmd_start(args) -> int:
    from arimonitor.supervision import programs, start

    if args.names:
        return programs(_running_tree(args), "start", args.names)
    tree = _tree(args, demo=args.demo)
    ok, message = start(tree, ari_timeout=None if args.no_wait_ari else args.ari_timeout)
    print(message, file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_ERROR


def cmd_stop(args) -> int:
    from arimonitor.supervision import programs, stop

    if args.names:
        return programs(_running_tree(args), "stop", args.names)
    ok, message = stop(_tree(args, check_files=False))
    print(message, file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_ERROR


def cmd_restart(args) -> int:
    """Every program (or the NAMEs) stopped and started again under the running supervisord."""
    from arimonitor.supervision import programs

    tree = _running_tree(args)
    return programs(tree, "restart", args.names or ["all"])


def _running_tree(args):
    tree = _tree(args, check_files=False)
    tree.demo = tree.started_as_demo()
    started = tree.started_role()
    if started and not getattr(args, "role", None):
        role, servers = started
        tree.cfg = tree.cfg.with_overrides({"host.role": role, "host.servers": servers})
    return tree


def cmd_status(args) -> int:
    tree = _running_tree(args)
    if tree.supervisord_pid() is None:
        print("arimonitor is not running")
        return EXIT_NOT_RUNNING
    expected = set(tree.expected())
    # ari-sim outside demo mode is not part of this tree: not shown as if it were expected
    processes = [p for p in tree.processes() if p["name"] in expected or p["statename"] != "STOPPED"]
    if args.names:
        processes = [p for p in processes if p["name"] in args.names]
        unknown = sorted(set(args.names) - {p["name"] for p in processes})
        if unknown:
            print(f"arimonitor: no program {', '.join(unknown)} (programs: {', '.join(sorted(expected))})",
                  file=sys.stderr)
            return EXIT_USAGE
        expected &= set(args.names)
    width = max((len(p["name"]) for p in processes), default=8)
    print(f"{'PROGRAM'.ljust(width)}  {'STATE':<9} {'PID':>7}  UPTIME")
    for p in sorted(processes, key=lambda p: p["name"]):
        uptime = _uptime(p["now"] - p["start"]) if p["statename"] == "RUNNING" else p.get("spawnerr") or "-"
        print(f"{p['name'].ljust(width)}  {p['statename']:<9} {p['pid'] or '-':>7}  {uptime}")
    states = {p["name"]: p["statename"] for p in processes}
    missing = sorted(name for name in expected if states.get(name) != "RUNNING")
    if missing:
        named = ", ".join(f"{n} ({states.get(n, 'absent')})" for n in missing)
        print(f"not running: {named}", file=sys.stderr)
    return EXIT_ERROR if missing else EXIT_OK


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours:02d}:{minutes:02d}:{secs:02d}" if days else f"{hours:02d}:{minutes:02d}:{secs:02d}"


KEYS_NEXT = {
    "engine": ("Copy {public} to each reader host's [zmq] keys folder (as engine.key).\n"
               "Put each reader's reader.key in {readers}/ (e.g. as pbx2.key), then restart the engine."),
    "reader": ("Copy {public} to the central host's [zmq] readers folder ({readers}/, e.g. as\n"
               "<server>.key), restart the engine there, and copy its engine.key here into {keys}/."),
}


def cmd_keys(args) -> int:
    """A CURVE keypair for the events link (curve.py); never replaces one without --force."""
    from arimonitor.curve import KeysExist, make_keypair

    cfg = load_config(args.config)
    which = args.which or ("reader" if cfg["host.role"] == "reader" else "engine")
    keys = Path(cfg["zmq.keys"])
    try:
        public_path, secret_path, public = make_keypair(keys, which, force=args.force)
        if which == "engine":
            Path(cfg["zmq.readers"]).mkdir(parents=True, exist_ok=True)
    except KeysExist as exc:
        print(f"arimonitor keys: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"arimonitor keys: cannot write in {keys}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"secret key: {secret_path} (mode 600; never copy it off this host)")
    print(f"public key: {public_path}")
    print(f"{which} public key: {public}")
    print(KEYS_NEXT[which].format(public=public_path, readers=cfg["zmq.readers"], keys=keys))
    if not cfg["zmq.curve"]:
        print("Then set [zmq] curve = yes on both hosts.")
    return EXIT_OK


def cmd_tail(args) -> int:
    from arimonitor.tail import follow, unknown_name

    cfg = load_config(args.config, check_private=False)
    wrong = unknown_name(Path(cfg["paths.log"]), args.names)
    if wrong:
        print(f"arimonitor: {wrong}", file=sys.stderr)
        return EXIT_USAGE
    return follow(Path(cfg["paths.log"]), args.names, lines=args.lines, forever=not args.no_follow)


def cmd_demo(args) -> int:
    from arimonitor.supervision import start, stop

    tree = _tree(args, demo=True)
    ok, message = start(tree)
    if not ok:
        print(message, file=sys.stderr)
        return EXIT_ERROR
    try:
        return _demo_foreground(tree)
    finally:
        # whatever ends the demo (Ctrl-C, SIGTERM, SIGHUP, `| head` closing the pipe, a crash),
        # the tree it started stops with it
        _quiet_stdout_if_closed()
        ok, message = stop(tree)
        _say(f"arimonitor {message}" if ok else message)


def _quiet_stdout_if_closed() -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _say(text: str) -> None:
    try:
        print(text, flush=True)
    except (BrokenPipeError, ValueError):
        pass


def _demo_foreground(tree) -> int:
    from arimonitor.tail import follow

    bin_dir = Path(sys.executable).parent if Path(sys.argv[0]).name == "arimonitor" and \
        (Path(sys.executable).parent / "arictl").exists() else tree.cfg.home / "bin"

    def interrupt(_sig, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    requester = None
    try:
        print(NEXT_STEPS.format(bin=os.path.relpath(bin_dir)), flush=True)
        if tree.cfg["clicktocall.enabled"]:
            from arimonitor.demo_requests import DemoRequester

            requester = DemoRequester(tree.cfg, lambda line: _say(f"{'demo'.ljust(6)} | {line}"))
            requester.start()
        follow(Path(tree.cfg["paths.log"]), ["calls", "engine"], lines=0, forever=True)
    except (KeyboardInterrupt, BrokenPipeError):
        # Ctrl-C, SIGTERM, SIGHUP, or `arimonitor demo | head` closing the pipe: the demo ends
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        if requester is not None:
            requester.stop()
    _quiet_stdout_if_closed()
    _say("\nstopping arimonitor ...")
    return EXIT_OK


def cmd_sim(args) -> int:
    from arimonitor.procmain import main

    return main("ari-sim", ["--config", args.config] if args.config else [])


def cmd_ctl(args) -> int:
    """supervisorctl on this tree's socket, wherever [paths] var points."""
    tree = _tree(args)
    argv = [sys.executable, "-m", "supervisor.supervisorctl", "-s", f"unix://{tree.socket}", *args.words]
    os.execvpe(argv[0], argv, tree.environment())
    return EXIT_ERROR


def _role_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=("all", "central", "reader"),
                        help="what runs on this host (default: [host] role): all, central "
                             "(everything but the reader) or reader (only the reader)")
    parser.add_argument("--server", action="append", metavar="NAME",
                        help="run only this server's reader here (repeatable; default: [host] "
                             "servers, else every server's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arimonitor", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="arimonitor.ini (default: $ARIMONITOR_CONFIG or conf/arimonitor.ini)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    names_help = "only these programs (engine, ari-reader (every ari-reader_NN), transcoder_00, clicktocall, bus, ari-sim)"
    p = sub.add_parser("start", help="start every process under supervisord, wait until RUNNING and the "
                                     "ARI link is up")
    p.add_argument("names", nargs="*", metavar="NAME", help=names_help + " of a running tree")
    p.add_argument("--demo", action="store_true", help="run against the built-in ARI simulator")
    p.add_argument("--no-wait-ari", action="store_true",
                   help="return once the programs run, without waiting for Asterisk")
    p.add_argument("--ari-timeout", type=float, default=20.0,
                   help="seconds to wait for the ARI link before giving up (default 20)")
    _role_option(p)
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("stop", help="stop everything and wait until no process is left")
    p.add_argument("names", nargs="*", metavar="NAME", help=names_help)
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("restart", help="stop and start again every program, or the NAMEs")
    p.add_argument("names", nargs="*", metavar="NAME", help=names_help)
    p.set_defaults(func=cmd_restart)
    p = sub.add_parser("status", help="programs and their states; exit 0 only if all RUNNING, 3 not running")
    p.add_argument("names", nargs="*", metavar="NAME", help=names_help)
    _role_option(p)
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("keys", help="make this host's CURVE keypair for the events link ([zmq] keys)")
    p.add_argument("which", nargs="?", choices=("engine", "reader"),
                   help="engine (central host) or reader (PBX host); default from [host] role")
    p.add_argument("--force", action="store_true", help="replace an existing keypair")
    p.set_defaults(func=cmd_keys)
    p = sub.add_parser("tail", help="follow the logs of one or several processes, each line prefixed")
    p.add_argument("names", nargs="*", help="engine, ari-reader_00, transcoder_00, clicktocall, bus, ari-sim, calls, "
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
