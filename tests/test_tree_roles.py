"""`arimonitor start --role`: the real supervisord tree runs only what the host's role needs."""

from __future__ import annotations

import pytest

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
