"""Recordings as Asterisk writes them: WAV, 8 kHz, mono, 16-bit, in the recording spool."""

from __future__ import annotations

import math
import os
import struct
import wave
from pathlib import Path

RATE = 8000

# one second of a quiet 440 Hz tone: real audio, so MP3 encoders have something to chew on
_SECOND = b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * i / RATE)))
                   for i in range(RATE))


def recording_path(root: str | Path, name: str, fmt: str = "wav") -> Path:
    """`<root>/<name>.<fmt>`; names may hold `/` sub-folders but may not climb out."""
    rel = Path(f"{name}.{fmt}")
    if rel.is_absolute() or ".." in rel.parts or not name.strip("/"):
        raise ValueError(f"bad recording name {name!r}")
    return Path(root) / rel


def write_wav(path: Path, seconds: float) -> None:
    """Write `seconds` of audio atomically (temp name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = max(0, round(seconds * RATE))
    tmp = path.with_name(f".{path.name}.tmp")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        whole, rest = divmod(frames, RATE)
        for _ in range(whole):
            out.writeframes(_SECOND)
        out.writeframes(_SECOND[: rest * 2])
    os.replace(tmp, path)


def stored(root: str | Path) -> list[dict[str, str]]:
    """GET /recordings/stored: every recording under the spool, by name without extension."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = []
    for path in sorted(base.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and path.suffix:
            rel = path.relative_to(base).as_posix()
            found.append({"name": rel[: -len(path.suffix)], "format": path.suffix[1:]})
    return found
