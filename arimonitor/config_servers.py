"""Further Asterisk servers in arimonitor.ini: [ari:NAME] and [ami:NAME].

`[ari]`/`[ami]` describe the first server (its name: `[ari] server_id`). Each further one is a
pair of named sections with the same keys, checked through config.py's one settings table. A
key a named section leaves out is the plain section's value, except `url`, which each server
must name (two readers on one Asterisk would count everything twice). A named server's id is
its section's name; named sections come from the file only, not the environment.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from arimonitor import datatypes as dt

SERVER_SECTIONS = ("ari", "ami")


class ServerSectionError(ValueError):
    """A named server section that must stop start-up; config.py raises it as ConfigError."""


def named_sections(parser: configparser.ConfigParser, file_path: Path,
                   known: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """server -> {"ari.url": raw, ...} of every [ari:NAME]/[ami:NAME], in file order.
    `known`: the settings table by name (`ari.url`), to refuse an unknown key."""
    named: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        base, _, server = section.partition(":")
        if not server:
            continue
        if base not in SERVER_SECTIONS:
            raise ServerSectionError(f"unknown section [{section}] in {file_path}")
        try:
            dt.server_name(server)
        except ValueError as exc:
            raise ServerSectionError(f"section [{section}] in {file_path}: {exc}") from None
        for key in parser.options(section):
            if f"{base}.{key}" not in known:
                raise ServerSectionError(f"unknown key [{section}] {key} in {file_path}")
            if key == "server_id":
                raise ServerSectionError(f"[{section}] server_id in {file_path}: a named server's "
                                         f"id is its section's name ({server})")
            named.setdefault(server, {})[f"{base}.{key}"] = parser.get(section, key)
    for server, keys in named.items():
        if not any(k.startswith("ari.") for k in keys):
            raise ServerSectionError(f"[ami:{server}] in {file_path} has no [ari:{server}]")
    return named


def convert_servers(raw: Mapping[str, str], named: Mapping[str, Mapping[str, str]],
                    path: Path | None, names: list[str],
                    convert: Callable[[str, str, str], Any]) -> dict[str, dict[str, Any]]:
    """server -> its converted ari.*/ami.* (`names`), the plain sections' raw values filling
    gaps. `convert(name, raw, section)` converts one value, naming `[section] key` on error."""
    where = f" in {path}" if path else ""
    first = raw["ari.server_id"]
    servers: dict[str, dict[str, Any]] = {}
    for server, keys in named.items():
        if server.lower() in {first.lower(), *(s.lower() for s in servers)}:
            raise ServerSectionError(f"server {server!r}{where} is named twice ([ari] server_id "
                                     f"is {first!r})")
        if "ari.url" not in keys:
            raise ServerSectionError(f"[ari:{server}] url{where} is missing: each server names its ARI")
        values = {name: convert(name, keys.get(name, raw[name]), f"{name.split('.')[0]}:{server}")
                  for name in names}
        values["ari.server_id"] = server
        servers[server] = values
    return servers
