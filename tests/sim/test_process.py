"""The simulator as a real process (procs/ari_sim.py): real HTTP, WebSocket, AMI and SIGTERM."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import wave

import requests

from arimonitor.sim.testing import Control
from tests.sim.wsclient import EventStream
from tests.support import ROOT, eventually, free_port


def test_sim_process_end_to_end(processes, tmp_path) -> None:
    password = secrets.token_urlsafe(12)
    port, ami_port = free_port(), free_port()
    (tmp_path / "endpoints_pjsip.def").write_text(
        "#include pjsip/1013010.pjsip ; Endpoint:1013010 CLI:101\n"
        "#include pjsip/1123000.pjsip ; Endpoint:1123000 CLI:112\n")
    ini = tmp_path / "arimonitor.ini"
    ini.write_text("[sim]\ndemo_traffic = no\n")
    os.chmod(ini, 0o600)
    env = {"ARIMONITOR_CONFIG": str(ini), "ARIMONITOR_SIM_PORT": str(port),
           "ARIMONITOR_SIM_AMI_PORT": str(ami_port), "ARIMONITOR_ARI_PASSWORD": password,
           "ARIMONITOR_PATHS_VAR": str(tmp_path / "var"),
           "ARIMONITOR_FILES_ENDPOINTS": str(tmp_path / "endpoints_pjsip.def")}
    proc = processes.python(str(ROOT / "procs" / "ari_sim.py"), env=env, log=tmp_path / "sim.out")
    url = f"http://127.0.0.1:{port}/ari"
    auth = ("arimonitor", password)

    def up() -> bool:
        try:
            return requests.get(url + "/asterisk/info", auth=auth, timeout=1).ok
        except requests.ConnectionError:
            assert proc.poll() is None, (tmp_path / "sim.out").read_text()
            return False

    eventually(up, timeout=15)
    control = Control(f"http://127.0.0.1:{port}")
    control.config(time_scale=0.02)
    assert [e["resource"] for e in requests.get(url + "/endpoints", auth=auth, timeout=5).json()] == [
        "1013010", "1123000"]
    stream = EventStream(f"ws://127.0.0.1:{port}/ari/events?app=arimonitor&subscribeAll=true",
                         "arimonitor", password)
    try:
        control.register("1013010", "10.1.2.3", 5062)
        r = requests.post(url + "/channels", params={"endpoint": "PJSIP/1013010", "app": "arimonitor",
                                                     "channelId": "p1"}, auth=auth, timeout=5)
        assert r.status_code == 200
        stream.wait_type("StasisStart")
        bridge = requests.post(url + "/bridges", params={"type": "mixing"}, auth=auth, timeout=5).json()
        requests.post(f"{url}/bridges/{bridge['id']}/addChannel", params={"channel": "p1"}, auth=auth, timeout=5)
        assert requests.post(f"{url}/bridges/{bridge['id']}/record", params={"name": "proc/one", "format": "wav"},
                             auth=auth, timeout=5).status_code == 201
        stream.wait_type("RecordingStarted", 2)
        requests.post(url + "/recordings/live/proc/one/stop", auth=auth, timeout=5)
        requests.delete(url + "/channels/p1", auth=auth, timeout=5)
        stream.wait_type("ChannelDestroyed")
    finally:
        stream.close()
    wav_path = tmp_path / "var" / "recordings" / "proc" / "one.wav"
    with wave.open(str(wav_path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    with socket.create_connection(("127.0.0.1", ami_port), timeout=5) as sock:
        sock.sendall(f"Action: Login\r\nUsername: arimonitor\r\nSecret: {password}\r\n\r\n"
                     "Action: PJSIPShowContacts\r\n\r\n".encode())
        data = b""
        while b"ContactListComplete" not in data:
            data += sock.recv(65536)
    assert b"ViaAddr: 10.1.2.3" in data
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 0
