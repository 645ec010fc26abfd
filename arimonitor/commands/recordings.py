"""Console commands about recordings and the transcoder pool: jobs, recordings.

They need the engine's TranscodeComponent: by default `ctx.transcode`; the component's
`register_commands(registry)` hands itself in instead.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from arimonitor import protocol
from arimonitor.commands import render
from arimonitor.commands.registry import Arg, CommandError, Option, Registry, Reply

STATES = ("pending", "sent", "done", "failed")


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def jobs_text(stats: dict[str, Any]) -> str:
    """The pool at a glance: counts and rate, a backlog line, then one row per worker."""
    rate, backlog, counters = stats["rate"], stats["backlog"], stats["counters"]
    lines = [render.table(
        [(stats["pending"], stats["running"], stats["done"], stats["failed"],
          f"{rate['jobs_per_minute']}/min", f"{rate['audio_seconds_per_second']}x",
          counters.get("resent", 0), counters.get("workers_gone", 0))],
        ["PENDING", "RUNNING", "DONE", "FAILED", "RATE", "AUDIO/S", "RESENT", "WORKERS GONE"],
        align="rrrrrrrr")]
    if backlog["jobs"]:
        lines.append(render.backlog_line("backlog", backlog["jobs"], backlog["jobs_per_second"]))
    now = time.time()
    workers = sorted(stats["per_worker"].items())
    lines += ["", render.table(
        [(name, w.get("state", "unknown"), w.get("pid"), w["done"], w["failed"], w["running"],
          render.duration(w["audio_seconds"]), render.age(w.get("last_seen_at"), now),
          w.get("busy")) for name, w in workers],
        ["WORKER", "STATE", "PID", "DONE", "FAILED", "RUNNING", "AUDIO", "LAST SEEN", "BUSY WITH"],
        title="workers", empty="no worker has said hello yet")]
    return "\n".join(lines)


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
            text = render.table(
                [(r["job_id"], r["state"], r["attempt"], r["client"] or None, r["worker"],
                  render.age(r["finished"] or r["sent_at"] or r["created"]), r["wav"],
                  f"[{r['code']}] {r['reason']}" if r["reason"] else None) for r in rows],
                ["JOB", "STATE", "TRY", "CLIENT", "WORKER", "WHEN", "WAV", "PROBLEM"],
                title=f"{state} jobs", empty=f"no {state} jobs")
            return Reply({"jobs": rows, **stats}, text)
        return Reply(stats, jobs_text(stats))


    @registry.command(
        "recordings", category="recordings",
        summary="recordings of a client, or: retry ID|failed, rescan",
        args=[Arg("words", "CLIENT | retry ID|failed | rescan", optional=True, rest=True)],
        examples=["recordings", "recordings 101", "recordings retry 3f2a9c0e1b7d4a55",
                  "recordings retry failed", "recordings rescan"],
        description="Without a word: the latest recordings. 'retry' puts failed jobs back in the"
                    " queue with a fresh attempt budget; 'rescan' queues WAVs that have no MP3 and"
                    " no job (crash leftovers, MixMonitor files).",
        privileged=lambda kw: (kw.get("words") or [""])[0] in ("retry", "rescan"))
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
            ids = component.book.retry(words[1], bitrate=component.cfg["transcoder.bitrate"],
                                       delete_wav=component.cfg["transcoder.delete_wav"])
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
