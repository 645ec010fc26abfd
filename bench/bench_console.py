"""Console commands against the real engine process with 10,000 endpoints loaded.

    .venv/bin/python bench/bench_console.py [--endpoints 10000] [--runs 15]

Writes a 10,000-line endpoints_pjsip.def (100 clients x 100), starts the ARI simulator (the
same endpoints, a quarter registered) and the real engine + reader processes, then times:
- `arictl list` (all endpoints) and `arictl list CLIENT` as whole arictl processes (the
  issue's measure: REQ round trip + render + print; median), and the same request on a raw
  REQ socket (round trip without arictl's start-up);
- `arictl endpoints` (one GET /endpoints + apply in chunks), and the worst `status` round
  trip seen while it runs (the loop must keep answering).
Target: `list` with 10,000 endpoints under 300 ms. Exit 0 when met.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arimonitor.sim.testing import SimServer
from tests.engine.stack import ctl, start_stack, write_config
from tests.support import Processes, eventually, free_port

TARGET_MS = 300.0
ARICTL = str(ROOT / "bin" / "arictl")


def write_files(directory: Path, count: int) -> tuple[dict[str, str], list[str]]:
    clients = max(1, count // 100)
    ids = [f"{100 + c:03d}{n:04d}" for c in range(clients) for n in range(count // clients)]
    lines = [f"#include pjsip/{i}.pjsip ; Endpoint:{i} CLI:{i[:3]} TYPE:apartamento PW:pw{i}x" for i in ids]
    (directory / "endpoints_pjsip.def").write_text("\n".join(lines) + "\n")
    (directory / "__CLIENTES__.DEF").write_text(
        "".join(f"[{100 + c}]\nnome=Client {c}\n" for c in range(clients)))
    (directory / "__MQSERVERS__.DEF").write_text("[main]\nhost=127.0.0.1\nqueue=c2c\n")
    return ({"endpoints": str(directory / "endpoints_pjsip.def"), "clients": str(directory / "__CLIENTES__.DEF"),
             "mqservers": str(directory / "__MQSERVERS__.DEF")}, ids)


def arictl_ms(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, ARICTL, *args], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise SystemExit(f"arictl {args} failed: {done.stderr.decode()}")
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-console-", dir="/tmp"))
    files, ids = write_files(directory, opts.endpoints)
    processes = Processes()
    try:
        with SimServer(endpoints=ids) as sim:
            for i in ids[::4]:
                sim.control.register(i, ip=f"10.{int(i[:3]) % 250}.{int(i[3:]) // 250}.{int(i[3:]) % 250 + 1}",
                                     port=5060, qualify=False)
            ini = write_config(directory, sim, files=files,
                               console={"manager_port": str(free_port()), "timeout": "30s"})
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("ARIMONITOR_")},
                   "ARIMONITOR_CONFIG": str(ini)}
            start_stack(processes, ini, directory)
            address = f"ipc://{directory}/var/run/control.sock"
            eventually(lambda: ctl(address, "status", timeout=2)["data"]["state"]["online"] >= len(ids) // 4,
                       timeout=120, interval=0.5)
            client = ids[0][:3]
            raw, whole, one = [], [], []
            for _ in range(opts.runs):
                t0 = time.perf_counter()
                reply = ctl(address, "list", timeout=10)
                raw.append((time.perf_counter() - t0) * 1000)
                assert len(reply["data"]) == len(ids), len(reply["data"])
                whole.append(arictl_ms(env, "list"))
                one.append(arictl_ms(env, "list", client))
            worst = [0.0]
            sweeping = threading.Event()

            def poll_status() -> None:
                while not sweeping.is_set():
                    t0 = time.perf_counter()
                    ctl(address, "status", timeout=10)
                    worst[0] = max(worst[0], (time.perf_counter() - t0) * 1000)

            poller = threading.Thread(target=poll_status, daemon=True)
            poller.start()
            t0 = time.perf_counter()
            sweep = json.loads(subprocess.run([sys.executable, ARICTL, "--json", "--timeout", "60", "endpoints"],
                                              env=env, capture_output=True, text=True, check=True).stdout)
            sweep_ms = (time.perf_counter() - t0) * 1000
            sweeping.set()
            poller.join(15)
    finally:
        processes.kill_all()
        shutil.rmtree(directory, ignore_errors=True)
    med = statistics.median(whole)
    print(f"endpoints loaded: {len(ids)} ({len(ids) // 4} registered)")
    print(f"arictl list (all {len(ids)}):      median {med:.0f} ms  (min {min(whole):.0f}, max {max(whole):.0f})")
    print(f"raw REQ round trip of list:   median {statistics.median(raw):.0f} ms")
    print(f"arictl list {client} (100):       median {statistics.median(one):.0f} ms")
    data = sweep["data"]
    print(f"arictl endpoints:              {sweep_ms:.0f} ms (engine {data['seconds'] * 1000:.0f} ms, "
          f"GET {data['fetch_seconds'] * 1000:.0f} ms, {data['chunks']} chunks; "
          f"active {data['online']} offline {data['offline']} total {data['total']})")
    print(f"worst status round trip during the sweep: {worst[0]:.0f} ms")
    ok = med < TARGET_MS
    print(f"target list < {TARGET_MS:.0f} ms: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
