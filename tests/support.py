"""Helpers every test shares: waiting without sleeps, free ports, processes that get killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arimonitor.pids import pid_alive  # noqa: F401 (tests import it from here)

ROOT = Path(__file__).resolve().parent.parent
# The v2.7 fixtures and ARI captures the default suite reads, kept in the repository (a user's
# clone has nothing beside it); tests/live/test_data_copies.py checks them against the originals.
DATA = ROOT / "tests" / "data"
FIXTURES = DATA / "fixtures"
ARI = DATA / "ari"
PYTHON = sys.executable


def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
               message: str = "") -> Any:
    """Call `check` until it returns a truthy value without raising AssertionError; return it.

    A TimeoutError inside `check` (a control request the engine did not answer in time: it is
    still starting, or the machine is loaded) also means "not yet": ask again. On timeout,
    re-raise the last error (or fail with `message`), so the test says what was still wrong.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
            last_error = AssertionError(message or f"{getattr(check, '__name__', 'check')} stayed falsy: {result!r}")
        except (AssertionError, TimeoutError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise last_error
        time.sleep(interval)


def eventually_assert(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Call `check` (which asserts) until it stops raising AssertionError; return its result."""

    def passes() -> tuple[Any]:
        return (check(),)

    return eventually(passes, timeout, interval)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Starts processes in their own session and kills every one of them (and its children)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []
        self.extra_pids: list[int] = []

    def start(self, argv: list[str], env: dict | None = None, cwd: Path | None = None,
              log: Path | None = None) -> subprocess.Popen:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child keeps it)
        proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, cwd=cwd or ROOT,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.started.append(proc)
        return proc

    def python(self, *args: str, **kw) -> subprocess.Popen:
        return self.start([PYTHON, *args], **kw)

    def track(self, pid: int) -> None:
        """A pid started indirectly (a daemon's child) that must also die at the end."""
        self.extra_pids.append(pid)

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for proc in self.started:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for pid in self.extra_pids:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except (ProcessLookupError, PermissionError):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        break
                time.sleep(0.05)


def write_config(folder: Path, sections: dict[str, dict[str, Any]] | None = None,
                 demo_ports: bool = True) -> Path:
    """An arimonitor.ini under `folder` with var/ inside it and free ports; 0600.

    `sections` adds or replaces keys: {"ari": {"url": ...}}.
    """
    values: dict[str, dict[str, Any]] = {"paths": {"var": str(folder / "var")}}
    if demo_ports:
        values["sim"] = {"port": free_port(), "ami_port": free_port()}
        values["console"] = {"manager_port": free_port()}
        values["metrics"] = {"port": free_port()}  # never the shared default 9731 in tests
    for section, keys in (sections or {}).items():
        values.setdefault(section, {}).update(keys)
    lines = []
    for section, keys in values.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in keys.items()]
    path = folder / "arimonitor.ini"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def close_rabbit_connections(connection_name: str) -> int:
    """As the broker (`rabbitmqctl close_connection`): close every connection whose
    connection_name is exactly `connection_name`; how many. The shared broker itself is never
    stopped: other tests use it."""
    out = subprocess.run(["rabbitmqctl", "-q", "list_connections", "--no-table-headers", "pid",
                          "client_properties"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    closed = 0
    for line in out.splitlines():
        conn_pid, _, props = line.partition("\t")
        if f'{{"connection_name","{connection_name}"}}' in props:
            subprocess.run(["rabbitmqctl", "-q", "close_connection", conn_pid, "test: closed"],
                           capture_output=True, timeout=30, check=True)
            closed += 1
    return closed
