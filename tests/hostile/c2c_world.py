"""The files, RabbitMQ topology and people of a click-to-call run through the real processes
(simulator, engine, reader, clicktocall): shared by the fault run, the broker restart and the
stop tests."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pika
import pika.exceptions

from arimonitor.clicktocall import broker
from tests.engine.stack import write_config
from tests.rabbit_node import RabbitNode

BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)
GIVE_UP = 8.0  # seconds an answered origin waits for a destination before hanging up


def write_files(tmp_path: Path, topology: broker.Topology, clients: str, endpoints: list[str],
                rabbit_port: int = 5672) -> dict:
    """__CLIENTES__.DEF, endpoints_pjsip.def (every endpoint of client 901) and
    __MQSERVERS__.DEF (the shared broker, or a private node's port) in tmp_path: the `files`
    section of the config."""
    (tmp_path / "__CLIENTES__.DEF").write_text(clients, encoding="utf-8")
    (tmp_path / "endpoints_pjsip.def").write_text("".join(
        f"#include pjsip/{e}.pjsip ; Endpoint:{e} CLI:901 TYPE:apartamento PW:pw{e}\n"
        for e in endpoints), encoding="utf-8")
    (tmp_path / "__MQSERVERS__.DEF").write_text(
        f"[principal]\nhost=127.0.0.1\nport={rabbit_port}\nuser=guest\npassword=guest\nvhost=/\n"
        f"queue={topology.queue}\n", encoding="utf-8")
    return {"endpoints": str(tmp_path / "endpoints_pjsip.def"),
            "clients": str(tmp_path / "__CLIENTES__.DEF"),
            "mqservers": str(tmp_path / "__MQSERVERS__.DEF")}


def config(tmp_path: Path, sim: Any, files: dict, topology: broker.Topology,
           sections: dict | None = None, **clicktocall: str) -> Path:
    return write_config(tmp_path, sim, files=files, **(sections or {}),
                        clicktocall={"results_exchange": topology.results_exchange, **clicktocall})


def declare(topology: broker.Topology, replies: str, rabbit_port: int = 5672,
            durable_replies: bool = False) -> tuple[Any, Any, str]:
    """A connection, its channel with the topology declared, and a reply queue (durable when
    it must outlive a broker restart)."""
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", rabbit_port))
    channel = conn.channel()
    broker.declare(channel, topology)
    return conn, channel, channel.queue_declare(replies, durable=durable_replies).method.queue


def clean_up(procs: Any, conn: Any, channel: Any, topology: broker.Topology, reply_queue: str) -> None:
    """Kill every process started, drop the queues, close the connection."""
    procs.kill_all()
    try:
        channel.queue_delete(reply_queue)
        broker.delete_topology(channel, topology)
    finally:
        conn.close()


def hang_up_connected(sim: Any, stop: threading.Event) -> None:
    """The people: each connected click-to-call is hung up by its origin about a second later;
    an origin that hears nothing for GIVE_UP seconds (no destination dialled) gives up."""
    first_seen: dict[str, float] = {}
    while not stop.wait(0.3):
        with contextlib.suppress(Exception):  # the sim busy, a leg already gone: look again
            channels = sim.control.state()["channels"]
            ids = {c["id"] if isinstance(c, dict) else c for c in channels}
            now = time.monotonic()
            for cid in ids:
                if not cid.startswith("c2c-"):
                    continue
                age = now - first_seen.setdefault(cid, now)
                if (cid.endswith("-b") and age > 1.0) or (
                        cid.endswith("-a") and cid[:-2] + "-b" not in ids and age > GIVE_UP):
                    with contextlib.suppress(Exception):
                        sim.control.hangup(cid[:-2] + "-a")


# ---- a private broker node that restarts (tests/rabbit_node.py) ------------------------------

DOWN_FOR = 3.0  # seconds between stop_app's end and start_app


def restart_broker(node: RabbitNode, figures: dict, stop: threading.Event) -> None:
    """The broker restart (run in a thread: stop_app takes seconds to act); how long each part
    took goes into `figures` (stop_app, start_app, outage)."""
    started = time.monotonic()
    node.stop_app()
    figures["stop_app"] = time.monotonic() - started
    stop.wait(DOWN_FOR)
    figures["start_app"] = node.start_app()
    figures["outage"] = time.monotonic() - started


def drop_topology(node: RabbitNode, topology: broker.Topology, reply_queue: str) -> None:
    """The test's queues off the private node (which dies with the module anyway)."""
    with contextlib.suppress(*BROKER_ERRORS):
        conn = pika.BlockingConnection(node.parameters())
        channel = conn.channel()
        channel.queue_delete(reply_queue)
        broker.delete_topology(channel, topology)
        conn.close()

class Publisher:
    """The web system: confirmed publishes; a publish the broker did not confirm (it went
    down) is published again, unchanged, once it is back."""

    def __init__(self, node: RabbitNode, queue: str) -> None:
        self.node, self.queue = node, queue
        self.conn = self.channel = None
        self.republished = self.sent = 0
        self.down_at: int | None = None  # the first request the broker did not take at once

    def publish(self, body: dict, props: pika.BasicProperties, deadline: float = 60.0) -> None:
        give_up = time.monotonic() + deadline
        tried = False
        while True:
            try:
                if self.channel is None:
                    self.conn = pika.BlockingConnection(self.node.parameters())
                    self.channel = self.conn.channel()
                    self.channel.confirm_delivery()
                self.republished += tried
                tried = True
                self.channel.basic_publish("", self.queue, json.dumps(body).encode(), props,
                                           mandatory=True)
                self.sent += 1
                return
            except BROKER_ERRORS:
                self.close()
                if self.down_at is None:
                    self.down_at = self.sent
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.2)  # the broker is restarting: ask again shortly

    def down(self) -> bool:
        """Has the broker dropped our connection (stop_app acts some seconds after it is asked)?"""
        if self.down_at is None:
            try:
                self.conn.process_data_events(time_limit=0)
                self.conn.channel().close()  # a round trip: a stopped broker no longer answers
            except BROKER_ERRORS:
                self.close()
                self.down_at = self.sent
        return self.down_at is not None

    def close(self) -> None:
        with contextlib.suppress(*BROKER_ERRORS):
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        self.conn = self.channel = None


