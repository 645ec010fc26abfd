"""Starting, watching and stopping the supervisord tree (used by the `arimonitor` command)."""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from arimonitor.config import Config, secret_file_problems
from arimonitor.pids import pid_alive
from arimonitor.preflight import busy_port, wait_for_ari

GROUP = "arimonitor"  # supervisord.conf's [group:arimonitor]


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

    @property
    def role(self) -> str:
        """[host] role: all (one host), central (no local reader) or reader (only the reader)."""
        return self.cfg["host.role"]

    def runs(self, program: str) -> bool:
        """Whether this host's role runs `program` (the simulator aside)."""
        if program == "ari-reader":
            return self.role != "central"
        if program == "clicktocall" and not self.cfg["clicktocall.enabled"]:
            return False
        if program == "bus" and not self.cfg["bus.enabled"]:
            return False
        return self.role != "reader"

    @property
    def mode_file(self) -> Path:
        """Written by start: `status` knows a demo tree (ari-sim expected) from the mode it was
        started in, not from whether ari-sim happens to be RUNNING."""
        return self.run_dir / "mode"

    @property
    def role_file(self) -> Path:
        """Written by start: `status` expects the programs of the role the tree started with."""
        return self.run_dir / "role"

    def started_role(self) -> tuple[str, str] | None:
        """(role, [host] servers) the running tree was started with, or None."""
        try:
            lines = self.role_file.read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        return (lines[0].strip(), lines[1].strip() if len(lines) > 1 else "") if lines else None

    def started_as_demo(self) -> bool:
        try:
            return self.mode_file.read_text(encoding="utf-8").strip() == "demo"
        except OSError:
            return False

    def ari_url(self) -> str:
        return self.environment_overrides().get("ARIMONITOR_ARI_URL", self.cfg["ari.url"])

    def expected(self) -> list[str]:
        """Programs that must be RUNNING for the tree to be healthy."""
        names = ["engine"] if self.runs("engine") else []
        if self.runs("ari-reader"):
            names += [f"ari-reader_{n:02d}" for n in self.cfg.reader_servers()]
        if self.runs("transcoder"):
            names += [f"transcoder_{n:02d}" for n in range(self.cfg.transcoder_workers())]
        if self.runs("clicktocall"):
            names.append("clicktocall")
        if self.runs("bus"):
            names.append("bus")
        if self.demo:
            names.append("ari-sim")
        return names

    def environment_overrides(self) -> dict[str, str]:
        """The variables arimonitor sets for supervisord (no credential here)."""
        env = {
            "ARIMONITOR_HOME": str(self.cfg.home),
            "ARIMONITOR_PYTHON": sys.executable,
            "ARIMONITOR_RUN_DIR": str(self.run_dir),
            "ARIMONITOR_LOG_DIR": str(self.log_dir),
            "ARIMONITOR_TRANSCODERS": str(self.cfg.transcoder_workers()),
            # the readers of [host] servers: ari-reader_NN reads server NN on every host
            "ARIMONITOR_READERS": str(len(self.cfg.reader_servers())),
            "ARIMONITOR_FIRST_READER": str(self.cfg.reader_servers()[0]),
            "ARIMONITOR_DEMO": "true" if self.demo else "false",
            "ARIMONITOR_CLICKTOCALL": _flag(self.runs("clicktocall")),
            "ARIMONITOR_BUS": _flag(self.runs("bus")),
            "ARIMONITOR_RUN_ENGINE": _flag(self.runs("engine")),
            "ARIMONITOR_RUN_READER": _flag(self.runs("ari-reader")),
            "ARIMONITOR_RUN_TRANSCODERS": _flag(self.runs("transcoder")),
            "ARIMONITOR_HOST_ROLE": self.role,
            # each program's one log is its stdout, written and rotated by supervisord
            "ARIMONITOR_LOG_MAX_BYTES": str(self.cfg["logging.max_bytes"]),
            "ARIMONITOR_LOG_BACKUPS": str(self.cfg["logging.backups"]),
            # supervisord's `user`: the one running it, so it neither tries to drop privileges
            # nor logs CRIT "running as root" at every start
            "ARIMONITOR_USER": pwd.getpwuid(os.getuid()).pw_name,
        }
        if self.cfg.path:
            env["ARIMONITOR_CONFIG"] = str(self.cfg.path)
        if self.demo:
            # The simulator stands in for Asterisk: the reader and engine talk to it.
            env["ARIMONITOR_ARI_URL"] = f"http://{self.cfg['sim.host']}:{self.cfg['sim.port']}/ari"
        return env

    def environment(self) -> dict[str, str]:
        """What supervisord and every child inherit: paths, mode, and the demo's credentials."""
        env = dict(os.environ)
        env.update(self.environment_overrides())
        if self.demo:
            # with a password made for this run unless the operator set one
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


def _flag(on: bool) -> str:
    return "true" if on else "false"


