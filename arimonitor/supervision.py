"""Starting, watching and stopping the supervisord tree (used by the `arimonitor` command)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from arimonitor.config import Config
from arimonitor.pids import pid_alive


@dataclass
class Tree:
    """Where one arimonitor tree lives and how supervisord is told about it."""

    cfg: Config
    demo: bool

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg["paths.run"])

    @property
    def log_dir(self) -> Path:
        return Path(self.cfg["paths.log"])

    @property
    def socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "supervisord.pid"

    @property
    def conf(self) -> Path:
        return self.cfg.home / "supervisord.conf"

    def expected(self) -> list[str]:
        """Programs that must be RUNNING for the tree to be healthy."""
        names = ["engine"]
        names += [f"ari-reader_{n:02d}" for n in range(len(self.cfg.servers))]
        names += [f"transcoder_{n:02d}" for n in range(self.cfg.transcoder_workers())]
        if self.cfg["clicktocall.enabled"]:
            names.append("clicktocall")
        if self.demo:
            names.append("ari-sim")
        return names

    def environment(self) -> dict[str, str]:
        """What supervisord and every child inherit: paths, mode, and the demo's credentials."""
        env = dict(os.environ)
        env.update({
            "ARIMONITOR_HOME": str(self.cfg.home),
            "ARIMONITOR_PYTHON": sys.executable,
            "ARIMONITOR_RUN_DIR": str(self.run_dir),
            "ARIMONITOR_LOG_DIR": str(self.log_dir),
            "ARIMONITOR_TRANSCODERS": str(self.cfg.transcoder_workers()),
            "ARIMONITOR_READERS": str(len(self.cfg.servers)),
            "ARIMONITOR_DEMO": "true" if self.demo else "false",
            "ARIMONITOR_CLICKTOCALL": "true" if self.cfg["clicktocall.enabled"] else "false",
        })
        if self.cfg.path:
            env["ARIMONITOR_CONFIG"] = str(self.cfg.path)
        if self.demo:
            # The simulator stands in for Asterisk: the reader and engine talk to it, with a
            # password made for this run unless the operator set one.
            env["ARIMONITOR_ARI_URL"] = f"http://{self.cfg['sim.host']}:{self.cfg['sim.port']}/ari"
            if not self.cfg["ari.password"]:
                env["ARIMONITOR_ARI_PASSWORD"] = secrets.token_urlsafe(18)
            if not self.cfg["ami.password"]:
                env["ARIMONITOR_AMI_PASSWORD"] = secrets.token_urlsafe(18)
            env.setdefault("ARIMONITOR_AMI_ENABLED", "yes")
            env["ARIMONITOR_AMI_PORT"] = str(self.cfg["sim.ami_port"])
        return env

    def rpc(self):
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def supervisord_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def processes(self) -> list[dict]:
        """supervisord's view of every program, or [] when it is not running."""
        if not self.socket.exists():
            return []
        try:
            return self.rpc().supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return []

    def states(self) -> dict[str, str]:
        return {p["name"]: p["statename"] for p in self.processes()}


def start(tree: Tree, timeout: float = 45.0) -> tuple[bool, str]:
    """Start supervisord in the background; return once every expected program is RUNNING."""
    if tree.supervisord_pid():
        return False, (f"arimonitor is already running (supervisord pid {tree.supervisord_pid()}); "
                       f"use 'arimonitor status' or 'arimonitor stop'")
    for folder in (tree.run_dir, tree.log_dir, tree.log_dir / "supervisor"):
        folder.mkdir(parents=True, exist_ok=True)
    os.chmod(tree.run_dir, 0o700)
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(tree.conf)],
        env=tree.environment(), cwd=tree.cfg.home, capture_output=True, text=True, timeout=30,
        check=False,
    )
    if result.returncode != 0:
        return False, f"supervisord did not start: {result.stderr.strip() or result.stdout.strip()}"
    deadline = time.monotonic() + timeout
    expected = tree.expected()
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = tree.states()
        if states and all(states.get(name) == "RUNNING" for name in expected):
            return True, "all running: " + ", ".join(expected)
        if any(states.get(name) in {"FATAL", "BACKOFF"} for name in expected):
            break
        time.sleep(0.2)
    failing = [n for n in expected if states.get(n) != "RUNNING"] or expected
    return False, failure_report(tree, failing, states)


def failure_report(tree: Tree, failing: list[str], states: dict[str, str]) -> str:
    lines = ["not every program reached RUNNING:"]
    for name in failing:
        lines.append(f"  {name}: {states.get(name, 'not started')}")
        log = tree.log_dir / "supervisor" / f"{name}.out"
        if log.exists():
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            lines += [f"    | {line}" for line in tail]
    lines.append(f"logs: {tree.log_dir}")
    return "\n".join(lines)


def stop(tree: Tree, timeout: float = 60.0) -> tuple[bool, str]:
    """Ask supervisord to stop everything; return once it and every child are gone."""
    pid = tree.supervisord_pid()
    children = [p["pid"] for p in tree.processes() if p.get("pid")]
    if pid is None:
        return True, "arimonitor is not running"
    try:
        tree.rpc().supervisor.shutdown()
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        os.kill(pid, 15)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid) and not any(pid_alive(c) for c in children):
            return True, "stopped"
        time.sleep(0.1)
    left = [str(p) for p in [pid, *children] if pid_alive(p)]
    return False, f"still running after {timeout:.0f}s: pids {', '.join(left)}"
