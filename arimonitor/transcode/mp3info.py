"""Walk an MP3 frame by frame: how many samples it holds, and whether it is whole.

This is the duration check after an encode. What it proves: from the ID3v2 tag to the end
(or an ID3v1 tag) the file is an unbroken chain of valid MPEG Layer III frame headers, and
their sample count matches the WAV's within the encoder's known delay and padding. What it
does not prove: that each frame's payload decodes (tests decode MP3s back with ffmpeg for that;
a worker does not, it would cost as much as the encode).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from arimonitor.transcode.errors import VerifyFailed

_BITRATES = {  # kbit/s by index, Layer III
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class Mp3Info:
    frames: int
    samples: int  # decoded samples, minus the LAME tag's delay and padding when it has one
    sample_rate: int
    channels: int
    bitrate: int  # kbit/s of the first audio frame
    gapless: bool  # delay/padding came from a LAME tag (exact); else samples include them

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate if self.sample_rate else 0.0


def _header(b: bytes, i: int) -> tuple[int, int, int, int, int] | None:
    """(frame length, samples, rate, channels, kbit/s) of a Layer III header at i, else None."""
    if b[i] != 0xFF or (b[i + 1] & 0xE0) != 0xE0:
        return None
    version = (b[i + 1] >> 3) & 3  # 0 = MPEG 2.5, 2 = MPEG 2, 3 = MPEG 1
    layer = (b[i + 1] >> 1) & 3
    br_index = b[i + 2] >> 4
    sr_index = (b[i + 2] >> 2) & 3
    if version == 1 or layer != 1 or br_index in (0, 15) or sr_index == 3:
        return None
    kbps = _BITRATES[1 if version == 3 else 2][br_index]
    rate = _RATES[version][sr_index]
    padding = (b[i + 2] >> 1) & 1
    channels = 1 if (b[i + 3] >> 6) == 3 else 2
    if version == 3:
        return 144000 * kbps // rate + padding, 1152, rate, channels, kbps
    return 72000 * kbps // rate + padding, 576, rate, channels, kbps


def _skip_id3v2(data: bytes) -> int:
    if len(data) >= 10 and data[:3] == b"ID3":
        size = 0
        for byte in data[6:10]:
            size = (size << 7) | (byte & 0x7F)
        return 10 + size + (10 if data[5] & 0x10 else 0)
    return 0


CHUNK = 1 << 20  # the MP3 of a two-hour call is ~28 MB: read it in pieces, not whole
_MARGIN = 4096  # longer than any Layer III frame (at most 2,881 bytes)


def read_mp3_info(path: str) -> Mp3Info:
    """VerifyFailed if the file is not an unbroken frame chain."""
    with open(path, "rb") as fh:
        return _walk(fh, os.fstat(fh.fileno()).st_size, path)


def parse_mp3(data: bytes, name: str = "mp3") -> Mp3Info:
    return _walk(io.BytesIO(data), len(data), name)


def _walk(fh: BinaryIO, size: int, name: str) -> Mp3Info:
    start = _skip_id3v2(fh.read(10))
    end = size
    if size >= 128:
        fh.seek(size - 128)
        if fh.read(3) == b"TAG":
            end -= 128
    fh.seek(start)
    buf, base, i = b"", start, 0  # base: file offset of buf[0]; i: position in buf
    frames = samples = 0
    first: tuple[int, int, int, int, int] | None = None
    delay = padding = 0
    gapless = False
    while base + i < end:
        if len(buf) - i < _MARGIN and base + len(buf) < end:
            buf = buf[i:] + fh.read(min(CHUNK, end - base - len(buf)))
            base, i = base + i, 0
        at = base + i
        if end - at < 4:
            raise VerifyFailed(f"{name}: {end - at} stray bytes at the end")
        head = _header(buf, i)
        if head is None:
            raise VerifyFailed(f"{name}: no MPEG frame at byte {at} of {end} (truncated or corrupt)")
        length, per_frame = head[0], head[1]
        if at + length > end:
            raise VerifyFailed(f"{name}: last frame cut at byte {end} (needs {at + length})")
        if first is None:
            first = head
            frame = buf[i:i + length]
            # The tag sits right after the side information (4 + 9/17/32 bytes).
            tag_at = next((o for o in (13, 21, 36) if frame[o:o + 4] in (b"Xing", b"Info")), -1)
            if tag_at >= 0:  # an Info/Xing frame carries metadata, not audio
                lame = tag_at + 120
                if frame[lame:lame + 4] == b"LAME" and len(frame) >= lame + 24:
                    dp = struct.unpack(">I", b"\0" + frame[lame + 21:lame + 24])[0]
                    delay, padding, gapless = dp >> 12, dp & 0xFFF, True
                i += length
                continue
        elif head[2] != first[2]:
            raise VerifyFailed(f"{name}: sample rate changes at byte {at}")
        frames += 1
        samples += per_frame
        i += length
    if first is None or frames == 0:
        raise VerifyFailed(f"{name}: no audio frames")
    return Mp3Info(frames, max(samples - delay - padding, 0), first[2], first[3], first[4], gapless)
