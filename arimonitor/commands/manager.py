"""The v2.7 manager port: the console registry as a plain line protocol on 127.0.0.1:1101.

    $ nc 127.0.0.1 1101
    version
    OK
    arimonitor 3.0.0 (console API 1)
    --END COMMAND--

One command per line (shell-like quoting); each reply is a status line (`OK` or
`ERROR <code> <reason>`), the reply text, then the terminator line `--END COMMAND--`. A text line
that starts with `--END` is sent with one leading space, so the terminator is unambiguous.
`quit` closes the connection. Full description: docs/PROTOCOL.md, "Manager port".

Runs in the engine process on its own threads, but never touches engine state: each
connection forwards its commands as ordinary control requests over its own ZeroMQ REQ socket,
so the engine's single-threaded loop stays the only owner of state.

Hard to block (nothing to log in with, so anyone on the machine may connect):
- a command line must be complete within LINE_DEADLINE of its first byte, however the bytes
  trickle in (a byte every few seconds no longer keeps a slot forever);
- a connection waiting for its next command is *idle*: when every slot is taken, the one idle
  longest is closed (`ERROR 6 busy`, "closed for a new client") to make room;
- one peer address holds at most MAX_PER_PEER slots; the listen backlog is the system's usual.
"""

from __future__ import annotations

import logging
import shlex
import socket
import socketserver
import threading
import time
from typing import Any

import zmq

from arimonitor import protocol
from arimonitor.control_client import ControlClient, NoAnswer, WrongReply
from arimonitor.engine.api import EngineApi

TERMINATOR = "--END COMMAND--"
MAX_LINE = 4096
MAX_CONNECTIONS = 20
MAX_PER_PEER = 16       # slots one address may hold (loopback peers all share 127.0.0.1)
IDLE_TIMEOUT = 300.0
LINE_DEADLINE = 10.0    # seconds from a line's first byte to its newline
BACKLOG = 128
EVICT_WAIT = 2.0        # seconds a new connection waits for the slot of an evicted idle one


class _Closed(Exception):
    """The peer went away, or a deadline passed (the message says which)."""


class _LineReader:
    """Lines from a socket with two clocks: idle (before a line's first byte) and an absolute
    deadline for the rest of the line."""

    def __init__(self, sock: socket.socket, max_line: int, idle: float, deadline: float) -> None:
        self.sock, self.max_line, self.idle, self.deadline = sock, max_line, idle, deadline
        self.buf = b""
        self.waiting_since: float | None = None  # monotonic time it became idle; None = busy

    def readline(self) -> bytes:
        """One line (with its newline), b"" at end of stream, or max_line+1 bytes without one."""
        self.waiting_since = time.monotonic() if not self.buf else None
        started = None if not self.buf else time.monotonic()
        while b"\n" not in self.buf and len(self.buf) <= self.max_line:
            now = time.monotonic()
            if started is None:
                left = self.idle - (now - (self.waiting_since or now))
                why = "idle too long, closing"
            else:
                left = self.deadline - (now - started)
                why = f"line not finished within {self.deadline:g}s, closing"
            if left <= 0:
                raise _Closed(why)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                continue  # the loop sees the time left is gone
            except OSError as exc:
                raise _Closed("") from exc
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                return b""
            if started is None:
                started, self.waiting_since = time.monotonic(), None
            self.buf += chunk
        self.waiting_since = None
        end = self.buf.find(b"\n")
        if end < 0 or end > self.max_line:
            line, self.buf = self.buf[: self.max_line + 1], b""
            return line
        line, self.buf = self.buf[: end + 1], self.buf[end + 1:]
        return line


def reply_block(status: str, text: str) -> bytes:
    """Status line, text lines (escaped), terminator line; CRLF-free, UTF-8."""
    lines = [status]
    for line in text.splitlines():
        lines.append(" " + line if line.startswith("--END") else line)
    lines.append(TERMINATOR)
    return ("\n".join(lines) + "\n").encode("utf-8", "replace")


