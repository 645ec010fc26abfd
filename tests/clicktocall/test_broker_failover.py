"""Falling over between the __MQSERVERS__.DEF servers, with real connections.

Only one RabbitMQ runs here, so the first server is a TCP proxy in front of it that the test
opens and cuts: down at start (the consumer takes the second), up (it comes back to the
first), cut under it (it falls over to the second again). No request is lost or placed twice.
"""

from __future__ import annotations

import socket
import threading

from tests.support import eventually, free_port


class Proxy:
    """127.0.0.1:PORT -> the real broker; `open()` listens, `cut()` drops everything."""

    def __init__(self, port: int, target: tuple[str, int] = ("127.0.0.1", 5672)):
        self.port = port
        self.target = target
        self.listener: socket.socket | None = None
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.accepted = 0
        self.lock = threading.Lock()

    def open(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.pairs.append((client, upstream))
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def live(self) -> int:
        with self.lock:
            return sum(1 for c, _ in self.pairs if c.fileno() != -1)

    def cut(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self.lock:
            for pair in self.pairs:
                for s in pair:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()
            self.pairs.clear()


def test_falls_over_comes_back_and_falls_over_again(c2c, processes):
    proxy = Proxy(free_port())
    queue = c2c.topology.queue
    (c2c.tmp / "__MQSERVERS__.DEF").write_text(
        f"[primeiro]\nhost=127.0.0.1\nport={proxy.port}\nuser=guest\npassword=guest\nvhost=/\nqueue={queue}\n\n"
        f"[reserva]\nhost=127.0.0.1\nport=5672\nuser=guest\npassword=guest\nvhost=/\nqueue={queue}\n",
        encoding="utf-8")
    try:
        c2c.start_consumer(processes, ARIMONITOR_CLICKTOCALL_FAILBACK_CHECK="300ms")
        assert proxy.accepted == 0  # the first server is down: consuming through the second
        first = c2c.request()
        c2c.publish(first)
        eventually(lambda: f"c2c-{first['request_id']}-a" in c2c.ari.channels, timeout=10)

        proxy.open()  # the first server is back: the consumer returns to it
        eventually(lambda: "is back" in c2c.log_text(), timeout=15)
        eventually(lambda: proxy.live() >= 1 and c2c.counts(queue)[1] == 1, timeout=15)
        second = c2c.request()
        c2c.publish(second)
        eventually(lambda: f"c2c-{second['request_id']}-a" in c2c.ari.channels, timeout=10)

        proxy.cut()  # the first server dies under it: over to the second again
        third = c2c.request()
        c2c.publish(third)
        eventually(lambda: f"c2c-{third['request_id']}-a" in c2c.ari.channels, timeout=20)
    finally:
        proxy.cut()
    for request in (first, second, third):  # each placed exactly once
        assert len(c2c.ari.originates(f"c2c-{request['request_id']}-a")) == 1
    eventually(lambda: c2c.counts(queue)[0] == 0)
    assert c2c.get_all(c2c.topology.dead_letter_queue) == []
