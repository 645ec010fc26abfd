"""A real process standing in for the engine's console side: ROUTER + PUB over real ZeroMQ.

    python tests/console/fake_engine.py CONTROL PUBLISH [--api N] [--manager-port P]

Dispatches through build_registry() plus a few test commands; `emit TOPIC JSON` publishes an
event on PUB. Prints "ready" once bound. Stops on SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import arimonitor


def main(argv: list[str]) -> int:
    control, publish = argv[0], argv[1]
    api = int(argv[argv.index("--api") + 1]) if "--api" in argv else None
    manager_port = int(argv[argv.index("--manager-port") + 1]) if "--manager-port" in argv else None
    if api is not None:
        arimonitor.API_VERSION = api  # before the commands import it: plays a newer engine

    import zmq

    from arimonitor import protocol
    from arimonitor.commands import build_registry
    from arimonitor.commands.registry import Arg, CommandError, Option, Reply

    registry = build_registry()
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(control)
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(publish)

    def status(_ctx, brief=False, server=None) -> Reply:
        return Reply({"calls": 0}, "engine: fake, 0 calls")

    # engine-state commands need the real engine's context: keep their declarations (help,
    # completion) but answer `status` with a canned reply so it can be timed and tested
    if registry.find("status") is not None:
        registry.find("status").handler = status
    else:
        registry.command("status", category="engine", summary="test status", examples=["status"])(status)

    @registry.command("pick", category="test", summary="argument choices for completion",
                      args=[Arg("colour", "a colour", choices=("red", "green", "blue"))],
                      options=[Option("mode", "how", choices=("fast", "safe")),
                               Option("loud", "shout", flag=True)],
                      examples=["pick red", "pick blue --mode safe"])
    def pick(_ctx, colour, mode=None, loud=False) -> Reply:
        text = f"picked {colour}" + (f" ({mode})" if mode else "")
        return Reply({"colour": colour, "mode": mode}, text.upper() if loud else text)

    @registry.command("fail", category="test", summary="always refuses", examples=["fail"])
    def fail(_ctx) -> Reply:
        raise CommandError(protocol.E_NOT_FOUND, "nothing here")

    @registry.command("boom", category="test", summary="always crashes", examples=["boom"])
    def boom(_ctx) -> Reply:
        raise RuntimeError("kaboom")

    @registry.command("sleep", category="test", summary="answers late",
                      args=[Arg("seconds", convert=float)], examples=["sleep 0.5"])
    def sleep(_ctx, seconds) -> Reply:
        time.sleep(seconds)  # blocking is the point: an engine that is alive but stuck
        return Reply(None, "awake")

    @registry.command("emit", category="test", summary="publish one event",
                      args=[Arg("topic"), Arg("body")], examples=['emit call.up {"client":"101"}'])
    def emit(_ctx, topic, body) -> Reply:
        pub.send_multipart(protocol.publication(topic, json.loads(body)))
        return Reply(None, "sent")

    manager = None
    if manager_port is not None:
        from arimonitor.commands.manager import ManagerServer
        from arimonitor.config import load_config

        cfg = load_config(environ={"ARIMONITOR_ZMQ_CONTROL": control, "ARIMONITOR_ZMQ_PUBLISH": publish,
                                   "ARIMONITOR_CONSOLE_MANAGER_PORT": str(manager_port),
                                   "ARIMONITOR_CONSOLE_TIMEOUT": "3s"})
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        manager = ManagerServer(cfg, logging.getLogger("manager"), max_connections=3, idle_timeout=5.0,
                                line_deadline=2.0)
        manager.start()

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print("ready", flush=True)
    while not stopping.is_set():
        if not router.poll(200):
            continue
        ident, *rest = router.recv_multipart()
        try:
            message = json.loads(rest[-1])
        except ValueError:
            message = None
        reply = registry.dispatch(message, None)
        router.send_multipart([ident, b"", protocol.dumps(reply)])
    if manager is not None:
        manager.stop()
    router.close()
    pub.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
