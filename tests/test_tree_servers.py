"""Two Asterisk servers ([ari] and [ari:pbx2]): the real supervisord tree runs one reader each."""

from __future__ import annotations

import json
import subprocess

from arimonitor.sim.testing import SimServer
from tests.support import PYTHON, ROOT, eventually, eventually_assert
from tests.test_health_exit_codes import asterisk_tree
from tests.trees import run_arimonitor, running


def arictl(env: dict, *words: str) -> dict:
    result = subprocess.run([PYTHON, str(ROOT / "bin" / "arictl"), "--json", *words], env=env,
                            capture_output=True, text=True, timeout=30, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_two_servers_two_readers_each_connected_to_its_own(tmp_path):
    with SimServer() as pbx1, SimServer() as pbx2, asterisk_tree(
            tmp_path, pbx1.url, pbx1.password,
            {"ari": {"url": pbx1.url, "password": pbx1.password, "server_id": "pbx1"},
             "ari:pbx2": {"url": pbx2.url, "password": pbx2.password}}) as (env, tree):
        started = run_arimonitor("start", env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert {"ari-reader_00", "ari-reader_01"} <= set(running(tree))

        def connected(sim: SimServer) -> bool:
            return [c["app"] for c in sim.control.state()["connections"]] == ["arimonitor"]
        eventually(lambda: connected(pbx1) and connected(pbx2), timeout=20, interval=0.2)
        # each reader has its own log, connected to its own server with its own password
        for name, sim in (("ari-reader_00", pbx1), ("ari-reader_01", pbx2)):
            eventually(lambda n=name, s=sim: f"connected to {s.ws_url.split('?')[0]}"
                       in (tree.log_dir / f"{n}.log").read_text(), timeout=10)

        # the envelope carries the real server id: the engine links to pbx1, and sets
        # pbx2's messages aside (named, counted) rather than mixing them into pbx1's state
        def engine_sees_both() -> bool:
            status = arictl(env, "status")["data"]
            assert status["link"]["state"] == "connected", status["link"]
            assert status["link"]["server"] == "pbx1", status["link"]
            return True
        eventually_assert(engine_sees_both, timeout=20)
        eventually(lambda: "messages of server 'pbx2' set aside"
                   in (tree.log_dir / "engine.log").read_text(), timeout=20)
