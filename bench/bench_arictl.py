"""Whole-process wall time of `arictl status` / `arictl version` vs `python -c pass`.

    .venv/bin/python bench/bench_arictl.py [--runs N]

Starts the test fake engine (real libzmq ROUTER on ipc) and times each command as a new
process, interleaved so machine load hits all of them alike; prints medians and the ratio
to the bare interpreter. The issue's target: `arictl status` within 2x of `python -c pass`.

Two modes, both printed: "bytecode cached" (PYTHONPYCACHEPREFIX in a temp dir, as an installed
package has its .pyc files; the verdict uses this one) and "as this shell runs" (here
PYTHONDONTWRITEBYTECODE=1, so every run compiles arictl's modules from source). Exit 0 when
the target is met, 1 when not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 2.0


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    runs = parser.parse_args().runs
    directory = tempfile.mkdtemp(prefix="arictl-bench-", dir="/tmp")
    control, publish = f"ipc://{directory}/control.sock", f"ipc://{directory}/publish.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARIMONITOR_")}
    env.update(ARIMONITOR_ZMQ_CONTROL=control, ARIMONITOR_ZMQ_PUBLISH=publish)
    engine = subprocess.Popen([sys.executable, str(ROOT / "tests/console/fake_engine.py"), control, publish],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        if engine.stdout.readline().strip() != b"ready":
            raise SystemExit("fake engine did not start")
        arictl = [sys.executable, str(ROOT / "bin/arictl")]
        cases = {"python -c pass": [sys.executable, "-c", "pass"],
                 "arictl version": [*arictl, "version"],
                 "arictl status": [*arictl, "status"]}
        cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = f"{directory}/pycache"  # never writes into the checkout
        ratios = {}
        for mode, mode_env in (("as this shell runs", env), ("bytecode cached", cached)):
            ratios[mode] = measure(mode, cases, mode_env, runs)
    finally:
        engine.terminate()
        engine.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
    ratio = ratios["bytecode cached"]
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"verdict (bytecode cached): arictl status / python -c pass = {ratio:.2f}, "
          f"target <= {TARGET:g}: {verdict}")
    return 0 if ratio <= TARGET else 1


def measure(mode: str, cases: dict[str, list[str]], env: dict[str, str], runs: int) -> float:
    for argv in cases.values():  # warm the page cache (and the .pyc files, when written)
        timed(argv, env)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            times[name].append(timed(argv, env))
    base = statistics.median(times["python -c pass"])
    print(f"{mode}: {runs} runs each, interleaved, median wall time of the whole process")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:16s} {median * 1000:7.1f} ms   x{median / base:4.2f}   "
              f"(p10 {statistics.quantiles(values, n=10)[0] * 1000:.1f} ms)")
    ratio = statistics.median(times["arictl status"]) / base
    print(f"  arictl status / python -c pass = {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    sys.exit(main())
