#!/usr/bin/env python3
"""Transcoder benchmark: the pool against two baselines measured in the same run, plus memory.

    .venv/bin/python bench/bench_transcode.py                 # 1,000 one-minute WAVs (default)
    .venv/bin/python bench/bench_transcode.py --files 200     # smaller, for a busy machine

Figures are audio-seconds per wall-second:
- naive: one pydub export (ffmpeg) per file, one process (on --sample files);
- limit: in-process LAME (lameenc) on one core, times the worker count (on --sample files);
- pool:  N `transcoder` processes fed by the engine side (JobBook, SQLite, ZeroMQ) on all
         --files files, each job fully done: encode, ID3 tags, fsync, verify, rename.
Goals: pool >= 0.7 x limit and >= 2.5 x naive.
Memory: peak RSS of a process converting a --long-hours WAV through each encoder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measure import cpu_seconds

from arimonitor.config import load_config
from arimonitor.transcode.component import TranscodeComponent
from arimonitor.transcode.encoders import LameEncoder, PydubEncoder
from arimonitor.transcode.jobtables import create_tables
from arimonitor.transcode.wavfile import read_wav_info
from tests.transcode.audio import make_wav
from tests.transcode.loop import SimpleLoop

PY = sys.executable

MEMORY_CHILD = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from arimonitor.transcode.encoder import Conversion, convert
from arimonitor.transcode.encoders import LameEncoder, PydubEncoder
enc = LameEncoder() if sys.argv[4] == "lameenc" else PydubEncoder()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
out = convert(Conversion(job_id="m", wav=sys.argv[2], mp3=sys.argv[3]), [enc])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(base, peak, kids, time.perf_counter() - t, out.duration)
"""


def per_file(encoder, wavs: list[Path], out: Path) -> float:
    """Audio seconds per wall second, one file after another in this process."""
    audio = 0.0
    started = time.perf_counter()
    for wav in wavs:
        info = read_wav_info(wav)
        encoder.encode(info, str(out / (wav.stem + ".mp3")), 32, None)
        audio += info.duration
    return audio / (time.perf_counter() - started)


