"""The real supervisord tree, started the way the README starts it, in a temp dir."""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.support import eventually, pid_alive, write_config
from tests.trees import ARIMONITOR, demo_tree, run_arimonitor, running


@pytest.fixture
def tree_env(tmp_path):
    with demo_tree(tmp_path, workers=2) as demo:
        yield demo.env, demo.tree


def test_start_kill_restart_stop(tree_env):
    env, tree = tree_env
    started = run_arimonitor("start", "--demo", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    expected = {"engine", "ari-reader_00", "transcoder_00", "transcoder_01", "clicktocall", "ari-sim"}
    before = running(tree)
    assert set(before) >= expected

    status = run_arimonitor("status", env=env)
    assert status.returncode == 0, status.stdout
    assert "engine" in status.stdout and "RUNNING" in status.stdout

    # each process writes its own log file (RUNNING can come before a loaded machine has let a
    # process open it: wait for it, never longer than a start should take)
    for name in expected:
        eventually(lambda n=name: (tree.log_dir / f"{n}.log").exists(), timeout=15, message=name)

    # kill -9 of every program: supervisord brings each back with a new pid
    for name in expected:
        os.kill(before[name], signal.SIGKILL)

    def all_restarted():
        now = running(tree)
        return all(name in now and now[name] != before[name] for name in expected) and now

    after = eventually(all_restarted, timeout=30, interval=0.2)
    children = list(after.values())
    sup = tree.supervisord_pid()
    assert sup

    stopped = run_arimonitor("stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_alive(sup)
    assert [pid for pid in children if pid_alive(pid)] == []
    gone = run_arimonitor("status", env=env)
    assert gone.returncode == 3


def test_supervisorctl_talks_to_the_tree(tree_env):
    env, _tree = tree_env
    assert run_arimonitor("start", "--demo", env=env).returncode == 0
    ctl = run_arimonitor("ctl", "status", env=env)
    assert "arimonitor:engine" in ctl.stdout and "RUNNING" in ctl.stdout
    tail = run_arimonitor("ctl", "tail", "arimonitor:engine", env=env)
    assert "engine starting" in tail.stdout


def test_start_refuses_a_second_tree(tree_env):
    env, _tree = tree_env
    assert run_arimonitor("start", "--demo", env=env).returncode == 0
    again = run_arimonitor("start", "--demo", env=env)
    assert again.returncode == 1
    assert "already running" in again.stderr


def test_bad_config_stops_start_with_the_key_named(tmp_path):
    ini = write_config(tmp_path, {"ari": {"ping_interval": "often"}})
    result = run_arimonitor("start", env={**os.environ, "ARIMONITOR_CONFIG": str(ini)})
    assert result.returncode == 1
    assert "[ari] ping_interval" in result.stderr


def test_tail_prefixes_each_line_with_its_process(tmp_path):
    ini = write_config(tmp_path)
    log = tmp_path / "var" / "log"
    log.mkdir(parents=True)
    (log / "engine.log").write_text("one\ntwo\n")
    (log / "ari-reader.log").write_text("three\n")
    result = run_arimonitor("tail", "--no-follow", "-n", "5", "engine", "ari-reader",
                 env={**os.environ, "ARIMONITOR_CONFIG": str(ini)})
    assert result.stdout.splitlines() == ["engine     | one", "engine     | two", "ari-reader | three"]


def test_demo_runs_in_the_foreground_and_ctrl_c_stops_everything(tree_env, processes):
    env, tree = tree_env
    out = tree.log_dir.parent / "demo.out"
    tree.log_dir.mkdir(parents=True, exist_ok=True)
    demo = processes.start([*ARIMONITOR, "demo"], env=env, log=out)
    eventually(lambda: {"engine", "ari-sim", "ari-reader_00"} <= set(running(tree)), timeout=45, interval=0.2)
    eventually(lambda: "arictl status" in out.read_text(), timeout=10)
    # the demo's stand-in web system asks for click-to-calls and hears back on its reply queue
    outcome = re.compile(r"demo click-to-call: demo-\w+: (completed|failed|refused)")
    eventually(lambda: outcome.search(out.read_text()), timeout=60, interval=0.5)
    pids = list(running(tree).values())
    sup = tree.supervisord_pid()
    os.killpg(demo.pid, signal.SIGINT)
    assert demo.wait(60) == 0
    assert not pid_alive(sup)
    assert [pid for pid in pids if pid_alive(pid)] == []


def test_tail_of_a_mistyped_process_says_so_at_once(tmp_path):
    ini = write_config(tmp_path)
    result = run_arimonitor("tail", "engin", env={**os.environ, "ARIMONITOR_CONFIG": str(ini)}, timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip() == "arimonitor: no process engin; did you mean engine?"
