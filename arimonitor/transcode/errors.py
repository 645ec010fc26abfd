"""Typed failures of one transcode job.

Each carries a short `code` for the result message and the console, and whether trying again
later can help (`retry`). The WAV is never deleted when any of these is raised.
"""

from __future__ import annotations


class TranscodeError(Exception):
    code = "error"
    retry = True

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CorruptWav(TranscodeError):
    """Not a WAV, a broken header, or fewer bytes than the header announces."""
    code = "corrupt_wav"
    retry = False  # the same bytes will fail the same way


class EmptyWav(CorruptWav):
    """A valid header with no audio (a call hung up as the recording began)."""
    code = "empty_wav"


class UnsupportedWav(TranscodeError):
    """A valid WAV the fast path cannot stream (GSM, mu-law, 24-bit...): use the fallback."""
    code = "unsupported_wav"
    retry = False


class MissingWav(TranscodeError):
    code = "missing_wav"
    retry = True  # a share may come back; attempts are bounded anyway


class FetchFailed(TranscodeError):
    """The WAV of a server on another host could not be fetched over its ARI (down, refused,
    cut mid-file): it stays on that server, and the job is tried again."""
    code = "fetch_failed"
    retry = True


class MissingFolder(TranscodeError):
    """The MP3 root is absent (unmounted?): we do not create it somewhere else."""
    code = "missing_folder"
    retry = True


class DiskFull(TranscodeError):
    code = "disk_full"
    retry = True  # space may be freed; backoff spaces the tries


class WriteFailed(TranscodeError):
    """Any other OS error while writing the MP3 (permissions, I/O error)."""
    code = "write_failed"
    retry = True


class EncoderFailed(TranscodeError):
    code = "encoder_failed"
    retry = True


class VerifyFailed(TranscodeError):
    """The MP3 was written but does not hold the WAV's audio (duration or framing)."""
    code = "verify_failed"
    retry = True


class Abandoned(TranscodeError):
    """The worker is stopping; the job goes back to the queue without counting as a failure."""
    code = "abandoned"
    retry = True


class BadJob(TranscodeError):
    code = "bad_job"
    retry = False
