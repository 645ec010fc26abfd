"""One immutable snapshot of the three v2.7 files; a reload builds a new one to swap in.

The engine holds a single reference to a Tables and replaces it in one assignment, so a reader
sees either the old snapshot or the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import TypeVar

from arimonitor.v27.clients import ClientTable, load_clients
from arimonitor.v27.endpoints import Endpoint, EndpointTable, load_endpoints
from arimonitor.v27.mqservers import MQServerTable, load_mqservers
from arimonitor.v27.problems import ERROR, Loaded, Problem
from arimonitor.v27.source import PathLike


@dataclass(frozen=True)
class Tables:
    endpoints: EndpointTable = field(default_factory=lambda: MappingProxyType({}))
    clients: ClientTable = field(default_factory=lambda: MappingProxyType({}))
    mqservers: MQServerTable = ()
    problems: tuple[Problem, ...] = ()

    @cached_property
    def by_client(self) -> Mapping[str, tuple[Endpoint, ...]]:
        """client id -> its endpoints in file order (clients with none are absent)."""
        index: dict[str, list[Endpoint]] = {}
        for endpoint in self.endpoints.values():
            index.setdefault(endpoint.client, []).append(endpoint)
        return MappingProxyType({client: tuple(items) for client, items in index.items()})

    def endpoints_of(self, client: str) -> tuple[Endpoint, ...]:
        return self.by_client.get(client, ())

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if problem.level == ERROR)

    @property
    def unreadable(self) -> tuple[str, ...]:
        """Files that could not be read at all (their table is empty, or kept from before)."""
        return tuple(problem.file for problem in self.errors if problem.line == 0)


def load_all(endpoints_path: PathLike, clients_path: PathLike, mqservers_path: PathLike,
             previous: Tables | None = None) -> Tables:
    """Load the three files into a new Tables; never raises for anything in or about the files.

    A file that cannot be read (missing, no permission) is a problem, not a crash. Its table
    is empty on a first load; on a reload (`previous` given) the previous table is kept and
    the problem says so, so a file caught mid-deploy never wipes the engine's state.
    """
    old = previous or Tables()
    clients = _keep_if_unreadable(load_clients(clients_path), old.clients, previous)
    # With no client list at all, every endpoint would be an "orphan": skip that check.
    known = clients.table if clients.readable or previous is not None else None
    endpoints = _keep_if_unreadable(load_endpoints(endpoints_path, known), old.endpoints,
                                    previous)
    mqservers = _keep_if_unreadable(load_mqservers(mqservers_path), old.mqservers, previous)
    return Tables(
        endpoints=endpoints.table,
        clients=clients.table,
        mqservers=mqservers.table,
        problems=(*endpoints.problems, *clients.problems, *mqservers.problems),
    )


T = TypeVar("T")


def _keep_if_unreadable(loaded: Loaded[T], old: T, previous: Tables | None) -> Loaded[T]:
    if loaded.readable or previous is None:
        return loaded
    kept = tuple(replace(problem, reason=f"{problem.reason}; keeping the table loaded before")
                 for problem in loaded.problems)
    return Loaded(old, kept, readable=False)
