"""Real audio for transcoder tests: generated WAVs, and MP3s decoded back with ffmpeg."""

from __future__ import annotations

import math
import random
import struct
import subprocess
import wave
from pathlib import Path

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def one_second(rate: int = 8000, channels: int = 1, seed: int = 1) -> bytes:
    """A 300 Hz tone with noise: real audio, not silence (LAME would shrink silence)."""
    rng = random.Random(seed)
    one = [int(6000 * math.sin(2 * math.pi * 300 * i / rate)) + rng.randrange(-2000, 2000)
           for i in range(rate)]
    if channels == 2:
        one = [s for v in one for s in (v, -v // 2)]
    return struct.pack(f"<{len(one)}h", *one)


def make_wav(path: Path, seconds: float, rate: int = 8000, channels: int = 1) -> Path:
    """Repeats one generated second (fast even for hours), then the fraction left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    second = one_second(rate, channels)
    whole, part = divmod(int(seconds * rate), rate)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        for _ in range(whole):
            out.writeframes(second)
        out.writeframes(second[: part * 2 * channels])
    return path


def make_mulaw_wav(path: Path, seconds: float) -> Path:
    """A G.711 mu-law WAV (as MixMonitor can write): not 16-bit PCM."""
    pcm = make_wav(path.with_suffix(".pcm.wav"), seconds)
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", "-i", str(pcm), "-acodec", "pcm_mulaw",
                    str(path)], check=True)
    pcm.unlink()
    return path


def decoded_seconds(mp3: Path, rate: int = 8000) -> float:
    """Decode the whole MP3 with ffmpeg (not our frame walker) and count the samples."""
    proc = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", str(mp3), "-f", "s16le",
                           "-ac", "1", "-ar", str(rate), "-"], capture_output=True, check=True)
    return len(proc.stdout) / 2 / rate
