"""A gravar=S call the engine adopts after a kill -9: one recording per call, started late if
the kill came before its record, never a second one if Asterisk was already recording it.
Real processes (engine, reader, transcoder_00) and the simulator over real HTTP; the snoop
channel and the live recording look as real Asterisk 22 shows them (GET /channels: the snoop
in Stasis(arimonitor); GET /recordings/live/{name}: 200 while written, 404 after)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import mutagen.mp3
import pytest

from arimonitor.sim.testing import SimServer
from arimonitor.transcode.policy import LATE, SNOOP_PREFIX
from tests.engine.stack import control_address, ctl, outputs, start_stack, write_config
from tests.support import Processes, eventually, eventually_assert

pytestmark = pytest.mark.timeout(120)

CLIENTS = "[101]\nnome=Grava Sempre\ngravar=S\nmax_chamadas=8\n"
PHONES = ["1013010", "1013015", "1013030", "1013031", "1013040", "1013041"]


class Stack:
    def __init__(self, procs: Processes, sim: SimServer, tmp: Path, ini: Path) -> None:
        self.procs, self.sim, self.tmp, self.ini = procs, sim, tmp, ini
        self.address = control_address(tmp)
        self.engine = start_stack(procs, ini, tmp, extra=(("transcoder.py", "--name", "transcoder_00"),))["engine"]
        self.runs = 1

    def ready(self) -> bool:
        try:
            status = ctl(self.address, "status", timeout=1)["data"]
            workers = ctl(self.address, "jobs", timeout=1)["data"]["workers_alive"]
        except TimeoutError:
            return False  # not bound yet
        return status["link"]["state"] == "connected" and workers >= 1

    def kill_engine(self) -> None:
        os.killpg(self.engine.pid, signal.SIGKILL)
        self.engine.wait()

    def start_engine(self) -> None:
        self.runs += 1
        self.engine = self.procs.python("procs/call_engine.py", env={"ARIMONITOR_CONFIG": str(self.ini)},
                                        log=self.tmp / "out" / f"engine{self.runs}.out")
        eventually(self.ready, timeout=40, interval=0.2)

    def records_of(self, channel: str) -> list[dict[str, Any]]:
        """POST /channels/{channel}/record requests Asterisk received."""
        return [r for r in self.sim.control.requests()
                if r["method"] == "POST" and r["path"] == f"/channels/{channel}/record"]

    def recording(self, call_id: str) -> dict[str, Any]:
        """The call's row of `recordings` once its MP3 is done."""
        def done() -> dict[str, Any]:
            rows = [r for r in ctl(self.address, "recordings", "101", timeout=2)["data"]["recordings"]
                    if r["call_id"] == call_id or call_id in r["name"]]
            assert len(rows) == 1 and rows[0]["job_state"] == "done", (rows, ctl(self.address, "jobs")["data"])
            return rows[0]
        return eventually_assert(done, timeout=40)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adopted")
    (tmp / "__CLIENTES__.DEF").write_text(CLIENTS, encoding="utf-8")
    (tmp / "endpoints_pjsip.def").write_text("".join(
        f"#include pjsip/{e}.pjsip ; Endpoint:{e} CLI:101 TYPE:apartamento PW:pw{e}\n" for e in PHONES),
        encoding="utf-8")
    procs = Processes()
    try:
        with SimServer(endpoints=PHONES, time_scale=0.2) as sim:
            ini = write_config(tmp, sim, paths={"recordings": str(sim.recordings)},
                               files={"endpoints": str(tmp / "endpoints_pjsip.def"),
                                      "clients": str(tmp / "__CLIENTES__.DEF")})
            s = Stack(procs, sim, tmp, ini)
            eventually(s.ready, timeout=40, interval=0.2)
            for n, phone in enumerate(PHONES):
                sim.control.register(phone, ip=f"10.1.0.{n + 1}", port=5060)
                sim.control.behaviour(phone, talk=1000.0)  # hangs up only when told
            yield s
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{outputs(tmp)}") from None
    finally:
        procs.kill_all()


