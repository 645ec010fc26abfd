"""What a reload changed: ids added, removed and changed, with the names of changed fields.

Only ids and field names are reported, never values, so a changed password shows up as
`password` and nothing more. The line number is not a field here: moving a line is no change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from arimonitor.v27.tables import Tables

_IGNORED = {"line"}


@dataclass(frozen=True)
class TableChanges:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    # id -> names of the fields that changed
    changed: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class Changes:
    endpoints: TableChanges = field(default_factory=TableChanges)
    clients: TableChanges = field(default_factory=TableChanges)
    mqservers: TableChanges = field(default_factory=TableChanges)
    mqservers_reordered: bool = False  # the order click-to-call tries servers in changed

    def __bool__(self) -> bool:
        return bool(self.endpoints or self.clients or self.mqservers or self.mqservers_reordered)

    def summary(self) -> str:
        """One line for the log, e.g. 'endpoints +2 -1 ~3; clients ~1'."""
        parts = [f"{name} " + " ".join(counts)
                 for name, table in (("endpoints", self.endpoints), ("clients", self.clients),
                                     ("mqservers", self.mqservers))
                 if (counts := [f"{sign}{len(items)}" for sign, items in
                                (("+", table.added), ("-", table.removed), ("~", table.changed))
                                if items])]
        if self.mqservers_reordered:
            parts.append("mqservers reordered")
        return "; ".join(parts) or "no changes"


def diff(old: Tables, new: Tables) -> Changes:
    old_servers = {server.name: server for server in old.mqservers}
    new_servers = {server.name: server for server in new.mqservers}
    common_old = [name for name in old_servers if name in new_servers]
    common_new = [name for name in new_servers if name in old_servers]
    return Changes(
        endpoints=_diff_table(old.endpoints, new.endpoints),
        clients=_diff_table(old.clients, new.clients),
        mqservers=_diff_table(old_servers, new_servers),
        mqservers_reordered=common_old != common_new,
    )


def _diff_table(old: Mapping[str, Any], new: Mapping[str, Any]) -> TableChanges:
    changed = {}
    for key in new.keys() & old.keys():
        names = tuple(_changed_fields(old[key], new[key]))
        if names:
            changed[key] = names
    return TableChanges(
        added=tuple(key for key in new if key not in old),
        removed=tuple(key for key in old if key not in new),
        changed=MappingProxyType({key: changed[key] for key in new if key in changed}),
    )


def _changed_fields(old: Any, new: Any) -> Iterable[str]:
    for spec in fields(old):
        if spec.name in _IGNORED:
            continue
        before, after = getattr(old, spec.name), getattr(new, spec.name)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            # Client.extra: name the key that changed, not the whole mapping.
            yield from (f"{spec.name}.{key}" for key in (*before, *(k for k in after
                                                                     if k not in before))
                        if before.get(key) != after.get(key))
        elif before != after:
            yield spec.name
