"""The manager port (TCP line protocol) served by the fake engine process."""

from __future__ import annotations

import socket
import time

import pytest

from arimonitor.commands.manager import TERMINATOR, reply_block
from tests.console.conftest import arictl
from tests.support import eventually

pytestmark = pytest.mark.timeout(60)


class Line:
    """A manager-port client that reads whole replies with a deadline (never blocks forever)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[str, str]:
        """(status line, text) of the next reply."""
        end = f"\n{TERMINATOR}\n".encode()
        while end not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        block, self.buf = self.buf.split(end, 1)
        status, _, text = block.decode().partition("\n")
        return status, text

    def ask(self, line: str) -> tuple[str, str]:
        self.send(line.encode() + b"\n")
        return self.reply()

    def closed(self) -> bool:
        self.sock.settimeout(5)
        return self.sock.recv(1) == b""


@pytest.fixture
def line(engine):
    conn = Line(engine.manager_port)
    yield conn
    conn.close()


def test_version_help_and_status(line):
    assert line.ask("version") == ("OK", "arimonitor 3.0.0.dev0 (console API 1)")
    status, text = line.ask("help")
    assert status == "OK" and "CONSOLE" in text and "pick" in text
    status, text = line.ask("help pick")
    assert status == "OK" and "usage: pick red|green|blue" in text
    assert line.ask("status") == ("OK", "engine: fake, 0 calls")


def test_errors_have_codes_and_the_connection_stays(line):
    assert line.ask("fail") == ("ERROR 3 not found", "error: nothing here")
    status, text = line.ask("pikc")
    assert status == "ERROR 1 unknown command" and "did you mean: pick" in text
    status, _ = line.ask('pick "red')
    assert status == "ERROR 8 malformed request"
    assert line.ask("pick 'red'") == ("OK", "picked red")


def test_binary_line_is_answered_and_the_connection_stays(line):
    line.send(b"\xff\xfe\x00\x01garbage\n")
    assert line.reply() == ("ERROR 8 malformed request", "error: line is not UTF-8 text")
    line.send(b"ver\x00sion\n")
    assert line.reply()[0] == "ERROR 8 malformed request"
    assert line.ask("version")[0] == "OK"


def test_overlong_line_is_refused_and_closed(engine, line):
    line.send(b"x" * 10000 + b"\n")
    status, text = line.reply()
    assert status == "ERROR 8 malformed request" and "longer than 4096" in text
    assert line.closed()
    assert arictl("version", env=engine.env).returncode == 0


def test_quit_closes(line):
    assert line.ask("quit") == ("OK", "bye")
    assert line.closed()


def test_idle_connections_make_room_for_a_new_client(engine):
    # the fake engine runs ManagerServer with max_connections=3
    held = [Line(engine.manager_port) for _ in range(3)]
    try:
        for conn in held:
            assert conn.ask("version")[0] == "OK"
        # All three now wait idle for a command: the one idle longest goes.
        extra = Line(engine.manager_port)
        assert extra.ask("version")[0] == "OK"
        status, text = held[0].reply()
        assert status == "ERROR 6 busy" and "closed for a new client" in text
        assert held[0].closed()
        assert held[1].ask("version")[0] == "OK"
        extra.close()
    finally:
        for conn in held:
            conn.close()


def test_busy_slots_refuse_and_a_trickled_line_hits_its_deadline(engine):
    """Three peers each send part of a line, then a byte now and then: not idle, so nobody
    can be evicted and a fourth is refused; the line deadline (2 s here) frees the slots."""
    held: list[Line] = []

    def three_hold_every_slot() -> bool:
        # The engine fixture is shared: a slot the previous test's peers held until the server
        # saw their close gets one of ours evicted ("closed for a new client"); then try again.
        for conn in held:
            conn.close()
        held[:] = [Line(engine.manager_port) for _ in range(3)]
        for conn in held:
            # The reply to `version` shows the handler read this chunk, "ver" included.
            conn.send(b"version\nver")
        return all(conn.reply()[0] == "OK" for conn in held)

    try:
        eventually(three_hold_every_slot, timeout=15)
        extra = Line(engine.manager_port)
        status, text = extra.reply()
        assert status == "ERROR 6 busy" and "too many connections (limit 3)" in text
        extra.close()
        for conn in held:  # one more byte each: the idle timer would restart, the deadline not
            conn.send(b"s")
        for conn in held:
            conn.sock.settimeout(20)
            status, text = conn.reply()
            assert status == "ERROR 6 busy" and "line not finished within 2s" in text
            assert conn.closed()
    finally:
        for conn in held:
            conn.close()

    def serves() -> bool:
        conn = Line(engine.manager_port)
        try:
            return conn.ask("version")[0] == "OK"
        finally:
            conn.close()

    eventually(serves, timeout=10)


def test_one_peer_address_holds_a_limited_number_of_slots():
    import logging

    from arimonitor.commands.manager import BACKLOG, ManagerServer, _Server
    from tests.support import free_port

    cfg = {"console.manager_host": "127.0.0.1", "console.manager_port": free_port(),
           "zmq.control": "ipc:///nonexistent/control.sock", "console.timeout": 1.0}
    server = ManagerServer(cfg, logging.getLogger("test"), max_connections=10, max_per_peer=2)
    server.start()
    conns = []
    try:
        conns = [Line(server.address[1]) for _ in range(2)]
        for conn in conns:
            conn.send(b"ver")  # mid-line, so not evictable either
        third = Line(server.address[1])
        conns.append(third)
        status, text = third.reply()
        assert status == "ERROR 6 busy" and "from 127.0.0.1 (limit 2)" in text
        assert _Server.request_queue_size == BACKLOG >= 128
    finally:
        for conn in conns:
            conn.close()
        server.stop()


def test_idle_connection_is_closed(engine):
    idle = 5.0  # the fake engine's idle timeout
    started = time.monotonic()  # before connecting: the engine's idle clock starts later
    conn = Line(engine.manager_port)
    conn.sock.settimeout(idle + 25)
    status, text = conn.reply()
    elapsed = time.monotonic() - started
    assert status == "ERROR 6 busy" and "idle" in text
    # not before the idle timeout (0.5 s for timer rounding); after it, a loaded machine gets
    # a wide margin: what matters is that the engine closes it rather than keeping it forever
    assert idle - 0.5 < elapsed < idle + 20, elapsed
    conn.close()


def test_terminator_lookalikes_are_escaped():
    block = reply_block("OK", f"a\n{TERMINATOR}\nb")
    assert block.decode().split("\n") == ["OK", "a", f" {TERMINATOR}", "b", TERMINATOR, ""]
