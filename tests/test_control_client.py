"""The one engine-side client of the control socket, against a real libzmq ROUTER."""

from __future__ import annotations

import logging
import threading

import pytest
import zmq

from arimonitor import protocol
from arimonitor.control_client import ControlClient, NoAnswer, ReportLoop, WrongReply
from tests.support import eventually, free_port


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


def test_a_report_loop_asks_every_interval_through_silences_and_refusals_until_stopped(caplog):
    """What the bus and the click-to-call consumer report with: a silent or refusing engine
    is logged (a refusal) and asked again at the next interval; the stopper ends it."""
    heard: list[str] = []

    def answer(request):
        n = len(heard)
        heard.append(request["args"][0])
        if n == 0:
            return None  # the engine restarting: no answer
        if n == 1:
            return protocol.error(request["id"], protocol.E_BAD_ARGUMENTS, "not now")
        return protocol.ok(request["id"], {})

    class Loop(ReportLoop):
        def tick(self) -> None:
            self.replies.append(self.ask("_report", [str(len(self.replies))], "the test report"))

    endpoint, close = _router(answer)
    stopper = threading.Event()
    context = zmq.Context()
    loop = Loop("test-report", endpoint, stopper, logging.getLogger("test.report"),
                interval=0.05, timeout=0.3, context=context)
    loop.replies = []
    try:
        loop.start()
        eventually(lambda: len(loop.replies) >= 3, timeout=10)
        stopper.set()
        loop.join(5)
        assert not loop.is_alive()
        assert loop.replies[:2] == [None, None] and loop.replies[2]["status"] == protocol.STATUS_OK
        assert heard[:3] == ["0", "1", "2"]
        refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert refused == ["engine refused the test report: not now"]
        assert loop.client.sock is None  # closed when the loop ended
    finally:
        stopper.set()
        context.term()
        close()
