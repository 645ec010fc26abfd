"""Load time of a 10,000-endpoint endpoints_pjsip.def, beside a plain line split of the same
bytes measured in the same run (the floor any parser pays)."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arimonitor.v27 import parse_endpoints


def timed(fn, runs: int = 15) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main(count: int = 10_000) -> None:
    data = "\n".join(f"#include pjsip/{i}.pjsip ; Endpoint:{i} CLI:{i % 300} TYPE:condominio "
                     f"PW:abcdefghij GUID:8494ae0a-0e48-492d-9aa9-4b5b905180d0"
                     for i in range(1_000_000, 1_000_000 + count)).encode()
    clients = {str(i) for i in range(300)}
    floor = timed(lambda: [line.split() for line in data.decode().splitlines()])
    load = timed(lambda: parse_endpoints(data, known_clients=clients))
    print(f"{count} endpoints: load {load * 1000:.1f} ms (median of 15); "
          f"split-only baseline {floor * 1000:.1f} ms; ratio {load / floor:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
