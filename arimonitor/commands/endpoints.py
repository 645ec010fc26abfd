"""Console commands about endpoints: `list [CLIENT]` (alias list_endpoints) and `endpoints`.

`list` reads the engine's state in the loop thread (fast). `endpoints` is slow: one
GET /endpoints in a worker thread (never one request per endpoint), then the answer is applied
in the loop thread in chunks of CHUNK, each a separate loop callback, so events keep flowing
between chunks. Progress goes out on the PUB as `progress.endpoints` (`arictl watch progress`)
and the reply ends with a summary.
"""

from __future__ import annotations

import difflib
import threading
import time
from typing import Any

from arimonitor import protocol
from arimonitor.ari.rest import AriError, AriRest
from arimonitor.commands import render
from arimonitor.commands.registry import Arg, CommandError, Option, Registry, Reply
from arimonitor.engine import states as S

CHUNK = 1000
MASK = "********"


def _password(tables: Any, ep_id: str, show: bool) -> str | None:
    meta = tables.endpoints.get(ep_id) if tables is not None else None
    password = getattr(meta, "password", None)
    if not password:
        return None
    return password if show else MASK


def _address(ip: str | None, port: int | None) -> str | None:
    if not ip:
        return None
    return f"{ip}:{port}" if port else ip


def _no_client(ctx: Any, client: str) -> CommandError:
    known = set(getattr(ctx.tables, "clients", {}) or {}) | {e.client for e in ctx.state.endpoints.values()}
    close = difflib.get_close_matches(client, sorted(k for k in known if k), n=3, cutoff=0.5)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    return CommandError(protocol.E_NOT_FOUND, f"no client {client!r}{hint}", data={"suggestions": close})


def _publish_progress(ctx: Any, stage: str, done: int, total: int | None, started: float) -> None:
    """From any thread: the loop thread publishes (it alone owns the PUB socket)."""
    text = render.progress_line(f"endpoints: {stage}", done, total, started)
    body = {"label": "endpoints", "stage": stage, "done": done, "total": total, "text": text}
    ctx.services.loop.call_soon_threadsafe(ctx.notifier.publish, f"{protocol.TOPIC_PROGRESS}.endpoints", body)


def apply_states(ctx: Any, listed: list[dict[str, Any]], fetched_at: float) -> int:
    """Loop thread: ARI's endpoint states into the state; an event newer than the GET wins."""
    state, fx = ctx.state, ctx.services.handlers.fx
    now = time.time()
    changed = 0
    for obj in listed:
        ep = state.endpoint(obj.get("technology", "PJSIP"), obj.get("resource", ""))
        new = obj.get("state") or S.ENDPOINT_UNKNOWN
        if new != ep.state and ep.last_change <= fetched_at:
            old, ep.state, ep.last_change = ep.state, new, now
            fx.endpoint_state(ep, old)
            changed += 1
    return changed


def finish(ctx: Any, listed_ids: set[str], fetched_at: float) -> dict[str, int]:
    """Loop thread: what ARI no longer lists is unknown; then count."""
    fx = ctx.services.handlers.fx
    now = time.time()
    changed = 0
    counts = {S.ENDPOINT_ONLINE: 0, S.ENDPOINT_OFFLINE: 0, S.ENDPOINT_UNKNOWN: 0}
    for ep in ctx.state.endpoints.values():
        if ep.id not in listed_ids and ep.state != S.ENDPOINT_UNKNOWN and ep.last_change <= fetched_at:
            old, ep.state, ep.last_change = ep.state, S.ENDPOINT_UNKNOWN, now
            fx.endpoint_state(ep, old)
            changed += 1
        counts[ep.state] = counts.get(ep.state, 0) + 1
    return {"changed": changed, "online": counts[S.ENDPOINT_ONLINE],
            "offline": counts[S.ENDPOINT_OFFLINE], "unknown": counts[S.ENDPOINT_UNKNOWN],
            "total": len(ctx.state.endpoints)}


