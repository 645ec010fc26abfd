"""ID3 tags of a call recording (mutagen), and reading back which job wrote an MP3."""

from __future__ import annotations

import errno
from collections.abc import Mapping

from mutagen.id3 import COMM, ID3, TALB, TDRC, TIT2, TPE1, TXXX, ID3NoHeaderError

from arimonitor.transcode.errors import DiskFull, WriteFailed

# Tag keys a job may carry (protocol job.tags); anything else is ignored. `client_name` is the
# client's nome= in __CLIENTES__.DEF; `datetime` the call's date and time (ISO, local time).
TAG_KEYS = ("client", "client_name", "call_id", "date", "datetime", "origin", "destination")
JOB_TAG = "arimonitor_job"  # TXXX frame naming the job that wrote the file


def write_tags(path: str, tags: Mapping[str, str], job_id: str) -> None:
    """Prepend an ID3v2.3 tag (the version every player and the web system read)."""
    tags = {k: str(tags.get(k) or "") for k in TAG_KEYS}
    id3 = ID3()
    client, call_id = tags["client"], tags["call_id"]
    origin, destination = tags["origin"], tags["destination"]
    id3.add(TIT2(encoding=3, text=f"{origin} -> {destination}" if origin or destination else call_id))
    # artist/album: the client by name as the web system shows it (its number when it has none)
    who = tags["client_name"] or client
    if who:
        id3.add(TPE1(encoding=3, text=who))
        id3.add(TALB(encoding=3, text=who))
    when = tags["datetime"] or tags["date"]
    if when:
        id3.add(TDRC(encoding=3, text=when))
    named = f"{client} {tags['client_name']}".strip()
    id3.add(COMM(encoding=3, lang="por", desc="",
                 text=f"call {call_id} client {named}" + (f" at {when.replace('T', ' ')}" if when else "")))
    for key in TAG_KEYS:
        if tags[key]:
            id3.add(TXXX(encoding=3, desc=key, text=tags[key]))
    id3.add(TXXX(encoding=3, desc=JOB_TAG, text=job_id))
    try:
        id3.save(path, v2_version=3)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"{path}: no space left writing ID3 tags") from None
        raise WriteFailed(f"{path}: cannot write ID3 tags: {exc.strerror or exc}") from None


def read_tags(path: str) -> dict[str, str]:
    """TXXX tags by description ({} if the file has no ID3 tag)."""
    try:
        id3 = ID3(path)
    except ID3NoHeaderError:
        return {}
    return {frame.desc: str(frame.text[0]) for frame in id3.getall("TXXX") if frame.text}