def run_pool(tmp: Path, wavs_dir: Path, workers: int, files: int, seconds: float) -> dict:
    ini = tmp / "bench.ini"
    ini.write_text(f"[paths]\nvar = {tmp / 'var'}\nrecordings = {wavs_dir}\n\n"
                   f"[transcoder]\nworkers = {workers}\njob_deadline = 600s\n")
    cfg = load_config(ini)
    Path(cfg["paths.var"]).mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(cfg["paths.database"], isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # as the engine's Store
    create_tables(conn)
    component = TranscodeComponent(cfg, conn, settle=0.0)
    component.bind()
    env = {**os.environ, "ARIMONITOR_CONFIG": str(ini)}
    procs = [subprocess.Popen([PY, str(ROOT / "procs" / "transcoder.py"), "--name", f"transcoder_{i:02d}"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for i in range(workers)]
    loop = SimpleLoop()
    try:
        loop.add_socket(component.results_sock, component.drain)
        loop.every(component.tick_interval, component.tick)
        # workers measure their encoders at start; the clock starts when all are ready
        loop.run_until(lambda: len(component.book.live_workers()) == workers, 60, "workers")
        started = time.perf_counter()
        engine_cpu = time.process_time()
        workers_cpu = sum(cpu_seconds(p.pid) for p in procs)
        component.rescan()
        counters = component.book.counters  # cheap: stats() runs SQL, not for a hot predicate
        loop.run_until(lambda: counters["done"] + counters["failed"] >= files, 3600, "all jobs")
        wall = time.perf_counter() - started
        engine_cpu = time.process_time() - engine_cpu
        workers_cpu = sum(cpu_seconds(p.pid) for p in procs) - workers_cpu
        stats = component.book.stats()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        component.close()
    return {"wall": wall, "audio": files * seconds, "rate": files * seconds / wall,
            "failed": stats["failed"], "per_worker": {k: v["done"] for k, v in stats["per_worker"].items()},
            "resent": stats["counters"]["resent"], "engine_cpu": engine_cpu,
            "workers_cpu": workers_cpu}


def memory(tmp: Path, hours: float) -> dict:
    wav = make_wav(tmp / "long.wav", hours * 3600)
    out = {}
    for name in ("lameenc", "ffmpeg"):
        proc = subprocess.run([PY, "-c", MEMORY_CHILD, str(ROOT), str(wav), str(tmp / f"long-{name}.mp3"), name],
                              capture_output=True, text=True, check=True)
        base, peak, kids, secs, dur = proc.stdout.split()
        out[name] = {"rss_before_mb": int(base) / 1024, "rss_peak_mb": int(peak) / 1024,
                     "child_peak_mb": int(kids) / 1024, "seconds": float(secs), "mp3_duration": float(dur)}
    out["wav_mb"] = wav.stat().st_size / 2**20
    wav.unlink()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="WAVs for the pool (default 1000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each WAV (default 60)")
    parser.add_argument("--sample", type=int, default=100, help="files for the two baselines (default 100)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--long-hours", type=float, default=2.0, help="WAV for the memory figure (0: skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-transcode-"))
    try:
        wavs_dir = tmp / "wav"
        template = make_wav(tmp / "template.wav", args.seconds)
        wavs = []
        for i in range(args.files):
            wav = wavs_dir / f"c{i // 100:02d}" / f"rec{i:05d}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, wav)
            wavs.append(wav)
        old = time.time() - 3600
        for wav in wavs:
            os.utime(wav, (old, old))
        sample = wavs[: min(args.sample, len(wavs))]
        scratch = tmp / "scratch"
        scratch.mkdir()
        naive = per_file(PydubEncoder(), sample, scratch)
        one_core = per_file(LameEncoder(), sample, scratch)
        limit = one_core * args.workers
        pool = run_pool(tmp, wavs_dir, args.workers, args.files, args.seconds)
        result = {"files": args.files, "seconds_each": args.seconds, "sample": len(sample),
                  "workers": args.workers, "naive": round(naive, 1), "lame_one_core": round(one_core, 1),
                  "limit": round(limit, 1), "pool": round(pool["rate"], 1),
                  "pool_vs_limit": round(pool["rate"] / limit, 3),
                  "pool_vs_naive": round(pool["rate"] / naive, 2), "pool_detail": pool}
        if args.long_hours > 0:
            result["memory"] = memory(tmp, args.long_hours)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['files']} x {args.seconds:.0f}s WAVs, {args.workers} workers "
          f"(baselines on {result['sample']} files), audio-seconds per wall-second:")
    print(f"  naive (pydub export per file, 1 process): {result['naive']:>9.1f}")
    print(f"  limit (lameenc 1 core x {args.workers}):            {result['limit']:>9.1f}"
          f"   (one core {result['lame_one_core']:.1f})")
    print(f"  pool:                                      {result['pool']:>9.1f}"
          f"   = {result['pool_vs_limit']:.2f} x limit (goal 0.7), "
          f"{result['pool_vs_naive']:.2f} x naive (goal 2.5)")
    print(f"  pool detail: {pool['wall']:.1f}s wall, failed {pool['failed']}, resent {pool['resent']}, "
          f"per worker {pool['per_worker']}")
    print(f"  CPU during the pool run: workers {pool['workers_cpu']:.1f}s of {pool['wall'] * args.workers:.1f}s"
          f" available, engine side {pool['engine_cpu']:.2f}s"
          f" ({pool['engine_cpu'] * 1000 / max(args.files, 1):.2f} ms per job)")
    for name, m in result.get("memory", {}).items():
        if isinstance(m, dict):
            print(f"  memory, {args.long_hours:g} h WAV ({result['memory']['wav_mb']:.0f} MB) via {name}: "
                  f"peak RSS {m['rss_peak_mb']:.0f} MB (before {m['rss_before_mb']:.0f} MB; "
                  f"ffmpeg child {m['child_peak_mb']:.0f} MB), {m['seconds']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
