"""Loader for __CLIENTES__.DEF: one `[client id]` section per client (revenda/condomínio).

v2.7 keys (kept only here): nome, gravar (S/N), max_chamadas, ativo (S/N). Any other key is
kept as text in Client.extra. A value that cannot be understood is reported on its line and
the field falls back to its default; the client still loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from arimonitor import datatypes
from arimonitor.v27.ini import Entry, Section, parse_sections
from arimonitor.v27.problems import Loaded, Problems
from arimonitor.v27.source import PathLike, decode_lines, read_lines


@dataclass(frozen=True)
class Client:
    id: str
    name: str  # "" when the file gives none
    record: bool | None  # gravar; None = not said (the engine's default applies)
    max_calls: int | None  # max_chamadas; None = no limit given
    active: bool  # ativo; a client listed without `ativo` is active
    extra: Mapping[str, str]  # every other key, read-only
    line: int  # line of the [section] header


ClientTable = Mapping[str, Client]  # client id -> Client, in file order


def load_clients(path: PathLike) -> Loaded[ClientTable]:
    problems = Problems(str(path))
    lines = read_lines(path, problems)
    if lines is None:
        return Loaded(MappingProxyType({}), problems.items, readable=False)
    return Loaded(_build(lines, problems), problems.items)


def parse_clients(data: bytes, file: str = "__CLIENTES__.DEF") -> Loaded[ClientTable]:
    """Like load_clients, from bytes already in memory."""
    problems = Problems(file)
    return Loaded(_build(decode_lines(data, problems), problems), problems.items)


def _build(lines: list[str], problems: Problems) -> ClientTable:
    clients = {section.name: _client(section, problems)
               for section in parse_sections(lines, problems)}
    return MappingProxyType(clients)


def _client(section: Section, problems: Problems) -> Client:
    entries = dict(section.entries)
    name = entries.pop("nome", None)
    record = _convert(entries.pop("gravar", None), _yes_no, "gravar", problems)
    max_calls = _convert(entries.pop("max_chamadas", None), _count, "max_chamadas", problems)
    active = _convert(entries.pop("ativo", None), _yes_no, "ativo", problems)
    return Client(
        id=section.name,
        name=name.value if name else "",
        record=record,
        max_calls=max_calls,
        active=True if active is None else active,
        extra=MappingProxyType({key: entry.value for key, entry in entries.items()}),
        line=section.line,
    )


V = TypeVar("V")


def _convert(entry: Entry | None, convert: Callable[[str], V], key: str,
             problems: Problems) -> V | None:
    if entry is None:
        return None
    try:
        return convert(entry.value)
    except ValueError as exc:
        problems.error(entry.line, f"bad value for {key} ({exc}); ignored", entry.text)
        return None


def _yes_no(text: str) -> bool:
    # v2.7 wrote S/N; datatypes.boolean also takes sim/não, yes/no, 1/0.
    try:
        return datatypes.boolean(text)
    except ValueError:
        raise ValueError(f"{text!r} is not S or N") from None


def _count(text: str) -> int:
    value = datatypes.integer(text)
    if value < 0:
        raise ValueError(f"{text!r} must be 0 or more")
    return value