def error_block(code: int, reason: str) -> bytes:
    return reply_block(f"ERROR {code} {protocol.ERROR_NAMES.get(code, 'error')}", f"error: {reason}")


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        owner = self.server.owner
        reader = _LineReader(self.request, owner.max_line, owner.idle_timeout, owner.line_deadline)
        owner._readers[self.request] = reader
        forwarder = ControlClient(owner.context, owner.control, owner.timeout,
                                  via=protocol.VIA_MANAGER)
        try:
            while True:
                try:
                    raw = reader.readline()
                except _Closed as exc:
                    if str(exc):
                        self._send(error_block(protocol.E_BUSY, str(exc)))
                    return
                if not raw:
                    return
                if len(raw) > owner.max_line and not raw.endswith(b"\n"):
                    # the rest of an overlong line cannot be told from a new command: close
                    self._send(error_block(protocol.E_MALFORMED,
                                           f"line longer than {owner.max_line} bytes, closing"))
                    return
                if not self._serve_line(raw, forwarder):
                    return
        finally:
            owner._readers.pop(self.request, None)
            forwarder.close()

    def _serve_line(self, raw: bytes, forwarder: ControlClient) -> bool:
        """Answer one line; False when the connection should close."""
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return self._send(error_block(protocol.E_MALFORMED, "line is not UTF-8 text"))
        if "\x00" in line:
            return self._send(error_block(protocol.E_MALFORMED, "line holds binary data"))
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return self._send(error_block(protocol.E_MALFORMED, f"cannot split the line: {exc}"))
        if not words:
            return True
        if words[0].lower() in ("quit", "exit"):
            self._send(reply_block("OK", "bye"))
            return False
        try:
            reply = forwarder.request(words[0], words[1:])
        except NoAnswer as exc:
            return self._send(error_block(protocol.E_BUSY, str(exc)))
        except WrongReply as exc:
            return self._send(error_block(protocol.E_INTERNAL, str(exc)))
        except (zmq.ZMQError, ValueError) as exc:
            forwarder.close()
            self.server.owner.log.warning("manager port: request failed: %s", exc)
            return self._send(error_block(protocol.E_INTERNAL, "the engine could not be asked"))
        if reply.get("status") == protocol.STATUS_OK:
            return self._send(reply_block("OK", reply.get("text") or ""))
        code = reply.get("code") if isinstance(reply.get("code"), int) else protocol.E_INTERNAL
        status = f"ERROR {code} {protocol.ERROR_NAMES.get(code, 'error')}"
        return self._send(reply_block(status, reply.get("text") or f"error: {reply.get('reason')}"))

    def _send(self, data: bytes) -> bool:
        try:
            self.request.settimeout(self.server.owner.line_deadline)  # a peer that never reads
            self.request.sendall(data)
            return True
        except OSError:  # the client went away mid-reply
            return False


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = BACKLOG
    owner: ManagerServer

    def process_request(self, request: Any, client_address: Any) -> None:
        owner = self.owner
        peer = client_address[0]
        refusal = None
        with owner._lock:
            if owner._per_peer.get(peer, 0) >= owner.max_per_peer:
                refusal = f"too many connections from {peer} (limit {owner.max_per_peer})"
        if refusal is None and not owner._slots.acquire(blocking=False) and not (
                owner._evict_idle() and owner._slots.acquire(timeout=EVICT_WAIT)):
            refusal = f"too many connections (limit {owner.max_connections})"
        if refusal is not None:
            try:
                request.sendall(error_block(protocol.E_BUSY, refusal))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with owner._lock:
            owner._open.add(request)
            owner._per_peer[peer] = owner._per_peer.get(peer, 0) + 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.owner._lock:
                self.owner._open.discard(request)
                peer = client_address[0]
                self.owner._per_peer[peer] -= 1
                if not self.owner._per_peer[peer]:
                    del self.owner._per_peer[peer]
            self.owner._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.owner.log.exception("manager port: connection from %s failed", client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class ManagerServer:
    """`ManagerServer(cfg, log).start()` in the engine process; `.stop()` at shutdown."""

    def __init__(self, cfg: Any, log: logging.Logger, *, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout: float = IDLE_TIMEOUT, max_line: int = MAX_LINE,
                 line_deadline: float = LINE_DEADLINE, max_per_peer: int = MAX_PER_PEER,
                 context: zmq.Context | None = None):
        self.host = cfg["console.manager_host"]
        self.port = cfg["console.manager_port"]
        self.control = cfg["zmq.control"]
        self.timeout = cfg["console.timeout"]
        self.log = log
        self.max_connections, self.idle_timeout, self.max_line = max_connections, idle_timeout, max_line
        self.line_deadline, self.max_per_peer = line_deadline, max_per_peer
        self.evicted = 0  # idle connections closed to make room
        self.context = context or zmq.Context.instance()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._per_peer: dict[str, int] = {}
        self._readers: dict[socket.socket, _LineReader] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _evict_idle(self) -> bool:
        """Close the connection idle longest (waiting for a command); False if none is idle."""
        idle = [(r.waiting_since, conn) for conn, r in list(self._readers.items())
                if r.waiting_since is not None]
        if not idle:
            return False
        _since, conn = min(idle, key=lambda pair: pair[0])
        try:
            conn.sendall(error_block(protocol.E_BUSY, "idle, closed for a new client"))
        except OSError:
            pass
        try:
            conn.shutdown(socket.SHUT_RDWR)  # wakes its handler, which frees the slot
        except OSError:
            pass
        self.evicted += 1
        return True

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port when configured as 0)."""
        return self._server.server_address[:2] if self._server else (self.host, self.port)

    def start(self) -> None:
        """Bind and serve on a daemon thread; OSError if the port is taken."""
        if self.host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(f"manager port must bind to loopback, not {self.host!r}")
        server_class = _Server6 if ":" in self.host else _Server
        server = server_class((self.host, self.port), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="manager-port", daemon=True)
        self._thread.start()
        self.log.info("manager port listening on %s:%s", *self.address)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            for conn in list(self._open):
                try:
                    conn.shutdown(socket.SHUT_RDWR)  # wakes the handler thread blocked in readline
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.log.info("manager port stopped")


class ManagerComponent:
    """The manager port as an engine component: bound at engine start, closed at engine close.

    A port that cannot be bound (taken, not loopback) is logged as an error and the engine goes
    on: arictl still reaches it over ZeroMQ.
    """

    def __init__(self, engine: EngineApi) -> None:
        cfg = engine.cfg
        self.log = logging.getLogger("arimonitor.commands.manager")
        self.server = (ManagerServer(cfg, self.log, context=engine.zmq_context)
                       if cfg["console.manager_enabled"] else None)

    def start(self) -> None:
        if self.server is None:
            return
        try:
            self.server.start()
        except (OSError, ValueError) as exc:
            self.log.error("manager port %s:%s not started: %s (arictl still works over ZeroMQ)",
                           self.server.host, self.server.port, exc)
            self.server = None

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
