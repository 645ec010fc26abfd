"""Every engine console command through the real arictl and ZeroMQ, against the real engine
process and ari-reader on the in-process ARI simulator; and the manager port's `status`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from arimonitor.sim.testing import SimServer
from tests.console.conftest import ARICTL, arictl
from tests.engine.stack import start_stack, write_config
from tests.support import eventually, eventually_assert, free_port

pytestmark = pytest.mark.timeout(90)

ENDPOINTS = ["1013010", "1013015", "1013020", "1003000", "1123000"]


@pytest.fixture(scope="module")
def sim():
    with SimServer(endpoints=ENDPOINTS, time_scale=0.2) as server:
        yield server


@pytest.fixture(scope="module")
def stack(sim):
    from tests.support import Processes

    processes = Processes()
    # not tests/console's arictl-* prefix: its module clean-up removes every such directory
    directory = Path(tempfile.mkdtemp(prefix="arimon-ce-", dir="/tmp"))
    port = free_port()
    ini = write_config(directory, sim, console={"manager_port": str(port), "timeout": "10s"})
    env = {"ARIMONITOR_CONFIG": str(ini)}
    try:
        procs = start_stack(processes, ini, directory)

        def connected() -> bool:
            out = arictl("--json", "--timeout", "1", "status", env=env)
            # 1: the engine answered, degraded (no transcoder or click-to-call runs here)
            assert out.returncode in (0, 1, 3), out.stderr + (directory / "out/engine.out").read_text()
            return out.returncode != 3 and json.loads(out.stdout)["data"]["link"]["state"] == "connected"

        eventually(connected, timeout=30, interval=0.2)
        yield {"env": env, "dir": directory, "procs": procs, "processes": processes, "port": port}
    finally:
        processes.kill_all()
        shutil.rmtree(directory, ignore_errors=True)


def run(stack, *args: str) -> tuple[int, dict]:
    out = arictl("--json", *args, env=stack["env"])
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}


def test_status_list_and_help_through_arictl(sim, stack):
    code, status = run(stack, "status")
    # degraded (exit 1): no transcoder or click-to-call in this stack, and status names both
    assert code == 1 and status["data"]["processes"]["reader"]["connected"] is True
    assert status["problems"] == ["transcoders: 0 of 2 alive", "clicktocall: not reported yet"]
    assert "transcoder:" in status["text"] and "clicktocall: not reported" in status["text"]
    sim.control.register("1013010", ip="10.0.0.5", port=5070)

    def online() -> list:
        code, r = run(stack, "list", "101", "--status", "online")
        assert code == 0
        return [row for row in r["data"] if row["id"] == "1013010" and row["ip"] == "10.0.0.5"]

    (row,) = eventually(online, timeout=10)
    assert row["password"] == "********"
    out = arictl("list", "101", env=stack["env"])
    assert out.returncode == 0 and out.stdout.startswith("=== ENDPOINTS FOR CLIENT 101 (12) ===")
    assert arictl("list", "999", env=stack["env"]).returncode == 1
    described = json.loads(arictl("--json", "_describe", env=stack["env"]).stdout)["data"]["commands"]
    names = {c["name"] for c in described}
    assert {"list", "endpoints", "ips", "get", "set", "reload", "debug", "calls", "history",
            "stats", "status", "version"} <= names
    for name in sorted(names):
        out = arictl("help", name, env=stack["env"])
        assert out.returncode == 0 and out.stdout.startswith(f"{name} - "), (name, out.stderr)
    for cmd in (["calls"], ["history", "--since", "1h"], ["stats"], ["ips"], ["version"],
                ["reload", "all"], ["get", "logging.level"], ["debug", "off", "ari-reader"]):
        code, r = run(stack, *cmd)
        assert code == 0 and r["status"] == "ok", (cmd, r)
    assert run(stack, "set", "nope.x", "1")[0] == 1
    assert run(stack, "get", "logging.levle")[1]["code"] == 3


def test_endpoints_sweep_is_slow_but_events_keep_flowing(sim, stack):
    sim.control.rest_fault(seconds=1.5, count=1, path="/endpoints")
    sweep = subprocess.Popen([sys.executable, ARICTL, "--json", "--timeout", "15", "endpoints"],
                             env={**{k: v for k, v in os.environ.items() if not k.startswith("ARIMONITOR_")},
                                  **stack["env"]}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # While the GET /endpoints hangs in the engine's worker thread, events are applied.
        sim.control.register("1013020", ip="10.0.0.7", port=5080)

        def applied() -> None:
            code, r = run(stack, "list", "101", "--status", "online")
            assert code == 0 and "1013020" in {row["id"] for row in r["data"]}
        eventually_assert(applied, timeout=5)
        assert sweep.poll() is None, "the sweep should still be waiting for Asterisk"
        out, err = sweep.communicate(timeout=20)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, err
    data = json.loads(out)["data"]
    assert data["total"] >= len(ENDPOINTS) and data["online"] >= 2 and data["listed_by_ari"] == len(ENDPOINTS)
    assert "active" in json.loads(out)["text"] and data["seconds"] >= 1.0


def manager_say(stack, line: str) -> str:
    with socket.create_connection(("127.0.0.1", stack["port"]), timeout=5) as conn:
        conn.sendall(line.encode() + b"\nquit\n")
        received = b""
        while b"--END COMMAND--" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received.decode()


def test_manager_port_answers_status(stack):
    text = eventually(lambda: manager_say(stack, "status"), timeout=10)
    assert text.startswith("OK\n") and "link:" in text and "reader:" in text


@pytest.mark.parametrize("line", ["list 101 --show-passwords", "set logging.level DEBUG", "debug on all",
                                  "reload all", "recovery", "ips whitelist add 127.0.0.1",
                                  """_report '{"process": "clicktocall"}'"""])
def test_manager_port_refuses_what_changes_things_or_shows_secrets(stack, line):
    # anyone on the machine reaches 127.0.0.1:1101; the ZeroMQ control socket is the owner's
    text = eventually(lambda: manager_say(stack, line), timeout=10)
    assert text.startswith("ERROR 11 "), text
    assert "manager_changes" in text


def test_manager_port_still_reads_and_masks(stack):
    text = eventually(lambda: manager_say(stack, "list 101"), timeout=10)
    assert text.startswith("OK\n") and "ENDPOINTS FOR CLIENT 101" in text and "********" in text
    assert manager_say(stack, "ips").startswith("OK\n")
    # arictl on the private socket may still do it
    code, reply = run(stack, "list", "101", "--show-passwords")
    assert code == 0 and "********" not in reply["text"]


def _restart_engine(stack, log_name: str) -> None:
    engine = stack["procs"]["engine"]
    os.killpg(engine.pid, signal.SIGTERM)
    engine.wait(15)
    stack["procs"]["engine"] = stack["processes"].python(
        "procs/call_engine.py", env=stack["env"], log=stack["dir"] / "out" / log_name)


def _bitrate(stack) -> tuple[str, str] | bool:
    out = arictl("--json", "--timeout", "1", "get", "transcoder.bitrate", env=stack["env"])
    assert out.returncode in (0, 3), out.stderr
    data = out.returncode == 0 and json.loads(out.stdout)["data"]
    return data and (data["value"], data["source"])


def test_set_survives_an_engine_restart(sim, stack):
    code, r = run(stack, "set", "transcoder.bitrate", "48")
    assert code == 0 and "survives an engine restart" in r["text"]
    _restart_engine(stack, "engine2.out")
    assert eventually(lambda: _bitrate(stack), timeout=20, interval=0.2) == ("48", "set")


def test_a_file_edited_after_a_set_wins_and_unset_goes_back_to_the_file(sim, stack):
    assert run(stack, "set", "transcoder.bitrate", "24")[0] == 0
    ini = Path(stack["env"]["ARIMONITOR_CONFIG"])
    ini.write_text(ini.read_text() + "\n[transcoder]\nbitrate = 64\n")
    _restart_engine(stack, "engine3.out")
    assert eventually(lambda: _bitrate(stack), timeout=20, interval=0.2) == ("64", "file")
    out = arictl("get", "transcoder.bitrate", env=stack["env"])
    assert f"from the file {ini}" in out.stdout
    assert run(stack, "set", "transcoder.bitrate", "96")[0] == 0
    assert _bitrate(stack) == ("96", "set")
    code, reply = run(stack, "unset", "transcoder.bitrate")
    assert code == 0 and reply["text"] == "transcoder.bitrate = 64 (from the file; was 96)"
    assert _bitrate(stack) == ("64", "file")
    code, reply = run(stack, "unset", "transcoder.bitrate")
    assert code == 1 and "was not set at the console" in reply["reason"]


@pytest.mark.parametrize(("name", "value"), [("ari.probe_interval", "0"), ("logging.metrics_interval", "0"),
                                             ("transcoder.bitrate", "999999"), ("transcoder.bitrate", "1"),
                                             ("ari.probe_interval", "999999999999d")])
def test_set_refuses_a_value_out_of_bounds(sim, stack, name, value):
    before = json.loads(arictl("--json", "get", name, env=stack["env"]).stdout)["data"]["value"]
    code, reply = run(stack, "set", name, value)
    assert code == 1 and reply["reason"].startswith(f"bad value for {name}: {value!r}")
    assert json.loads(arictl("--json", "get", name, env=stack["env"]).stdout)["data"]["value"] == before
