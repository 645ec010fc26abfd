"""The control API under /_sim/ (docs/PROTOCOL.md, "ARI simulator control API").

Not behind ARI auth on purpose: tests must be able to reset the sim or read what it received
even while they test wrong ARI credentials. Safety comes from the address: the sim binds to
loopback only, and every control request from elsewhere is refused (403).
"""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from arimonitor.sim import scenarios
from arimonitor.sim.faults import MALFORMED
from arimonitor.sim.shapes import ari_time
from arimonitor.sim.state import BEHAVIOURS, AriError, Behaviour

if TYPE_CHECKING:
    from arimonitor.sim.server import Sim


async def body_of(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body is not JSON") from None
    return data if isinstance(data, dict) else {"items": data}


def answer(data: Any = None, status: int = 200) -> web.Response:
    return web.json_response({"ok": True} if data is None else data, status=status)


@web.middleware
async def loopback_only(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/_sim/"):
        remote = request.remote or ""
        try:
            local = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            local = False
        if not local:
            return web.json_response({"error": "control API is loopback only"}, status=403)
        try:
            return await handler(request)
        except AriError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": f"bad request: {exc}"}, status=400)
    return await handler(request)


def routes(sim: Sim) -> web.RouteTableDef:
    r = web.RouteTableDef()

    def endpoint(req: web.Request):
        resource = req.match_info["resource"]
        if resource not in sim.pbx.endpoints:
            raise AriError(404, f"no endpoint {resource}")
        return sim.pbx.endpoints[resource]

    @r.get("/_sim/state")
    async def state(req: web.Request) -> web.Response:
        pbx = sim.pbx
        return answer({
            "entity_id": pbx.entity_id, "startup_time": ari_time(pbx.startup),
            "time_scale": pbx.time_scale, "seed": pbx.seed,
            "endpoints": {r_: {"state": e.state, "ip": e.ip, "port": e.port, "registered": e.registered,
                               "behaviour": e.behaviour.as_dict(), "channel_ids": e.channel_ids}
                          for r_, e in pbx.endpoints.items()},
            "channels": [c.json() for c in pbx.channels.values()],
            "bridges": [b.json() for b in pbx.bridges.values()],
            "recordings": sorted(pbx.recordings),
            "connections": [{"app": c.app, "subscribe_all": c.subscribe_all, "sent": c.sent}
                            for c in pbx.hub.connections],
            "events_emitted": pbx.hub.emitted, "faults": sim.faults.describe(),
            "demo": sim.demo is not None, "load": sim.load.describe() if sim.load else None,
        })

    @r.post("/_sim/reset")
    async def reset(req: web.Request) -> web.Response:
        sim.reset()
        return answer()

    @r.post("/_sim/config")
    async def config(req: web.Request) -> web.Response:
        data = await body_of(req)
        if "time_scale" in data:
            scale = float(data["time_scale"])
            if scale <= 0:
                raise ValueError("time_scale must be > 0")
            sim.pbx.time_scale = sim.initial["time_scale"] = scale
        return answer()

    @r.get("/_sim/requests")
    async def requests(req: web.Request) -> web.Response:
        return answer(list(sim.requests))

    @r.delete("/_sim/requests")
    async def clear_requests(req: web.Request) -> web.Response:
        sim.requests.clear()
        return answer()

    @r.get("/_sim/events")
    async def events(req: web.Request) -> web.Response:
        return answer(list(sim.pbx.hub.log))

    @r.post("/_sim/events")
    async def push(req: web.Request) -> web.Response:
        data = await body_of(req)
        items = data["items"] if set(data) == {"items"} else [data]
        for item in items:
            body = {"type": item["type"], "timestamp": item.get("timestamp", ari_time())}
            body.update({k: v for k, v in item.items() if k not in body})
            body.setdefault("asterisk_id", sim.pbx.entity_id)
            for conn in list(sim.pbx.hub.connections):
                frame = dict(body)
                frame.setdefault("application", conn.app)
                conn.queue.put_nowait(json.dumps(frame))
        return answer({"pushed": len(items)})

    @r.post("/_sim/faults")
    async def fault(req: web.Request) -> web.Response:
        data = await body_of(req)
        kind = data["kind"]
        if kind == "drop_websocket":
            return answer({"dropped": await sim.pbx.hub.drop_all()})
        if kind == "restart":
            restart = sim.restart(float(data.get("down_for", 0.5)),
                                  float(data.get("shutting_down", 0)), float(data.get("booting", 0)))
            if data.get("wait", True):
                await restart
                return answer({"entity_id": sim.pbx.entity_id})
            sim.spawn(restart)  # the caller watches the phases as they come
            return answer({"entity_id": None})
        if kind == "stasis_delay":
            sim.faults.add_stasis_delay(float(data["seconds"]), count=int(data.get("count", -1)),
                                        channel=str(data.get("channel", "")))
            return answer()
        if kind in ("rest_delay", "rest_error"):
            sim.faults.add_rest(delay=float(data.get("seconds", 0)), status=int(data.get("status", 0)),
                                count=int(data.get("count", -1)), path=str(data.get("path", "")))
            if kind == "rest_error" and not sim.faults.rest[-1].status:
                sim.faults.rest[-1].status = 500
            return answer()
        if kind == "malformed":
            frame = MALFORMED[data.get("frame", "not_json")]
            count = int(data.get("count", 1))
            sent = sum(sim.pbx.hub.send_raw(frame) for _ in range(count))
            return answer({"sent": sent})
        if kind == "recording_fail":
            sim.media.fail_next_recordings = int(data.get("count", 1))
            return answer()
        if kind == "clear":
            sim.faults.clear()
            sim.media.fail_next_recordings = 0
            return answer()
        raise ValueError(f"unknown fault kind {kind!r}")

    @r.post("/_sim/endpoints")
    async def add_endpoint(req: web.Request) -> web.Response:
        data = await body_of(req)
        ep = sim.pbx.add_endpoint(str(data["resource"]), str(data.get("cli", "")))
        return answer(ep.json())

    @r.post("/_sim/endpoints/{resource}/register")
    async def register(req: web.Request) -> web.Response:
        data = await body_of(req)
        ep = sim.pbx.register(req.match_info["resource"], str(data.get("ip", "127.0.0.1")),
                              int(data.get("port", 5060)), bool(data.get("qualify", False)),
                              str(data.get("user_agent", "arimonitor-sim")))
        return answer(ep.json())

    @r.post("/_sim/endpoints/{resource}/unregister")
    async def unregister(req: web.Request) -> web.Response:
        return answer(sim.pbx.unregister(endpoint(req).resource).json())

    @r.post("/_sim/endpoints/{resource}/reachable")
    async def reachable(req: web.Request) -> web.Response:
        data = await body_of(req)
        return answer(sim.pbx.set_reachable(endpoint(req).resource, bool(data.get("reachable", True))).json())

    @r.post("/_sim/endpoints/{resource}/behaviour")
    async def behaviour(req: web.Request) -> web.Response:
        data = await body_of(req)
        ep = endpoint(req)
        mode = data.get("mode", ep.behaviour.mode)
        if mode not in BEHAVIOURS:
            raise ValueError(f"mode must be one of {BEHAVIOURS}")
        ep.behaviour = Behaviour(
            mode=mode, answer_after=float(data.get("answer_after", ep.behaviour.answer_after)),
            timeout_cause=int(data.get("timeout_cause", ep.behaviour.timeout_cause)),
            talk=float(data.get("talk", ep.behaviour.talk)))
        return answer(ep.behaviour.as_dict())

    @r.post("/_sim/calls")
    async def call(req: web.Request) -> web.Response:
        data = await body_of(req)
        cid = sim.dialplan.place(str(data["from"]), str(data["to"]), data.get("app"))
        return answer({"channel_id": cid})

    @r.post("/_sim/channels/{channel_id}/hangup")
    async def hangup(req: web.Request) -> web.Response:
        data = await body_of(req)
        sim.calls.remote_hangup(req.match_info["channel_id"], int(data.get("cause", 16)))
        return answer()

    @r.post("/_sim/load")
    async def load_start(req: web.Request) -> web.Response:
        data = await body_of(req)
        if sim.load is not None:
            sim.load.stop()
        sim.load = scenarios.Load(sim, int(data.get("endpoints", 100)),
                                  float(data.get("calls_per_second", 10)), float(data.get("talk", 2.0)))
        sim.load.start()
        return answer(sim.load.describe())

    @r.delete("/_sim/load")
    async def load_stop(req: web.Request) -> web.Response:
        described = sim.load.describe() if sim.load else None
        if sim.load is not None:
            sim.load.stop()
            sim.load = None
        return answer({"stopped": described})

    @r.post("/_sim/blast")
    async def blast(req: web.Request) -> web.Response:
        data = await body_of(req)
        count = int(data.get("events", 100000))
        sim.spawn(scenarios.blast(sim, count, data.get("app")))
        return answer({"queued": count})

    @r.post("/_sim/demo")
    async def demo(req: web.Request) -> web.Response:
        data = await body_of(req)
        if data.get("enabled", True):
            if sim.demo is None:
                sim.demo = scenarios.Demo(sim)
                sim.demo.start()
        elif sim.demo is not None:
            sim.demo.stop()
            sim.demo = None
        return answer({"demo": sim.demo is not None})

    return r
