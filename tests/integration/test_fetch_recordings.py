"""A server on another host: its WAVs fetched over ARI, converted, deleted there only after the
MP3 is verified. Real processes (engine, reader, transcoder_00) and the simulator over real
HTTP, its spool a folder the engine's host does not share ([ari] recordings = fetch)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import mutagen.mp3
import pytest

from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, outputs, start_stack, write_config
from tests.support import Processes, eventually, eventually_assert

pytestmark = pytest.mark.timeout(90)

CLIENTS = "[101]\nnome=Grava Sempre\ngravar=S\nmax_chamadas=8\n"
PHONES = ["1013010", "1013015"]


def linked_with_a_worker(address: str, servers: set[str]) -> bool:
    """The engine answers, linked to every server, and a transcoder worker is alive."""
    try:
        status = ctl(address, "status", timeout=1)["data"]
    except TimeoutError:
        return False  # not bound yet
    views = status.get("servers") or {status["link"].get("server"): status}
    linked = {name for name, view in views.items() if view["link"]["state"] == "connected"}
    return linked == servers and ctl(address, "jobs", timeout=1)["data"]["workers_alive"] >= 1


def one_fetched_server(tmp_path: Path, sim: SimServer) -> Path:
    """The config of one server, pbx9, whose WAVs are fetched over its ARI (delete_wav on)."""
    (tmp_path / "__CLIENTES__.DEF").write_text(CLIENTS, encoding="utf-8")
    (tmp_path / "endpoints_pjsip.def").write_text("".join(
        f"#include pjsip/{e}.pjsip ; Endpoint:{e} CLI:101 TYPE:apartamento PW:pw{e}\n" for e in PHONES),
        encoding="utf-8")
    return write_config(tmp_path, sim,
                        ari={"url": sim.url, "user": sim.user, "password": sim.password,
                             "app": sim.app, "server_id": "pbx9", "recordings": "fetch"},
                        transcoder={"delete_wav": "yes"},
                        files={"endpoints": str(tmp_path / "endpoints_pjsip.def"),
                               "clients": str(tmp_path / "__CLIENTES__.DEF")})


def test_a_fetched_recording_becomes_an_mp3_then_leaves_the_server(tmp_path):
    procs = Processes()
    with SimServer(endpoints=PHONES, time_scale=0.2) as sim:
        ini = one_fetched_server(tmp_path, sim)
        try:
            start_stack(procs, ini, tmp_path, extra=(("transcoder.py", "--name", "transcoder_00"),))
            address = control_address(tmp_path)

            eventually(lambda: linked_with_a_worker(address, {"pbx9"}), timeout=40, interval=0.2)
            for n, phone in enumerate(PHONES):
                sim.control.register(phone, ip=f"10.1.0.{n + 1}", port=5060)
            sim.control.behaviour(PHONES[0], talk=10.0)  # 2 s of wall time
            caller = sim.control.call(PHONES[0], PHONES[1])

            def done() -> dict:
                recs = [r for r in ctl(address, "recordings", "101")["data"]["recordings"]]
                assert recs and recs[0]["job_state"] == "done", (recs, ctl(address, "jobs")["data"])
                return recs[0]
            rec = eventually_assert(done, timeout=30)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{outputs(tmp_path)}") from None
        finally:
            procs.kill_all()
        name = rec["name"]
        assert rec["server"] == "pbx9" and rec["call_id"] in name, (rec, caller)
        mp3 = Path(rec["mp3"])
        assert mp3.is_file() and mutagen.mp3.MP3(mp3).info.length > 1.0, rec
        # fetched over ARI, deleted there after the MP3, in that order; no WAV left anywhere
        asked = [(r["method"], r["path"], r["status"]) for r in sim.control.requests()
                 if r["path"].startswith("/recordings/stored/")]
        quoted = name.replace("/", "%2F")
        assert [a for a in asked if a[0] == "GET"][:1] in ([("GET", f"/recordings/stored/{name}/file", 200)],
                                                            [("GET", f"/recordings/stored/{quoted}/file", 200)]), asked
        assert asked[-1][0] == "DELETE" and asked[-1][2] == 204, asked
        assert not list(sim.recordings.rglob("*.wav")), list(sim.recordings.rglob("*"))
        assert not list((tmp_path / "var" / "fetched").rglob("*.wav"))


def test_a_recording_finished_while_the_engine_was_killed_is_fetched_after_the_restart(tmp_path):
    """The engine is killed -9 while a fetch-server records a call; the call ends meanwhile, so
    its RecordingFinished goes to nobody and the WAV waits in the server's spool. After the
    restart the engine lists the server's stored recordings over ARI and fetches it."""
    procs = Processes()
    with SimServer(endpoints=PHONES, time_scale=0.2) as sim:
        ini = one_fetched_server(tmp_path, sim)
        try:
            stack = start_stack(procs, ini, tmp_path, extra=(("transcoder.py", "--name", "transcoder_00"),))
            address = control_address(tmp_path)
            eventually(lambda: linked_with_a_worker(address, {"pbx9"}), timeout=40, interval=0.2)
            for n, phone in enumerate(PHONES):
                sim.control.register(phone, ip=f"10.1.0.{n + 1}", port=5060)
            sim.control.behaviour(PHONES[0], talk=1000.0)  # hangs up only when told
            caller = sim.control.call(PHONES[0], PHONES[1])
            name = eventually(lambda: sim.control.state()["recordings"], timeout=20)[0]

            engine = stack["engine"]
            os.killpg(engine.pid, signal.SIGKILL)
            engine.wait()
            sim.control.hangup(caller)  # the recording ends, its WAV is written: nobody hears it
            wav = sim.recordings / f"{name}.wav"
            eventually(wav.is_file, timeout=10)
            env = {"ARIMONITOR_CONFIG": str(ini)}
            procs.python("procs/call_engine.py", env=env, log=tmp_path / "out" / "engine2.out")

            def fetched_and_gone() -> None:
                rec = {r["name"]: r for r in ctl(address, "recordings", "101", timeout=2)["data"]["recordings"]}
                assert rec.get(name, {}).get("job_state") == "done", (rec, ctl(address, "jobs")["data"])
                assert not wav.exists()
            eventually_assert(fetched_and_gone, timeout=40)
            mp3 = Path(ctl(address, "recordings", "101")["data"]["recordings"][0]["mp3"])
            stored = ctl(address, "status")["data"]["processes"]["transcoders"]["stored"]
            assert stored["queued"] == 1 and stored["list_failed"] == 0, stored
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{outputs(tmp_path)}") from None
        finally:
            procs.kill_all()
        assert mp3.is_file() and mutagen.mp3.MP3(mp3).info.length > 0.0, mp3  # the call was short
        asked = [(r["method"], r["path"].replace("%2F", "/"), r["status"]) for r in sim.control.requests()
                 if r["path"].startswith("/recordings/")]
        # listed after the restart, checked no longer live, fetched, deleted once the MP3 was there
        listed = asked.index(("GET", "/recordings/stored", 200))
        later = asked[listed:]
        assert ("GET", f"/recordings/live/{name}", 404) in later, asked
        assert [a for a in later if a[1].startswith("/recordings/stored/")] == [
            ("GET", f"/recordings/stored/{name}/file", 200), ("DELETE", f"/recordings/stored/{name}", 204)], asked
        assert not list(sim.recordings.rglob("*.wav")) and not list((tmp_path / "var" / "fetched").rglob("*.wav"))


