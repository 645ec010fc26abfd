"""Console commands about recordings and the transcoder pool: jobs, recordings.

They need the engine's TranscodeComponent: by default `ctx.transcode`; the component's
`register_commands(registry)` hands itself in instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from arimonitor import protocol
from arimonitor.console.registry import Arg, CommandError, Option, Registry, Reply

STATES = ("pending", "sent", "done", "failed")


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _component(get: Callable[[Any], Any], ctx: Any) -> Any:
    component = get(ctx)
    if component is None:
        raise CommandError(protocol.E_NOT_FOUND, "the transcoder is not running in this engine")
    return component


def register(registry: Registry, get: Callable[[Any], Any] = lambda ctx: getattr(ctx, "transcode", None)) -> None:
    @registry.command(
        "jobs", category="recordings", summary="transcoder pool: queue, rate, workers",
        options=[Option("state", "list the jobs in this state", choices=STATES),
                 Option("client", "only this client's jobs (with --state)")],
        examples=["jobs", "jobs --state failed", "jobs --state pending --client 101"])
    def jobs(ctx, state=None, client=None) -> Reply:
        book = _component(get, ctx).book
        stats = book.stats()
        if state:
            rows = book.jobs(client=client, state=state)
            lines = [f"{r['job_id']}  {r['state']:<7}  try {r['attempt']}  {r['client'] or '-':<8}"
                     f"  {r['wav']}" + (f"  [{r['code']}] {r['reason']}" if r['reason'] else "")
                     for r in rows]
            return Reply({"jobs": rows, **stats}, "\n".join(lines) or f"no {state} jobs")
        rate = stats["rate"]
        lines = [(f"pending {stats['pending']}  running {stats['running']}  done {stats['done']}"
                 f"  failed {stats['failed']}  workers alive {stats['workers_alive']}"),
                 (f"rate (last {rate['window_seconds']:.0f}s): {rate['jobs_per_minute']} jobs/min,"
                 f" {rate['audio_seconds_per_second']} audio s/s")]
        for name, w in sorted(stats["per_worker"].items()):
            alive = {True: "alive", False: "silent"}.get(w.get("alive"), "gone")
            lines.append(f"  {name:<16} {alive:<6} done {w['done']:<6} failed {w['failed']:<4}"
                         f" running {w['running']}  audio {w['audio_seconds']:.0f}s"
                         + (f"  busy with {w['busy']}" if w.get("busy") else ""))
        return Reply(stats, "\n".join(lines))

    @registry.command(
        "recordings", category="recordings",
        summary="recordings of a client, or: retry ID|failed, rescan",
        args=[Arg("words", "CLIENT | retry ID|failed | rescan", optional=True, rest=True)],
        examples=["recordings", "recordings 101", "recordings retry 3f2a9c0e1b7d4a55",
                  "recordings retry failed", "recordings rescan"],
        description="Without a word: the latest recordings. 'retry' puts failed jobs back in the"
                    " queue with a fresh attempt budget; 'rescan' queues WAVs that have no MP3 and"
                    " no job (crash leftovers, MixMonitor files).")
    def recordings(ctx, words=None) -> Reply:
        component = _component(get, ctx)
        words = words or []
        if words and words[0] == "rescan":
            if len(words) != 1:
                raise CommandError(protocol.E_BAD_ARGUMENTS, "usage: recordings rescan")
            report = component.rescan()
            data = {"queued": [c.wav for c in report.found], "settling": report.settling,
                    "has_mp3": report.has_mp3, "has_job": report.has_job, "busy": report.busy,
                    "errors": report.errors}
            text = (f"queued {len(report.found)}, still being written {report.settling}, "
                    f"already converted {report.has_mp3}, already queued {report.has_job}"
                    + "".join(f"\n  problem: {e}" for e in report.errors))
            return Reply(data, text)
        if words and words[0] == "retry":
            if len(words) != 2:
                raise CommandError(protocol.E_BAD_ARGUMENTS, "usage: recordings retry ID|failed")
            ids = component.book.retry(words[1])
            if not ids and words[1] != "failed":
                raise CommandError(protocol.E_NOT_FOUND, f"no failed job {words[1]!r}")
            return Reply({"retried": ids}, f"{len(ids)} job(s) queued again")
        if len(words) > 1:
            raise CommandError(protocol.E_BAD_ARGUMENTS,
                               "usage: recordings [CLIENT] | retry ID|failed | rescan")
        client = words[0] if words else None
        rows = component.book.recordings(client)
        jobs = component.book.jobs(client=client, limit=50)
        lines = [f"{_when(r['updated'])}  {r['name']}  {r['state']}"
                 + (f" ({r['reason']})" if r["reason"] else "")
                 + (f"  mp3 {r['job_state']}" if r["job_state"] else "") for r in rows]
        others = [j for j in jobs if j["source"] != "ari"]
        lines += [f"{_when(j['created'])}  {j['wav']}  ({j['source']})  mp3 {j['state']}" for j in others]
        return Reply({"recordings": rows, "jobs": jobs},
                     "\n".join(lines) or f"no recordings{' for ' + client if client else ''}")
