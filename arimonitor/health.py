"""Is arimonitor healthy? One list of named problems, for `arictl status` (its exit code) and
for /healthz: the console and an alert say the same thing.

`arictl status` exits 0 when the list is empty, 1 when it is not (each problem on its own
line, `--brief` on one), 3 when the engine does not answer at all; /healthz answers 200 or 503.
A problem names the part at fault first ("link: ...", "ari auth: ...", "ari url: ...",
"rest probe: ...", "outage: ...", "store: ...", "transcoders: ...", "clicktocall: ...", "files: ..."), so a
Nagios line or a cron mail says what to look at. This module depends on nothing of the engine:
callers hand in plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# A process reporting every 5 s is silent after three missed reports.
STALE_AFTER = 15.0


def link_problem(link: dict[str, Any]) -> str | None:
    state = link.get("state")
    if state == "connected":
        return None
    if state in (None, "unknown"):
        return "link: the reader has not connected to Asterisk yet"
    reason = link.get("reason") or ""
    return f"link: {state}" + (f" ({reason})" if reason else "")


def probe_problem(probe: dict[str, Any]) -> str | None:
    if probe.get("auth_failed"):
        return f"ari auth: FAILED - {probe.get('auth_error') or 'HTTP 401'}"
    if probe.get("not_asterisk"):
        return f"ari url: not Asterisk - {probe.get('problem') or probe.get('last_error')}"
    if probe.get("problem"):  # anything but a quick 200: "HTTP 503 shutting down (...)", refused, a stall
        return f"rest probe: {probe['problem']}"
    if probe.get("http_error"):
        return f"rest probe: ERROR - {probe['http_error']}"
    if probe.get("stalled"):
        return f"rest probe: STALLED - {probe.get('last_error') or 'slow answer'}"
    return None


def outage_problem(link: dict[str, Any], outage_open_since: float | None) -> str | None:
    if outage_open_since is not None and link.get("state") == "connected":
        return "outage: open, resync pending"
    return None


def store_problem(store: dict[str, Any] | None) -> str | None:
    """`store`: the engine's store view; a full disk degrades (calls kept in memory), never hides."""
    if not store or not store.get("error"):
        return None
    return f"store: NOT WRITABLE ({store['error'][:80]}); {kept_words(store)} kept in memory"


# Components' own SQLite writes kept while it cannot be written: (view name, what is kept).
KEPT_VIEWS = (("clicktocall_store", "c2c outcomes"), ("clicktocall_flows", "c2c flow rows"),
              ("transcode_store", "recording jobs and MP3 results"))


def with_kept(store: dict[str, Any] | None, view: Callable[[str], Any]) -> dict[str, Any]:
    """The engine's store view with what components keep (`view(name)` -> {"error", "kept",
    "dropped"} or None), so `status` and /healthz name a full disk whoever hit it."""
    merged = {**(store or {"error": "", "unsaved": 0, "dropped": 0})}
    merged["kept"] = dict(merged.get("kept") or {})
    for name, what in KEPT_VIEWS:
        part = view(name)
        if not part:
            continue
        merged["kept"][what] = part["kept"]
        merged["dropped"] = merged.get("dropped", 0) + part["dropped"]
        merged["error"] = merged.get("error") or part["error"]
    return merged


def kept_words(store: dict[str, Any]) -> str:
    """What a store view says is waiting in memory: "3 ended call(s), 2 remote IPs"."""
    words = [f"{store.get('unsaved', 0)} ended call(s)"]
    words += [f"{n} {what}" for what, n in (store.get("kept") or {}).items() if n]
    return ", ".join(words)


def transcoder_problem(transcoders: dict[str, Any] | None, expected: int) -> str | None:
    """`transcoders`: {"alive": n, ...} from the transcode component, None when it does not run."""
    if transcoders is None or not expected or transcoders["alive"] >= expected:
        return None
    return f"transcoders: {transcoders['alive']} of {expected} alive"


def clicktocall_problems(reports: Iterable[dict[str, Any]], expected: bool, now: float) -> list[str]:
    """`reports`: the consumers' `_report`s, each with the time it was `received`."""
    if not expected:
        return []
    found = []
    reports = list(reports)
    if not reports:
        found.append("clicktocall: not reported yet")
    for report in reports:
        process = report.get("process") or "clicktocall"
        age = now - (report.get("received") or 0.0)
        if age > STALE_AFTER:
            found.append(f"{process}: silent for {age:.0f} s")
        elif not report.get("broker"):
            found.append(f"{process}: not connected to any RabbitMQ server")
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


def server_problems(servers: dict[str, dict[str, Any]] | None, first: str | None) -> list[str]:
    """The further servers' link, REST probe and outage, each problem naming its server
    ("pbx2 link: disconnected (...)"); `servers`: name -> {"link": ..., "probe": ...,
    "outage_open_since": ...} or a link view itself; `first` (shown as before) is skipped."""
    found = []
    for name, view in (servers or {}).items():
        if name == first:
            continue
        link = view.get("link") if isinstance(view.get("link"), dict) else view
        for problem in (link_problem(link), probe_problem(view.get("probe") or {}),
                        outage_problem(link, view.get("outage_open_since"))):
            if problem:
                part, _, words = problem.partition(": ")
                found.append(f"{name} {part}: {words}")
    return found


def problems(*, link: dict[str, Any], probe: dict[str, Any], outage_open_since: float | None,
             transcoders: dict[str, Any] | None, transcoders_expected: int,
             clicktocall: Iterable[dict[str, Any]], clicktocall_expected: bool, tables: Any,
             now: float, store: dict[str, Any] | None = None,
             servers: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Every problem, most basic first (no link explains most of the rest). `servers`: every
    watched server's link (several servers); the first's are `link`/`probe`/`outage_open_since`."""
    found = [p for p in (link_problem(link), probe_problem(probe), outage_problem(link, outage_open_since)) if p]
    found += server_problems(servers, link.get("server"))
    found += [p for p in (store_problem(store), transcoder_problem(transcoders, transcoders_expected)) if p]
    found += clicktocall_problems(clicktocall, clicktocall_expected, now)
    found += file_problems(tables)
    return found


def brief(found: list[str], state: dict[str, Any]) -> str:
    """A Nagios-style one-line summary."""
    if found:
        return "DEGRADED - " + "; ".join(found)
    return f"OK - link connected, {state['calls']} call(s), {state['online']}/{state['endpoints']} endpoints online"
