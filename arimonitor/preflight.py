"""What `arimonitor start` checks before it starts anything, and what it waits for after.

- Ports: every TCP port the tree will listen on must be free, else one line naming the port
  and the setting that chose it (a busy simulator port used to crash-loop ari-sim while start
  said "all running").
- ARI: once every program is RUNNING, start waits until the engine has a live link to
  Asterisk (`wait_for_ari`), and says why not (unreachable, refused password, not Asterisk).
"""

from __future__ import annotations

import errno
import socket
import time
from urllib.parse import urlsplit

from arimonitor.config import Config


def listening_ports(cfg: Config, demo: bool) -> list[tuple[str, int, str]]:
    """(host, port, setting) for every TCP port this tree will bind."""
    ports = []
    if demo:
        ports += [(cfg["sim.host"], cfg["sim.port"], "[sim] port"),
                  (cfg["sim.host"], cfg["sim.ami_port"], "[sim] ami_port")]
    if cfg["console.manager_enabled"]:
        ports.append((cfg["console.manager_host"], cfg["console.manager_port"], "[console] manager_port"))
    for name in ("events", "control", "publish", "jobs", "results"):
        parts = urlsplit(cfg[f"zmq.{name}"])
        if parts.scheme == "tcp" and parts.port:
            ports.append((parts.hostname or "127.0.0.1", parts.port, f"[zmq] {name}"))
    return ports


def busy_port(cfg: Config, demo: bool) -> str | None:
    """One line naming the first port already taken, or None when all are free."""
    for host, port, setting in listening_ports(cfg, demo):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # as the servers bind: SO_REUSEADDR lets a port in TIME_WAIT through, not a listener
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                why = "in use by another program" if exc.errno == errno.EADDRINUSE else exc.strerror
                return f"port {host}:{port} ({setting}) is {why}; free it or choose another {setting}"
    return None


def ari_verdict(reply: dict) -> tuple[str, str]:
    """From an engine `status` reply: ("up", ""), ("wait", why) or ("fail", why)."""
    data = reply.get("data") if isinstance(reply.get("data"), dict) else {}
    link, probe = data.get("link") or {}, data.get("probe") or {}
    if link.get("state") == "connected" and not probe.get("auth_failed"):
        return "up", ""
    if probe.get("auth_failed"):
        return "fail", f"Asterisk refused the ARI user and password: {probe.get('auth_error')}"
    if probe.get("not_asterisk"):
        return "fail", str(probe.get("last_error"))
    why = link.get("reason") or probe.get("last_error") or "the reader has not connected yet"
    return "wait", why


def wait_for_ari(cfg: Config, url: str, timeout: float) -> tuple[bool, str]:
    """Ask the engine (its control socket, as arictl does) until its ARI link is up."""
    from arimonitor.console.client import Session
    from arimonitor.console.zmtp import ProtocolError, Unreachable

    deadline = time.monotonic() + timeout
    why = "the engine did not answer"
    while time.monotonic() < deadline:
        session = Session(cfg["zmq.control"], min(2.0, cfg["console.timeout"]))
        try:
            verdict, why = ari_verdict(session.call("status"))
        except (Unreachable, ProtocolError) as exc:
            verdict, why = "wait", f"the engine did not answer ({exc})"
        finally:
            session.close()
        if verdict == "up":
            return True, ""
        if verdict == "fail":
            return False, why
        time.sleep(0.3)
    return False, f"Asterisk is unreachable at {url} after {timeout:g} s: {why}"
