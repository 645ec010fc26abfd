"""The stdlib ZMTP REQ peer against real libzmq, including restarts and impostors."""

from __future__ import annotations

import socket
import threading

import pytest

from arimonitor import protocol
from arimonitor.console.client import Session
from arimonitor.console.zmtp import ProtocolError, ReqClient, Unreachable, address
from tests.console.conftest import FAKE_ENGINE, arictl, start_engine
from tests.support import eventually, free_port

pytestmark = pytest.mark.timeout(60)


def test_addresses():
    assert address("ipc:///run/a.sock") == (socket.AF_UNIX, "/run/a.sock")
    assert address("ipc://@abstract") == (socket.AF_UNIX, "\0abstract")
    assert address("tcp://[::1]:7") == (socket.AF_INET6, ("::1", 7))
    for bad in ("tcp://0.0.0.0:7", "tcp://127.0.0.1:x", "ipc://", "udp://127.0.0.1:7"):
        with pytest.raises(ValueError):
            address(bad)


def test_a_session_survives_an_engine_restart(processes):
    first = start_engine(processes)
    session = Session(first.control, 3.0)
    assert session.call("version")["status"] == "ok"
    processes.kill_all()
    # same addresses, new process; the session's idle connection is now dead
    processes.python(FAKE_ENGINE, first.control, first.publish)
    eventually(lambda: arictl("--timeout", "1", "version", env=first.env).returncode == 0, timeout=15)
    try:
        assert session.call("status")["text"] == "engine: fake, 0 calls"
    finally:
        session.close()


def test_ids_are_unique_and_checked(engine):
    client = ReqClient(engine.control)
    try:
        for _ in range(3):
            req_id = client.next_id()
            reply = protocol.loads(client.call(protocol.request(req_id, "version"), 3.0))
            assert reply["id"] == req_id
    finally:
        client.close()


def test_a_listener_that_is_not_zeromq_is_reported(tmp_path):
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))

    def impostor() -> None:
        conn, _ = server.accept()
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b" " * 64)
        conn.close()

    thread = threading.Thread(target=impostor, daemon=True)
    thread.start()
    out = arictl("--timeout", "2", "--endpoint", f"tcp://127.0.0.1:{port}", "status")
    server.close()
    assert out.returncode == 3 and "does not speak ZMTP" in out.stderr
    assert isinstance(ProtocolError("x"), Unreachable)
