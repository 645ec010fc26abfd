"""The reader: backoff, URL, forwarding with sequence numbers, auth failure, dead-link detection."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
import zmq

from arimonitor import protocol
from arimonitor.backoff import Backoff
from arimonitor.reader.connection import Connection, ReaderStats, basic_auth, events_url
from arimonitor.reader.forwarder import Forwarder
from arimonitor.sim.testing import SimServer


def test_backoff_doubles_to_the_cap_with_jitter_and_resets():
    b = Backoff(0.5, 30.0, random.Random(7))
    delays = [b.next() for _ in range(10)]
    steps = [0.5 * 2**i for i in range(10)]
    for delay, step in zip(delays, steps):
        assert min(step, 30.0) * 0.5 <= delay <= min(step, 30.0)
    assert max(delays) <= 30.0 and delays[-1] >= 15.0
    b.reset()
    assert b.next() <= 0.5


def test_events_url():
    assert (events_url("http://127.0.0.1:8088/ari/", "arimonitor")
            == "ws://127.0.0.1:8088/ari/events?app=arimonitor&subscribeAll=true")
    assert events_url("https://pbx:8089/ari", "a b").startswith("wss://pbx:8089/ari/events?app=a+b&")


@pytest.fixture
def pull(tmp_path):
    sock = zmq.Context.instance().socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    address = f"ipc://{tmp_path}/events.sock"
    sock.bind(address)
    yield sock, address
    sock.close(0)


def _messages(sock, until, timeout=10.0):
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(out):
        if sock.poll(100):
            out.append(sock.recv_multipart())
    return out


def _ari(messages):
    return [pair for m in messages if m[0] in (protocol.KIND_ARI, protocol.KIND_ARI_BATCH)
            for pair in protocol.ari_frames(m)]


def _connection(sim, address, stop, password=None, ping=1.0):
    fwd = Forwarder(address)
    conn = Connection(url=events_url(sim.url, sim.app), auth_header=basic_auth(sim.user, password or sim.password),
                      server="ast1", epoch=42, ping_interval=ping, forwarder=fwd, stats=ReaderStats(),
                      stopping=stop.is_set, connect_timeout=2)
    return conn, fwd


def test_frames_are_forwarded_untouched_with_sequence_numbers(pull):
    sock, address = pull
    with SimServer(endpoints=["1013010"]) as sim:
        stop = threading.Event()
        conn, fwd = _connection(sim, address, stop)
        outcome: list = []
        thread = threading.Thread(target=lambda: outcome.append(conn.run()))
        thread.start()
        try:
            first = _messages(sock, lambda m: m)
            assert first[0][0] == protocol.KIND_LINK
            assert json.loads(first[0][1])["state"] == "connected"
            sim.control.register("1013010")
            sim.control.malformed("not_json")
            frames = _messages(sock, lambda m: len(_ari(m)) >= 4)
            ari = _ari(frames)  # (header, frame) per frame, lone or batched
            headers = [h for h, _frame in ari]
            assert [h["seq"] for h in headers] == list(range(1, len(ari) + 1))
            assert all(h["server"] == "ast1" and h["epoch"] == 42 for h in headers)
            assert any(frame == b"this is not JSON {" for _h, frame in ari)  # bytes as received
        finally:
            stop.set()
            thread.join(5)
            fwd.close()
        assert outcome and outcome[0].connected and not outcome[0].auth_failed


def test_auth_failure_is_reported_as_such(pull):
    _sock, address = pull
    with SimServer() as sim:
        conn, fwd = _connection(sim, address, threading.Event(), password="wrong")
        outcome = conn.run()
        fwd.close()
    assert outcome.auth_failed and "401" in outcome.reason and "wrong" not in outcome.reason


def test_a_silent_dead_link_is_detected_within_two_ping_intervals(pull):
    sock, address = pull
    # A server that completes the handshake and then never says anything, not even pong.
    import socket as socketlib
    server = socketlib.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    hang_up = threading.Event()

    def serve():
        conn, _ = server.accept()
        request = conn.recv(4096).decode()
        key = next(line.split(": ")[1] for line in request.split("\r\n") if line.lower().startswith("sec-websocket-key"))
        import base64
        import hashlib
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        hang_up.wait(60)  # silent, yet open, for as long as the reader may take to notice
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    fwd = Forwarder(address)
    interval = 1.0
    conn = Connection(url=f"ws://127.0.0.1:{port}/ari/events", auth_header=basic_auth("u", "p"), server="s",
                      epoch=1, ping_interval=interval, forwarder=fwd, stats=ReaderStats(),
                      stopping=lambda: False, connect_timeout=2)
    started = time.monotonic()
    outcome = conn.run()
    elapsed = time.monotonic() - started
    hang_up.set()
    fwd.close()
    server.close()
    assert "dead link" in outcome.reason
    # Detection takes just over 2 intervals (plus at most a recv timeout of interval/4): the
    # upper bound leaves ~1.75 s for a loaded machine and still fails a reader that waits longer.
    assert 2 * interval < elapsed < 4 * interval, elapsed
    notices = [json.loads(m[1])["state"] for m in _messages(sock, lambda m: len(m) >= 2, 2)]
    assert notices == ["connected", "disconnected"]


def test_forwarder_drops_and_counts_when_no_engine_listens(tmp_path):
    fwd = Forwarder(f"ipc://{tmp_path}/nobody.sock", hwm=10)
    assert fwd.frame("s", 1, 1, b"{}", time.time()) is False
    assert fwd.dropped == 1 and fwd.sent == 0
    fwd.close()
