"""The /healthz rule: healthy, or the named problems an operator must look at.

The same facts `arictl status` shows (link, ARI auth, REST probe, open outage, transcoder
workers, the click-to-call consumer's reports), read from one snapshot. A problem is named the
way `status` names it, so an alert and the console say the same thing.
"""

from __future__ import annotations

from typing import Any

from arimonitor.metrics.families import STALE_AFTER


def problems(snap: dict[str, Any]) -> list[str]:
    found = []
    link = snap["link"]
    if link.get("state") != "connected":
        found.append(f"ARI link {link.get('state') or 'unknown'} (server {snap['server']})")
    probe = snap["probe"]
    if probe.get("auth_failed"):
        found.append("ARI authentication failed: check [ari] user and password")
    elif probe.get("stalled"):
        found.append(f"ARI REST probe stalled ({probe.get('last_error') or 'slow'})")
    if snap["outage_open_since"] is not None and link.get("state") == "connected":
        found.append("outage open: resync pending")
    workers = snap["transcoders"]
    if workers is not None and workers["known"] and not workers["alive"]:
        found.append(f"no transcoder worker alive ({workers['known']} known)")
    for report in snap["clicktocall"]:
        process = report.get("process") or "clicktocall"
        if snap["t"] - report.get("received", 0) > STALE_AFTER:
            found.append(f"{process} silent for {snap['t'] - report.get('received', 0):.0f} s")
        elif not report.get("broker"):
            found.append(f"{process} has no RabbitMQ broker")
    return found
