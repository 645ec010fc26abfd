"""The worker roster (transcode/roster.py): hellos, heartbeats, silence."""

from arimonitor.transcode.roster import WorkerRoster


def test_a_silent_worker_is_reported_once_and_any_message_brings_it_back():
    roster = WorkerRoster()
    old, seen = roster.hello({"worker": "w1", "pid": 10, "interval": 1.0}, now=100.0)
    assert old is None and seen.pid == 10
    assert [w.name for w in roster.live(102.0)] == ["w1"]
    assert [w.name for w in roster.fell_silent(103.5)] == ["w1"]  # three 1 s hellos missed
    assert roster.fell_silent(104.0) == []
    roster.heard_from("w1", 104.0)
    assert not roster["w1"].gone and [w.name for w in roster.live(104.5)] == ["w1"]


def test_a_hello_under_a_new_pid_returns_the_worker_it_replaces():
    roster = WorkerRoster()
    roster.hello({"worker": "w1", "pid": 10}, now=1.0)
    old, seen = roster.hello({"worker": "w1", "pid": 11, "encoders": ["lame"]}, now=2.0)
    assert (old.pid, seen.pid, seen.encoders) == (10, 11, ("lame",))
    assert roster["w1"] is seen
