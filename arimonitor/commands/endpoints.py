"""Console commands about endpoints: `list [CLIENT]` (alias list_endpoints) and `endpoints`.

`list` reads the engine's state in the loop thread (fast). `endpoints` is slow: one
GET /endpoints in a worker thread (never one request per endpoint), then the engine applies it
(`sweep_endpoints`: the resync's own endpoint step, in chunks that let events through). Progress goes out on the PUB as `progress.endpoints` (`arictl watch progress`)
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
from arimonitor.commands.servers import SERVER_OPTION, known_server, many_servers
from arimonitor.engine import states as S
from arimonitor.engine.api import EngineApi

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


def check_client(ctx: EngineApi, client: str | None) -> None:
    """One rule for `list`, `calls` and `history`: a client that is neither in the files nor
    on any endpoint is an error (with the names it may have meant); a known client with
    nothing to show is an empty answer."""
    if client is None:
        return
    every = ctx.endpoints()
    if client not in (getattr(ctx.tables(), "clients", None) or {}) and not any(e["client"] == client for e in every):
        raise _no_client(ctx, client, every)


def _row(ep: dict[str, Any], tables: Any, show_passwords: bool) -> dict[str, Any]:
    """One endpoint as `list` shows it: the address only while Asterisk holds the contact;
    after an unregistration the old address is `last_seen`, never shown as current."""
    live = ep["registered"]
    return {"id": ep["id"], "client": ep["client"], "type": ep["type"], "state": ep["state"],
            "ip": ep["ip"] if live else None, "port": ep["port"] if live else None,
            "last_seen": None if live else _address(ep["ip"], ep["port"]),
            "source": ep["address_source"], "contact_status": ep["contact_status"],
            "peer_status": ep["peer_status"], "password": _password(tables, ep["id"], show_passwords),
            "in_files": ep["in_files"], "last_change": ep["last_change"] or None,
            # where it is registered now (None: nowhere); on two at once, `servers` lists them
            "server": ep.get("server"), **({"servers": ep["servers"]} if "servers" in ep else {})}


# Keys a hand slips between on a number: l/1, o/0 (and capitals). "10l" is 101 before it is 105.
_LOOKALIKE = str.maketrans("lLiIoO", "111100")


def closest_ids(word: str, known: list[str], n: int = 3) -> list[str]:
    """Ids an operator probably meant: same-length ids by the number of differing characters
    (a look-alike letter for a digit counts for almost nothing), then difflib's guesses."""
    typed = word.translate(_LOOKALIKE)

    def distance(candidate: str) -> float:
        slips = sum(a != b for a, b in zip(word, candidate, strict=True))
        return sum(a != b for a, b in zip(typed, candidate, strict=True)) + 0.1 * slips

    same_length = sorted((distance(k), k) for k in known if len(k) == len(word))
    found = [k for d, k in same_length if d <= 1.1][:n]
    found += [k for k in difflib.get_close_matches(word, known, n=n, cutoff=0.5) if k not in found]
    return found[:n]


def _no_client(ctx: EngineApi, client: str, endpoints: list[dict[str, Any]]) -> CommandError:
    known = set(getattr(ctx.tables(), "clients", {}) or {}) | {e["client"] for e in endpoints}
    close = closest_ids(client, sorted(k for k in known if k))
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    return CommandError(protocol.E_NOT_FOUND, f"no client {client!r}{hint}", data={"suggestions": close})


def _publish_progress(ctx: EngineApi, stage: str, done: int, total: int | None, started: float) -> None:
    """From the command's worker thread."""
    text = render.progress_line(f"endpoints: {stage}", done, total, started)
    body = {"label": "endpoints", "stage": stage, "done": done, "total": total, "text": text}
    ctx.publish_soon(f"{protocol.TOPIC_PROGRESS}.endpoints", body)