def _one_wav_and_mp3(stack: Stack, rec: dict[str, Any]) -> None:
    wavs = list(Path(stack.sim.recordings).rglob(f"*{rec['call_id']}*.wav"))
    mp3s = list((stack.tmp / "var" / "mp3").rglob(f"*{rec['call_id']}*.mp3"))
    assert len(wavs) == 1 and mp3s == [Path(rec["mp3"])], (wavs, mp3s)
    assert mutagen.mp3.MP3(rec["mp3"]).info.length > 0.0  # hung up at once: short


def test_a_call_answered_while_the_engine_was_down_is_recorded_from_its_adoption(stack):
    """Nothing was asked of Asterisk before the kill: the adopted call is snooped and recorded
    once, from the restart on (a partial recording is better than none), marked late."""
    sim = stack.sim
    stack.kill_engine()
    caller = sim.control.call("1013040", "1013041")
    eventually(lambda: any(ch["id"] == caller and ch["state"] == "Up"
                           for ch in sim.control.state()["channels"]), timeout=10)
    stack.start_engine()

    snoop = SNOOP_PREFIX + caller
    eventually(lambda: stack.records_of(snoop), timeout=15)
    sim.control.hangup(caller)
    rec = stack.recording(caller)
    assert rec["reason"] == LATE, rec
    assert [r["status"] for r in stack.records_of(snoop)] == [201]
    assert [r["status"] for r in sim.control.requests() if r["path"] == f"/channels/{caller}/snoop"] == [200]
    _one_wav_and_mp3(stack, rec)


def test_killed_between_snoop_and_record_the_adopted_call_is_recorded_late(stack):
    """The engine made the snoop and died before its record (it waits for the snoop's
    StasisStart): after the restart that snoop is recorded, once, and the row says late."""
    sim = stack.sim
    sim.control.stasis_delay(3.0, count=1, channel=SNOOP_PREFIX)
    caller = sim.control.call("1013010", "1013015")
    snoop = SNOOP_PREFIX + caller
    eventually(lambda: any(ch["id"] == snoop for ch in sim.control.state()["channels"]), timeout=15)
    stack.kill_engine()
    assert stack.records_of(snoop) == []  # the kill came before the record
    in_stasis = lambda: any(ch["id"] == snoop and ch["dialplan"]["app_name"] == "Stasis"
                            for ch in sim.control.state()["channels"])
    eventually(in_stasis, timeout=10)
    stack.start_engine()

    eventually(lambda: sim.control.state()["recordings"], timeout=15)
    sim.control.hangup(caller)
    rec = stack.recording(caller)
    assert rec["reason"] == LATE, rec
    records = stack.records_of(snoop)
    assert [r["status"] for r in records] == [201], records
    # the snoop of the first run is the one recorded: no second snoop of the call
    snoops = [r for r in sim.control.requests() if r["path"] == f"/channels/{caller}/snoop"]
    assert [r["status"] for r in snoops] == [200], snoops
    _one_wav_and_mp3(stack, rec)


def test_killed_while_recording_the_adopted_call_keeps_its_one_recording(stack):
    """The engine died while Asterisk recorded the call: after the restart the live recording
    goes on (asked by name, 200), nothing is recorded twice, and it is not marked late."""
    sim = stack.sim
    caller = sim.control.call("1013030", "1013031")
    snoop = SNOOP_PREFIX + caller
    eventually(lambda: stack.records_of(snoop), timeout=15)
    eventually(lambda: sim.control.state()["recordings"], timeout=10)
    stack.kill_engine()
    stack.start_engine()

    name = next(n for n in sim.control.state()["recordings"] if caller in n)
    live_checks = lambda: [r for r in sim.control.requests()
                           if r["method"] == "GET" and r["path"].replace("%2F", "/") == f"/recordings/live/{name}"]
    eventually(live_checks, timeout=15)
    assert [r["status"] for r in live_checks()] == [200]
    sim.control.hangup(caller)
    rec = stack.recording(caller)
    assert rec["reason"] != LATE, rec
    assert [r["status"] for r in stack.records_of(snoop)] == [201]
    assert [r["status"] for r in sim.control.requests() if r["path"] == f"/channels/{caller}/snoop"] == [200]
    _one_wav_and_mp3(stack, rec)
