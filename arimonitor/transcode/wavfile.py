"""Read a WAV header ourselves (RIFF chunks) and stream its PCM in bounded chunks.

Why not the stdlib `wave`: it trusts the header and silently returns fewer frames from a
truncated file, and it cannot tell us where the audio starts. We need both: a truncated
recording is converted as far as it goes but said so (`truncated_from`), and the fast encoder
streams the data chunk straight from disk.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from arimonitor.transcode.errors import CorruptWav, MissingWav, UnsupportedWav

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# Placeholders a writer that died before closing leaves in the data size field.
_UNFINISHED_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class WavInfo:
    path: str
    format_tag: int
    channels: int
    sample_rate: int
    bits: int
    block_align: int
    data_offset: int
    data_bytes: int
    # the data size field was a placeholder (writer crashed): the file length was used instead
    header_repaired: bool = False
    # the header announced more audio than the file holds (copy cut short, disk full): the
    # seconds it announced; what is there was used
    truncated_from: float | None = None

    @property
    def frames(self) -> int:
        return self.data_bytes // self.block_align

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    @property
    def is_pcm16(self) -> bool:
        return self.format_tag == WAVE_FORMAT_PCM and self.bits == 16


def read_wav_info(path: str | os.PathLike) -> WavInfo:
    """Parse and check the header; CorruptWav / MissingWav with a reason an operator can act on."""
    path = str(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            return _parse(path, fh, size)
    except FileNotFoundError:
        raise MissingWav(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CorruptWav(f"{path}: is a directory") from None
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise MissingWav(f"{path}: {exc.strerror}") from None
        raise CorruptWav(f"{path}: cannot read: {exc.strerror or exc}") from None


def _parse(path: str, fh, size: int) -> WavInfo:
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise CorruptWav(f"{path}: not a RIFF/WAVE file ({size} bytes)")
    fmt: tuple[int, int, int, int, int] | None = None
    pos = 12
    while True:
        chunk = fh.read(8)
        if len(chunk) < 8:
            what = "no 'fmt ' chunk" if fmt is None else "no 'data' chunk"
            raise CorruptWav(f"{path}: {what} (file ends at byte {size})")
        cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        pos += 8
        if cid == b"fmt ":
            if csize < 16:
                raise CorruptWav(f"{path}: 'fmt ' chunk of {csize} bytes is too short")
            body = fh.read(csize)
            if len(body) < csize:
                raise CorruptWav(f"{path}: truncated in the 'fmt ' chunk")
            tag, channels, rate, _byte_rate, align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == WAVE_FORMAT_EXTENSIBLE and csize >= 40:
                tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID starts with the tag
            fmt = (tag, channels, rate, align, bits)
            pos += csize + (csize & 1)
            if csize & 1:
                fh.read(1)
        elif cid == b"data":
            if fmt is None:
                raise CorruptWav(f"{path}: 'data' chunk before 'fmt '")
            return _info(path, fmt, pos, csize, size)
        else:
            pos += csize + (csize & 1)  # chunks are word-aligned
            fh.seek(pos)


def _info(path: str, fmt: tuple[int, int, int, int, int], offset: int, declared: int,
          size: int) -> WavInfo:
    tag, channels, rate, align, bits = fmt
    if channels < 1 or rate < 1 or align < 1 or bits < 1:
        raise CorruptWav(f"{path}: impossible format (channels={channels} rate={rate} "
                         f"block={align} bits={bits})")
    available = size - offset
    repaired = False
    if declared in _UNFINISHED_SIZES and available > 0:
        declared, repaired = available, True
    truncated_from = None
    if declared > available:
        truncated_from = round(declared / (align * rate), 2)
        declared = max(available, 0)
    data = declared - declared % align  # a torn last frame is dropped, not played as noise
    return WavInfo(path, tag, channels, rate, bits, align, offset, data, repaired, truncated_from)


def iter_pcm(info: WavInfo, chunk_frames: int = 65536,
             check: Callable[[], None] | None = None) -> Iterator[bytes]:
    """Yield the data chunk in whole frames, `chunk_frames` at a time; memory stays bounded.

    `check` is called before each chunk (the worker raises Abandoned from it when stopping).
    """
    if not info.is_pcm16:
        raise UnsupportedWav(f"{info.path}: format 0x{info.format_tag:04x}/{info.bits}-bit")
    step = chunk_frames * info.block_align
    left = info.data_bytes
    if not os.path.exists(info.path):
        raise MissingWav(f"{info.path}: removed while converting")
    with open(info.path, "rb") as fh:
        fh.seek(info.data_offset)
        while left > 0:
            if check is not None:
                check()
            block = fh.read(min(step, left))
            if not block:
                raise CorruptWav(f"{info.path}: file shrank while converting")
            left -= len(block)
            yield block


def write_wav(path: str | Path, pcm: bytes, sample_rate: int = 8000, channels: int = 1) -> None:
    """A 16-bit PCM WAV (tests and benchmarks)."""
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
