"""JSON on the hot paths, through orjson: every ARI event the engine applies, every publication
it sends, and the bus process's decode and envelope of each.

orjson (a well-kept C library) decodes and encodes 5-10x faster than the json module. The
output is protocol.dumps's: compact, UTF-8 as is (no \\u escapes), str() for other types,
non-str keys as text. `loads` refuses invalid UTF-8 and lone surrogates (ValueError, as any
other bad JSON). arictl never imports this module: orjson's import alone costs ~14 ms, and
arictl answers within 2x a bare interpreter (protocol.py keeps the json module for it).
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS

loads = orjson.loads  # bytes or str -> object; orjson.JSONDecodeError is a ValueError


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=str, option=_OPTIONS)
