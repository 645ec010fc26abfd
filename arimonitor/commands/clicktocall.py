"""Console command `c2c [REQUEST_ID]`: click-to-call requests, newest first, or one in detail.

Needs the engine's ClickToCallComponent; its `register_commands(registry)` hands itself in.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from arimonitor import protocol
from arimonitor.clicktocall.reasons import describe
from arimonitor.commands import render
from arimonitor.commands.registry import Arg, CommandError, Option, Registry, Reply
from arimonitor.commands.servers import many_servers


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _table(rows: list[dict[str, Any]], many: bool = False) -> str:
    """`many`: several Asterisk servers, a SERVER column (where the call was placed; "-" for a
    request never placed)."""
    return render.table(
        # WHEN: when the request came (its first event), not its last update
        [(_when(r["created"]), r["request_id"], *((r.get("server"),) if many else ()), r["client"],
          r["origin"], r["destination"], r["result"] or r["state"],
          render.duration(r["duration"]) if r.get("duration") else None,
          describe(r["reason"]) if r["reason"] else None) for r in rows],
        ["WHEN", "REQUEST", *(("SERVER",) if many else ()), "CLIENT", "FROM", "TO", "OUTCOME", "TALK",
         "WHY"],
        title="CLICK-TO-CALL REQUESTS", empty="no click-to-call requests yet")


def _detail(row: dict[str, Any], many: bool = False) -> str:
    lines = [f"request   {row['request_id']}", f"client    {row['client'] or '-'}",
             f"from      {row['origin'] or '-'}", f"to        {row['destination'] or '-'}",
             *((f"server    {row.get('server') or '-'}",) if many else ()),
             f"state     {row['state']}"]
    if row["result"]:
        lines.append(f"result    {row['result']}" + (f"  {describe(row['reason'])}" if row["reason"] else ""))
    if row["cause"] is not None:
        lines.append(f"cause     {row['cause']} {row['cause_txt'] or ''}".rstrip())
    if row["duration"] is not None:
        lines.append(f"talk      {row['duration']:.1f} s")
    if row["recording"]:
        lines.append(f"recording {row['recording']}")
    lines.append("events")
    start = row["events"][0][1] if row["events"] else 0
    lines += [f"  +{t - start:7.2f}s  {name}" for name, t in row["events"]]
    return "\n".join(lines)


def register(registry: Registry, get: Callable[[Any], Any] = lambda ctx: getattr(ctx, "c2c", None)) -> None:
    @registry.command(
        "c2c", category="calls", summary="click-to-call requests and their outcomes",
        aliases=("clicktocall",),
        args=[Arg("request_id", "one request in detail", optional=True)],
        options=[Option("limit", "how many recent requests", convert=int, default=20)],
        examples=["c2c", "c2c 8a6f2c1e-5d1b-4c3e-9f00-0a1b2c3d4e5f", "c2c --limit 50"])
    def c2c(ctx, request_id=None, limit=20) -> Reply:
        component = get(ctx)
        if component is None:
            raise CommandError(protocol.E_NOT_FOUND, "click-to-call is not running in this engine")
        if request_id:
            row = component.store.get(request_id)
            if row is None:
                raise CommandError(protocol.E_NOT_FOUND, f"no click-to-call request {request_id!r}")
            return Reply(row, _detail(row, many_servers(ctx)))
        rows = component.store.recent(max(1, min(limit, 500)))
        live = component.in_progress()
        text = _table(rows, many_servers(ctx))
        down = getattr(component, "ended_while_down", 0)
        return Reply({"recent": rows, "in_progress": live, "ended_while_down": down},
                     f"{text}\n{len(live)} in progress"
                     + (f"; {down} ended while arimonitor was down (at this start)" if down else ""))


MAX_CATCHUP = 500  # request ids per `_c2c_finals`


def _request_ids(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if (not isinstance(value, list) or len(value) > MAX_CATCHUP
            or not all(isinstance(v, str) and len(v) <= 64 for v in value)):
        raise ValueError(f"must be a JSON list of at most {MAX_CATCHUP} request ids")
    return value


def register_catchup(registry: Registry, get: Callable[[Any], Any]) -> None:
    @registry.command("_c2c_finals", category="calls", hidden=True, privileged=True,
                      summary="stored final outcomes of these requests (the consumer's catch-up)",
                      args=[Arg("request_ids", "JSON list of request ids", convert=_request_ids)])
    def c2c_finals(ctx, request_ids) -> Reply:
        component = get(ctx)
        if component is None:
            raise CommandError(protocol.E_NOT_FOUND, "click-to-call is not running in this engine")
        finals = component.store.finals(request_ids)
        return Reply({"finals": finals}, f"{len(finals)} final(s)")
