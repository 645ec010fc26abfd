"""A full disk under the click-to-call consumer: nothing lost, nothing placed twice.

`var/` (the ledger) is a small tmpfs filled to the last byte while requests arrive; the
consumer must neither crash, nor refuse, nor place a request it could not write down: each
goes back to the queue and is placed once when space comes back. Skipped, saying why, where
this machine cannot mount a tmpfs (not root, no mount namespace).
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

from tests.support import eventually


@contextlib.contextmanager
def small_disk(path: Path, size: str = "4m"):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> Path:
    """Write until the file system says no space; returns the filler file."""
    filler = path / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    with contextlib.suppress(OSError), open(path / "filler2", "wb") as f:
        while True:
            f.write(b"\0" * 512)
            f.flush()
    return filler


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
        for name in ("filler", "filler2"):
            (var / name).unlink()
        eventually(lambda: len({o.params["channelId"] for o in c2c.ari.originates()}) == 20,
                   timeout=30, message="requests lost after the disk had room again")
        channels = [o.params["channelId"] for o in c2c.ari.originates()]
        assert sorted(set(channels)) == sorted(f"c2c-{rid}-a" for rid in ids)
        assert len(c2c.ari.channels) == 20, "a request rang twice"
        assert c2c.get_all(c2c.topology.dead_letter_queue) == [], "refused instead of deferred"
        assert c2c.get_all(c2c.reply_queue) == []
        assert "Traceback" not in c2c.log_text()
        assert len(c2c.procs) == 1 and c2c.procs[0].poll() is None, "the consumer died"
