"""ARI REST routes (under /ari) on aiohttp, with Asterisk's own status codes and bodies."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from arimonitor.sim import shapes, wav
from arimonitor.sim.state import AriError

if TYPE_CHECKING:
    from arimonitor.sim.server import Sim

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNAUTHORIZED = {"message": "Authentication required"}
SHUTTING_DOWN, DOWN, BOOTING = "shutting_down", "down", "booting"
# What Asterisk 22.10.1 answered to every HTTP request during `core restart now` (issue 16).
SHUTDOWN_HTML = ('<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n'
                 "<title>503 Service Unavailable</title>\r\n</head><body>\r\n"
                 "<h1>Service Unavailable</h1>\r\n<p>Shutdown in progress</p>\r\n<hr />\r\n"
                 "<address>Asterisk/22.10.1</address>\r\n</body></html>\r\n")


def authorized(sim: Sim, request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif "api_key" in request.query:
        user, _, password = request.query["api_key"].partition(":")
    else:
        return False
    return (user, password) == (sim.user, sim.password)


def unauthorized() -> web.Response:
    return web.json_response(UNAUTHORIZED, status=401,
                             headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'})


async def params_of(request: web.Request) -> tuple[dict[str, Any], Any]:
    """Query parameters merged with a JSON object body, as Asterisk accepts both."""
    params: dict[str, Any] = dict(request.query)
    params.pop("api_key", None)
    body = None
    if request.can_read_body:
        raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raise AriError(400, "Malformed JSON body") from None
            if isinstance(body, dict):
                params.update({k: v for k, v in body.items()})
    return params, body


def make_middleware(sim: Sim) -> Callable:
    @web.middleware
    async def ari_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/ari/"):
            return await handler(request)
        if sim.phase == DOWN and request.transport is not None:
            # a keep-alive connection from before the restart: Asterisk's process is gone
            request.transport.abort()
            return web.Response(status=503)  # never reaches the client
        if sim.phase == SHUTTING_DOWN:
            return web.Response(status=503, text=SHUTDOWN_HTML, content_type="text/html")
        if sim.phase == BOOTING:
            return web.json_response({"message": "Asterisk not booted"}, status=503)
        if request.path == "/ari/events":
            return await handler(request)  # the WebSocket does its own auth and logging
        entry: dict[str, Any] = {"t": time.time(), "method": request.method,
                                 "path": request.path[4:], "params": dict(request.query) or None}
        sim.requests.append(entry)
        if not authorized(sim, request):
            response: web.StreamResponse = unauthorized()
        else:
            try:
                await sim.faults.before_rest(request.path[4:])
                response = await handler(request)
            except AriError as exc:
                if exc.status == 503:
                    # Asterisk's HTTP server answers 503 with its HTML page, not ARI's JSON
                    response = web.Response(text=shapes.http_error_page(503, "Service Unavailable"),
                                            status=503, content_type="text/html")
                else:
                    response = web.json_response(exc.body, status=exc.status)
            except web.HTTPMethodNotAllowed:
                response = web.json_response(shapes.error("Invalid method"), status=405)
            except web.HTTPNotFound:
                response = web.json_response(shapes.error("Resource not found"), status=404)
        entry["status"] = response.status
        body = getattr(response, "body", None)
        if body and response.content_type == "text/html":
            entry["body"] = body.decode("utf-8", "replace")  # Asterisk's own error page
        elif body and response.content_type.startswith("audio/"):
            entry["body"] = f"<{len(body)} bytes of {response.content_type}>"  # a stored file
        else:
            entry["body"] = json.loads(body) if body else None
        return response

    return ari_middleware


def ok(body: Any = None, status: int = 200) -> web.Response:
    if body is None:
        return web.Response(status=204)
    return web.json_response(body, status=status)


def routes(sim: Sim) -> web.RouteTableDef:
    r = web.RouteTableDef()
    pbx, calls, media = sim.pbx, sim.calls, sim.media

    def chan(req: web.Request) -> str:
        return req.match_info["channel_id"]

    @r.get("/ari/asterisk/info")
    async def info(req: web.Request) -> web.Response:
        return ok(shapes.asterisk_info(pbx.entity_id, pbx.startup, pbx.reload))

    @r.get("/ari/asterisk/ping")
    async def ping(req: web.Request) -> web.Response:
        return ok({"asterisk_id": pbx.entity_id, "ping": "pong", "timestamp": shapes.ari_time()})

    @r.get("/ari/endpoints")
    async def endpoints(req: web.Request) -> web.Response:
        return ok([ep.json() for ep in pbx.endpoints.values()])

    @r.get("/ari/endpoints/{tech}")
    async def endpoints_tech(req: web.Request) -> web.Response:
        tech = req.match_info["tech"]
        if tech.upper() != "PJSIP":
            raise AriError(404, f"No Endpoints found - invalid tech {tech}")
        return ok([ep.json() for ep in pbx.endpoints.values()])

    @r.get("/ari/endpoints/{tech}/{resource}")
    async def endpoint(req: web.Request) -> web.Response:
        ep = pbx.endpoints.get(req.match_info["resource"])
        if ep is None or req.match_info["tech"].upper() != "PJSIP":
            raise AriError(404, "Endpoint not found")
        return ok(ep.json())

    @r.get("/ari/channels")
    async def channels(req: web.Request) -> web.Response:
        # newest first: the real Asterisk lists its channel container in hash order, so a
        # client must not rely on a channel coming after the one it depends on (a snoop)
        return ok([ch.json() for ch in reversed(pbx.channels.values())])

    @r.post("/ari/channels")
    async def originate(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        return ok(calls.originate(params))

    @r.post("/ari/channels/create")
    async def create(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        return ok(calls.create(params))

    @r.get("/ari/channels/{channel_id}")
    async def channel(req: web.Request) -> web.Response:
        return ok(calls.get(chan(req)).json())

    @r.post("/ari/channels/{channel_id}")
    async def originate_with_id(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        params["channelId"] = chan(req)
        return ok(calls.originate(params))

    @r.delete("/ari/channels/{channel_id}")
    async def hangup(req: web.Request) -> web.Response:
        calls.delete(chan(req), req.query.get("reason"), req.query.get("reason_code"))
        return ok()

    @r.post("/ari/channels/{channel_id}/answer")
    async def answer(req: web.Request) -> web.Response:
        calls.answer(chan(req))
        return ok()

    @r.post("/ari/channels/{channel_id}/ring")
    async def ring(req: web.Request) -> web.Response:
        calls.ring(chan(req))
        return ok()

    @r.delete("/ari/channels/{channel_id}/ring")
    async def ring_stop(req: web.Request) -> web.Response:
        calls.ring(chan(req))
        return ok()

    @r.post("/ari/channels/{channel_id}/continue")
    async def continue_(req: web.Request) -> web.Response:
        calls.continue_(chan(req))
        return ok()

    @r.post("/ari/channels/{channel_id}/dial")
    async def dial(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        calls.dial(chan(req), params)
        return ok()

    @r.post("/ari/channels/{channel_id}/snoop")
    async def snoop(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        return ok(calls.snoop(chan(req), params))

    @r.post("/ari/channels/{channel_id}/record")
    async def record_channel(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        ch = calls.stasis_channel(chan(req))
        return ok(media.record(f"channel:{ch.id}", params), status=201)

    @r.post("/ari/channels/{channel_id}/play")
    async def play(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        return ok(media.play(calls.stasis_channel(chan(req)), params), status=201)

    @r.get("/ari/channels/{channel_id}/variable")
    async def get_variable(req: web.Request) -> web.Response:
        return ok(calls.get_variable(chan(req), req.query.get("variable")))

    @r.post("/ari/channels/{channel_id}/variable")
    async def set_variable(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        calls.set_variable(chan(req), params.get("variable"), str(params.get("value", "")))
        return ok()

    @r.get("/ari/bridges")
    async def bridges(req: web.Request) -> web.Response:
        return ok([b.json() for b in pbx.bridges.values()])

    @r.post("/ari/bridges")
    async def create_bridge(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        return ok(media.create_bridge(params))

    @r.get("/ari/bridges/{bridge_id}")
    async def bridge(req: web.Request) -> web.Response:
        return ok(media.get_bridge(req.match_info["bridge_id"]).json())

    @r.post("/ari/bridges/{bridge_id}")
    async def create_bridge_with_id(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        return ok(media.create_bridge(params, req.match_info["bridge_id"]))

    @r.delete("/ari/bridges/{bridge_id}")
    async def destroy_bridge(req: web.Request) -> web.Response:
        media.destroy_bridge(req.match_info["bridge_id"])
        return ok()

    @r.post("/ari/bridges/{bridge_id}/addChannel")
    async def add_channel(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        media.add_channel(req.match_info["bridge_id"], params.get("channel"))
        return ok()

    @r.post("/ari/bridges/{bridge_id}/removeChannel")
    async def remove_channel(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        media.remove_channel(req.match_info["bridge_id"], params.get("channel"))
        return ok()

    @r.post("/ari/bridges/{bridge_id}/record")
    async def record_bridge(req: web.Request) -> web.Response:
        params, _ = await params_of(req)
        bridge = media.get_bridge(req.match_info["bridge_id"])
        return ok(media.record(f"bridge:{bridge.id}", params), status=201)

    @r.get("/ari/recordings/live/{name:.+}")
    async def live(req: web.Request) -> web.Response:
        return ok(media.get_live(req.match_info["name"]))

    @r.post("/ari/recordings/live/{name:.+}/stop")
    async def stop(req: web.Request) -> web.Response:
        media.stop(req.match_info["name"])
        return ok()

    @r.get("/ari/recordings/stored")
    async def stored(req: web.Request) -> web.Response:
        return ok(wav.stored(pbx.recordings_dir))

    # before stored_one, whose {name:.+} would take "<name>/file" for a name
    @r.get("/ari/recordings/stored/{name:.+}/file")
    async def stored_file(req: web.Request) -> web.Response:
        data, content_type = media.stored_file(req.match_info["name"])
        return web.Response(body=data, content_type=content_type)

    @r.get("/ari/recordings/stored/{name:.+}")
    async def stored_one(req: web.Request) -> web.Response:
        return ok(media.stored_one(req.match_info["name"]))

    @r.delete("/ari/recordings/stored/{name:.+}")
    async def delete_stored(req: web.Request) -> web.Response:
        media.delete_stored(req.match_info["name"])
        return ok()

    @r.get("/ari/applications")
    async def applications(req: web.Request) -> web.Response:
        return ok([sim.application_json(name) for name in pbx.hub.apps])

    @r.get("/ari/applications/{app}")
    async def application(req: web.Request) -> web.Response:
        return ok(sim.application_json(req.match_info["app"]))

    @r.post("/ari/applications/{app}/subscription")
    async def subscribe(req: web.Request) -> web.Response:
        return ok(sim.subscription(req.match_info["app"], req.query.get("eventSource"), True))

    @r.delete("/ari/applications/{app}/subscription")
    async def unsubscribe(req: web.Request) -> web.Response:
        return ok(sim.subscription(req.match_info["app"], req.query.get("eventSource"), False))

    @r.get("/ari/deviceStates")
    async def device_states(req: web.Request) -> web.Response:
        return ok([])

    return r
