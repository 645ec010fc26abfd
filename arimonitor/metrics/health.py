"""The /healthz rule: the one of `arictl status` (arimonitor/health.py), read from one snapshot,
so an alert and the console name a problem the same way."""

from __future__ import annotations

from typing import Any

from arimonitor import health


def problems(snap: dict[str, Any]) -> list[str]:
    found = health.problems(
        link=snap["link"], probe=snap["probe"], outage_open_since=snap["outage_open_since"],
        transcoders=snap["transcoders"], transcoders_expected=snap.get("transcoders_expected", 0),
        clicktocall=snap["clicktocall"], clicktocall_expected=snap.get("clicktocall_expected", False),
        tables=None, now=snap["t"], store=snap.get("store"), servers=snap["link"].get("servers"))
    # the files were checked in the loop thread (a Tables snapshot does not leave it)
    return [p for p in found if not p.startswith("files:")] + list(snap.get("file_problems", ()))
