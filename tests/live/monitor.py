"""The real arimonitor tree (supervisord, reader, engine, transcoder, click-to-call) pointed at
a live Asterisk, and `arictl --json` to ask it what it sees."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arimonitor.supervision import Tree
from tests.live.asterisk import Asterisk
from tests.support import PYTHON, ROOT, eventually_assert, write_config
from tests.trees import run_arimonitor, tear_down, tree_at

# The lab's endpoints (the instance's pjsip.conf) in v2.7 form: client 100 is not recorded,
# client 101 is (gravar=S), 112 is another client's.
ENDPOINTS = {"1003000": "100", "1003010": "100", "1013010": "101", "1013015": "101",
             "1013020": "101", "1123000": "112", "1123010": "112", "9990001": "999"}
CLIENTS = {"100": "N", "101": "S", "112": "N", "999": "N"}


@dataclass
class Monitor:
    env: dict[str, str]
    tree: Tree
    queue: str
    folder: Path

    def start(self) -> None:
        started = run_arimonitor("start", env=self.env)
        assert started.returncode == 0, started.stdout + started.stderr

    def arictl(self, *words: str) -> Any:
        """One console command's JSON answer (the data the operator's table is made of)."""
        result = subprocess.run([PYTHON, str(ROOT / "bin" / "arictl"), "--json", *words], env=self.env,
                                capture_output=True, text=True, timeout=30, cwd=ROOT, check=False)
        # `status` exits 1 when it names a problem (README's exit codes): during an outage that is
        # the answer the test is reading, not a failure of the command.
        degraded = result.returncode == 1 and words[:1] == ("status",) and '"problems"' in result.stdout
        assert result.returncode == 0 or degraded, f"arictl {' '.join(words)}: {result.stdout}{result.stderr}"
        return json.loads(result.stdout)

    def ctl(self, *words: str) -> str:
        """supervisorctl on this tree (`arimonitor ctl ...`): its output."""
        result = run_arimonitor("ctl", *words, env=self.env)
        return result.stdout + result.stderr

    def pid(self, program: str) -> int:
        return next(p["pid"] for p in self.tree.processes() if p["name"] == program)

    def start_watching(self, *online: str) -> Monitor:
        """Start the tree; return once it shows the phones `online` online."""
        self.start()

        def all_online() -> bool:
            states = {r["id"]: r["state"] for r in self.arictl("list")["data"]}
            assert all(states[i] == "online" for i in online), states
            return True
        eventually_assert(all_online, timeout=15)
        return self

    def c2c_reached(self, request_id: str, event: str = "connected", timeout: float = 30) -> dict:
        """Wait until click-to-call request `request_id` has passed `event`; its `c2c` view."""
        def reached() -> dict:
            data = self.arictl("c2c", request_id)["data"]
            assert event in [e[0] for e in data["events"]], data
            return data
        return eventually_assert(reached, timeout=timeout)

    def log(self, name: str) -> str:
        path = self.tree.log_dir / name
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def write_v27(folder: Path, queue: str) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"#include pjsip/{ep}.pjsip ; Endpoint:{ep} CLI:{cli} TYPE:apartamento PW:pw{ep}"
             for ep, cli in ENDPOINTS.items()]
    (folder / "endpoints_pjsip.def").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "__CLIENTES__.DEF").write_text(
        "".join(f"[{cli}]\nnome=Lab {cli}\ngravar={rec}\nmax_chamadas=8\nativo=S\n\n"
                for cli, rec in CLIENTS.items()), encoding="utf-8")
    (folder / "__MQSERVERS__.DEF").write_text(
        f"[principal]\nhost=127.0.0.1\nport=5672\nuser=guest\npassword=guest\nvhost=/\nqueue={queue}\n",
        encoding="utf-8")
    for name in ("endpoints_pjsip.def", "__MQSERVERS__.DEF"):  # they hold passwords: start refuses 0644
        (folder / name).chmod(0o600)
    return {"endpoints": str(folder / "endpoints_pjsip.def"), "clients": str(folder / "__CLIENTES__.DEF"),
            "mqservers": str(folder / "__MQSERVERS__.DEF")}


@contextmanager
def monitor_of(asterisk: Asterisk, folder: Path, extra: dict | None = None,
               servers: dict[str, Asterisk] | None = None) -> Iterator[Monitor]:
    """An arimonitor tree for `asterisk` under `folder`, not started; torn down whatever happens.
    `servers` are further Asterisks it watches too, by name (`[ari:NAME]`, `[ami:NAME]`)."""
    folder.mkdir(parents=True, exist_ok=True)
    queue = f"test-live-{uuid.uuid4().hex[:8]}"
    sections = {
        "ari": {"url": f"http://127.0.0.1:{asterisk.http}/ari", "user": "arimon",
                "password": asterisk.ari_password(), "app": "arimonitor", "probe_interval": "1s"},
        "ami": {"enabled": "yes", "port": asterisk.ami, "user": "arimon", "password": asterisk.ami_secret()},
        "paths": {"var": str(folder / "var"), "recordings": str(asterisk.recordings())},
        "files": write_v27(folder / "v27", queue),
        "transcoder": {"workers": 1},
    }
    for name, other in (servers or {}).items():
        sections[f"ari:{name}"] = {"url": f"http://127.0.0.1:{other.http}/ari",
                                   "password": other.ari_password(), "recordings": str(other.recordings())}
        sections[f"ami:{name}"] = {"enabled": "yes", "port": other.ami, "password": other.ami_secret()}
    for section, keys in (extra or {}).items():
        sections.setdefault(section, {}).update(keys)
    env, tree = tree_at(write_config(folder, sections), demo=False)
    try:
        yield Monitor(env, tree, queue, folder)
    finally:
        tear_down(tree, env, queue)


def holds(condition: object) -> bool:
    """For eventually_assert(lambda: holds(...)): a condition that must become true."""
    assert condition
    return True
