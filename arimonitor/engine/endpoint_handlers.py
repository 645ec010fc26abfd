"""The endpoint side of the event table: endpoint and peer state, contacts, remote addresses.

A base of `Handlers` (handlers.py): its `on_<AriEvent>` methods land in the one event table
`Handlers` builds, which stays the only dispatch source. `set_address` is also used by the
resync (resync.py) for contacts read over REST.
"""

from __future__ import annotations

from typing import Any

from arimonitor.ari.contacts import SOURCE_EVENT, parse_contact_uri, parse_rtt
from arimonitor.engine import states as S
from arimonitor.engine.effects import Effects
from arimonitor.engine.state import RemoteIp, State


class EndpointHandlers:
    """Set by `Handlers.__init__`: state, fx."""

    state: State
    fx: Effects

    # ---- endpoints ----------------------------------------------------------------------

    def _endpoint_state(self, obj: dict, t: float) -> tuple[Any, bool]:
        ep = self.state.endpoint(obj["technology"], obj["resource"])
        self.state.touch_endpoint(ep.id)  # a resync's snapshot in flight is older than this
        new = obj.get("state") or S.ENDPOINT_UNKNOWN
        if new == ep.state:
            return ep, False
        old, ep.state, ep.last_change = ep.state, new, t
        self.fx.endpoint_state(ep, old)
        return ep, True

    def on_PeerStatusChange(self, event: dict, t: float) -> bool:
        ep, changed = self._endpoint_state(event["endpoint"], t)
        status = (event.get("peer") or {}).get("peer_status", "")
        if status and status != ep.peer_status:
            ep.peer_status = status
            changed = True
        return changed

    def on_EndpointStateChange(self, event: dict, t: float) -> bool:
        return self._endpoint_state(event["endpoint"], t)[1]

    def on_ContactStatusChange(self, event: dict, t: float) -> bool:
        ep, changed = self._endpoint_state(event["endpoint"], t)
        info = event["contact_info"]
        uri = info["uri"]
        status = info.get("contact_status", "")
        rtt = parse_rtt(info.get("roundtrip_usec"))
        if status == "Removed" and ep.contact_uri and uri != ep.contact_uri \
                and ep.contact_status != "Removed":
            # A re-registration from a new address: Asterisk may announce the new contact before
            # the old one's removal. The removal of a contact we no longer show changes nothing.
            return changed
        if status == ep.contact_status and uri == ep.contact_uri and rtt == ep.roundtrip_usec:
            return changed
        ep.contact_status, ep.roundtrip_usec = status, rtt
        if status != "Removed":
            self.set_address(ep, uri, SOURCE_EVENT, t)
        return True

    def set_address(self, ep: Any, uri: str, source: str, t: float) -> None:
        """Record where an endpoint is reached from, and feed the remote-IP registry."""
        ip, port = parse_contact_uri(uri)
        moved = (uri, ip, port) != (ep.contact_uri, ep.ip, ep.port)
        ep.contact_uri, ep.ip, ep.port = uri, ip, port
        ep.address_source, ep.address_at = source, t
        if moved:
            self.fx.endpoint_address(ep)
        if ip is None:
            return
        rip = self.state.remote_ips.get(ip)
        new_link = False
        if rip is None:
            rip = self.state.remote_ips[ip] = RemoteIp(ip, t, t, source=source)
            new_link = True
        elif not rip.first_seen:  # whitelisted in advance: this is its first registration
            rip.first_seen, rip.source, new_link = t, source, True
        if ep.id not in rip.endpoints:
            rip.endpoints.add(ep.id)
            new_link = True
        rip.last_seen = max(rip.last_seen, t)
        self.fx.remote_ip(rip, new_link)
