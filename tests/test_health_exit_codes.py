"""Health is in the exit code, and a failed start leaves nothing behind: through the real
supervisord tree, the real engine and the `arimonitor` / `arictl` commands."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import subprocess
import threading
from contextlib import contextmanager

import pytest

from arimonitor.config import load_config
from arimonitor.sim.testing import SimServer
from arimonitor.supervision import Tree
from tests.support import PYTHON, ROOT, eventually, free_port, pid_alive, write_config
from tests.trees import ARIMONITOR, demo_tree, run_arimonitor, running, tear_down

ARICTL = [PYTHON, str(ROOT / "bin" / "arictl")]


def arictl(*words: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([*ARICTL, *words], env=env, capture_output=True, text=True, timeout=30,
                          cwd=ROOT, check=False)


@contextmanager
def asterisk_tree(tmp_path, url: str, password: str = "wrong", extra: dict | None = None):
    """A non-demo tree (one transcoder, no click-to-call) pointed at `url`; always stopped.
    `extra`: more sections ({"ari:pbx2": {...}}) or keys."""
    files = {}
    for key, name in (("endpoints", "endpoints_pjsip.def"), ("clients", "__CLIENTES__.DEF"),
                      ("mqservers", "__MQSERVERS__.DEF")):
        copy = tmp_path / name
        shutil.copyfile(ROOT / "conf" / name, copy)
        copy.chmod(0o600)   # they hold passwords: the one rule for secret files
        files[key] = str(copy)
    ini = write_config(tmp_path, {"ari": {"url": url, "password": password, "probe_interval": "1s"},
                                  "transcoder": {"workers": 1}, "clicktocall": {"enabled": "no"},
                                  "files": files, **(extra or {})})
    env = {**os.environ, "ARIMONITOR_CONFIG": str(ini)}
    tree = Tree(load_config(ini, environ=env), demo=False)
    try:
        yield env, tree
    finally:
        tear_down(tree, env)


def assert_nothing_left(tree: Tree) -> None:
    assert tree.supervisord_pid() is None
    assert tree.processes() == []


def test_wrong_password_fails_start_and_status_names_it(tmp_path):
    with SimServer(password="the-right-one") as sim, asterisk_tree(tmp_path, sim.url) as (env, tree):
        started = run_arimonitor("start", "--ari-timeout", "20", env=env)
        assert started.returncode == 1, started.stdout
        assert "refused the ARI user and password" in started.stderr
        assert "the-right-one" not in started.stderr + started.stdout and "wrong" not in started.stderr
        assert_nothing_left(tree)

        # started anyway: the programs run, the engine says what is wrong and exits 1
        assert run_arimonitor("start", "--no-wait-ari", env=env).returncode == 0
        assert run_arimonitor("status", env=env).returncode == 0   # every expected program RUNNING

        def degraded():
            result = arictl("status", env=env)
            assert result.returncode == 1, result.stdout
            assert "PROBLEM:    ari auth: FAILED" in result.stdout
            return result
        eventually(degraded, timeout=20, interval=0.5)
        brief = arictl("status", "--brief", env=env)
        assert brief.returncode == 1
        assert brief.stdout.count("\n") == 1 and brief.stdout.startswith("DEGRADED - ")
        assert "ari auth" in brief.stdout


def test_unreachable_asterisk_fails_start_then_a_second_start_works(tmp_path):
    port = free_port()
    with asterisk_tree(tmp_path, f"http://127.0.0.1:{port}/ari") as (env, tree):
        started = run_arimonitor("start", "--ari-timeout", "4", env=env)
        assert started.returncode == 1
        assert f"Asterisk is unreachable at http://127.0.0.1:{port}/ari" in started.stderr
        assert "--no-wait-ari" in started.stderr
        assert_nothing_left(tree)

        with SimServer(port=port, password="wrong"):
            again = run_arimonitor("start", env=env)
            assert again.returncode == 0, again.stderr
            assert "ARI link up" in again.stdout

            def healthy():
                result = arictl("status", "--brief", env=env)
                assert result.returncode == 0, result.stdout + result.stderr
                return result
            assert eventually(healthy, timeout=20, interval=0.5).stdout.startswith("OK - link connected")
        # Asterisk gone: the engine is degraded, and says why
        down = eventually(lambda: (r := arictl("status", env=env)).returncode == 1 and r, timeout=20,
                          interval=0.5)
        assert "PROBLEM:    link:" in down.stdout
    stopped = arictl("status", env=env)
    assert stopped.returncode == 3


class _NotAsterisk(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html>this is some web server</html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


def test_a_server_that_is_not_asterisk_is_told_apart_from_a_wrong_password(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAsterisk)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ari"
        with asterisk_tree(tmp_path, url) as (env, tree):
            started = run_arimonitor("start", "--ari-timeout", "20", env=env)
            assert started.returncode == 1
            assert "is not Asterisk's ARI" in started.stderr
            assert "password" not in started.stderr
            assert_nothing_left(tree)
    finally:
        server.shutdown()
        server.server_close()


def test_a_busy_port_is_one_line_naming_the_port_and_setting(tmp_path):
    with demo_tree(tmp_path, workers=1) as demo:
        holder = socket.socket()
        holder.bind(("127.0.0.1", demo.cfg["sim.port"]))
        holder.listen()
        try:
            started = run_arimonitor("start", "--demo", env=demo.env)
            assert started.returncode == 1
            assert started.stderr.strip() == (
                f"port 127.0.0.1:{demo.cfg['sim.port']} ([sim] port) is in use by another program; "
                f"free it or choose another [sim] port")
            assert_nothing_left(demo.tree)
        finally:
            holder.close()
        assert run_arimonitor("start", "--demo", env=demo.env).returncode == 0


def test_program_commands_and_status_of_a_stopped_expected_program(tmp_path):
    with demo_tree(tmp_path, workers=1) as demo:
        env, tree = demo.env, demo.tree
        assert run_arimonitor("start", "--demo", env=env).returncode == 0
        before = running(tree)

        stopped = run_arimonitor("stop", "ari-sim", env=env)
        assert stopped.returncode == 0 and "ari-sim: STOPPED" in stopped.stdout
        status = run_arimonitor("status", env=env)
        assert status.returncode == 1
        assert "not running: ari-sim (STOPPED)" in status.stderr
        assert run_arimonitor("status", "engine", env=env).returncode == 0

        assert run_arimonitor("start", "ari-sim", env=env).returncode == 0
        assert run_arimonitor("status", env=env).returncode == 0
        restarted = run_arimonitor("restart", "engine", env=env)
        assert restarted.returncode == 0, restarted.stderr
        assert running(tree)["engine"] != before["engine"]
        assert running(tree)["ari-reader_00"] == before["ari-reader_00"]
        unknown = run_arimonitor("restart", "engin", env=env)
        assert unknown.returncode == 2 and "no program 'engin'" in unknown.stderr


def test_outside_demo_mode_ari_sim_is_not_shown(tmp_path):
    with SimServer(password="pw") as sim, asterisk_tree(tmp_path, sim.url, password="pw") as (env, _tree):
        assert run_arimonitor("start", env=env).returncode == 0
        status = run_arimonitor("status", env=env)
        assert status.returncode == 0
        assert "ari-sim" not in status.stdout


@pytest.mark.parametrize("how", ["broken pipe", "SIGTERM"])
def test_demo_always_stops_its_tree(tmp_path, how):
    with demo_tree(tmp_path, workers=1) as demo:
        tree = demo.tree
        demo_process = subprocess.Popen([*ARIMONITOR, "demo"], env=demo.env, cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            eventually(lambda: b"Ctrl-C" in demo_process.stdout.readline(), timeout=90, interval=0)
            sup = tree.supervisord_pid()
            pids = list(running(tree).values())
            assert sup and pids
            if how == "broken pipe":
                demo_process.stdout.close()   # `arimonitor demo | head`: head has read enough
            else:
                demo_process.send_signal(signal.SIGTERM)
            assert demo_process.wait(90) == 0
            assert not pid_alive(sup)
            assert [pid for pid in pids if pid_alive(pid)] == []
        finally:
            if demo_process.poll() is None:
                os.killpg(demo_process.pid, signal.SIGKILL)


def _json(*words: str, env: dict) -> dict:
    import json

    out = arictl("--json", *words, env=env)
    return json.loads(out.stdout)


def test_a_call_up_at_stop_is_ended_on_the_next_start_with_a_reason_and_counted(tmp_path):
    with demo_tree(tmp_path, workers=1) as demo:
        env = demo.env
        assert run_arimonitor("start", "--demo", env=env).returncode == 0
        # the demo's own traffic: wait for a call that is up
        up = eventually(lambda: [c for c in _json("calls", env=env)["data"] if c["state"] == "up"],
                        timeout=60, interval=0.5)
        call_id = up[0]["id"]
        lost_before = _json("stats", env=env)["data"]["counters"]["calls_lost"]
        assert run_arimonitor("stop", env=env).returncode == 0
        assert run_arimonitor("start", "--demo", env=env).returncode == 0

        def in_history():
            rows = _json("history", "--limit", "1000", env=env)["data"]
            return next((r for r in rows if r["id"] == call_id), None)
        row = eventually(in_history, timeout=30, interval=0.5)
        assert row["end_reason"] == "ended while arimonitor was down"
        assert call_id not in {c["id"] for c in _json("calls", env=env)["data"]}
        totals = _json("stats", env=env)["data"]["totals"]
        assert totals["calls_lost"] >= lost_before + 1
        history = arictl("history", "--limit", "1000", env=env).stdout
        assert "ended while arimonitor was down" in history


def _noisy_lines(tree: Tree) -> list[str]:
    lines = []
    for log in sorted(tree.log_dir.glob("*.log")):
        if log.name == "supervisord.log":
            continue
        lines += [f"{log.name}: {line}" for line in log.read_text(errors="replace").splitlines()
                  if " WARNING " in line or " ERROR " in line or " CRITICAL " in line]
    return lines


def test_a_healthy_start_and_a_clean_stop_log_no_warning_and_each_log_exists_once(tmp_path):
    # publishers named: an open click-to-call queue is worth its start-up warning (issue 13)
    with demo_tree(tmp_path, workers=1, sections={"clicktocall": {"publishers": "guest: *"}}) as demo:
        tree = demo.tree
        assert run_arimonitor("start", "--demo", env=demo.env).returncode == 0
        eventually(lambda: (r := arictl("status", env=demo.env)).returncode == 0 or print(r.stdout),
                   timeout=30, interval=0.5)
        assert run_arimonitor("stop", env=demo.env).returncode == 0
        assert _noisy_lines(tree) == []
        # each process log exists once: supervisord writes the program's stdout as <name>.log
        assert (tree.log_dir / "engine.log").stat().st_size > 0
        assert not (tree.log_dir / "supervisor").exists()
        assert sorted(p.name for p in tree.log_dir.iterdir()) == [
            "ari-reader_00.log", "ari-sim.log", "calls.log", "clicktocall.log", "engine.log", "metrics.log",
            "supervisord.log", "transcoder_00.log"]
        sup_log = tree.log_dir / "supervisord.log"
        assert oct(sup_log.stat().st_mode & 0o777) == "0o600"
        assert "running as root" not in sup_log.read_text()


def test_an_outage_is_logged_once_then_counted_with_bounded_lines(tmp_path):
    port = free_port()
    with asterisk_tree(tmp_path, f"http://127.0.0.1:{port}/ari") as (env, tree):
        assert run_arimonitor("start", "--no-wait-ari", env=env).returncode == 0
        # `start --no-wait-ari` may return before the engine's control socket exists: an
        # unreachable engine (an error reply, no data) is "not yet"
        eventually(lambda: (_json("stats", env=env).get("data") or {}).get("counters", {})
                   .get("resync_failures", 0) >= 5, timeout=40, interval=0.5)
        engine_log = (tree.log_dir / "engine.log").read_text().splitlines()
        about_resync = [line for line in engine_log if "resync" in line]
        failed = [line for line in about_resync if "failed" in line]
        assert len(failed) == 1, failed
        assert "retry after" not in "\n".join(engine_log)
        assert max(len(line) for line in engine_log) < 500
        reader_log = (tree.log_dir / "ari-reader_00.log").read_text().splitlines()
        assert len([line for line in reader_log if "connecting to ARI" in line]) == 1


def test_a_missing_v27_file_shows_in_status_and_its_exit_code(tmp_path):
    with SimServer(password="pw") as sim, asterisk_tree(tmp_path, sim.url, password="pw") as (env, _tree):
        (tmp_path / "endpoints_pjsip.def").unlink()
        assert run_arimonitor("start", env=env).returncode == 0

        def degraded():
            result = arictl("status", "--brief", env=env)
            assert result.returncode == 1, result.stdout
            return result
        brief = eventually(degraded, timeout=20, interval=0.5).stdout
        assert brief.startswith("DEGRADED - files: ") and "endpoints_pjsip.def: cannot read file" in brief
