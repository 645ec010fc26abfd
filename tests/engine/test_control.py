"""The control socket's private bind, its cap on slow commands, and call_in_loop's hand-back."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from types import SimpleNamespace

import pytest
import zmq

from arimonitor import protocol
from arimonitor.commands.registry import Registry, Reply
from arimonitor.engine.loop import Loop
from arimonitor.engineproc.control import ControlServer
from arimonitor.zmqbind import bind_private
from tests.support import eventually


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_bind_private_makes_its_folder_0700_and_the_socket_0600(tmp_path):
    old = os.umask(0o022)  # the usual umask would have made the folder 0755
    try:
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        try:
            bind_private(sock, f"ipc://{tmp_path}/run/sub/control.sock")
        finally:
            sock.close(0)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "run" / "sub") == 0o700
    assert _mode(tmp_path / "run" / "sub" / "control.sock") == 0o600


def test_bind_private_leaves_a_folder_it_did_not_make_alone(tmp_path, caplog):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    try:
        bind_private(sock, f"ipc://{shared}/control.sock")
    finally:
        sock.close(0)
    assert _mode(shared) == 0o755  # it may be /tmp: never ours to chmod
    assert _mode(shared / "control.sock") == 0o600
    assert "open to other users" in caplog.text


@pytest.fixture
def control(tmp_path):
    """A ControlServer on a loop thread, a `wait` slow command held by an Event, a client."""
    release = threading.Event()
    registry = Registry()

    @registry.command("wait", category="test", summary="blocks until released", slow=True)
    def wait(_ctx) -> Reply:
        release.wait(30)
        return Reply("released")

    @registry.command("ping", category="test", summary="fast")
    def ping(_ctx) -> Reply:
        return Reply("pong")

    ctx = zmq.Context.instance()
    address = f"ipc://{tmp_path}/control.sock"
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    bind_private(router, address)
    loop = Loop()
    server = ControlServer(router, loop, registry, ctx=None, max_slow=2)
    loop.add_socket(router, server.on_readable)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop.is_set,), daemon=True)
    thread.start()
    client = ctx.socket(zmq.DEALER)
    client.setsockopt(zmq.LINGER, 0)
    client.connect(address)
    try:
        yield SimpleNamespace(client=client, release=release, server=server)
    finally:
        release.set()
        stop.set()
        thread.join(5)
        client.close(0)
        router.close(0)
        loop.close()


def _ask(client, req_id: str, cmd: str) -> None:
    client.send_multipart([b"", json.dumps({"id": req_id, "cmd": cmd, "api": 1}).encode()])


def _answer(client, timeout_ms: int = 10000) -> dict:
    assert client.poll(timeout_ms), "no reply"
    _empty, payload = client.recv_multipart()
    return json.loads(payload)


def test_slow_commands_beyond_the_cap_are_busy_at_once(control):
    _ask(control.client, "1", "wait")
    _ask(control.client, "2", "wait")
    _ask(control.client, "3", "wait")  # the cap is 2: answered now, not queued
    busy = _answer(control.client)
    assert (busy["id"], busy["status"], busy["code"]) == ("3", "error", protocol.E_BUSY)
    _ask(control.client, "4", "ping")  # fast commands are not held up by the cap
    assert _answer(control.client)["data"] == "pong"
    control.release.set()
    done = {_answer(control.client)["id"], _answer(control.client)["id"]}
    assert done == {"1", "2"}
    eventually(lambda: control.server.slow_running == 0)
    _ask(control.client, "5", "wait")  # the slots came back
    reply = _answer(control.client)
    assert (reply["id"], reply["status"], reply["data"]) == ("5", "ok", "released")


class _Interrupt(BaseException):
    """Stands for KeyboardInterrupt/SystemExit without disturbing pytest."""


def test_call_in_loop_hands_a_base_exception_back_and_never_waits_out_its_timeout():
    loop = Loop()
    failures: list[BaseException] = []

    def run_loop() -> None:
        try:
            loop.run(lambda: False)
        except _Interrupt as exc:  # the loop thread sees it too
            failures.append(exc)

    thread = threading.Thread(target=run_loop, daemon=True)
    thread.start()

    def boom() -> None:
        raise _Interrupt("stop")

    started = time.monotonic()
    with pytest.raises(_Interrupt):
        loop.call_and_wait(boom, timeout=30)
    assert time.monotonic() - started < 25  # not the timeout: `done` was set
    thread.join(5)
    assert len(failures) == 1
    loop.close()
