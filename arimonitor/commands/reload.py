"""Console command `reload clients|endpoints|mqservers|all`: read the v2.7 files again.

The files are read in a worker thread (slow command); the new Tables snapshot is swapped in
by the loop thread in one assignment (`ctx.load_files`). The reply names what was added,
removed and changed (ids and field names, never values) and every problem as file:line reason.
A file that cannot be read keeps its previous table (v27.load_all with `previous=`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from arimonitor.commands.registry import Arg, Registry, Reply
from arimonitor.v27 import Tables, diff, load_all

WHAT = ("clients", "endpoints", "mqservers", "all")
FILE_OF = {"endpoints": "files.endpoints", "clients": "files.clients", "mqservers": "files.mqservers"}
SHOWN_IDS = 20  # ids listed per kind in the text; `data` has them all


def _same_file(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def merge(old: Tables, new: Tables, parts: tuple[str, ...], cfg: Any) -> Tables:
    """`old` with only `parts` taken from `new` (problems of those files included)."""
    if set(parts) == set(FILE_OF):
        return new
    files = [cfg[FILE_OF[p]] for p in parts]
    kept = [p for p in old.problems if not any(_same_file(p.file, f) for f in files)]
    fresh = [p for p in new.problems if any(_same_file(p.file, f) for f in files)]
    return replace(old, **{p: getattr(new, p) for p in parts}, problems=(*kept, *fresh))


def _ids(items: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(items[:SHOWN_IDS])
    return shown + (f" (+{len(items) - SHOWN_IDS} more)" if len(items) > SHOWN_IDS else "")


def register(registry: Registry) -> None:
    @registry.command(
        "reload", category="files", slow=True,
        summary="read the v2.7 files again and show what changed",
        args=[Arg("what", "which file, or all", choices=WHAT)],
        examples=["reload all", "reload endpoints", "reload clients"],
        description="Endpoints: endpoints_pjsip.def; clients: __CLIENTES__.DEF; "
                    "mqservers: __MQSERVERS__.DEF. A file that cannot be read keeps its old table.",
        privileged=True)
    def reload(ctx, what) -> Reply:
        parts = tuple(FILE_OF) if what == "all" else (what,)
        cfg = ctx.cfg
        loaded = load_all(cfg["files.endpoints"], cfg["files.clients"], cfg["files.mqservers"],
                          previous=ctx.tables())

        def swap() -> tuple[Any, dict[str, int], Tables]:
            old = ctx.tables() or Tables()
            new = merge(old, loaded, parts, cfg)
            applied = ctx.load_files(new)
            return diff(old, new), applied, new

        changes, applied, new = ctx.call_in_loop(swap)
        files = [cfg[FILE_OF[p]] for p in parts]
        problems = [p for p in new.problems if any(_same_file(p.file, f) for f in files)]
        data: dict[str, Any] = {"reloaded": list(parts), "summary": changes.summary(),
                                "endpoints_in_state": applied, "problems": [
                                    {"file": p.file, "line": p.line, "level": p.level, "reason": p.reason}
                                    for p in problems]}
        lines = [f"reloaded {', '.join(parts)}: {changes.summary()}"]
        for part in parts:
            table = getattr(changes, part)
            data[part] = {"added": list(table.added), "removed": list(table.removed),
                          "changed": {k: list(v) for k, v in table.changed.items()},
                          "count": len(getattr(new, part))}
            lines.append(f"{part}: {data[part]['count']} now; +{len(table.added)} -{len(table.removed)} "
                         f"~{len(table.changed)}")
            if table.added:
                lines.append(f"  added:   {_ids(list(table.added))}")
            if table.removed:
                lines.append(f"  removed: {_ids(list(table.removed))}")
            if table.changed:
                changed = [f"{k} ({', '.join(v)})" for k, v in table.changed.items()]
                lines.append(f"  changed: {_ids(changed)}")
        if "mqservers" in parts and changes.mqservers_reordered:
            lines.append("  mqservers: the order click-to-call tries them changed")
        if problems:
            lines.append(f"problems ({len(problems)}):")
            lines += [f"  {p.file}:{p.line} {p.level}: {p.reason}" for p in problems]
        else:
            lines.append("no problems in the files")
        return Reply(data, "\n".join(lines))
