"""The recording policy's ARI with several servers: each call's recording REST goes to the
Asterisk the call is on, also when two servers give the same uniqueid."""

from __future__ import annotations

from arimonitor.transcode.policy import CallInfo, Recorder
from arimonitor.transcode.wiring import ServersAri


class FakeWorkerAri:
    def __init__(self, server: str, calls: list) -> None:
        self.server, self.calls = server, calls
        self.rest = self

    def __getattr__(self, method: str):
        return lambda *args: self.calls.append((self.server, method, args[0]))


def test_each_call_is_recorded_and_stopped_on_its_own_server():
    calls: list = []
    ari = ServersAri(lambda server: FakeWorkerAri(server, calls), "pbx1")
    recorder = Recorder(ari, records=lambda: {"101": True}, default=lambda: False)
    for call_id, server in (("c1", ""), ("c2", "pbx2"), ("c2", "")):
        ari.serving(server or "pbx1")
        recorder.call_answered(CallInfo(id=call_id, client="101", answered=1.8e9, channel=f"ch-{call_id}",
                                        server=server))
    # the same uniqueid on two servers is two calls, two recordings of two names
    names = [args for server, method, args in calls if method == "record_channel"]
    assert len(names) == 3 and len(set(names)) == 2  # record_channel's first argument: the snoop id
    for call_id, server in (("c2", "pbx2"), ("c1", ""), ("c2", "")):
        ari.serving(server or "pbx1")
        recorder.call_ended(call_id, server)
    snoops = [(server, target) for server, method, target in calls if method == "snoop"]
    assert snoops == [("pbx1", "ch-c1"), ("pbx2", "ch-c2"), ("pbx1", "ch-c2")]
    stops = [(server, method, target) for server, method, target in calls
             if method in ("stop_recording", "hangup")]
    assert [(s, m) for s, m, _ in stops] == [("pbx2", "stop_recording"), ("pbx2", "hangup"),
                                             ("pbx1", "stop_recording"), ("pbx1", "hangup"),
                                             ("pbx1", "stop_recording"), ("pbx1", "hangup")]
    assert stops[0][2].endswith("/pbx2-c2") and stops[4][2].endswith("/c2")
