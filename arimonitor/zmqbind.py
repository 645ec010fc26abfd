"""Binding a ZeroMQ socket so that only our own user can connect to it.

Shared by the engine's sockets and the transcoder pool's (which the engine binds too).
"""

from __future__ import annotations

import logging
import os

import zmq

log = logging.getLogger(__name__)


def bind_private(sock: zmq.Socket, endpoint: str) -> None:
    """Bind so that only our own user can connect (the config already refuses non-loopback tcp).

    An ipc:// socket is a file, and connecting to it needs search permission on its directory,
    so the guard is the directory: when we create it, it is made 0700 at once (mkdir 0700, then
    chmod 0700 since the umask may have changed that mode), and a socket inside it is out of
    other users' reach from the moment it exists, whatever the socket's own mode. Neither of
    the alternatives would do: chmod 0600 *after* bind leaves a window, and a connection made
    in it survives the chmod; os.umask(0o077) around bind is process-wide, so it changes the
    mode of whatever other threads create meanwhile. The socket is still chmod 0600 after bind
    (cheap; it matters in a directory we did not make). A directory that already exists is left
    as it is (it may be /tmp): if other users can enter it, the log says so.
    """
    if not endpoint.startswith("ipc://"):
        sock.bind(endpoint)
        return
    path = endpoint[len("ipc://"):]
    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, mode=0o700)
    except FileExistsError:
        if os.stat(folder).st_mode & 0o077:
            log.warning("%s is open to other users: the socket %s is protected by its own mode "
                        "0600 only; make the directory 0700", folder, path)
    else:
        os.chmod(folder, 0o700)
    sock.bind(endpoint)
    os.chmod(path, 0o600)


# The events link over TCP (a reader on the PBX host): ZMTP heartbeats, so a link that dies
# without a FIN or RST is closed after HEARTBEAT_TIMEOUT; the reader then drops and counts
# (IMMEDIATE) and the engine sees the gap in the sequence numbers once it is back.
HEARTBEAT_IVL_MS = 2_000
HEARTBEAT_TIMEOUT_MS = 6_000


RECONNECT_IVL_MAX_MS = 5_000  # a peer failing handshakes is retried with backoff, not 10/s


def tcp_liveness(sock: zmq.Socket) -> None:
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)
