"""Engine commands: status, stats, recovery, calls, history (ctx is the engine API, engine/api.py)."""

from __future__ import annotations

import time
from typing import Any

from arimonitor import datatypes, health, protocol
from arimonitor.ari.rest import AriError
from arimonitor.commands import render
from arimonitor.commands.endpoints import check_client
from arimonitor.commands.processes import processes_lines, processes_view
from arimonitor.commands.registry import Arg, CommandError, Option, Registry, Reply
from arimonitor.commands.servers import SERVER_OPTION, known_server, many_servers


def _age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f} s ago"


def _since(text: str) -> float:
    """'1h', '30m', '2d' -> epoch seconds that long ago."""
    return time.time() - datatypes.seconds(text)


def _limit(text: str) -> int:
    value = datatypes.positive_integer(text)
    if value > 10000:
        raise ValueError(f"{text!r} is more than 10000")
    return value


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f} s"


def _changes(r: dict) -> str:
    """What a resync changed (also kept with each outage)."""
    text = (f"adopted {r.get('adopted', 0)} ({r.get('restored', 0)} restored), ended {r.get('ended', 0)}, "
            f"changed {r.get('changed', 0)}")
    return text + (f", addresses {r['addresses']}" if r.get("addresses") else "")


def _clock(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _store_line(store: dict[str, Any]) -> str:
    if not store.get("error"):
        return "store:      ok"
    return (f"store:      NOT WRITABLE ({store['error'][:80]}); {health.kept_words(store)} "
            f"kept in memory, {store.get('dropped', 0)} dropped")


# The probe's problem kinds (engine/probe.py) as `status` names them.
_PROBE_LABELS = {"auth": "AUTH FAILED", "http": "ERROR", "refused": "DOWN", "unavailable": "DOWN",
                 "no_answer": "STALLED", "slow": "STALLED"}


def _probe_state(probe: dict[str, Any]) -> str:
    """What REST answers now, as what it is: "ok", or the problem and its reason, e.g.
    "ERROR - HTTP 503 shutting down (Service Unavailable: Shutdown in progress) since 12:00:01"."""
    kind = probe.get("problem_kind") or ""
    if probe.get("auth_failed"):
        return "AUTH FAILED"
    if not kind:  # an engine from before problem_kind
        if probe.get("http_error"):
            return f"ERROR - {probe['http_error'][:80]}"
        return "STALLED" if probe.get("stalled") else "ok"
    since = probe.get("problem_since")
    when = f" since {time.strftime('%H:%M:%S', time.localtime(since))}" if since else ""
    return f"{_PROBE_LABELS.get(kind, 'ERROR')} - {(probe.get('problem') or kind)[:100]}{when}"


def _cause(row: dict[str, Any]) -> str:
    """'17 User busy': the number an admin greps for and the words an operator reads."""
    cause, text = row.get("hangup_cause"), row.get("cause_txt")
    if cause is None:
        return "-"
    return f"{cause} {text}" if text else str(cause)


def register(registry: Registry) -> None:
    @registry.command("status", category="engine",
                      summary="processes, link, Asterisk, calls and endpoints at a glance; "
                              "exit 0 healthy, 1 degraded (each problem named)",
                      options=[Option("brief", "one line: OK - ... or DEGRADED - problem; problem",
                                      flag=True),
                               Option("server", "this Asterisk's link, probe and state first "
                                                "([ari] server_id or [ari:NAME])")],
                      examples=["status", "status --brief", "status --server pbx2"])
    def status(ctx, brief=False, server=None) -> Reply:
        known_server(ctx, server)
        data = ctx.status(server)
        data["store"] = health.with_kept(data.get("store"), ctx.view)
        data["processes"] = processes_view(ctx)
        found = health.problems(
            link=data["link"], probe=data["probe"], outage_open_since=data.get("outage_open_since"),
            transcoders=data["processes"]["transcoders"], transcoders_expected=ctx.cfg.transcoder_workers(),
            clicktocall=data["processes"]["clicktocall"], clicktocall_expected=bool(ctx.cfg["clicktocall.enabled"]),
            tables=ctx.tables(), now=time.time(), store=data.get("store"), servers=data.get("servers"))
        data["problems"] = found
        if brief:
            return Reply(data, health.brief(found, data["state"]), found)
        s, link, probe = data["state"], data["link"], data["probe"]
        lines = [
            f"engine:     up {render.duration(data['uptime'])}",
            *processes_lines(data["processes"]),
            f"link:       {link['state']} (epoch {link['epoch']}){' - ' + link['reason'] if link['reason'] else ''}"
            + (f" [server {link['server']}]" if many_servers(ctx) else ""),
            f"asterisk:   {s['asterisk_id'] or '?'} started {s['asterisk_startup'] or '?'}",
            (f"rest probe: {_probe_state(probe)}"
             f", last {probe['last_latency_ms']} ms, {probe['failed']} failed"),
            f"last event: {_age(data['last_event_age'])}",
            _store_line(data.get("store") or {}),
            f"calls:      {s['calls']} active ({s['calls_up']} up), {s['channels']} channels",
            f"endpoints:  {s['online']}/{s['endpoints']} online, {s['not_in_files']} not in files",
            f"remote IPs: {s['remote_ips']}",
        ]
        aside = (ctx.stats().get("intake") or {}).get("other_servers") or {}
        if many_servers(ctx) or aside:
            data["server_list"] = _servers_view(data, aside)
            after_link = next(i for i, line in enumerate(lines) if line.startswith("link:")) + 1
            lines.insert(after_link, "servers:    " + ", ".join(map(_server_words, data["server_list"])))
        doubles = (data.get("two_servers") or {}).get("endpoints") or []
        lines += [f"WARNING:    endpoint {d['endpoint']} registered on {', '.join(d['servers'])} at once"
                  for d in doubles]
        if data["last_resync"]:
            r = data["last_resync"]
            lines.append(f"last resync: {_clock(r.get('at'))} ({r.get('reason')}): {_changes(r)}")
        if data.get("outage_open_since"):
            lines.append(f"outage:     unseen since {_clock(data['outage_open_since'])} "
                         f"({render.duration(time.time() - data['outage_open_since'])}), resync pending")
        outage = data.get("last_outage")
        if outage:
            lines.append(f"last outage: {_clock(outage.get('disconnected'))} -> {_clock(outage.get('resynced'))}, "
                         f"unseen {_seconds(outage.get('unseen'))} ({outage.get('reason')}): "
                         f"{_changes(outage.get('changes') or {})}")
        lines += [f"PROBLEM:    {problem}" for problem in found] or ["health:     ok"]
        return Reply(data, "\n".join(lines), found)

    @registry.command("stats", category="engine", summary="event, loss and liveness counters",
                      options=[SERVER_OPTION], examples=["stats", "stats --server pbx2"])
    def stats(ctx, server=None) -> Reply:
        known_server(ctx, server)
        data = ctx.stats(server)
        totals = ctx.totals()
        data["totals"] = totals
        c, intake, probe = data["counters"], data["intake"], data["probe"]
        groups = {
            "events": ("received", "applied", "duplicate", "malformed", "unknown_type", "superseded",
                       "frames_lost", "handler_error"),
            "calls": ("calls_ended", "calls_lost", "adopted", "continued", "continue_failed", "claimed"),
            "link": ("link_up", "link_down", "outages", "resyncs", "resync_failures", "asterisk_restarts",
                     "auth_failures", "readers_refused"),
            # requests that waited for a StasisStart/bridge, 409/422 races retried, waits failed
            "rest": ("rest_waited", "rest_races", "rest_wait_failed"),
        }
        rows = [(group if i == 0 else "", name, c.get(name), totals.get(name))
                for group, names in groups.items() for i, name in enumerate(names)]
        reader = data["reader"]
        if reader:
            rows += [("reader" if i == 0 else "", name, reader.get(name), None)
                     for i, name in enumerate(("frames", "dropped", "reconnects"))]
        rows += [("probe" if i == 0 else "", name, probe[name], None)
                 for i, name in enumerate(("ok", "failed", "stalls", "last_latency_ms", "max_latency_ms"))]
        rows += [("intake", "lag_ms", intake.get("lag_ms"), None), ("", "max_lag_ms", intake.get("max_lag_ms"), None),
                 ("", "largest_batch", intake.get("batch_max"), None)]
        bus = ctx.view("bus") or {}
        data["bus"] = bus
        if bus.get("enabled"):
            rows += [("bus" if i == 0 else "", name, bus.get(name), None)
                     for i, name in enumerate(("published", "confirmed", "dropped", "queued",
                                               "failures"))]
        lines = [render.table(rows, ("GROUP", "COUNTER", "SINCE START", "ALL TIME"), align="llrr")]
        if many_servers(ctx) and server is None:
            # the counters above are summed: which server lost, resynced or went away
            data["server_list"] = _server_stats_rows(data["servers"], ctx.status()["servers"])
            lines.append(_server_stats_table(data["server_list"]))
        lines += [f"last event {_age(intake.get('last_event_age'))}"
                 + (f", reader's last frame {_age(reader.get('last_frame_age'))}" if reader else "")]
        if bus.get("enabled"):
            lines.append(f"bus: {'connected to' if bus['connected'] else 'NOT CONNECTED to'} "
                         f"{bus['broker']}, exchange {bus['exchange']}"
                         + (f" ({bus['last_error']})" if bus["last_error"] and not bus["connected"] else ""))
        return Reply(data, "\n".join(lines))

    @registry.command("recovery", category="engine", slow=True,
                      summary="resynchronise with Asterisk now (GET endpoints, channels, bridges): "
                              "every server at once, or --server's; exit 1 if any failed",
                      aliases=("resync",), options=[SERVER_OPTION],
                      examples=["recovery", "recovery --server pbx2"],
        privileged=True)
    def recovery(ctx, server=None) -> Reply:
        known_server(ctx, server)
        results = ctx.recover(timeout=max(10.0, ctx.cfg["ari.rest_timeout"] * 5), server=server)
        if len(results) == 1:  # one server: its result or its error, as before several servers
            (result,) = results.values()
            if isinstance(result, Exception):
                raise CommandError(*_recovery_error(result)) from None
            return Reply(result, _resync_words(result))
        views: dict[str, dict[str, Any]] = {}
        lines, failed = [], []
        for name, result in results.items():
            if isinstance(result, Exception):
                code, reason = _recovery_error(result)
                views[name] = {"ok": False, "code": code, "error": reason}
                failed.append((code, name))
            else:
                views[name] = {"ok": True, **result}
                reason = _resync_words(result)
            lines.append(f"{name}: {reason}")
        first = next(iter(results.values()))
        data = {**(first if isinstance(first, dict) else {}), "servers": views}
        if failed:
            # the first failure's code: what a script checks; every server's outcome is in the text
            raise CommandError(failed[0][0], f"recovery failed on {', '.join(n for _c, n in failed)}"
                               f" ({len(failed)} of {len(results)} servers)\n" + "\n".join(lines),
                               data)
        return Reply(data, "\n".join(lines))

    @registry.command("calls", category="calls", summary="active calls (origin -> destination (state))",
                      args=[Arg("client", "only this client's calls", optional=True, complete="client")],
                      options=[SERVER_OPTION],
                      examples=["calls", "calls 101", "calls --server pbx2"])
    def calls(ctx, client=None, server=None) -> Reply:
        check_client(ctx, client)
        known_server(ctx, server)
        rows = ctx.active_calls(client, server)
        what = _filter_words(client=client, server=server)
        if not rows:
            return Reply(rows, "no active calls" + what)
        now = time.time()
        many = many_servers(ctx)
        text = render.table(
            [(*((r["server"],) if many else ()), r["origin"] or "?", r["destination"] or "?",
              r["state"], r["client"] or "-", render.duration(now - r["created"]),
              _clock(r["created"]), r["id"]) for r in rows],
            (*(("SERVER",) if many else ()), "FROM", "TO", "STATE", "CLIENT", "FOR", "SINCE", "CALL"),
            title="active calls" + what)
        return Reply(rows, text)

    @registry.command("history", category="calls", summary="ended calls, newest first",
                      args=[Arg("client", "only this client's calls (as in list / calls)", optional=True,
                                complete="client")],
                      options=[Option("since", "how far back: 30m, 1h, 2d", convert=_since),
                               Option("limit", "rows (default 20)", convert=_limit, default=20),
                               SERVER_OPTION],
                      examples=["history", "history 101 --since 1h", "history --limit 100",
                                "history --server pbx2"])
    def history(ctx, client=None, since=None, limit=20, server=None) -> Reply:
        check_client(ctx, client)
        known_server(ctx, server)
        rows = ctx.history(client, since, limit, server=server)
        if not rows:
            return Reply(rows, "no calls in history for that filter")
        total = ctx.history_count(client, since, server=server)
        # not "(20)" when 59 exist: how many there are, and how to see more
        count = f"{len(rows)} of {total}; --limit N for more" if total > len(rows) else len(rows)
        heading = render.heading("call history" + _filter_words(client=client, server=server), count)
        many = many_servers(ctx)
        table = render.table(
            [(_clock(r["ended"]), *((r["server"],) if many else ()), r["origin"] or "?",
              r["destination"] or "?", r["client"] or "-", _cause(r), render.duration(r["duration"]),
              render.duration(r["billsec"]), r["end_reason"]) for r in rows],
            ("ENDED", *(("SERVER",) if many else ()), "FROM", "TO", "CLIENT", "CAUSE", "LENGTH",
             "TALK", "END"))
        return Reply(rows, f"{heading}\n{table}")

    # Raw tables for tests and tools; the operator-facing `endpoints`/`ips` live elsewhere.
    @registry.command("_engine_endpoints", category="engine", summary="every endpoint record (raw)",
                      hidden=True)
    def engine_endpoints(ctx) -> Reply:
        return Reply(ctx.endpoints())

    @registry.command("_engine_ips", category="engine", summary="the remote-IP registry (raw)",
                      hidden=True)
    def engine_ips(ctx) -> Reply:
        return Reply(ctx.remote_ips())


def _resync_words(result: dict[str, Any]) -> str:
    return (f"resync done: adopted {result['adopted']} call(s) ({result.get('restored', 0)} with "
            f"their times restored), ended {result['ended']}, "
            f"endpoints changed {result['changed']}, addresses {result['addresses']} "
            f"(fetch {result['fetch_seconds']} s, engine {result['engine_seconds']} s)")


def _recovery_error(exc: Exception) -> tuple[int, str]:
    """(error code, words) of a server's failed recovery: a timeout is Asterisk unavailable."""
    if isinstance(exc, AriError):
        return protocol.ari_error_code(exc), f"recovery failed: {exc}"
    return protocol.E_ARI_UNAVAILABLE, str(exc)


def _server_stats_rows(stats: dict[str, Any], status: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per server for `stats`: its link, its own counters since start, its calls and
    endpoints now (`status` has the link and the counts, `stats` the counters)."""
    rows = []
    for name, view in stats.items():
        c, now = view["counters"], status[name]
        rows.append({"server": name, "link": now["link"].get("state"),
                     "probe": _probe_word(view.get("probe") or {}), "received": c.get("received", 0),
                     "frames_lost": c.get("frames_lost", 0),
                     "dropped": (view.get("reader") or {}).get("dropped"),
                     "resyncs": c.get("resyncs", 0), "resync_failures": c.get("resync_failures", 0),
                     "outages": c.get("outages", 0), "outage_open": now.get("outage_open_since") is not None,
                     "calls_up": now["state"]["calls_up"], "calls": now["state"]["calls"],
                     "online": now["state"]["online"]})
    return rows


def _server_stats_table(rows: list[dict[str, Any]]) -> str:
    return render.table(
        [(r["server"], (r["link"] or "?") + (" (outage)" if r["outage_open"] else ""), r["probe"],
          r["received"], r["frames_lost"], r["dropped"], r["resyncs"], r["resync_failures"],
          r["outages"], f"{r['calls_up']}/{r['calls']}", r["online"]) for r in rows],
        ("SERVER", "LINK", "PROBE", "EVENTS", "LOST", "DROPPED", "RESYNCS", "FAILED", "OUTAGES",
         "UP/CALLS", "ONLINE"), align="lllrrrrrrrr", title="servers")


def _probe_word(probe: dict[str, Any]) -> str:
    """A server's REST probe in one word for the SERVERS table (`status` gives the reason):
    ok, stalled (no answer or slow), failing (refused, an HTTP error, credentials refused),
    "-" before its first answer."""
    if probe.get("auth_failed") or probe.get("http_error") or (
            probe.get("problem_kind") and not probe.get("stalled")):
        return "failing"
    if probe.get("stalled"):
        return "stalled"
    return "ok" if probe.get("ok") or probe.get("failed") else "-"


def _filter_words(client: str | None = None, server: str | None = None) -> str:
    return (f" for client {client}" if client else "") + (f" on server {server}" if server else "")


def _servers_view(data: dict[str, Any], aside: dict[str, int]) -> list[dict[str, Any]]:
    """Each configured Asterisk's link as `status` lists it (several servers)."""
    return [{"server": name, "state": view["link"].get("state"), "since": view["link"].get("since"),
             "outage_open_since": view.get("outage_open_since"), "calls": view["state"]["calls"],
             "online": view["state"]["online"]}
            for name, view in data["servers"].items()] + [
        {"server": name, "state": "not configured", "set_aside": count} for name, count in aside.items()]


def _server_words(view: dict[str, Any]) -> str:
    if view["state"] == "not configured":
        return f"{view['server']} (not configured, {view['set_aside']} set aside)"
    outage = (f", outage open since {_clock(view['outage_open_since'])}"
              if view.get("outage_open_since") else "")
    return f"{view['server']} ({view['state']}, {view['calls']} call(s), {view['online']} online{outage})"
