"""Several Asterisk servers through the real consumer process (issue 14): the call is placed on
the server where the origin is online, and the accepted event and the final reply name it."""

from __future__ import annotations

import json

from tests.clicktocall.conftest import ARI_PASSWORD
from tests.clicktocall.fake_ari import FakeAri
from tests.support import eventually


def test_the_origins_server_gets_the_call_and_the_replies_name_it(c2c, engine_pub, processes):
    pbx2 = FakeAri(password=ARI_PASSWORD).start()
    try:
        req = c2c.request()
        c2c.ari.register(req["origin"], state="offline")  # known to the first, not online there
        pbx2.register(req["origin"])
        ini = c2c.tmp / "arimonitor.ini"
        ini.write_text(ini.read_text() + f"\n[ari:pbx2]\nurl = {pbx2.url}\napp = app-pbx2\n")
        c2c.start_consumer(processes)
        c2c.publish(req, correlation_id="one")
        (placed,) = eventually(lambda: pbx2.originates(), timeout=15,
                               message="no originate reached the origin's server")
        assert placed.params["app"] == "app-pbx2"
        assert c2c.ari.originates() == []

        events: list[dict] = []
        keys: list[str] = []

        def results() -> None:
            for method, _p, body in c2c.get_all(c2c.results_queue):
                keys.append(method.routing_key)
                events.append(json.loads(body))

        def final_reply():
            results()
            # the engine's final without a server: the consumer's ledger knows where it went
            engine_pub("c2c.final", {"request_id": req["request_id"], "client": "101",
                                     "event": "final", "final": True, "result": "completed",
                                     "reason": None, "cause": 16, "duration": 3.0})
            return c2c.get_all(c2c.reply_queue)
        ((_m, props, body),) = eventually(final_reply, timeout=15, message="no final reply")
        assert props.correlation_id == "one"
        assert json.loads(body)["server"] == "pbx2"
        accepted = [e for e in events if e.get("event") == "accepted"]
        assert accepted and accepted[0]["server"] == "pbx2", events
        # the results exchange: the server in the body; the key keeps its three words
        # (c2c.<event>.<client>: a binding such as c2c.final.* must go on matching)
        eventually(lambda: results() or any(e.get("event") == "final" for e in events), timeout=15)
        final = next(e for e in events if e.get("event") == "final")
        assert final["server"] == "pbx2", final
        assert {"c2c.accepted.101", "c2c.final.101"} <= set(keys), keys
        assert "on pbx2" in c2c.log_text()
    finally:
        pbx2.stop()
