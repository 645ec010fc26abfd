"""A small disk that fills up: a tmpfs mounted in a test's temp dir, filled to the last byte.

Skips, saying why, where this machine cannot mount a tmpfs (not root, no mount namespace).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(path: Path, size: str = "4m"):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


FILLERS = ("filler", "filler2")


def fill(path: Path) -> None:
    """Write until the file system says no space."""
    # unbuffered: a buffered file would raise ENOSPC again at close, with what it still held
    for name, block in zip(FILLERS, (65536, 512), strict=True):
        fd = os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * block)
        finally:
            os.close(fd)


def free(path: Path) -> None:
    """Room again: the fillers go."""
    for name in FILLERS:
        (path / name).unlink(missing_ok=True)