def register(registry: Registry) -> None:
    sweeping = threading.Lock()

    @registry.command(
        "list", category="endpoints", summary="endpoints with client, type, state, IP, password (masked)",
        aliases=("list_endpoints",),
        args=[Arg("client", "only this client's endpoints", optional=True, complete="client")],
        options=[Option("status", "only endpoints in this state", choices=S.ENDPOINT_STATES),
                 Option("type", "only this endpoint type (TYPE: in endpoints_pjsip.def)"),
                 Option("show-passwords", "show passwords instead of ********", flag=True),
                 SERVER_OPTION],
        examples=["list", "list 101", "list 101 --status offline", "list --type condominio",
                  "list 101 --show-passwords", "list --server pbx2"],
        privileged=lambda kw: bool(kw.get("show_passwords")))
    def list_endpoints(ctx: EngineApi, client=None, status=None, type=None,
                       show_passwords=False, server=None) -> Reply:
        known_server(ctx, server)
        tables = ctx.tables()
        every = ctx.endpoints()
        eps = [e for e in every
               if (client is None or e["client"] == client) and (status is None or e["state"] == status)
               and (type is None or e["type"].lower() == type.lower())
               and (server is None or server in (e.get("servers") or [e.get("server")]))]
        if client is not None and not eps and client not in (getattr(tables, "clients", None) or {}) \
                and not any(e["client"] == client for e in every):
            raise _no_client(ctx, client, every)
        rows = [_row(e, tables, show_passwords) for e in eps]
        title = "endpoints" + (f" for client {client}" if client else "")
        filters = [f for f in (status, type and f"type {type}", server and f"on server {server}") if f]
        if filters:
            title += f", {', '.join(filters)}"
        now = time.time()
        many = many_servers(ctx)
        text = render.table(
            [(r["id"], r["client"] or "-", r["type"] or "-", r["state"],
              *((",".join(r.get("servers") or [r["server"] or "-"]),) if many else ()),
              _address(r["ip"], r["port"]) or (f"last seen {r['last_seen']}" if r["last_seen"] else None),
              r["password"], render.age(r["last_change"], now) if r["last_change"] else "-")
             for r in rows],
            ("ENDPOINT", "CLIENT", "TYPE", "STATE", *(("SERVER",) if many else ()), "ADDRESS",
             "PASSWORD", "CHANGED"),
            title=title, align="llllllll" if many else "lllllll", empty="no endpoints match")
        return Reply(rows, text)

    @registry.command(
        "endpoints", category="endpoints", slow=True,
        summary="re-check every endpoint's state with Asterisk now (one GET /endpoints)",
        examples=["endpoints"],
        description="Progress is published as progress.endpoints: 'arictl watch progress'.")
    def endpoints(ctx: EngineApi) -> Reply:
        if not sweeping.acquire(blocking=False):
            raise CommandError(protocol.E_BUSY, "an endpoints check is already running")
        try:
            return _sweep(ctx)
        finally:
            sweeping.release()


def _sweep(ctx: EngineApi) -> Reply:
    """One server: as it always was. Several: each server's GET /endpoints into its own state,
    one after the other, the replies together (`servers` in the data)."""
    servers = ctx.cfg.servers
    if len(servers) == 1:
        return _sweep_server(ctx, None)
    replies = {name: _sweep_server(ctx, name) for name in servers}
    return Reply({"servers": {name: r.data for name, r in replies.items()}},
                 "\n".join(f"server {name}: {r.text}" for name, r in replies.items()))


def _sweep_server(ctx: EngineApi, server: str | None) -> Reply:
    started = time.monotonic()
    fetched_at = time.time()
    _publish_progress(ctx, "fetching", 0, None, started)
    rest = AriRest.from_config(ctx.cfg if server is None else ctx.cfg.for_server(server))
    where = f" of {server}" if server else ""
    try:
        listed = rest.endpoints() or []
    except AriError as exc:
        raise CommandError(protocol.ari_error_code(exc), f"GET /endpoints{where} failed: {exc}") from None
    finally:
        rest.close()
    fetch_seconds = time.monotonic() - started
    total = len(listed)
    result = ctx.sweep_endpoints(
        listed, fetched_at, lambda done, _total: _publish_progress(ctx, "applying", done, total, started),
        server)
    seconds = time.monotonic() - started
    step = result.pop("step")
    result.update({"listed_by_ari": total, "fetch_seconds": round(fetch_seconds, 3),
                   "seconds": round(seconds, 3)})
    _publish_progress(ctx, "done", total, total, started)
    text = (f"{render.heading('endpoints checked', result['total'])}\n"
            f"active {result['online']}  offline {result['offline']}  unknown {result['unknown']}  "
            f"total {result['total']}\n"
            f"{result['changed']} state(s) changed; Asterisk listed {total} in {fetch_seconds:.2f} s, "
            f"applied in {result['chunks']} step(s) of up to {step}; took {seconds:.2f} s")
    return Reply(result, text)
