"""Helpers for tests that run the real engine and reader processes against the simulator."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import zmq

from arimonitor import protocol
from tests.support import FIXTURES, free_port

V27 = FIXTURES / "v27"


def write_config(tmp_path: Path, sim: Any, **sections: dict[str, str]) -> Path:
    """An arimonitor.ini for this sim with everything written under tmp_path (mode 600)."""
    values: dict[str, dict[str, str]] = {
        "ari": {"url": sim.url, "user": sim.user, "password": sim.password, "app": sim.app,
                "ping_interval": "1s", "probe_interval": "0.5s", "rest_timeout": "2s",
                "reconnect_max": "1s"},
        "paths": {"var": str(tmp_path / "var")},
        "files": {"endpoints": str(V27 / "endpoints_pjsip.def"),
                  "clients": str(V27 / "__CLIENTES__.DEF"),
                  "mqservers": str(V27 / "__MQSERVERS__.DEF")},
        "logging": {"metrics_interval": "1s", "level": "INFO"},
        # the engine serves the manager port: never the shared default 1101 in tests
        "console": {"manager_port": str(free_port())},
        "metrics": {"port": str(free_port())},  # nor the default Prometheus port 9731
    }
    for section, items in sections.items():
        values.setdefault(section, {}).update(items)
    text = "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items()) + "\n"
                   for s, items in values.items())
    path = tmp_path / "arimonitor.ini"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def control_address(tmp_path: Path) -> str:
    return f"ipc://{tmp_path}/var/run/control.sock"


def ctl(address: str, cmd: str, *args: str, timeout: float = 5.0, **opts: Any) -> dict:
    """One request, lazy-pirate style: fresh REQ, LINGER 0, poll; raises TimeoutError."""
    context = zmq.Context.instance()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    try:
        req_id = uuid.uuid4().hex
        sock.send(protocol.request(req_id, cmd, list(args), opts))
        if not sock.poll(timeout * 1000):
            raise TimeoutError(f"no answer to {cmd!r} from {address}")
        reply = json.loads(sock.recv())
        assert reply["id"] == req_id
        return reply
    finally:
        sock.close(0)


def start_stack(processes: Any, ini: Path, tmp_path: Path, reader: bool = True,
                extra: tuple[tuple[str, ...], ...] = ()) -> dict:
    """engine (+ reader) and any `extra` programs, e.g. (("transcoder.py", "--name", "transcoder_00"),).

    stdout/stderr of each go to tmp_path/out/<program>.out (see `outputs`).
    """
    env = {"ARIMONITOR_CONFIG": str(ini)}
    log_dir = tmp_path / "out"
    log_dir.mkdir(exist_ok=True)
    procs = {"engine": processes.python("procs/call_engine.py", env=env, log=log_dir / "engine.out")}
    if reader:
        procs["reader"] = processes.python("procs/ari_reader.py", env=env, log=log_dir / "reader.out")
    for script, *args in extra:
        name = script.removesuffix(".py")
        procs[name] = processes.python(f"procs/{script}", *args, env=env, log=log_dir / f"{name}.out")
    return procs


def outputs(tmp_path: Path, lines: int = 40) -> str:
    """The last lines of every process output and log, for an assertion message."""
    parts = []
    for path in sorted([*Path(tmp_path, "out").glob("*.out"), *Path(tmp_path, "var", "log").glob("*.log")]):
        text = path.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {path.name}\n" + "\n".join(text))
    return "\n".join(parts)