def start(tree: Tree, timeout: float = 45.0, ari_timeout: float | None = 20.0) -> tuple[bool, str]:
    """Start supervisord in the background; return once every expected program is RUNNING and
    (unless `ari_timeout` is None) the engine has a live ARI link. A start that fails stops
    what it started, so the next start begins from nothing."""
    if tree.supervisord_pid():
        return False, (f"arimonitor is already running (supervisord pid {tree.supervisord_pid()}); "
                       f"use 'arimonitor status' or 'arimonitor stop'")
    busy = busy_port(tree.cfg, tree.demo)
    if busy:
        return False, busy
    unsafe = secret_file_problems(tree.cfg)
    if unsafe and not tree.demo:
        return False, "\n".join(unsafe)
    ok, message = _start_programs(tree, timeout)
    if ok and tree.role != "all":
        # a reader host has no engine to ask; a central host's link comes from a remote reader
        message += f"; role {tree.role}: not waiting for the ARI link"
    elif ok and ari_timeout is not None:
        ari_ok, why = wait_for_ari(tree.cfg, tree.ari_url(), ari_timeout)
        if not ari_ok:
            ok, message = False, (f"{why}\narimonitor stopped again; fix [ari] in the config, or start "
                                  f"without waiting for Asterisk: arimonitor start --no-wait-ari")
        else:
            message += f"; ARI link up ({tree.ari_url()})"
    if not ok:
        stop(tree)
    elif unsafe:
        # the demo runs on the shipped samples' test passwords; say it, do not refuse
        message += "".join(f"\nwarning: {line}" for line in unsafe)
    return ok, message


def _start_programs(tree: Tree, timeout: float) -> tuple[bool, str]:
    for folder in (tree.run_dir, tree.log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    os.chmod(tree.run_dir, 0o700)
    tree.mode_file.write_text("demo\n" if tree.demo else "asterisk\n", encoding="utf-8")
    tree.role_file.write_text(f"{tree.role}\n{','.join(tree.cfg['host.servers'])}\n", encoding="utf-8")
    # supervisord opens its log before it applies umask 077: made private here first
    os.close(os.open(tree.log_dir / "supervisord.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(tree.log_dir / "supervisord.log", 0o600)
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
        log = tree.log_dir / f"{name}.log"  # its one log: stdout and stderr, a crash included
        if log.exists():
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            lines += [f"    | {line}" for line in tail]
    lines.append(f"logs: {tree.log_dir}")
    return "\n".join(lines)


# Stopped in this order, each wave waited for: the processes that talk to the outside first,
# then the engine, then the simulator, so that no one logs "lost Asterisk" (or the engine a
# missing reader) during a clean stop. supervisord alone would signal them all at once.
STOP_WAVES = (("clicktocall", "transcoder_", "ari-reader", "bus"), ("engine",), ("ari-sim",))


def _stop_in_order(tree: Tree, timeout: float) -> None:
    try:
        rpc = tree.rpc().supervisor
        running = [p["name"] for p in rpc.getAllProcessInfo() if p["statename"] in ("RUNNING", "STARTING", "BACKOFF")]
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        return
    deadline = time.monotonic() + timeout
    for wave in STOP_WAVES:
        names = [n for n in running if n.startswith(wave)]
        for name in names:
            try:
                rpc.stopProcess(f"{GROUP}:{name}", False)
            except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
                pass  # already stopping or stopped; shutdown() below ends what is left
        while names and time.monotonic() < deadline:
            states = tree.states()
            if all(states.get(n) not in ("RUNNING", "STARTING", "BACKOFF", "STOPPING") for n in names):
                break
            time.sleep(0.05)


def stop(tree: Tree, timeout: float = 60.0) -> tuple[bool, str]:
    """Ask supervisord to stop everything; return once it and every child are gone."""
    pid = tree.supervisord_pid()
    children = [p["pid"] for p in tree.processes() if p.get("pid")]
    if pid is None:
        return True, "arimonitor is not running"
    _stop_in_order(tree, timeout)
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


def programs(tree: Tree, action: str, names: list[str]) -> int:
    """`arimonitor start|stop|restart NAME...` (the supervisorctl habit): 0 done, 1 failed,
    2 an unknown name, 3 the tree is not running. `transcoder` means every transcoder_NN."""
    if tree.supervisord_pid() is None:
        print("arimonitor is not running; 'arimonitor start' starts the whole tree", file=sys.stderr)
        return 3
    known = tree.expected()
    chosen: list[str] = []
    for name in names:
        matches = known if name == "all" else [n for n in known if n == name or n.startswith(f"{name}_")]
        if not matches:
            print(f"arimonitor: no program {name!r}; programs: {', '.join(known)}", file=sys.stderr)
            return 2
        chosen += [m for m in matches if m not in chosen]
    rpc = tree.rpc().supervisor
    failed = []
    for step in (["stop", "start"] if action == "restart" else [action]):
        for name in (reversed(chosen) if step == "stop" else chosen):
            try:
                (rpc.stopProcess if step == "stop" else rpc.startProcess)(f"{GROUP}:{name}", True)
            except xmlrpc.client.Fault as fault:
                # already in the wanted state is no failure
                if "NOT_RUNNING" not in fault.faultString and "ALREADY_STARTED" not in fault.faultString:
                    failed.append(f"{name}: {fault.faultString}")
    states = tree.states()
    for name in chosen:
        print(f"{name}: {states.get(name, '?')}")
    for line in failed:
        print(f"arimonitor: {action} failed: {line}", file=sys.stderr)
    return 1 if failed else 0
