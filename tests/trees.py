"""The real supervisord tree for tests: started the way the README starts it, in a temp dir,
and always torn down (supervisord and every child), with its RabbitMQ queues deleted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arimonitor.config import Config, load_config
from arimonitor.supervision import Tree
from tests.support import PYTHON, ROOT, pid_alive, write_config

ARIMONITOR = [PYTHON, str(ROOT / "bin" / "arimonitor")]


def run_arimonitor(*words: str, env: dict, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([*ARIMONITOR, *words], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, check=False)


def arictl_json(env: dict, *words: str) -> Any:
    """`arictl --json WORDS...` against the tree of `env`: the reply's data (exit 0 asserted)."""
    done = subprocess.run([PYTHON, str(ROOT / "bin" / "arictl"), "--json", *words], env=env,
                          capture_output=True, text=True, timeout=20, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)["data"]


def topic_exchange_with_queue(name: str):
    """A durable topic exchange `name` and a queue `name` bound to all of it (tests' bus);
    returns (connection, channel); `delete_exchange_and_queue` undoes it."""
    import pika

    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    ch = conn.channel()
    ch.exchange_declare(name, exchange_type="topic", durable=True)
    ch.queue_declare(name)
    ch.queue_bind(name, name, routing_key="#")
    return conn, ch


def delete_exchange_and_queue(conn, ch, name: str) -> None:
    ch.queue_delete(name)
    ch.exchange_delete(name)
    conn.close()


class Received:
    """Everything the test queue (of `topic_exchange_with_queue`) got so far, read without waiting."""

    def __init__(self, ch, queue: str) -> None:
        self.ch, self.queue = ch, queue
        self.messages: list[tuple[str, dict]] = []

    def read(self) -> list[tuple[str, dict]]:
        while True:
            method, props, body = self.ch.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.messages
            assert props.delivery_mode == 2 and props.content_type == "application/json"
            self.messages.append((method.routing_key, json.loads(body)))


def running(tree: Tree) -> dict[str, int]:
    """Program name -> pid of every RUNNING program."""
    return {p["name"]: p["pid"] for p in tree.processes() if p["statename"] == "RUNNING"}


@dataclass
class DemoTree:
    env: dict[str, str]
    cfg: Config
    tree: Tree
    queue: str


@contextmanager
def demo_tree(folder: Path, workers: int = 2, sections: dict | None = None) -> Iterator[DemoTree]:
    """A config for a demo tree under `folder` (free ports, its own click-to-call queue)."""
    queue = f"test-tree-{uuid.uuid4().hex[:8]}"
    mq = folder / "__MQSERVERS__.DEF"
    mq.write_text(f"[principal]\nhost=127.0.0.1\nport=5672\nuser=guest\npassword=guest\nvhost=/\n"
                  f"queue={queue}\n", encoding="utf-8")
    ini = write_config(folder, {"transcoder": {"workers": workers}, "files": {"mqservers": str(mq)},
                                **(sections or {})})
    env, tree = tree_at(ini, demo=True)
    try:
        yield DemoTree(env, tree.cfg, tree, queue)
    finally:
        tear_down(tree, env, queue)


def tree_at(ini: Path, demo: bool) -> tuple[dict[str, str], Tree]:
    """The environment that points `arimonitor` at `ini`, and the tree it describes."""
    env = {**os.environ, "ARIMONITOR_CONFIG": str(ini)}
    return env, Tree(load_config(ini, environ=env), demo=demo)


def tear_down(tree: Tree, env: dict, queue: str | None = None) -> None:
    """Whatever happened, nothing of a test's tree may outlive it: supervisord, every child,
    its RabbitMQ queues (when it has its own `queue`)."""
    from arimonitor.clicktocall import broker

    pids = [p["pid"] for p in tree.processes() if p.get("pid")]
    sup = tree.supervisord_pid()
    run_arimonitor("stop", env=env)
    for pid in [p for p in [sup, *pids] if p]:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    if queue is not None:
        _delete_topology(broker, broker.Topology.for_queue(queue, tree.cfg["clicktocall.results_exchange"]))


def _delete_topology(broker, topology) -> None:
    import pika

    try:
        conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    except pika.exceptions.AMQPError:
        return
    try:
        # the shared results exchange stays: other trees may use it
        ch = conn.channel()
        queues, _exchanges = topology.names()
        for name in queues:
            ch.queue_delete(name)
        ch.exchange_delete(topology.dead_letter_exchange)
    finally:
        conn.close()
