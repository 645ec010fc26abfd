"""One WAV -> one verified MP3: the whole job of a worker, without any sockets.

Order, so that a recording is never lost: encode to a temporary name in the target folder,
tag it, fsync, check its frames and duration against the WAV, rename it over the final name
(atomic on one filesystem), fsync the folder, and only then, if asked, delete the WAV.
Any failure removes the temporary file and leaves the WAV where it was.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arimonitor.pids import pid_alive
from arimonitor.transcode.encoders import Encoder, LameEncoder, PydubEncoder, os_error
from arimonitor.transcode.errors import (
    EmptyWav,
    EncoderFailed,
    MissingFolder,
    MissingWav,
    TranscodeError,
    UnsupportedWav,
    VerifyFailed,
)
from arimonitor.transcode.mp3info import Mp3Info, read_mp3_info
from arimonitor.transcode.tags import JOB_TAG, read_tags, write_tags
from arimonitor.transcode.wavfile import WavInfo, read_wav_info, write_wav

log = logging.getLogger(__name__)

# LAME prepends 576 + 529 samples of delay and pads the end to a whole frame; our files carry
# no LAME gapless tag, so the MP3 holds up to this many samples more than the WAV.
ENCODER_SLACK_SAMPLES = 1105 + 2 * 1152


@dataclass(frozen=True)
class Conversion:
    """What a worker is asked to do (the job message, checked)."""
    job_id: str
    wav: str
    mp3: str
    bitrate: int = 32
    sample_rate: int | None = None  # None: keep the WAV's rate
    tags: Mapping[str, str] = field(default_factory=dict)
    delete_wav: bool = False
    mp3_root: str | None = None  # folders below it are created; it must exist itself


@dataclass
class Outcome:
    mp3: str
    duration: float
    wav_duration: float
    encoder: str
    seconds: float
    wav_deleted: bool = False
    notes: list[str] = field(default_factory=list)


def check_duration(wav: WavInfo, mp3: Mp3Info, name: str) -> None:
    """VerifyFailed unless the MP3 holds the WAV's audio, give or take the encoder's framing."""
    expected = wav.duration
    frame = (1152 if mp3.sample_rate >= 32000 else 576) / mp3.sample_rate
    slack = 0.01 + (frame if mp3.gapless else ENCODER_SLACK_SAMPLES / mp3.sample_rate)
    if not (expected - frame - 0.01 <= mp3.duration <= expected + slack):
        raise VerifyFailed(f"{name}: MP3 lasts {mp3.duration:.3f}s, WAV {expected:.3f}s")


def _target_folder(conv: Conversion) -> Path:
    target = Path(conv.mp3).parent
    if conv.mp3_root is not None and not os.path.isdir(conv.mp3_root):
        raise MissingFolder(f"MP3 folder {conv.mp3_root} does not exist (not mounted?)")
    try:
        if conv.mp3_root is not None:
            target.mkdir(parents=True, exist_ok=True)
        elif not target.is_dir():
            raise MissingFolder(f"MP3 folder {target} does not exist")
    except OSError as exc:
        raise os_error(exc, str(target)) from None
    return target


def already_done(conv: Conversion) -> Outcome | None:
    """A resent job whose earlier attempt finished and deleted the WAV: report, redo nothing."""
    if not os.path.exists(conv.mp3):
        return None
    try:
        if read_tags(conv.mp3).get(JOB_TAG) != conv.job_id:
            return None
        info = read_mp3_info(conv.mp3)
    except (OSError, TranscodeError, ValueError):
        return None
    return Outcome(conv.mp3, info.duration, info.duration, "none", 0.0, wav_deleted=True,
                   notes=["WAV already gone; MP3 from an earlier attempt of this job verified"])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_parts(folder: Path, name: str) -> None:
    """Temporary files of this target left by a worker killed mid-write (its pid is gone)."""
    for part in folder.glob(f".{name}.*.part"):
        try:
            pid = int(part.name.rsplit(".", 2)[-2])
        except ValueError:
            continue
        if pid != os.getpid() and not pid_alive(pid):
            part.unlink(missing_ok=True)


def convert(conv: Conversion, encoders: Sequence[Encoder],
            check: Callable[[], None] | None = None) -> Outcome:
    """Do the job; raise a TranscodeError subclass with a clear reason on any failure."""
    started = time.perf_counter()
    folder = _target_folder(conv)
    if not os.path.exists(conv.wav):
        done = already_done(conv)
        if done is not None:
            return done
        raise MissingWav(f"{conv.wav}: no such file")
    wav = read_wav_info(conv.wav)
    if wav.frames == 0:
        raise EmptyWav(f"{conv.wav}: holds no audio")
    name = Path(conv.mp3).name
    _remove_stale_parts(folder, name)
    tmp = str(folder / f".{name}.{os.getpid()}.part")
    notes = ["WAV header unfinished (writer crashed?); used the file length"] if wav.header_repaired else []
    if wav.truncated_from is not None:
        notes.append(f"WAV truncated: header announces {wav.truncated_from:.2f}s, file holds"
                     f" {wav.duration:.2f}s; converted what is there")
    try:
        used = _encode(wav, tmp, conv, encoders, check, notes)
        write_tags(tmp, conv.tags, conv.job_id)
        try:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        except OSError as exc:
            raise os_error(exc, tmp) from None
        mp3 = read_mp3_info(tmp)
        check_duration(wav, mp3, conv.mp3)
        try:
            os.replace(tmp, conv.mp3)
            _fsync_dir(folder)
        except OSError as exc:
            raise os_error(exc, conv.mp3) from None
    finally:
        if os.path.exists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                log.warning("cannot remove temporary %s", tmp)
    deleted = False
    if conv.delete_wav:
        try:
            os.unlink(conv.wav)
            deleted = True
        except OSError as exc:  # the MP3 is safe; a WAV left behind is only disk space
            notes.append(f"WAV not deleted: {exc.strerror or exc}")
    return Outcome(conv.mp3, round(mp3.duration, 3), round(wav.duration, 3), used,
                   round(time.perf_counter() - started, 4), deleted, notes)


def _encode(wav: WavInfo, tmp: str, conv: Conversion, encoders: Sequence[Encoder],
            check: Callable[[], None] | None, notes: list[str]) -> str:
    """First encoder that works; the next one only for errors it might not share."""
    last: TranscodeError | None = None
    for encoder in encoders:
        try:
            encoder.encode(wav, tmp, conv.bitrate, conv.sample_rate, check)
            return encoder.name
        except (UnsupportedWav, EncoderFailed) as exc:
            notes.append(f"{encoder.name}: {exc.reason}")
            last = exc
    if last is None:
        raise EncoderFailed("no encoder available")
    raise EncoderFailed("; ".join(notes)) if isinstance(last, EncoderFailed) else last


# ---- choosing the encoder --------------------------------------------------------------------

@dataclass
class Choice:
    encoders: list[Encoder]
    speed: dict[str, float]  # realtime factor measured at start (audio s / wall s)
    problems: dict[str, str]


def available_encoders() -> tuple[list[Encoder], dict[str, str]]:
    found: list[Encoder] = []
    problems: dict[str, str] = {}
    for make in (LameEncoder, PydubEncoder):
        try:
            found.append(make())
        except Exception as exc:  # noqa: BLE001  a missing wheel or binary: use the other one
            problems[make.name] = str(exc)
    return found, problems


def measure(encoder: Encoder, seconds: float = 20.0, folder: str | None = None) -> float:
    """Realtime factor of one encode of `seconds` of 8 kHz speech-like noise."""
    import random

    rng = random.Random(7)
    frames = int(8000 * seconds)
    pcm = b"".join(rng.randrange(-6000, 6000).to_bytes(2, "little", signed=True) for _ in range(frames))
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        wav = os.path.join(tmp, "probe.wav")
        write_wav(wav, pcm)
        info = read_wav_info(wav)
        started = time.perf_counter()
        encoder.encode(info, os.path.join(tmp, "probe.mp3"), 32, None)
        return seconds / max(time.perf_counter() - started, 1e-6)


def choose_encoders(seconds: float = 20.0) -> Choice:
    """Measure every available encoder once and order them fastest first."""
    found, problems = available_encoders()
    speed: dict[str, float] = {}
    working: list[Encoder] = []
    for encoder in found:
        try:
            speed[encoder.name] = round(measure(encoder, seconds), 1)
            working.append(encoder)
        except (TranscodeError, OSError) as exc:
            problems[encoder.name] = str(exc)
    working.sort(key=lambda e: -speed[e.name])
    return Choice(working, speed, problems)
