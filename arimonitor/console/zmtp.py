"""arictl's only transport: a ZeroMQ REQ peer in plain stdlib sockets for the control requests,
and `Subscription`, a pyzmq SUB for `watch` and `top` (end of the module).

Why not pyzmq for requests: `import zmq` alone costs 1.96x a bare `python -c pass` (best of 30
interleaved runs, 2026-12-01), arictl's request path 1.39x, and `arictl status` must stay
within 2x. A REQ conversation is small enough to speak ZMTP 3.0
(https://rfc.zeromq.org/spec/23/, NULL mechanism) directly: greeting, READY, then an empty
delimiter frame plus one body frame each way. The engine's ROUTER is real libzmq; the
tests run every command against one.

A stream socket also tells us more than libzmq does: "nothing listening" shows at connect, so
only undelivered requests are retried (never a request the engine may already have run) and a
dead engine is reported in well under the timeout.
"""

from __future__ import annotations

# _socket is the C half of `socket`: the Python half costs ~3 ms of enum set-up at import,
# a quarter of arictl's whole budget, and adds nothing a stream client needs.
import _socket as socket
import os
import select
import time

# signature (0xFF, 8 bytes padding, 0x7F), version 3.0, mechanism NULL, as-server 0, filler
_GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
_FLAG_MORE, _FLAG_LONG, _FLAG_COMMAND = 0x01, 0x02, 0x04


class Unreachable(Exception):
    """Nothing answered: not connected, or no reply before the deadline."""


class ProtocolError(Unreachable):
    """The peer is not speaking ZMTP 3 (wrong socket, or not a ZeroMQ ROUTER)."""


def _frame(body: bytes, flags: int = 0) -> bytes:
    if len(body) > 255:
        return bytes((flags | _FLAG_LONG,)) + len(body).to_bytes(8, "big") + body
    return bytes((flags, len(body))) + body


def _ready(socket_type: bytes) -> bytes:
    return _frame(b"\x05READY" + b"\x0bSocket-Type" + len(socket_type).to_bytes(4, "big") + socket_type,
                  _FLAG_COMMAND)


def address(endpoint: str) -> tuple[int, object]:
    """ipc://PATH or tcp://HOST:PORT -> (address family, socket address); ValueError if neither."""
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        if not path:
            raise ValueError(f"{endpoint!r} has no path")
        # libzmq's abstract namespace: ipc://@name
        return socket.AF_UNIX, ("\0" + path[1:]) if path.startswith("@") else path
    if endpoint.startswith("tcp://"):
        host, _, port = endpoint[len("tcp://"):].rpartition(":")
        host = host.strip("[]")
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(f"{endpoint!r} is not on loopback; the control socket never faces the network")
        if not port.isdigit():
            raise ValueError(f"{endpoint!r} has no port number")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return family, (host, int(port))
    raise ValueError(f"{endpoint!r} is not a ZeroMQ endpoint (ipc://PATH or tcp://127.0.0.1:PORT)")


