"""Is the engine healthy? One list of named problems, shared by `status` and its exit code.

`arictl status` exits 0 when this list is empty, 1 when it is not (each problem printed on
its own line, `--brief` on one), 3 when the engine does not answer at all. `arimonitor start`
waits on the same link check. A problem is a short text that names the part at fault first
("link: ...", "ari auth: ...", "rest probe: ...", "clicktocall: ...", "transcoders: ...",
"files: ..."), so a Nagios line or a cron mail says what to look at.
"""

from __future__ import annotations

from typing import Any

from arimonitor import protocol


def link_problem(link: dict[str, Any]) -> str | None:
    state = link.get("state")
    if state == protocol.LINK_CONNECTED:
        return None
    if state in (None, "unknown"):
        return "link: the reader has not connected to Asterisk yet"
    reason = link.get("reason") or ""
    return f"link: {state}" + (f" ({reason})" if reason else "")


def probe_problem(probe: dict[str, Any]) -> str | None:
    if probe.get("auth_failed"):
        return f"ari auth: FAILED - {probe.get('auth_error') or 'HTTP 401'}"
    if probe.get("not_asterisk"):
        return f"ari url: not Asterisk - {probe.get('last_error')}"
    if probe.get("http_error"):
        return f"rest probe: ERROR - {probe['http_error']}"
    if probe.get("stalled"):
        return f"rest probe: STALLED - {probe.get('last_error') or 'slow answer'}"
    return None


def process_problems(view: dict[str, Any], transcoders_expected: int, clicktocall_expected: bool) -> list[str]:
    found = []
    t = view.get("transcoders")
    if transcoders_expected and t is not None and t["alive"] < transcoders_expected:
        found.append(f"transcoders: {t['alive']} of {transcoders_expected} alive")
    if clicktocall_expected:
        reports = view.get("clicktocall") or []
        if not reports:
            found.append("clicktocall: not reported yet")
        for c in reports:
            if c.get("stale"):
                found.append(f"clicktocall: silent for {c.get('age')} s")
            elif not c.get("broker"):
                found.append("clicktocall: not connected to any RabbitMQ server")
    return found


def file_problems(tables: Any) -> list[str]:
    """The v2.7 files: one problem per unreadable file, one count of lines with errors."""
    if tables is None:
        return ["files: not loaded"]
    found = []
    errors = 0
    for problem in getattr(tables, "problems", ()):
        if problem.line == 0 and problem.level == "error":
            found.append(f"files: {problem.file}: {problem.reason}")
        elif problem.level == "error":
            errors += 1
    if errors:
        found.append(f"files: {errors} line(s) with errors ignored ('reload all' lists them)")
    return found


def problems(status: dict[str, Any], view: dict[str, Any], tables: Any, *, transcoders_expected: int,
             clicktocall_expected: bool) -> list[str]:
    """Every problem `status` reports, most basic first (no link explains most of the rest)."""
    found = [p for p in (link_problem(status["link"]), probe_problem(status["probe"])) if p]
    found += process_problems(view, transcoders_expected, clicktocall_expected)
    found += file_problems(tables)
    return found


def brief(problems_found: list[str], status: dict[str, Any]) -> str:
    """A Nagios-style one-line summary."""
    if problems_found:
        return "DEGRADED - " + "; ".join(problems_found)
    s = status["state"]
    return (f"OK - link connected, {s['calls']} call(s), {s['online']}/{s['endpoints']} endpoints online")
