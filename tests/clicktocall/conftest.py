"""Fixtures for the click-to-call tests: a real RabbitMQ, unique names, a fake ARI, the process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pytest
import zmq

from arimonitor.clicktocall import broker
from tests.clicktocall.fake_ari import FakeAri
from tests.support import eventually

ARI_PASSWORD = "test-secret-ari"

CLIENTS = """\
[101]
nome=Residencial São João
gravar=S
max_chamadas=8
ativo=S

[102]
nome=Edifício Fechado
max_chamadas=8
ativo=N

[120]
nome=Solar Bragança
gravar=N
max_chamadas=2
ativo=S

[900]
nome=Flood
max_chamadas=1000000
ativo=S
"""

ENDPOINT_IDS = {
    "101": ["1013010", "1013015", "1013020"], "102": ["1023000"], "112": ["1123000"],
    "120": ["1203000", "1203001", "1203002"], "900": [f"90000{i:02d}" for i in range(20)],
}


def endpoints_file() -> str:
    lines = ["; test endpoints"]
    for client, ids in ENDPOINT_IDS.items():
        lines += [f"#include pjsip/{e}.pjsip ; Endpoint:{e} CLI:{client} TYPE:apartamento PW:pw{e}"
                  for e in ids]
    return "\n".join(lines) + "\n"


def rabbit_connection() -> pika.BlockingConnection:
    try:
        return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    except pika.exceptions.AMQPConnectionError:
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672 (start it: rabbitmq-server -detached)")


@dataclass
class C2C:
    """One test's world: names, files, the fake ARI, a broker connection for the test side."""

    tmp: Path
    ari: FakeAri
    topology: broker.Topology
    conn: pika.BlockingConnection
    reply_queue: str
    results_queue: str
    publish_address: str
    env: dict[str, str]
    log: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def channel(self):
        if not hasattr(self, "_ch") or not self._ch.is_open:
            self._ch = self.conn.channel()
        return self._ch

    def request(self, request_id: str | None = None, **fields: Any) -> dict:
        body = {"request_id": request_id or uuid.uuid4().hex, "client": "101",
                "origin": "1013010", "destination": "1123000", **fields}
        return body

    def publish(self, body: dict | bytes, correlation_id: str | None = None,
                reply: bool = True, timestamp: int | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        props = pika.BasicProperties(reply_to=self.reply_queue if reply else None,
                                     correlation_id=correlation_id, delivery_mode=2,
                                     content_type="application/json", timestamp=timestamp)
        self.channel.basic_publish("", self.topology.queue, data, props)

    def get_all(self, queue: str) -> list[tuple[Any, Any, bytes]]:
        out = []
        while True:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((method, props, body))

    def counts(self, queue: str) -> tuple[int, int]:
        """(ready messages, consumers) of a queue."""
        ok = self.channel.queue_declare(queue, passive=True).method
        return ok.message_count, ok.consumer_count

    def start_consumer(self, processes, **env: str) -> subprocess.Popen:
        proc = processes.python("procs/clicktocall.py", env={**self.env, **env}, log=self.log)
        self.procs.append(proc)
        eventually(lambda: self.counts(self.topology.queue)[1] >= 1, timeout=15,
                   message="the consumer never started consuming (see the log)")
        return proc

    def stop_consumer(self, proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
        os.killpg(proc.pid, sig)
        return proc.wait(15)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def c2c(tmp_path):
    uid = uuid.uuid4().hex[:10]
    topology = broker.Topology.for_queue(f"c2c-test-{uid}", f"c2c-test-results-{uid}")
    ari = FakeAri(password=ARI_PASSWORD).start()
    ari.register(*(e for ids in ENDPOINT_IDS.values() for e in ids))
    (tmp_path / "__CLIENTES__.DEF").write_text(CLIENTS, encoding="utf-8")
    (tmp_path / "endpoints_pjsip.def").write_text(endpoints_file(), encoding="utf-8")
    (tmp_path / "__MQSERVERS__.DEF").write_text(
        "[principal]\nhost=127.0.0.1\nport=5672\nuser=guest\npassword=guest\nvhost=/\n"
        f"queue={topology.queue}\n", encoding="utf-8")
    ini = tmp_path / "arimonitor.ini"
    ini.write_text(f"[paths]\nvar = {tmp_path / 'var'}\n", encoding="utf-8")
    publish_address = f"ipc://{tmp_path}/publish.sock"
    env = {
        "ARIMONITOR_CONFIG": str(ini),
        "ARIMONITOR_FILES_MQSERVERS": str(tmp_path / "__MQSERVERS__.DEF"),
        "ARIMONITOR_FILES_CLIENTS": str(tmp_path / "__CLIENTES__.DEF"),
        "ARIMONITOR_FILES_ENDPOINTS": str(tmp_path / "endpoints_pjsip.def"),
        "ARIMONITOR_ARI_URL": ari.url, "ARIMONITOR_ARI_PASSWORD": ARI_PASSWORD,
        "ARIMONITOR_ZMQ_PUBLISH": publish_address,
        "ARIMONITOR_CLICKTOCALL_RESULTS_EXCHANGE": topology.results_exchange,
        "ARIMONITOR_CLICKTOCALL_RETRY_DELAY": "300ms",
        "ARIMONITOR_LOGGING_LEVEL": "DEBUG",
        # These tests are about placing calls: every client may ring anything (the refusals
        # of the default policy have their own tests, test_authorization.py).
        "ARIMONITOR_CLICKTOCALL_TRUNK_NUMBERS": "*: .*",
        "ARIMONITOR_CLICKTOCALL_CROSS_CLIENT": "*",
        "ARIMONITOR_CLICKTOCALL_FREE_CALLER_ID": "*",
    }
    conn = rabbit_connection()
    ch = conn.channel()
    # Declared by the test too, so messages published before the consumer starts are kept.
    broker.declare(ch, topology)
    reply_queue = ch.queue_declare("", exclusive=True).method.queue
    results_queue = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(results_queue, topology.results_exchange, routing_key="c2c.#")
    world = C2C(tmp_path, ari, topology, conn, reply_queue, results_queue, publish_address, env,
                tmp_path / "clicktocall.log")
    world._ch = ch
    try:
        yield world
    finally:
        ari.stop()
        try:
            cleanup = rabbit_connection()
            broker.delete_topology(cleanup.channel(), topology)
            cleanup.close()
            conn.close()
        except pika.exceptions.AMQPError:
            pass
        assert ARI_PASSWORD not in world.log_text(), "the ARI password leaked into the log"


@pytest.fixture
def engine_pub(c2c):
    """A stand-in for the engine's PUB socket: `send(topic, body)`."""
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(c2c.publish_address)

    def send(topic: str, body: dict) -> None:
        pub.send_multipart([topic.encode(), json.dumps(body).encode()])

    try:
        yield send
    finally:
        pub.close()
