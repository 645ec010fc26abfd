"""WAV -> MP3 on real files: both encoders, tags, verification, and every way it can go wrong."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from mutagen.id3 import ID3

from arimonitor.transcode import encoder as enc_mod
from arimonitor.transcode.encoder import Conversion, choose_encoders, convert
from arimonitor.transcode.encoders import LameEncoder, PydubEncoder
from arimonitor.transcode.errors import (
    Abandoned,
    CorruptWav,
    DiskFull,
    EncoderFailed,
    MissingFolder,
    MissingWav,
    VerifyFailed,
)
from arimonitor.transcode.mp3info import parse_mp3, read_mp3_info
from arimonitor.transcode.wavfile import read_wav_info
from tests.support import ARI
from tests.transcode.audio import decoded_seconds, make_mulaw_wav, make_wav

LAME = LameEncoder()
FFMPEG = PydubEncoder()
TAGS = {"client": "101", "client_name": "Residencial São João", "call_id": "1732480000.42",
        "date": "2026-11-24", "datetime": "2026-11-24T21:22:55", "origin": "1013010", "destination": "1123000"}


def conv(tmp: Path, wav: Path, **kw) -> Conversion:
    root = tmp / "mp3"
    root.mkdir(exist_ok=True)
    kw.setdefault("mp3", str(root / "101" / "2026-11-24" / (wav.stem + ".mp3")))
    return Conversion(job_id="job-1", wav=str(wav), mp3_root=str(root), tags=TAGS, **kw)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*.part")]


@pytest.mark.parametrize("encoder", [LAME, FFMPEG], ids=lambda e: e.name)
def test_mp3_decodes_back_to_the_wav_duration(tmp_path, encoder):
    wav = make_wav(tmp_path / "rec.wav", 12.5)
    out = convert(conv(tmp_path, wav), [encoder])
    assert out.encoder == encoder.name
    assert out.wav_duration == pytest.approx(12.5)
    # decoded by ffmpeg, independent of our own frame walker
    assert decoded_seconds(Path(out.mp3)) == pytest.approx(12.5, abs=0.3)
    info = read_mp3_info(out.mp3)
    assert (info.sample_rate, info.channels, info.bitrate) == (8000, 1, 32)
    assert wav.exists() and not out.wav_deleted
    assert leftovers(tmp_path) == []


def test_id3_tags_name_the_call(tmp_path):
    out = convert(conv(tmp_path, make_wav(tmp_path / "rec.wav", 2)), [LAME])
    id3 = ID3(out.mp3)
    # artist/album: the client's name (nome=), not its number; the full date and time
    assert str(id3["TPE1"]) == str(id3["TALB"]) == "Residencial São João"
    assert str(id3["TDRC"]) == "2026-11-24 21:22:55"
    assert "client 101 Residencial São João at 2026-11-24 21:22:55" in str(id3["COMM::por"])
    assert str(id3["TIT2"]) == "1013010 -> 1123000"
    txxx = {f.desc: str(f.text[0]) for f in id3.getall("TXXX")}
    assert txxx == {**TAGS, "arimonitor_job": "job-1"}
    assert id3.version[:2] == (2, 3)
    parse_mp3(Path(out.mp3).read_bytes())  # the tag does not break the frame chain


@pytest.mark.parametrize("encoder", [LAME, FFMPEG], ids=lambda e: e.name)
def test_stereo_is_mixed_to_mono_and_resampled_when_asked(tmp_path, encoder):
    wav = make_wav(tmp_path / "st.wav", 3, channels=2)
    out = convert(conv(tmp_path, wav, sample_rate=16000), [encoder])
    info = read_mp3_info(out.mp3)
    assert (info.channels, info.sample_rate) == (1, 16000)
    assert decoded_seconds(Path(out.mp3), 16000) == pytest.approx(3, abs=0.3)


def test_real_asterisk_recordings(tmp_path):
    for src in sorted((ARI / "traces" / "recordings").glob("*.wav")):
        wav = tmp_path / src.name
        shutil.copy(src, wav)
        expected = read_wav_info(wav).duration
        out = convert(conv(tmp_path, wav), [LAME])
        assert decoded_seconds(Path(out.mp3)) == pytest.approx(expected, abs=0.3)


def test_delete_wav_only_after_the_check(tmp_path, monkeypatch):
    wav = make_wav(tmp_path / "del.wav", 2)
    out = convert(conv(tmp_path, wav, delete_wav=True), [LAME])
    assert out.wav_deleted and not wav.exists() and Path(out.mp3).exists()

    wav2 = make_wav(tmp_path / "keep.wav", 2)

    def short(wav_info, mp3, name):
        raise VerifyFailed(f"{name}: too short")

    monkeypatch.setattr(enc_mod, "check_duration", short)
    c = conv(tmp_path, wav2, delete_wav=True)
    with pytest.raises(VerifyFailed):
        convert(c, [LAME])
    assert wav2.exists() and not Path(c.mp3).exists() and leftovers(tmp_path) == []


def test_verify_rejects_an_mp3_shorter_than_the_wav(tmp_path, monkeypatch):
    wav = make_wav(tmp_path / "cut.wav", 4)
    real = LameEncoder.encode

    def cut(self, info, out_path, *a, **kw):
        real(self, info, out_path, *a, **kw)
        data = Path(out_path).read_bytes()
        Path(out_path).write_bytes(data[: len(data) // 2])  # torn at a random byte

    monkeypatch.setattr(LameEncoder, "encode", cut)
    with pytest.raises(VerifyFailed, match="byte|lasts"):
        convert(conv(tmp_path, wav, delete_wav=True), [LameEncoder()])
    assert wav.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", ["garbage", "empty", "no_data_chunk", "cut_in_fmt"])
def test_corrupt_wav_is_a_clear_error_and_nothing_is_deleted(tmp_path, damage):
    wav = make_wav(tmp_path / "bad.wav", 3)
    data = wav.read_bytes()
    broken = {"garbage": os.urandom(5000), "empty": b"", "no_data_chunk": data[:36],
              "cut_in_fmt": data[:30]}[damage]
    wav.write_bytes(broken)
    c = conv(tmp_path, wav, delete_wav=True)
    with pytest.raises(CorruptWav) as err:
        convert(c, [LAME, FFMPEG])
    assert str(wav) in err.value.reason
    assert wav.read_bytes() == broken and not Path(c.mp3).exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("encoder", [LAME, FFMPEG], ids=lambda e: e.name)
def test_truncated_wav_converts_what_is_there_with_a_warning(tmp_path, encoder):
    wav = make_wav(tmp_path / "cut.wav", 4)
    data = wav.read_bytes()
    wav.write_bytes(data[: 44 + 8000 * 2 * 2 + 1])  # 2 s and a torn sample of 4 s announced
    out = convert(conv(tmp_path, wav), [encoder])
    assert out.wav_duration == pytest.approx(2) and out.duration == pytest.approx(2, abs=0.2)
    assert any("truncated" in n and "4.00s" in n for n in out.notes), out.notes
    assert decoded_seconds(Path(out.mp3)) == pytest.approx(2, abs=0.2)


def test_unfinished_header_left_by_a_crash_is_recovered(tmp_path):
    wav = make_wav(tmp_path / "crash.wav", 3)
    data = bytearray(wav.read_bytes())
    data[40:44] = b"\0\0\0\0"  # data size never written back
    wav.write_bytes(bytes(data))
    out = convert(conv(tmp_path, wav), [LAME])
    assert out.wav_duration == pytest.approx(3) and "unfinished" in out.notes[0]


def test_non_pcm_wav_goes_to_the_ffmpeg_fallback(tmp_path):
    wav = make_mulaw_wav(tmp_path / "mulaw.wav", 3)
    out = convert(conv(tmp_path, wav), [LAME, FFMPEG])
    assert out.encoder == "ffmpeg" and "lameenc" in out.notes[0]
    assert decoded_seconds(Path(out.mp3)) == pytest.approx(3, abs=0.3)


def test_fallback_when_the_fast_encoder_fails(tmp_path, monkeypatch):
    def broken(self, *a, **kw):
        raise EncoderFailed("lameenc exploded")

    monkeypatch.setattr(LameEncoder, "encode", broken)
    out = convert(conv(tmp_path, make_wav(tmp_path / "f.wav", 2)), [LameEncoder(), FFMPEG])
    assert out.encoder == "ffmpeg"
    monkeypatch.setattr(PydubEncoder, "encode", broken)
    with pytest.raises(EncoderFailed, match="exploded"):
        convert(conv(tmp_path, make_wav(tmp_path / "g.wav", 2)), [LameEncoder(), PydubEncoder()])


def test_disk_full_on_write(tmp_path, monkeypatch):
    wav = make_wav(tmp_path / "full.wav", 2)
    import builtins

    real_open = builtins.open

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def fake_open(path, mode="r", *a, **kw):
        fh = real_open(path, mode, *a, **kw)
        return Full(fh) if str(path).endswith(".part") and "w" in mode else fh

    monkeypatch.setattr(builtins, "open", fake_open)
    c = conv(tmp_path, wav, delete_wav=True)
    with pytest.raises(DiskFull):
        convert(c, [LAME])
    monkeypatch.undo()
    assert wav.exists() and not Path(c.mp3).exists() and leftovers(tmp_path) == []


@pytest.fixture
def tiny_fs(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("encoder", [LAME, FFMPEG], ids=lambda e: e.name)
def test_disk_full_on_a_real_tiny_filesystem(tmp_path, tiny_fs, encoder):
    wav = make_wav(tmp_path / "long.wav", 60)  # ~240 kB of MP3 for a 48 kB filesystem
    c = Conversion(job_id="j", wav=str(wav), mp3=str(tiny_fs / "x" / "long.mp3"),
                   mp3_root=str(tiny_fs), delete_wav=True)
    with pytest.raises(DiskFull):
        convert(c, [encoder])
    assert wav.exists() and leftovers(tiny_fs) == [] and not Path(c.mp3).exists()


def test_missing_folder_and_missing_wav(tmp_path):
    wav = make_wav(tmp_path / "m.wav", 1)
    c = Conversion(job_id="j", wav=str(wav), mp3=str(tmp_path / "gone" / "m.mp3"),
                   mp3_root=str(tmp_path / "gone"))
    with pytest.raises(MissingFolder, match="does not exist"):
        convert(c, [LAME])
    assert not (tmp_path / "gone").exists() and wav.exists()
    with pytest.raises(MissingWav):
        convert(conv(tmp_path, tmp_path / "nope.wav"), [LAME])


def test_resent_job_after_the_wav_was_deleted_reports_done(tmp_path):
    wav = make_wav(tmp_path / "again.wav", 2)
    c = conv(tmp_path, wav, delete_wav=True)
    first = convert(c, [LAME])
    assert first.wav_deleted
    again = convert(c, [LAME])
    assert again.mp3 == first.mp3 and "earlier attempt" in again.notes[0]
    other = Conversion(**{**c.__dict__, "job_id": "someone-else"})
    with pytest.raises(MissingWav):
        convert(other, [LAME])


def test_stale_part_of_a_dead_worker_is_removed(tmp_path):
    wav = make_wav(tmp_path / "s.wav", 1)
    c = conv(tmp_path, wav)
    folder = Path(c.mp3).parent
    folder.mkdir(parents=True)
    stale = folder / f".{Path(c.mp3).name}.999999999.part"
    stale.write_bytes(b"half")
    convert(c, [LAME])
    assert not stale.exists()


def test_abandon_between_chunks(tmp_path):
    wav = make_wav(tmp_path / "a.wav", 30)

    def stop():
        raise Abandoned("stopping")

    with pytest.raises(Abandoned):
        convert(conv(tmp_path, wav), [LAME, FFMPEG], check=stop)
    assert leftovers(tmp_path) == []


def test_choice_puts_the_faster_encoder_first():
    choice = choose_encoders(seconds=5)
    assert [e.name for e in choice.encoders] == sorted(choice.speed, key=lambda n: -choice.speed[n])
    assert set(choice.speed) == {"lameenc", "ffmpeg"} and all(v > 1 for v in choice.speed.values())
