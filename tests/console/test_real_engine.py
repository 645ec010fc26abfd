"""arictl against the real engine process (no Asterisk: its ARI link just stays down)."""

from __future__ import annotations

import json
import os
import stat
from types import SimpleNamespace

import pytest

from tests.console.conftest import arictl, short_dir
from tests.engine.stack import write_config
from tests.support import eventually, free_port

pytestmark = pytest.mark.timeout(60)


def test_every_command_has_help_and_the_socket_is_private(processes):
    directory = short_dir()
    nowhere = SimpleNamespace(url=f"http://127.0.0.1:{free_port()}/ari", user="u", password="p", app="a")
    ini = write_config(directory, nowhere)
    env = {"ARIMONITOR_CONFIG": str(ini)}
    processes.python("procs/call_engine.py", env=env, log=directory / "engine.out")

    def up() -> bool:
        out = arictl("--timeout", "1", "version", env=env)
        assert out.returncode in (0, 3), out.stderr + (directory / "engine.out").read_text()
        return out.returncode == 0

    eventually(up, timeout=30, interval=0.2)
    mode = stat.S_IMODE(os.stat(directory / "var/run/control.sock").st_mode)
    assert mode == 0o600

    described = json.loads(arictl("--json", "_describe", env=env).stdout)["data"]
    names = [c["name"] for c in described["commands"]]
    assert "help" in names and "version" in names
    for name in names:
        out = arictl("help", name, env=env)
        assert out.returncode == 0 and out.stdout.startswith(f"{name} - "), (name, out.stderr)
    if "status" in names:
        out = arictl("status", env=env)
        # an engine alone (no transcoder, no click-to-call): degraded, each missing part named
        assert out.returncode == 1 and "link:" in out.stdout, out.stderr
        assert "PROBLEM:    transcoders: 0 of" in out.stdout
    out = arictl("verzion", env=env)
    assert out.returncode == 2 and "did you mean: version" in out.stderr
