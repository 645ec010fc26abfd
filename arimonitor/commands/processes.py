"""The other processes as the engine sees them: `debug on|off`, the hidden `_report`, and
the process lines of `status` (`processes_view` / `processes_lines`).

- ari-reader: the link notices and `reader-stats` it sends (`ctx.link()`).
- transcoders: the `hello` heartbeats the transcode component counts (its JobBook).
- clicktocall: the `_report` it sends over the control socket every few seconds
  (arimonitor/clicktocall/report.py); kept by the engine (`ctx.note_process_report`) with the time it
  came, so `status` can say seen or stale.
- bus: the same `_report` (process `bus`), shown as the events bus (arimonitor/bus/component.py),
  and `_publications`, its catch-up of the engine publications its SUB did not get.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from arimonitor import protocol
from arimonitor.commands import render
from arimonitor.commands.registry import Arg, CommandError, Registry, Reply
from arimonitor.commands.settings import publish_level
from arimonitor.logs import set_level

# A process reporting every REPORT_INTERVAL s is stale after three missed reports.
REPORT_INTERVAL = 5.0
STALE_AFTER = 3 * REPORT_INTERVAL
BUS_PROCESS = "bus"  # reports as `bus`, shown as the bus (not a click-to-call consumer)
REPORT_KEYS = ("process", "broker", "queue", "connected_since", "counters")
MAX_PUBLICATIONS = 2000  # per `_publications` reply: about 1 MB


def _seq(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise ValueError(f"not a sequence number: {text[:20]!r}")
    return int(text)


def _run(text: str) -> str:
    if not text.isdigit() or len(text) > 20:
        raise ValueError(f"not an engine run: {text[:24]!r}")
    return text


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("process"), str):
        raise ValueError("must be a JSON object with a 'process' string")  # noqa: TRY004 - the registry maps ValueError to E_BAD_ARGUMENTS
    return value


def processes_view(ctx: Any, now: float | None = None) -> dict[str, Any]:
    """What `status` shows of every other process (plain data)."""
    now = time.time() if now is None else now
    link = ctx.link()
    servers = link.get("servers") or {}
    transcoders = ctx.view("transcoders")  # offered by the transcode component, if running
    clicktocall = []
    for name, report in sorted(ctx.process_reports().items()):
        if name == BUS_PROCESS:
            continue  # the bus process's report is the `bus` view (bus/component.py)
        age = now - report["received"]
        clicktocall.append({**report, "age": round(age, 1), "stale": age > STALE_AFTER})
    bus = ctx.view("bus") or {}
    return {"reader": _reader(link), "transcoders": transcoders, "clicktocall": clicktocall,
            "bus": bus,
            # several servers: each one's reader (`reader` is the first's, as with one)
            "readers": {name: _reader(view) for name, view in servers.items()} if len(servers) > 1 else {},
            "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel()),
            "levels_sent": ctx.levels_sent()}


def _reader(link: dict[str, Any]) -> dict[str, Any]:
    stats = link.get("reader") or {}
    return {"connected": link.get("state") == protocol.LINK_CONNECTED, "state": link.get("state"),
            "since": link.get("since"), "epoch": link.get("epoch"),
            "reconnects": stats.get("reconnects")}


def _reader_words(r: dict[str, Any], now: float | None) -> str:
    if r["connected"]:
        words = f"connected since {render.age(r['since'], now)} (epoch {r['epoch']})"
    else:
        state = r["state"] if r["state"] not in (None, "unknown") else "not seen yet"
        words = state + (f" since {render.age(r['since'], now)}" if r["since"] else "")
    if r["reconnects"] is not None:
        words += f", {r['reconnects']} reconnect(s)"
    return words


def _bus_words(bus: dict[str, Any], now: float | None) -> str:
    if bus.get("reported") is None:
        return "not reported"
    state = (f"connected to {bus.get('broker')} since {render.age(bus.get('connected_since'), now)}"
             if bus.get("connected") else f"NOT CONNECTED to {bus.get('broker')} ({bus.get('last_error')})")
    return (f"{state}; queued={bus.get('queued')} confirmed={bus.get('confirmed')} "
            f"dropped={bus.get('dropped')} missed={bus.get('missed')}")


def processes_lines(view: dict[str, Any], now: float | None = None) -> list[str]:
    readers = view.get("readers") or {}
    reader = ("; ".join(f"{name} {_reader_words(r, now)}" for name, r in readers.items())
              if readers else _reader_words(view["reader"], now))
    t = view["transcoders"]
    transcoders = ("not reported" if t is None else
                   f"{t['alive']} alive" + (f" ({', '.join(t['workers'])})" if t["workers"] else "")
                   + (f", {t['known'] - t['alive']} silent" if t["known"] > t["alive"] else ""))
    lines = [f"reader:     {reader}", f"transcoder: {transcoders}"]
    if not view["clicktocall"]:
        lines.append("clicktocall: not reported")
    for c in view["clicktocall"]:
        seen = f"STALE (last report {render.age(c['received'], now)})" if c["stale"] else "seen"
        broker = (f"connected to {c.get('broker')} queue {c.get('queue')} since "
                  f"{render.age(c.get('connected_since'), now)}" if c.get("broker") else "no broker")
        counters = c.get("counters") or {}
        counted = " ".join(f"{k}={v}" for k, v in counters.items()) if isinstance(counters, dict) else ""
        lines.append(f"clicktocall: {seen}, {broker}" + (f"; {counted}" if counted else ""))
    bus = view.get("bus") or {}
    if bus.get("enabled"):
        lines.append(f"bus:        {_bus_words(bus, now)}")
    sent = view["levels_sent"]
    # the engine's own level is shown first, as it is now: not again from what `debug` sent
    others = sorted((p, lvl) for p, lvl in sent.items() if p != "engine")
    lines.append(f"log level:  engine {view['log_level']}" + "".join(f", {p} {lvl}" for p, lvl in others))
    return lines


def register(registry: Registry) -> None:
    @registry.command("debug", category="engine", summary="debug logging on or off, per process",
                      args=[Arg("mode", "on = DEBUG, off = back to logging.level", choices=("on", "off")),
                            Arg("process", "engine, ari-reader (every ari-reader_NN), transcoder (every transcoder_NN), "
                                "transcoder_00, clicktocall, or all (default)", optional=True,
                                complete="process")],
                      examples=["debug on", "debug on transcoder", "debug off all"],
        privileged=True)
    def debug(ctx, mode, process=None) -> Reply:
        process = process or "all"
        configured = ctx.cfg["logging.level"]
        level = "DEBUG" if mode == "on" else (configured if configured != "DEBUG" else "INFO")
        if process in ("all", "engine"):
            set_level(level)
        if process != "engine":
            publish_level(ctx, process, level)
        ctx.note_level_sent(process, level)
        reach = "the engine" if process == "engine" else (
            "every process" if process == "all" else f"{process} (sent on the engine PUB)")
        return Reply({"process": process, "level": level}, f"log level {level} for {reach}")

    @registry.command("_report", category="engine", hidden=True,
                      summary="a process's periodic report (clicktocall: broker, queue, counters)",
                      args=[Arg("report", "JSON object: process, broker, queue, connected_since, counters",
                                convert=_json_object)],
        privileged=True)
    def report(ctx, report) -> Reply:
        name = report["process"]
        if len(name) > 64:
            raise CommandError(protocol.E_BAD_VALUE, "process name longer than 64 characters")
        kept = {k: report.get(k) for k in REPORT_KEYS}
        kept["received"] = time.time()
        ctx.note_process_report(kept)
        return Reply({"received": kept["received"], "interval": REPORT_INTERVAL}, "ok")

    @registry.command("_publications", category="engine", hidden=True, privileged=True,
                      summary="the kept bus-topic publications after <run>.<after> (the bus's catch-up)",
                      args=[Arg("run", "the engine run of the last publication the caller has", convert=_run),
                            Arg("after", "its seq (0: from the start of the run)", convert=_seq)])
    def publications(ctx, run, after) -> Reply:
        view = ctx.publications_since(run, after, MAX_PUBLICATIONS)
        return Reply(view, f"{len(view['publications'])} publication(s) after {view['run']}.{view['after']}")