def register(registry: Registry) -> None:
    sweeping = threading.Lock()

    @registry.command(
        "list", category="endpoints", summary="endpoints with client, type, state, IP, password (masked)",
        aliases=("list_endpoints",),
        args=[Arg("client", "only this client's endpoints", optional=True)],
        options=[Option("status", "only endpoints in this state", choices=S.ENDPOINT_STATES),
                 Option("type", "only this endpoint type (TYPE: in endpoints_pjsip.def)"),
                 Option("show-passwords", "show passwords instead of ********", flag=True)],
        examples=["list", "list 101", "list 101 --status offline", "list --type condominio",
                  "list 101 --show-passwords"],
        privileged=lambda kw: bool(kw.get("show_passwords")))
    def list_endpoints(ctx, client=None, status=None, type=None, show_passwords=False) -> Reply:
        tables = ctx.tables
        eps = [e for e in ctx.state.endpoints.values()
               if (client is None or e.client == client) and (status is None or e.state == status)
               and (type is None or e.type.lower() == type.lower())]
        if client is not None and not eps and client not in (getattr(tables, "clients", None) or {}) \
                and not any(e.client == client for e in ctx.state.endpoints.values()):
            raise _no_client(ctx, client)
        rows = [{"id": e.id, "client": e.client, "type": e.type, "state": e.state, "ip": e.ip,
                 "port": e.port, "password": _password(tables, e.id, show_passwords),
                 "in_files": e.in_files, "last_change": e.last_change or None} for e in eps]
        title = "endpoints" + (f" for client {client}" if client else "")
        filters = [f for f in (status, type and f"type {type}") if f]
        if filters:
            title += f", {', '.join(filters)}"
        now = time.time()
        text = render.table(
            [(r["id"], r["client"] or "-", r["type"] or "-", r["state"], _address(r["ip"], r["port"]),
              r["password"], render.age(r["last_change"], now) if r["last_change"] else "-")
             for r in rows],
            ("ENDPOINT", "CLIENT", "TYPE", "STATE", "ADDRESS", "PASSWORD", "CHANGED"),
            title=title, align="lllllll", empty="no endpoints match")
        return Reply(rows, text)

    @registry.command(
        "endpoints", category="endpoints", slow=True,
        summary="re-check every endpoint's state with Asterisk now (one GET /endpoints)",
        examples=["endpoints"],
        description="Progress is published as progress.endpoints: 'arictl watch progress'.")
    def endpoints(ctx) -> Reply:
        if not sweeping.acquire(blocking=False):
            raise CommandError(protocol.E_BUSY, "an endpoints check is already running")
        try:
            return _sweep(ctx)
        finally:
            sweeping.release()


def _sweep(ctx: Any) -> Reply:
    started = time.monotonic()
    fetched_at = time.time()
    _publish_progress(ctx, "fetching", 0, None, started)
    rest = AriRest.from_config(ctx.cfg)
    try:
        listed = rest.endpoints() or []
    except AriError as exc:
        raise CommandError(protocol.ari_error_code(exc), f"GET /endpoints failed: {exc}") from None
    finally:
        rest.close()
    fetch_seconds = time.monotonic() - started
    total = len(listed)
    timeout = max(10.0, ctx.cfg["ari.rest_timeout"] * 2)
    changed = 0
    for i in range(0, total, CHUNK):
        chunk = listed[i:i + CHUNK]
        changed += ctx.services.call_in_loop(lambda c=chunk: apply_states(ctx, c, fetched_at), timeout)
        _publish_progress(ctx, "applying", min(i + CHUNK, total), total, started)
    ids = {o.get("resource", "") if o.get("technology", "PJSIP") == "PJSIP"
           else f"{o.get('technology')}/{o.get('resource')}" for o in listed}
    result = ctx.services.call_in_loop(lambda: finish(ctx, ids, fetched_at), timeout)
    result["changed"] += changed
    seconds = time.monotonic() - started
    result.update({"listed_by_ari": total, "fetch_seconds": round(fetch_seconds, 3),
                   "seconds": round(seconds, 3), "chunks": -(-total // CHUNK)})
    _publish_progress(ctx, "done", total, total, started)
    text = (f"{render.heading('endpoints checked', result['total'])}\n"
            f"active {result['online']}  offline {result['offline']}  unknown {result['unknown']}  "
            f"total {result['total']}\n"
            f"{result['changed']} state(s) changed; Asterisk listed {total} in {fetch_seconds:.2f} s, "
            f"applied in {result['chunks']} step(s) of up to {CHUNK}; took {seconds:.2f} s")
    return Reply(result, text)
