"""SIPp phones: the live Asterisk's SIP user agents (the instance renders the scenarios)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.live.asterisk import Asterisk, free_udp_port
from tests.support import Processes


class Phones:
    """Every SIPp started here is killed at the end (by `processes`)."""

    def __init__(self, asterisk: Asterisk, processes: Processes, folder: Path) -> None:
        self.asterisk = asterisk
        self.processes = processes
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.uas: dict[str, object] = {}   # endpoint -> its answering SIPp (a Popen)

    def _scenario(self, name: str) -> str:
        return str(self.asterisk.sipp_dir() / name)

    def talk_scenario(self, talk_ms: int) -> str:
        """uac_call_talk.xml.in with its talk time filled in."""
        path = self.folder / f"uac_call_talk_{talk_ms}.xml"
        if not path.exists():
            text = (self.asterisk.sipp_dir() / "uac_call_talk.xml.in").read_text(encoding="utf-8")
            path.write_text(text.replace("@TALK_MS@", str(talk_ms)), encoding="utf-8")
        return str(path)

    def _argv(self, scenario: str, sip_port: int, *extra: str, ip: str = "127.0.0.1") -> list[str]:
        return ["sipp", f"127.0.0.1:{self.asterisk.sip}", "-sf", scenario, "-i", ip, "-p", str(sip_port),
                "-nostdin", "-timeout", "60s", *extra]

    def run(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
        self.count += 1
        log = self.folder / f"sipp-{self.count}.log"
        with log.open("w") as out:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.folder, timeout=timeout, check=False)
        assert result.returncode == 0, f"{' '.join(argv)} exited {result.returncode}; see {log}"
        return result

    def register(self, endpoint: str, contact_port: int | None = None, ip: str = "127.0.0.1",
                 sip_port: int | None = None) -> int:
        """REGISTER once (the Contact says `contact_port`, where calls should go); the SIP port used."""
        port = sip_port or free_udp_port()
        self.run(self._argv(self._scenario("register_only.xml"), port, "-s", endpoint, "-au", endpoint,
                            "-ap", f"pw{endpoint}", "-key", "contact_port", str(contact_port or port),
                            "-m", "1", ip=ip))
        return port

    def unregister(self, endpoint: str, contact_port: int, ip: str = "127.0.0.1") -> None:
        self.run(self._argv(self._scenario("unregister_only.xml"), free_udp_port(), "-s", endpoint,
                            "-au", endpoint, "-ap", f"pw{endpoint}", "-key", "contact_port", str(contact_port),
                            "-m", "1", ip=ip))

    def answering(self, endpoint: str, scenario: str = "uas_answer.xml") -> int:
        """A phone for `endpoint` that stays up and answers (or is busy...): registered, its SIP port."""
        port = free_udp_port()
        # -aa: answers OPTIONS (qualify) too
        self.uas[endpoint] = self.processes.start(
            ["sipp", "-sf", self._scenario(scenario), "-i", "127.0.0.1", "-p", str(port), "-aa",
             "-mi", "127.0.0.1", "-mp", str(free_udp_port(even=True)), "-nostdin"],
            cwd=self.folder, log=self.folder / f"uas-{endpoint}-{port}.log")
        self.register(endpoint, contact_port=port)
        return port

    def call(self, caller: str, number: str, scenario: str, wait: bool = False, timeout: float = 60):
        """`caller` dials `number`; in the background unless `wait`."""
        argv = self._argv(scenario if "/" in scenario else self._scenario(scenario), free_udp_port(),
                          "-s", number, "-key", "caller", caller, "-au", caller, "-ap", f"pw{caller}",
                          "-mi", "127.0.0.1", "-mp", str(free_udp_port(even=True)), "-m", "1")
        if wait:
            return self.run(argv, timeout=timeout)
        self.count += 1
        return self.processes.start(argv, cwd=self.folder, log=self.folder / f"uac-{self.count}.log")
