"""The files, RabbitMQ topology and people of a click-to-call run through the real processes
(simulator, engine, reader, clicktocall): shared by the fault run, the broker restart and the
stop tests."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import pika

from arimonitor.clicktocall import broker
from tests.engine.stack import write_config

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
