"""Problems found while loading a v2.7 file: one record per bad line, never an exception.

A loader never stops on a bad line: it records a Problem (file, line, reason, the line as
written) and goes on, so one typo in a 10,000-line file cannot take the monitor down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

ERROR = "error"  # the line, or a value in it, was not used
WARNING = "warning"  # the line was used, but an operator should look at it

_MAX_TEXT = 200  # a line of binary garbage must not flood the log

# Keys whose values are secrets. Over-masking ("passthrough=") is cheap; a leaked password is not.
# "pas+w" and "psw" also catch the misspellings (pasword, psw, pswd) that most need masking.
_SECRET_KEY = r"(?:pw|[\w.-]*(?:pas+w|pass|psw|pwd|senha|secret|token)[\w.-]*)"
_SECRET_ASSIGN = re.compile(rf"(?i)(\b{_SECRET_KEY}\s*=).*")  # INI: the value runs to end of line
_SECRET_COLON = re.compile(rf"(?i)(\b{_SECRET_KEY}\s*:)\S+")  # endpoint metadata: up to a blank


def mask_secrets(text: str) -> str:
    """Replace every password-like value in `text` with ***."""
    text = _SECRET_ASSIGN.sub(r"\1***", text)
    return _SECRET_COLON.sub(r"\1***", text)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based; 0 means the file as a whole (unreadable, ...)
    reason: str
    text: str = ""  # the offending line, secrets masked, truncated
    level: str = ERROR

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        tail = f": {self.text!r}" if self.text else ""
        return f"{where}: {self.level}: {self.reason}{tail}"


class Problems:
    """Collects the problems of one file; masks secrets before anything is stored."""

    def __init__(self, file: str, values_are_secret: bool = False) -> None:
        self.file = file
        # For a file of credentials (__MQSERVERS__.DEF) no value is echoed at all: a key
        # misspelt beyond recognition may still hold a password.
        self.values_are_secret = values_are_secret
        self._items: list[Problem] = []

    def error(self, line: int, reason: str, text: str = "") -> None:
        self._add(line, reason, text, ERROR)

    def warning(self, line: int, reason: str, text: str = "") -> None:
        self._add(line, reason, text, WARNING)

    def _add(self, line: int, reason: str, text: str, level: str) -> None:
        # Mask before truncating, so a cut can never leave half a password behind.
        clean = mask_secrets(text.strip())
        if self.values_are_secret and "=" in clean:
            clean = clean.split("=", 1)[0].rstrip() + "=***"
        if len(clean) > _MAX_TEXT:
            clean = clean[:_MAX_TEXT] + "…"
        self._items.append(Problem(self.file, line, reason, clean, level))

    @property
    def items(self) -> tuple[Problem, ...]:
        return tuple(self._items)


T = TypeVar("T")


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """What one loader returns: its table, its problems, and whether the file could be read."""

    table: T
    problems: tuple[Problem, ...]
    readable: bool = True
