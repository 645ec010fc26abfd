"""A full disk under the click-to-call consumer: nothing lost, nothing placed twice.

`var/` (the ledger) is a small tmpfs filled to the last byte while requests arrive; the
consumer must neither crash, nor refuse, nor place a request it could not write down: each
goes back to the queue and is placed once when space comes back. Skipped, saying why, where
this machine cannot mount a tmpfs (not root, no mount namespace).
"""

from __future__ import annotations

from tests.hostile.disk import fill, free, small_disk
from tests.support import eventually


def test_full_disk_defers_and_then_places_each_request_once(c2c, processes):
    with small_disk(c2c.tmp / "var") as var:
        c2c.start_consumer(processes, ARIMONITOR_PATHS_LOG=str(c2c.tmp / "log"))
        eventually(lambda: (var / "clicktocall.sqlite").exists())
        fill(var)
        ids = []
        for i in range(20):
            req = c2c.request(client="900", origin=f"90000{i:02d}")
            ids.append(req["request_id"])
            c2c.publish(req, correlation_id=req["request_id"])
        eventually(lambda: "requests go back to the queue" in c2c.log_text(), timeout=15,
                   message="the consumer never noticed the full disk")
        placed_while_full = {o.params["channelId"] for o in c2c.ari.originates()}
        assert len(placed_while_full) < len(ids), "every request placed with a full disk?"
        free(var)
        eventually(lambda: len({o.params["channelId"] for o in c2c.ari.originates()}) == 20,
                   timeout=30, message="requests lost after the disk had room again")
        channels = [o.params["channelId"] for o in c2c.ari.originates()]
        assert sorted(set(channels)) == sorted(f"c2c-{rid}-a" for rid in ids)
        assert len(c2c.ari.channels) == 20, "a request rang twice"
        assert c2c.get_all(c2c.topology.dead_letter_queue) == [], "refused instead of deferred"
        assert c2c.get_all(c2c.reply_queue) == []
        assert "Traceback" not in c2c.log_text()
        assert len(c2c.procs) == 1 and c2c.procs[0].poll() is None, "the consumer died"


def test_a_full_disk_under_the_engine_is_a_named_problem_in_the_exit_code_and_healthz(tmp_path):
    import json
    import urllib.error
    import urllib.request

    from tests.test_health_exit_codes import arictl
    from tests.trees import demo_tree, run_arimonitor

    disk = tmp_path / "db"
    (tmp_path / "tree").mkdir()
    with small_disk(disk, "16m"), demo_tree(tmp_path / "tree", workers=1, sections={
            "paths": {"database": str(disk / "arimonitor.sqlite")},
            "clicktocall": {"publishers": "guest: *"}}) as demo:
        env = demo.env
        assert run_arimonitor("start", "--demo", env=env).returncode == 0
        eventually(lambda: arictl("status", env=env).returncode == 0, timeout=60, interval=0.5,
                   message="the demo tree never became healthy")
        port = demo.cfg["metrics.port"]

        def healthz() -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
                    return reply.status, reply.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        fill(disk)  # the demo's own traffic keeps ending calls: their rows find no room
        kept_seen: dict[str, int] = {}

        def degraded():
            result = arictl("status", "--brief", env=env)
            assert result.returncode == 1, result.stdout
            assert "store: NOT WRITABLE" in result.stdout and "full" in result.stdout, result.stdout
            return result

        def kept_while_full():
            """The demo's calls ring and answer (active-call rows), its phones register from new
            addresses (remote IPs): each kind is kept, counted in `status`, not lost."""
            degraded()
            store = json.loads(arictl("--json", "status", env=env).stdout)["data"]["store"]
            for what, n in {"ended calls": store["unsaved"], **store["kept"]}.items():
                kept_seen[what] = max(kept_seen.get(what, 0), n)
            return all(kept_seen.get(what) for what in ("ended calls", "active call rows",
                                                         "remote IPs"))
        eventually(kept_while_full, timeout=90, interval=0.5,
                   message="status never showed every kind of write kept")
        eventually(lambda: (h := healthz())[0] == 503 and "store: NOT WRITABLE" in h[1], timeout=30,
                   interval=0.5, message="/healthz does not name the full disk")
        free(disk)
        eventually(lambda: arictl("status", env=env).returncode == 0, timeout=60, interval=0.5,
                   message="still degraded after the disk had room again")
        eventually(lambda: healthz()[0] == 200, timeout=30, interval=0.5)
        store = json.loads(arictl("--json", "status", env=env).stdout)["data"]["store"]
        assert store["unsaved"] == 0 and not any(store["kept"].values()), store
        assert store["dropped"] == 0, store
        # nothing kept was lost: every remote IP the engine knows is in SQLite, with its
        # last-seen time (the IPs first seen while the disk was full included)
        import sqlite3

        def ips_in_sqlite():
            known = {r["ip"]: r["last_seen"] for r in
                     json.loads(arictl("--json", "_engine_ips", env=env).stdout)["data"]}
            db = sqlite3.connect(f"file:{disk / 'arimonitor.sqlite'}?mode=ro", uri=True)
            try:
                saved = dict(db.execute("SELECT ip, last_seen FROM remote_ips").fetchall())
            finally:
                db.close()
            missing = {ip: t for ip, t in known.items() if saved.get(ip, -1) < t - 2.0}
            assert not missing, f"remote IPs not in SQLite: {missing}"
            return True
        eventually(ips_in_sqlite, timeout=15, interval=0.5)
        print(f"full disk (engine): kept at most {kept_seen}")
        # a full disk is one named problem, not a traceback every second
        engine_log = (demo.tree.log_dir / "engine.log").read_text()
        assert "Traceback" not in engine_log, engine_log[-3000:]
