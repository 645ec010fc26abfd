"""`arimonitor start --role`: the real supervisord tree runs only what the host's role needs."""

from __future__ import annotations

import pytest

from arimonitor.sim.testing import SimServer
from tests.support import eventually
from tests.test_health_exit_codes import asterisk_tree
from tests.trees import demo_tree, run_arimonitor, running

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("role, runs, absent", [
    ("reader", {"ari-reader_00", "ari-sim"}, {"engine", "transcoder_00", "clicktocall"}),
    ("central", {"engine", "transcoder_00", "clicktocall", "ari-sim"}, {"ari-reader_00"}),
])
def test_start_with_a_role_runs_only_its_programs(tmp_path, role, runs, absent):
    with demo_tree(tmp_path, workers=1) as demo:
        started = run_arimonitor("start", "--demo", "--role", role, env=demo.env)
        assert started.returncode == 0, started.stdout + started.stderr
        up = set(running(demo.tree))
        assert runs <= up and not (absent & up), up
        assert f"role {role}: not waiting for the ARI link" in started.stdout
        # status expects the programs of the role the tree was started with
        status = run_arimonitor("status", env=demo.env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert run_arimonitor("stop", env=demo.env).returncode == 0


def _two_servers(tmp_path, pbx1: SimServer, pbx2: SimServer, host: dict | None = None):
    return asterisk_tree(tmp_path, pbx1.url, pbx1.password,
                         {"ari": {"url": pbx1.url, "password": pbx1.password, "server_id": "pbx1"},
                          "ari:pbx2": {"url": pbx2.url, "password": pbx2.password},
                          **({"host": host} if host else {})})


def _apps(sim: SimServer) -> list[str]:
    return [c["app"] for c in sim.control.state()["connections"]]


def test_a_reader_host_runs_only_the_named_servers_reader(tmp_path):
    with SimServer() as pbx1, SimServer() as pbx2, _two_servers(tmp_path, pbx1, pbx2) as (env, tree):
        started = run_arimonitor("start", "--role", "reader", "--server", "pbx2", env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        # pbx2's reader keeps its number (ari-reader_01) and is the only program here
        assert set(running(tree)) == {"ari-reader_01"}, running(tree)
        eventually(lambda: _apps(pbx2) == ["arimonitor"], timeout=20, interval=0.2)
        assert _apps(pbx1) == []
        status = run_arimonitor("status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "ari-reader_01" in status.stdout and "ari-reader_00" not in status.stdout
        assert run_arimonitor("stop", env=env).returncode == 0


def test_host_servers_in_the_config_picks_the_readers(tmp_path):
    with SimServer() as pbx1, SimServer() as pbx2, _two_servers(
            tmp_path, pbx1, pbx2, {"role": "reader", "servers": "pbx1"}) as (env, tree):
        started = run_arimonitor("start", env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert set(running(tree)) == {"ari-reader_00"}, running(tree)
        eventually(lambda: _apps(pbx1) == ["arimonitor"], timeout=20, interval=0.2)
        assert _apps(pbx2) == []


def test_an_unknown_server_is_refused_and_nothing_starts(tmp_path):
    with SimServer() as pbx1, SimServer() as pbx2, _two_servers(tmp_path, pbx1, pbx2) as (env, tree):
        started = run_arimonitor("start", "--role", "reader", "--server", "pbx9", env=env)
        assert started.returncode == 1, started.stdout + started.stderr
        assert "no server 'pbx9' (servers: pbx1, pbx2)" in started.stderr
        assert tree.supervisord_pid() is None and not tree.socket.exists()
        assert _apps(pbx1) == [] and _apps(pbx2) == []
