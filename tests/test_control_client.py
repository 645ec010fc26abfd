"""The one engine-side client of the control socket, against a real libzmq ROUTER."""

from __future__ import annotations

import threading

import pytest
import zmq

from arimonitor import protocol
from arimonitor.control_client import ControlClient, NoAnswer, WrongReply
from tests.support import free_port


def _router(answer):
    """A ROUTER that answers each request with answer(request) (None: stays silent)."""
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    router.bind(endpoint)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            if router.poll(50):
                *route, body = router.recv_multipart()
                reply = answer(protocol.loads(body))
                if reply is not None:
                    router.send_multipart([*route, protocol.dumps(reply)])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join(2)
        router.close(0)
        context.term()

    return endpoint, close


def test_a_reply_a_silence_and_a_stranger():
    silent = {"status"}
    strangers = {"stranger"}

    def answer(request):
        if request["cmd"] in silent:
            return None
        req_id = "someone-else" if request["cmd"] in strangers else request["id"]
        return protocol.ok(req_id, {"cmd": request["cmd"], "via": request.get("via")})

    endpoint, close = _router(answer)
    context = zmq.Context()
    client = ControlClient(context, endpoint, timeout=0.5, via=protocol.VIA_MANAGER)
    try:
        assert client.request("list", ["101"])["data"] == {"cmd": "list", "via": protocol.VIA_MANAGER}
        with pytest.raises(NoAnswer):
            client.request("status", [])
        assert client.sock is None  # a REQ that missed its reply is not reused
        with pytest.raises(WrongReply):
            client.request("stranger", [])
        assert client.request("list", [])["status"] == protocol.STATUS_OK  # a fresh socket works
    finally:
        client.close()
        context.term()
        close()