def test_two_servers_each_call_recorded_on_its_own_and_pbx2s_wav_fetched(tmp_path):
    """pbx1's WAVs are on this host, pbx2's are not: each call is snooped and recorded on the
    Asterisk it is on, pbx1's MP3 comes from its folder, pbx2's WAV over pbx2's ARI."""
    (tmp_path / "__CLIENTES__.DEF").write_text(CLIENTS, encoding="utf-8")
    phones = {"pbx1": ["1013010", "1013015"], "pbx2": ["1013020", "1013030"]}
    (tmp_path / "endpoints_pjsip.def").write_text("".join(
        f"#include pjsip/{e}.pjsip ; Endpoint:{e} CLI:101 TYPE:apartamento PW:pw{e}\n"
        for pair in phones.values() for e in pair), encoding="utf-8")
    procs = Processes()
    with SimServer(endpoints=phones["pbx1"], time_scale=0.2) as pbx1, \
            SimServer(endpoints=phones["pbx2"], time_scale=0.2) as pbx2:
        sims = {"pbx1": pbx1, "pbx2": pbx2}
        ini = write_config(tmp_path, pbx1,
                           ari={"url": pbx1.url, "user": pbx1.user, "password": pbx1.password,
                                "app": pbx1.app, "server_id": "pbx1", "recordings": str(pbx1.recordings)},
                           **{"ari:pbx2": {"url": pbx2.url, "user": pbx2.user, "password": pbx2.password,
                                           "app": pbx2.app}},
                           transcoder={"delete_wav": "yes"},
                           files={"endpoints": str(tmp_path / "endpoints_pjsip.def"),
                                  "clients": str(tmp_path / "__CLIENTES__.DEF")})
        try:
            start_stack(procs, ini, tmp_path, extra=(("ari_reader.py", "--server", "1", "--name", "ari-reader_01"),
                                                     ("transcoder.py", "--name", "transcoder_00")))
            address = control_address(tmp_path)

            eventually(lambda: linked_with_a_worker(address, {"pbx1", "pbx2"}), timeout=40, interval=0.2)
            callers = {}
            for server, (caller, callee) in phones.items():
                sim = sims[server]
                for n, phone in enumerate((caller, callee)):
                    sim.control.register(phone, ip=f"10.{server[-1]}.0.{n + 1}", port=5060)
                sim.control.behaviour(caller, talk=10.0)
                callers[server] = sim.control.call(caller, callee)

            def both_done() -> dict:
                recs = {r["server"]: r for r in ctl(address, "recordings", "101")["data"]["recordings"]}
                assert sorted(recs) == ["pbx1", "pbx2"], recs
                assert all(r["job_state"] == "done" for r in recs.values()), recs
                return recs
            recs = eventually_assert(both_done, timeout=40)
            # uniqueids are <epoch>.<n>, counted by each Asterisk: the two calls, placed in the
            # same second on two fresh servers, usually share one; still two recordings
            assert recs["pbx2"]["name"].split("/")[-1] == f"pbx2-{recs['pbx2']['call_id']}", recs
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{outputs(tmp_path)}") from None
        finally:
            procs.kill_all()
        for server, sim in sims.items():
            rec = recs[server]
            assert Path(rec["mp3"]).is_file() and mutagen.mp3.MP3(rec["mp3"]).info.length > 1.0, rec
            asked = [(r["method"], r["path"]) for r in sim.control.requests()]
            # this server's call was snooped here, its recording stopped here, the other's never
            assert any(p.endswith("/snoop") and callers[server] in p for _, p in asked), asked
            assert ("POST", f"/recordings/live/{rec['name']}/stop") in asked, asked
            other = recs["pbx2" if server == "pbx1" else "pbx1"]["name"]
            assert not any(other in p for _, p in asked), asked
            stored = [m for m, p in asked if p.startswith("/recordings/stored/")]
            # pbx1's WAV was read from its folder; pbx2's fetched then deleted over its ARI
            assert stored == ([] if server == "pbx1" else ["GET", "DELETE"]), asked
            assert not list(sim.recordings.rglob("*.wav"))  # delete_wav: gone from both spools
