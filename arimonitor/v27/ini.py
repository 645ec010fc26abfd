"""The `[section]` + `key=value` format shared by __CLIENTES__.DEF and __MQSERVERS__.DEF.

Policy (see docs/ARCHITECTURE.md, "v2.7 files"):
- blank lines and lines starting with `#` or `;` are comments;
- `[name]` opens a section; a trailing `; comment` after `]` is allowed;
- keys are case-insensitive (stored lower-case); the value is everything after the first `=`,
  both stripped; inline `;` stays part of the value (values are free text);
- every line that is not used is reported once: a key before any section, a broken header and
  each key under it, a duplicate section and each key under it, a line with no `=`, an empty
  key, a repeated key (the first one wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from arimonitor.v27.problems import Problems


@dataclass(frozen=True)
class Entry:
    value: str
    line: int
    text: str  # the line as written, for problems about the value


@dataclass
class Section:
    name: str
    line: int
    entries: dict[str, Entry] = field(default_factory=dict)  # lower-case key -> first entry


def parse_sections(lines: list[str], problems: Problems) -> list[Section]:
    """Sections in file order; each bad line is reported to `problems` exactly once."""
    sections: list[Section] = []
    first_seen: dict[str, int] = {}
    current: Section | None = None
    # Why keys are skipped while `current` is None; said on each skipped line.
    homeless = "line before any [section]"
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            name, broken = _header(line)
            if broken:
                problems.error(number, broken, raw)
                current, homeless = None, f"line under the broken section header at line {number}"
            elif name in first_seen:
                problems.error(number, f"duplicate section [{name}] (first at line "
                                       f"{first_seen[name]}); its lines are ignored", raw)
                current, homeless = None, f"line in duplicate section [{name}] (ignored)"
            else:
                current = Section(name, number)
                sections.append(current)
                first_seen[name] = number
            continue
        if current is None:
            problems.error(number, homeless, raw)
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        if not sep:
            problems.error(number, "not a key=value line", raw)
        elif not key:
            problems.error(number, "empty key before '='", raw)
        elif key in current.entries:
            problems.error(number, f"duplicate key '{key}' in [{current.name}] (first at line "
                                   f"{current.entries[key].line}); ignored", raw)
        else:
            current.entries[key] = Entry(value.strip(), number, raw)
    return sections


def _header(line: str) -> tuple[str, str]:
    """(section name, "") or ("", reason it is broken)."""
    close = line.find("]")
    if close < 0:
        return "", "broken section header (no closing ']'); lines up to the next section are ignored"
    name = line[1:close].strip()
    rest = line[close + 1:].strip()
    if rest and rest[0] not in "#;":
        return "", "text after ']' in section header; lines up to the next section are ignored"
    if not name:
        return "", "empty section name '[]'; lines up to the next section are ignored"
    return name, ""
