"""A server on another host: its WAVs fetched over ARI, converted, deleted there only after the
MP3 is verified. Real processes (engine, reader, transcoder_00) and the simulator over real
HTTP, its spool a folder the engine's host does not share ([ari] recordings = fetch)."""

from __future__ import annotations

from pathlib import Path

import mutagen.mp3
import pytest

from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, outputs, start_stack, write_config
from tests.support import Processes, eventually, eventually_assert

pytestmark = pytest.mark.timeout(90)

CLIENTS = "[101]\nnome=Grava Sempre\ngravar=S\nmax_chamadas=8\n"
PHONES = ["1013010", "1013015"]


def test_a_fetched_recording_becomes_an_mp3_then_leaves_the_server(tmp_path):
    (tmp_path / "__CLIENTES__.DEF").write_text(CLIENTS, encoding="utf-8")
    (tmp_path / "endpoints_pjsip.def").write_text("".join(
        f"#include pjsip/{e}.pjsip ; Endpoint:{e} CLI:101 TYPE:apartamento PW:pw{e}\n" for e in PHONES),
        encoding="utf-8")
    procs = Processes()
    with SimServer(endpoints=PHONES, time_scale=0.2) as sim:
        ini = write_config(tmp_path, sim,
                           ari={"url": sim.url, "user": sim.user, "password": sim.password,
                                "app": sim.app, "server_id": "pbx9", "recordings": "fetch"},
                           transcoder={"delete_wav": "yes"},
                           files={"endpoints": str(tmp_path / "endpoints_pjsip.def"),
                                  "clients": str(tmp_path / "__CLIENTES__.DEF")})
        try:
            start_stack(procs, ini, tmp_path, extra=(("transcoder.py", "--name", "transcoder_00"),))
            address = control_address(tmp_path)

            def ready() -> bool:
                try:
                    status = ctl(address, "status", timeout=1)["data"]
                except TimeoutError:
                    return False
                jobs = ctl(address, "jobs", timeout=1)["data"]
                return status["link"]["state"] == "connected" and jobs["workers_alive"] >= 1
            eventually(ready, timeout=40, interval=0.2)
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
