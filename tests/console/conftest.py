"""A fake engine process (real ZeroMQ ROUTER + PUB + manager port) shared by a test module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT, Processes, eventually, free_port

ARICTL = str(ROOT / "bin" / "arictl")
FAKE_ENGINE = str(Path(__file__).with_name("fake_engine.py"))


@dataclass
class Engine:
    control: str
    publish: str
    manager_port: int
    directory: Path
    proc: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        return {"ARIMONITOR_ZMQ_CONTROL": self.control, "ARIMONITOR_ZMQ_PUBLISH": self.publish,
                "ARIMONITOR_CONSOLE_TIMEOUT": "3s", "ARIMONITOR_CONFIG": str(self.directory / "none.ini")}


_MADE: list[Path] = []


def short_dir() -> Path:
    # ipc paths must fit in sun_path (107 bytes); pytest's tmp_path can be longer
    path = Path(tempfile.mkdtemp(prefix="arictl-", dir="/tmp"))
    _MADE.append(path)
    return path


def arictl(*args: str, env: dict[str, str] | None = None, timeout: float = 15) -> subprocess.CompletedProcess:
    """Run bin/arictl as a real process; stdin closed, so it never waits for a prompt."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ARIMONITOR_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, ARICTL, *args], env=full_env, capture_output=True, text=True,
                          check=False, stdin=subprocess.DEVNULL, timeout=timeout)


def start_engine(processes: Processes, *extra: str,
                 ready: Callable[[subprocess.CompletedProcess], bool] | None = None) -> Engine:
    """Start the fake engine; `ready` judges an `arictl version` run (default: exit 0)."""
    directory = short_dir()
    (directory / "none.ini").write_text("")
    control, publish = f"ipc://{directory}/control.sock", f"ipc://{directory}/publish.sock"
    port = free_port()
    proc = processes.python(FAKE_ENGINE, control, publish, "--manager-port", str(port), *extra,
                            log=directory / "engine.log")
    engine = Engine(control, publish, port, directory, proc)

    def answers() -> bool:
        assert proc.poll() is None, (directory / "engine.log").read_text()
        out = arictl("--timeout", "1", "version", env=engine.env)
        return ready(out) if ready else out.returncode == 0

    eventually(answers, timeout=15, interval=0.1)
    return engine


@pytest.fixture(scope="module")
def engine():
    processes = Processes()
    try:
        started = start_engine(processes)
        yield started
    finally:
        processes.kill_all()


@pytest.fixture(autouse=True, scope="module")
def _clean_dirs():
    # only the folders this run made: a glob would also take a parallel run's folders
    yield
    while _MADE:
        shutil.rmtree(_MADE.pop(), ignore_errors=True)
