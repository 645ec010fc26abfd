"""CURVE keys and the events socket's security, for a reader on another host than the engine.

libzmq's CURVE (through pyzmq's `zmq.auth`) authenticates and encrypts the events link. Keys
live in `[zmq] keys` in the ZeroMQ certificate format, so `zmq.auth.load_certificate` reads
them: `NAME.key` holds the public key (safe to copy), `NAME.key_secret` both (mode 0600, never
leaves its host). The engine's pair is `engine`, a reader's is `reader`; the engine accepts the
readers whose `.key` files are in `[zmq] readers`, and a reader host holds a copy of the
engine's `engine.key` in its own keys folder.

A reader refused by the engine (a key not listed, or no CURVE at all) is seen through a socket
monitor on the engine's events socket: logged once per episode, then counted
(`readers_refused`); a reader accepted again ends the episode.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import parse_monitor_message

from arimonitor.config import Config, ConfigError

log = logging.getLogger(__name__)

KEY_NAMES = ("engine", "reader")
_BANNER = "#   ZeroMQ CURVE certificate made by 'arimonitor keys' on {}\n"


class KeysExist(Exception):
    """A keypair is already there and --force was not given."""


def make_keypair(folder: Path, name: str, force: bool = False) -> tuple[Path, Path, str]:
    """Write NAME.key (public) and NAME.key_secret (0600, created so; no window readable by
    others). Returns both paths and the public key."""
    public_path, secret_path = folder / f"{name}.key", folder / f"{name}.key_secret"
    if not force and (public_path.exists() or secret_path.exists()):
        raise KeysExist(f"{secret_path} already exists; use --force to replace it "
                        "(every host holding the old public key must then get the new one)")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    public, secret = zmq.curve_keypair()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    body = f"metadata\ncurve\n    public-key = \"{public.decode()}\"\n"
    _write(secret_path, _BANNER.format(stamp) + body + f"    secret-key = \"{secret.decode()}\"\n", 0o600)
    _write(public_path, _BANNER.format(stamp) + body, 0o644)
    return public_path, secret_path, public.decode()


def _write(path: Path, text: str, mode: int) -> None:
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)  # the umask may have taken bits off the public file


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"[zmq] curve = yes but {path} cannot be read ({exc}); "
                          "make keys with 'arimonitor keys'") from None
    if secret and not secret_key:
        raise ConfigError(f"{path} holds no secret key; make keys with 'arimonitor keys'")
    if secret and os.stat(path).st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others: run chmod 600 {path}")
    return public, secret_key


def secure_engine_socket(sock: zmq.Socket, cfg: Config, context: zmq.Context) -> ThreadAuthenticator:
    """Make `sock` (not yet bound) a CURVE server that accepts only the listed readers."""
    keys = Path(cfg["zmq.keys"])
    public, secret = _load(keys / "engine.key_secret", secret=True)
    readers = Path(cfg["zmq.readers"])
    if not readers.is_dir():
        raise ConfigError(f"[zmq] readers = {readers} is not a folder: make it and copy each "
                          "reader's reader.key into it (named after its server, e.g. pbx2.key)")
    listed = sorted(readers.glob("*.key"))
    if not listed:
        log.warning("[zmq] curve is on but %s lists no reader key (*.key): every reader is refused",
                    readers)
    auth = ThreadAuthenticator(context, log=logging.getLogger("arimonitor.zap"))
    auth.start()
    # Certificates are read now: a reader key added later takes an engine restart.
    auth.configure_curve(domain="*", location=str(readers))
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    log.info("events socket: CURVE on, %d reader key(s) accepted from %s", len(listed), readers)
    return auth


def secure_reader_socket(sock: zmq.Socket, cfg: Config) -> None:
    """Make `sock` (not yet connected) a CURVE client of the engine."""
    keys = Path(cfg["zmq.keys"])
    public, secret = _load(keys / "reader.key_secret", secret=True)
    engine_public, _ = _load(keys / "engine.key", secret=False)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = engine_public


# Handshake failures of a reader: refused by the ZAP handler, or speaking another mechanism.
_REFUSED = {zmq.EVENT_HANDSHAKE_FAILED_AUTH: "its key is not listed in [zmq] readers",
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "its CURVE handshake failed (wrong engine key?)",
            zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "its handshake failed (no CURVE on the reader?)"}


class RefusalWatch:
    """The monitor of the engine's events socket: refused readers, logged once, then counted."""

    def __init__(self, sock: zmq.Socket, counters: Any) -> None:
        self.counters = counters
        self.monitor = sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        self.refusing = False

    def on_readable(self, monitor: zmq.Socket) -> None:
        while True:
            try:
                event = parse_monitor_message(monitor.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            self.on_event(event["event"], event.get("endpoint", b""))

    def on_event(self, kind: int, endpoint: bytes | str) -> None:
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            if self.refusing:
                log.info("a reader was accepted on the events socket again")
            self.refusing = False
            return
        why = _REFUSED.get(kind)
        if why is None:
            return
        self.counters.readers_refused += 1
        if not self.refusing:
            self.refusing = True
            where = endpoint.decode(errors="replace") if isinstance(endpoint, bytes) else endpoint
            log.warning("a reader was refused on %s: %s; further refusals are counted "
                        "(readers_refused) until one is accepted", where, why)

    def close(self) -> None:
        self.monitor.close(0)