def collect_replies(node: RabbitNode, queue: str, seen: dict, stop: threading.Event) -> None:
    """Every reply (correlation_id -> {(message_id, result)}), acked after it is noted, and
    reconnecting through the restart."""
    def got(ch, method, props, body):
        reply = json.loads(body)
        seen[props.correlation_id].add((props.message_id, f"{reply['result']}/{reply['reason']}"))
        ch.basic_ack(method.delivery_tag)

    while not stop.is_set():
        try:
            conn = pika.BlockingConnection(node.parameters())
            try:
                conn.channel().basic_consume(queue, got)
                while not stop.is_set():
                    conn.process_data_events(time_limit=0.2)
            finally:
                with contextlib.suppress(*BROKER_ERRORS):
                    conn.close()
        except BROKER_ERRORS:
            stop.wait(0.2)


def consumers(node: RabbitNode, queue: str) -> int:
    try:
        conn = pika.BlockingConnection(node.parameters())
    except BROKER_ERRORS:
        return 0
    try:
        return conn.channel().queue_declare(queue, passive=True).method.consumer_count
    finally:
        conn.close()


class Placements:
    """Every leg A placed (POST /channels answered 200), counted per channel id. The simulator
    keeps only its last 20,000 REST requests, so a long flood is read as it goes (`look`),
    each request counted once."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self._seen: set[tuple[float, str]] = set()
        self.count: dict[str, int] = defaultdict(int)

    def look(self) -> dict[str, int]:
        for r in self.sim.control.requests():
            if r["method"] == "POST" and r["path"] == "/channels" and r.get("status") == 200:
                key = (r["t"], (r.get("params") or {}).get("channelId"))
                if key not in self._seen:
                    self._seen.add(key)
                    self.count[key[1]] += 1
        return self.count
