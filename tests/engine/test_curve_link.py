"""A reader on another host: the real engine and reader processes over CURVE-secured TCP.

CURVE over loopback TCP is the real mechanism (libzmq's handshake, the ZAP allow-list); only
the distance is fake. Keys are made by the real `arimonitor keys` command.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, outputs, write_config
from tests.engine.tcp_cut import CuttableLink
from tests.support import PYTHON, ROOT, eventually, eventually_assert, free_port

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sim():
    with SimServer(endpoints=["1013010", "1123000", "1003000"], time_scale=0.2) as server:
        yield server


def make_keys(ini: Path, folder: Path, which: str) -> str:
    """`arimonitor keys WHICH` with [zmq] keys = folder; returns what it printed."""
    done = subprocess.run([PYTHON, "-m", "arimonitor.cli", "--config", str(ini), "keys", which],
                          env={"ARIMONITOR_ZMQ_KEYS": str(folder), "PATH": "/usr/bin:/bin"},
                          cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def curve_stack(processes, tmp_path: Path, sim, *, listed: bool = True, via: CuttableLink | None = None,
                engine_port: int | None = None, wrong_engine_key: bool = False) -> dict:
    """Engine (central keys in tmp/central) and a reader (its keys in tmp/pbx) over tcp + CURVE.
    `listed`: the reader's public key is in the engine's allow-list; `via`: the reader connects
    through this proxy instead of straight to the engine."""
    port = engine_port or free_port()
    central, pbx = tmp_path / "central", tmp_path / "pbx"
    ini = write_config(tmp_path, sim, zmq={"events": f"tcp://127.0.0.1:{port}", "curve": "yes",
                                           "keys": str(central), "readers": str(central / "readers")})
    make_keys(ini, central, "engine")
    make_keys(ini, pbx, "reader")
    (pbx / "engine.key").write_bytes((central / "engine.key").read_bytes())
    if wrong_engine_key:  # the reader host holds some other engine's public key
        make_keys(ini, tmp_path / "elsewhere", "engine")
        (pbx / "engine.key").write_bytes((tmp_path / "elsewhere" / "engine.key").read_bytes())
    if listed:
        (central / "readers" / "pbx2.key").write_bytes((pbx / "reader.key").read_bytes())
    else:  # the engine lists another reader, not this one
        other = tmp_path / "other"
        make_keys(ini, other, "reader")
        (central / "readers" / "other.key").write_bytes((other / "reader.key").read_bytes())
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {"ARIMONITOR_CONFIG": str(ini)}
    engine = processes.python("procs/call_engine.py", env=env, log=out / "engine.out")
    reader_env = {**env, "ARIMONITOR_ZMQ_KEYS": str(pbx)}
    if via is not None:
        reader_env["ARIMONITOR_ZMQ_EVENTS"] = f"tcp://127.0.0.1:{via.port}"
    reader = processes.python("procs/ari_reader.py", env=reader_env, log=out / "reader.out")
    return {"address": control_address(tmp_path), "engine": engine, "reader": reader, "tmp": tmp_path}


def status(stack: dict) -> dict:
    try:
        return ctl(stack["address"], "status", timeout=1)["data"]
    except TimeoutError:
        return {}


def counters(stack: dict) -> dict:
    return ctl(stack["address"], "stats", timeout=2)["data"]["counters"]


def endpoint(stack: dict, ep_id: str) -> dict:
    eps = {e["id"]: e for e in ctl(stack["address"], "_engine_endpoints", timeout=2)["data"]}
    return eps.get(ep_id, {})


def test_a_listed_reader_delivers_events_the_engine_applies(sim, processes, tmp_path):
    stack = curve_stack(processes, tmp_path, sim)
    eventually(lambda: status(stack).get("link", {}).get("state") == "connected", timeout=20)
    sim.control.register("1013010", ip="10.0.0.5", port=5070)
    eventually(lambda: endpoint(stack, "1013010").get("ip") == "10.0.0.5", timeout=10)
    c = counters(stack)
    assert c["applied"] > 0 and c["readers_refused"] == 0, outputs(tmp_path)


def test_a_reader_with_an_unlisted_key_is_refused_logged_once_and_counted(sim, processes, tmp_path):
    stack = curve_stack(processes, tmp_path, sim, listed=False)
    # the reader keeps trying (libzmq reconnects): every refusal counted ...
    eventually(lambda: status(stack) and counters(stack)["readers_refused"] >= 3, timeout=20)
    sim.control.register("1013010", ip="10.0.0.5", port=5070)
    c = counters(stack)
    assert c["received"] == 0 and c["applied"] == 0, outputs(tmp_path)
    assert status(stack)["link"]["state"] != "connected"
    assert endpoint(stack, "1013010").get("ip") != "10.0.0.5"
    # ... and logged once
    log = Path(tmp_path, "var", "log", "engine.log").read_text()
    assert log.count("a reader was refused on") == 1, log[-2000:]
    assert "not listed in [zmq] readers" in log
    # the reader says so too, once, though it keeps trying (libzmq alone would not)
    eventually_assert(lambda: _logged_once(tmp_path, "ari-reader", "refused our CURVE key"))
    stats = ctl(stack["address"], "stats", timeout=2)
    assert "readers_refused" in stats["text"]


def test_a_reader_with_the_wrong_engine_key_is_refused_and_counted(sim, processes, tmp_path):
    stack = curve_stack(processes, tmp_path, sim, wrong_engine_key=True)
    eventually(lambda: status(stack) and counters(stack)["readers_refused"] >= 2, timeout=30)
    sim.control.register("1013010", ip="10.0.0.5", port=5070)
    assert counters(stack)["received"] == 0, outputs(tmp_path)
    log = Path(tmp_path, "var", "log", "engine.log").read_text()
    assert log.count("a reader was refused on") == 1, log[-2000:]
    assert "handshake failed" in log and "not listed" not in log
    eventually_assert(lambda: _logged_once(tmp_path, "ari-reader", "CURVE handshake with the engine"))


def test_a_link_cut_mid_stream_is_a_gap_and_the_engine_resyncs(sim, processes, tmp_path):
    engine_port = free_port()
    link = CuttableLink(free_port(), engine_port)
    link.start()
    try:
        stack = curve_stack(processes, tmp_path, sim, via=link, engine_port=engine_port)
        eventually(lambda: status(stack).get("link", {}).get("state") == "connected", timeout=20)
        sim.control.register("1013010", ip="10.0.0.5", port=5070)
        eventually(lambda: endpoint(stack, "1013010").get("ip") == "10.0.0.5", timeout=10)
        before = counters(stack)
        assert before["frames_lost"] == 0

        link.cut()
        # Asterisk goes on while the link is down: these frames never reach the engine
        sim.control.register("1123000", ip="10.0.0.6", port=5072)
        sim.control.unregister("1013010")
        link.restore()

        def resynced():
            c = counters(stack)
            return c["frames_lost"] > 0 and c["resyncs"] > before["resyncs"] and c
        after = eventually(resynced, timeout=20)
        assert after["readers_refused"] == 0
        # the resync brought the state the lost frames carried (addresses need AMI: off here)
        eventually_assert(lambda: _state_is(stack, "1123000", "online"), timeout=10)
        eventually_assert(lambda: _state_is(stack, "1013010", "offline"), timeout=10)
        assert link.connections >= 2  # the reader came back over a new TCP connection
        log = Path(tmp_path, "var", "log", "engine.log").read_text()
        assert "lost between reader and engine" in log
    finally:
        link.cut()


def _state_is(stack: dict, ep_id: str, state: str) -> None:
    seen = endpoint(stack, ep_id)
    assert seen.get("state") == state, seen


def _logged_once(tmp_path: Path, program: str, text: str) -> None:
    log = Path(tmp_path, "var", "log", f"{program}.log").read_text()
    assert log.count(text) == 1, log[-2000:]
