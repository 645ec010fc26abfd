"""The recording policy's ARI with several servers: each call's recording REST goes to the
Asterisk the call is on, and stopping it goes where it was started."""

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
    for call_id, server in (("c1", "pbx1"), ("c2", "pbx2")):
        ari.serving(server)
        recorder.call_answered(CallInfo(id=call_id, client="101", answered=1.8e9, channel=f"ch-{call_id}",
                                        server=server))
    ari.serving("pbx1")  # whatever the last call was, the stops go where each recording began
    recorder.call_ended("c2")
    recorder.call_ended("c1")
    where = {(method, target): server for server, method, target in calls}
    assert where[("snoop", "ch-c2")] == "pbx2" and where[("snoop", "ch-c1")] == "pbx1"
    stops = [(server, method, target) for server, method, target in calls
             if method in ("stop_recording", "hangup")]
    assert [(s, m) for s, m, _ in stops] == [("pbx2", "stop_recording"), ("pbx2", "hangup"),
                                             ("pbx1", "stop_recording"), ("pbx1", "hangup")]
    assert [t.endswith("c2") for _, _, t in stops] == [True, True, False, False]