class ReqConnection:
    """One ZMTP connection acting as a REQ socket. Every wait is bounded by a deadline."""

    def __init__(self, endpoint: str, deadline: float):
        family, where = address(endpoint)
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._buf = bytearray()
        try:
            self._sock.settimeout(max(0.001, deadline - time.monotonic()))
            self._sock.connect(where)
            self._sock.sendall(_GREETING + _ready(b"REQ"))
            greeting = self._take(64, deadline)
            if greeting[0] != 0xFF or greeting[9] != 0x7F or greeting[10] < 3:
                raise ProtocolError(f"{endpoint} does not speak ZMTP 3 (is it the engine's control socket?)")
            if greeting[12:32].rstrip(b"\x00") != b"NULL":
                raise ProtocolError(f"{endpoint} asks for a security mechanism arictl does not support")
            # libzmq reads frames sent before its READY as handshake commands, so wait for it
            flags, body = self._read_frame(deadline)
            if not flags & _FLAG_COMMAND or not body.startswith(b"\x05READY"):
                raise ProtocolError(f"{endpoint} sent no READY")
        except BaseException:
            self._sock.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def stale(self) -> bool:
        """True when the peer has closed (or sent something unasked) since the last reply."""
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable or self._buf)

    def request(self, body: bytes, deadline: float) -> bytes:
        """Send one request and return the reply body; Unreachable on EOF or deadline."""
        self._sock.settimeout(max(0.001, deadline - time.monotonic()))
        self._sock.sendall(_frame(b"", _FLAG_MORE) + _frame(body))
        parts: list[bytes] = []
        while True:
            flags, frame = self._read_frame(deadline)
            if flags & _FLAG_COMMAND:
                if frame.startswith(b"\x04PING"):  # ZMTP 3.1 heartbeat: answer with its context
                    self._sock.sendall(_frame(b"\x04PONG" + frame[7:], _FLAG_COMMAND))
                continue
            parts.append(frame)
            if not flags & _FLAG_MORE:
                break
        if len(parts) < 2 or parts[0] != b"":
            raise ProtocolError("reply without the REQ envelope delimiter")
        return b"".join(parts[1:])

    def _read_frame(self, deadline: float) -> tuple[int, bytes]:
        flags = self._take(1, deadline)[0]
        size_len = 8 if flags & _FLAG_LONG else 1
        size = int.from_bytes(self._take(size_len, deadline), "big")
        return flags, self._take(size, deadline)

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unreachable("no reply before the deadline")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(max(65536, n - len(self._buf)))
            except TimeoutError:
                raise Unreachable("no reply before the deadline") from None
            if not chunk:
                raise Unreachable("the engine closed the connection")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


class ReqClient:
    """Lazy-pirate style REQ client: connect with bounded retries, reuse while fresh.

    Only failures *before* a request was written are retried (connect refused, socket file
    missing, handshake cut): once a request may have reached the engine it is never sent
    twice, because commands like `set` or `recovery` are not idempotent.
    """

    def __init__(self, endpoint: str, retries: int = 3, backoff: float = 0.2):
        address(endpoint)  # fail early on a bad or non-loopback address
        self.endpoint = endpoint
        self.retries = retries
        self.backoff = backoff
        self._conn: ReqConnection | None = None
        self._serial = 0
        self.last_error = ""

    def next_id(self) -> str:
        self._serial += 1
        return f"{os.getpid()}-{self._serial}"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self, deadline: float) -> ReqConnection:
        if self._conn is not None and not self._conn.stale():
            return self._conn
        self.close()
        delay = self.backoff
        for attempt in range(self.retries):
            try:
                self._conn = ReqConnection(self.endpoint, deadline)
                return self._conn
            except ProtocolError:
                raise
            except (OSError, Unreachable) as exc:
                self.last_error = _describe_os_error(exc)
            if attempt + 1 < self.retries and time.monotonic() + delay < deadline:
                time.sleep(delay)  # the engine may be restarting under supervisord
                delay *= 2
        raise Unreachable(f"cannot connect to {self.endpoint}: {self.last_error}")

    def call(self, body: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        conn = self._connect(deadline)
        try:
            return conn.request(body, deadline)
        except (OSError, Unreachable) as exc:
            self.close()
            if isinstance(exc, Unreachable):
                raise
            raise Unreachable(_describe_os_error(exc)) from None


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "the socket file does not exist"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing is listening)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or exc.__class__.__name__


class Subscription:
    """A SUB on the engine's PUB socket, for `watch` and `top`: through pyzmq (libzmq), imported
    here only when one opens. Those two run for minutes, so the import's cost (about 1.9x a bare
    interpreter's start) does not matter there, and libzmq's reconnects and subscription
    handling are worth having; only the one-shot requests above must start fast."""

    def __init__(self, endpoint: str, topics: list[str]) -> None:
        import zmq

        self._zmq = zmq
        self._context = zmq.Context()
        self._sub = self._context.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self._sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._sub.connect(endpoint)

    def receive(self, wait: float) -> list[bytes] | None:
        """The frames of the next event to come within `wait` seconds, or None."""
        if not self._sub.poll(max(0, int(wait * 1000))):
            return None
        try:
            return self._sub.recv_multipart(self._zmq.NOBLOCK)
        except self._zmq.Again:
            return None

    def close(self) -> None:
        self._sub.close()
        self._context.term()
