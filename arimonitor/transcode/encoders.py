"""The two ways to turn a WAV into MP3 bytes on disk.

- `LameEncoder`: LAME in-process (lameenc), the WAV streamed in bounded chunks: memory does not
  grow with the recording's length, no process start per file.
- `PydubEncoder`: pydub's export through the ffmpeg binary of the imageio-ffmpeg wheel. Slower
  (one ffmpeg per file, the whole WAV in memory) but it reads anything ffmpeg reads (GSM
  "WAV49", mu-law, 24-bit...), so it is the fallback.

Both write to the path they are given (a temporary name) and raise typed errors.
"""

from __future__ import annotations

import errno
import subprocess
import warnings
from collections.abc import Callable
from typing import Protocol

from arimonitor.transcode.errors import (
    CorruptWav,
    DiskFull,
    EncoderFailed,
    TranscodeError,
    UnsupportedWav,
    WriteFailed,
)
from arimonitor.transcode.wavfile import WavInfo, iter_pcm

with warnings.catch_warnings():  # audioop is deprecated in 3.11 (pydub imports it too)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

# LAME's own default algorithm quality: the speed/quality middle; both paths use it so the
# measurements compare encoders, not settings.
LAME_QUALITY = 5
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

Check = Callable[[], None]


class Encoder(Protocol):
    name: str

    def encode(self, info: WavInfo, out_path: str, bitrate: int, sample_rate: int | None,
               check: Check | None = None) -> None: ...


def os_error(exc: OSError, path: str) -> TranscodeError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"{path}: no space left on device")
    return WriteFailed(f"{path}: {exc.strerror or exc}")


class LameEncoder:
    name = "lameenc"
    CHUNK_FRAMES = 32768  # ~4 s at 8 kHz: bounded memory, few Python calls

    def __init__(self) -> None:
        import lameenc  # noqa: F401  (fail here, at choice time, if the wheel is missing)

    def encode(self, info: WavInfo, out_path: str, bitrate: int, sample_rate: int | None,
               check: Check | None = None) -> None:
        import lameenc

        if not info.is_pcm16 or info.channels > 2:
            raise UnsupportedWav(f"{info.path}: lameenc path takes 16-bit PCM mono/stereo only")
        encoder = lameenc.Encoder()
        try:
            encoder.set_bit_rate(bitrate)
            encoder.set_in_sample_rate(info.sample_rate)
            encoder.set_channels(1)
            encoder.set_quality(LAME_QUALITY)
            out_rate = sample_rate or (info.sample_rate if info.sample_rate in MP3_RATES else 0)
            if out_rate:
                encoder.set_out_sample_rate(out_rate)  # LAME resamples when it differs
        except Exception as exc:  # noqa: BLE001  lameenc raises RuntimeError on settings LAME refuses
            raise EncoderFailed(f"lameenc refused bitrate {bitrate} / rate {sample_rate}: {exc}") from None
        try:
            with open(out_path, "wb") as out:
                for block in iter_pcm(info, self.CHUNK_FRAMES, check):
                    if info.channels == 2:  # telephony listens in mono: mix, do not drop a side
                        block = audioop.tomono(block, 2, 0.5, 0.5)
                    out.write(encoder.encode(block))
                out.write(encoder.flush())
        except OSError as exc:
            raise os_error(exc, out_path) from None
        except TranscodeError:
            raise
        except Exception as exc:  # noqa: BLE001  anything from the C extension is an encoder failure
            raise EncoderFailed(f"lameenc failed: {exc}") from None


class PydubEncoder:
    name = "ffmpeg"

    def __init__(self, ffmpeg: str | None = None) -> None:
        with warnings.catch_warnings():  # pydub warns when no ffmpeg is on PATH: we set it below
            warnings.simplefilter("ignore")
            from pydub import AudioSegment
        if ffmpeg is None:
            import imageio_ffmpeg

            ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        self.ffmpeg = ffmpeg
        AudioSegment.converter = ffmpeg
        self._segment = AudioSegment

    def _load(self, info: WavInfo):
        if info.is_pcm16 or (info.format_tag == 1 and info.bits in (8, 24, 32)):
            try:
                return self._segment.from_wav(info.path)
            except Exception as exc:  # noqa: BLE001  pydub raises bare errors on bad WAVs
                raise CorruptWav(f"{info.path}: pydub cannot read it: {exc}") from None
        # Not PCM: pydub would need ffprobe (not shipped), so decode with ffmpeg ourselves.
        argv = [self.ffmpeg, "-nostdin", "-v", "error", "-i", info.path,
                "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-"]
        proc = subprocess.run(argv, capture_output=True, check=False)
        if proc.returncode != 0 or not proc.stdout:
            raise CorruptWav(f"{info.path}: ffmpeg cannot decode it: "
                             f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
        return self._segment(data=proc.stdout, sample_width=2, frame_rate=info.sample_rate, channels=1)

    def encode(self, info: WavInfo, out_path: str, bitrate: int, sample_rate: int | None,
               check: Check | None = None) -> None:
        if check is not None:
            check()
        segment = self._load(info).set_channels(1)
        if sample_rate:
            segment = segment.set_frame_rate(sample_rate)
        try:
            segment.export(out_path, format="mp3", bitrate=f"{bitrate}k",
                           parameters=["-compression_level", str(LAME_QUALITY)])
        except OSError as exc:
            raise os_error(exc, out_path) from None
        except Exception as exc:  # noqa: BLE001  pydub's CouldntEncodeError carries ffmpeg's stderr
            text = str(exc)
            if "No space left" in text:
                raise DiskFull(f"{out_path}: no space left on device (ffmpeg)") from None
            raise EncoderFailed(f"ffmpeg export failed: {text.strip()[-300:]}") from None
