"""Loader for endpoints_pjsip.def: Asterisk `#include` lines whose comment carries metadata.

    #include pjsip/1013010.pjsip ; Endpoint:1013010 CLI:101 TYPE:condominio PW:secret [GUID:...]

Asterisk reads the include; arimonitor reads the comment. Tokens after the first `;` are split
on any whitespace (v2.7 files mix spaces and tabs); each `KEY:value` splits at its first `:`;
keys are case-insensitive. Tokens without `:` and unknown keys are ignored, so a free-text
note after the metadata still loads. Lines starting with `;` are comments, and so is an
Asterisk `;-- ... --;` block. Each line yields at most one Problem: the reason it was
skipped (error), or every caveat of a loaded endpoint joined in one warning.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from arimonitor.v27.problems import Loaded, Problems
from arimonitor.v27.source import PathLike, decode_lines, read_lines

_DIRECTIVES = ("#include", "#tryinclude")  # Asterisk's two include forms


@dataclass(frozen=True)
class Endpoint:
    id: str
    client: str  # the client's id, a section of __CLIENTES__.DEF (it may be missing there)
    type: str | None  # condominio, portaria, apartamento, interfone... as written
    password: str | None = field(repr=False)  # never in a repr, so never in a log by accident
    guid: str | None
    file: str  # the included .pjsip path, as written
    line: int  # line in endpoints_pjsip.def


EndpointTable = Mapping[str, Endpoint]  # endpoint id -> Endpoint, in file order


def load_endpoints(path: PathLike,
                   known_clients: Collection[str] | None = None) -> Loaded[EndpointTable]:
    """Load the file; with `known_clients`, an endpoint of another client is loaded and warned."""
    problems = Problems(str(path))
    lines = read_lines(path, problems)
    if lines is None:
        return Loaded(MappingProxyType({}), problems.items, readable=False)
    return Loaded(_build(lines, problems, known_clients), problems.items)


def parse_endpoints(data: bytes, file: str = "endpoints_pjsip.def",
                    known_clients: Collection[str] | None = None) -> Loaded[EndpointTable]:
    """Like load_endpoints, from bytes already in memory."""
    problems = Problems(file)
    return Loaded(_build(decode_lines(data, problems), problems, known_clients), problems.items)


def _build(lines: list[str], problems: Problems,
           known_clients: Collection[str] | None) -> EndpointTable:
    endpoints: dict[str, Endpoint] = {}
    block_start = 0  # line of an open `;-- ... --;` block comment, 0 when none is open
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        # Asterisk skips a `;-- ... --;` block, so an endpoint inside it does not exist there.
        if block_start:
            if "--;" in line:
                block_start = 0
            continue
        if line.startswith(";--") and "--;" not in line[3:]:
            block_start = number
            continue
        if not line or line.startswith(";"):  # `; #include ...` is a commented-out endpoint
            continue
        endpoint, reason, warnings = _parse_line(line, number)
        if endpoint is None:
            if reason:
                problems.error(number, reason, raw)
            elif warnings:
                problems.warning(number, "; ".join(warnings), raw)
            continue
        first = endpoints.get(endpoint.id)
        if first is not None:
            problems.error(number, f"duplicate endpoint {endpoint.id} (first at line "
                                   f"{first.line}); ignored", raw)
            continue
        if known_clients is not None and endpoint.client not in known_clients:
            warnings.append(f"client {endpoint.client} is not in __CLIENTES__.DEF")
        if warnings:
            problems.warning(number, "; ".join(warnings), raw)
        endpoints[endpoint.id] = endpoint
    if block_start:
        problems.warning(block_start, "block comment ';--' is never closed with '--;'; "
                                      "the rest of the file was skipped", lines[block_start - 1])
    return MappingProxyType(endpoints)


def _parse_line(line: str, number: int) -> tuple[Endpoint | None, str, list[str]]:
    """(endpoint, "", warnings) or (None, error reason, []) or (None, "", [note])."""
    directive = next((d for d in _DIRECTIVES if line[:len(d)].lower() == d), None)
    if directive is None:
        return None, "not an #include line", []
    include, sep, comment = line[len(directive):].partition(";")
    if include[:1] not in (" ", "\t"):
        return None, f"not an #include line (no blank after {directive})", []
    include = include.strip()
    if not include:
        return None, f"{directive} without a file name", []
    if not sep or not comment.strip():
        # Legal for Asterisk (a shared template, say); just nothing for us to monitor.
        return None, "", ["#include without metadata; not monitored"]
    meta: dict[str, str] = {}
    warnings: list[str] = []
    for token in comment.split():
        key, colon, value = token.partition(":")
        key = key.upper()
        if not colon:
            continue
        if key in meta:
            warnings.append(f"{_label(key)} given twice, the first one is used")
            continue
        meta[key] = value
    for required in ("ENDPOINT", "CLI"):
        if required not in meta:
            return None, f"no {_label(required)} in the metadata", []
        if not meta[required]:
            return None, f"{_label(required)} has no value", []
    for optional in ("TYPE", "PW"):
        if not meta.get(optional):
            warnings.append(f"no {optional}")
    if "GUID" in meta and not meta["GUID"]:
        warnings.append("GUID has no value")
    return Endpoint(
        id=meta["ENDPOINT"],
        client=meta["CLI"],
        type=meta.get("TYPE") or None,
        password=meta.get("PW") or None,
        guid=meta.get("GUID") or None,
        file=include,
        line=number,
    ), "", warnings


def _label(key: str) -> str:
    return "Endpoint" if key == "ENDPOINT" else key
