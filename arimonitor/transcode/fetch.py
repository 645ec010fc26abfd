"""WAVs of an Asterisk on another host, fetched over its ARI (a worker's side of a job).

A job whose `fetch` names a server and a stored recording has no WAV on this host: the worker
GETs `/recordings/stored/{name}/file` into the job's `wav` path (a temporary name, then a
rename, so a cut transfer never looks like a WAV), converts and verifies it like any other,
and only then DELETEs `/recordings/stored/{name}` on that server. A failed fetch is a
retryable job error (the recording stays on the server); a failed delete is a note on a done
job (the MP3 is safe; the WAV only takes space there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from arimonitor.ari.rest import AriError, AriHttpError, AriRest
from arimonitor.transcode.errors import FetchFailed, MissingWav


def _q(part: str) -> str:
    from requests.utils import quote

    return quote(part, safe="")


class Fetcher:
    """One ARI REST client per server, made at its first job (`cfg.for_server(name)`)."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self._rest: dict[str, AriRest] = {}

    def rest(self, server: str) -> AriRest:
        rest = self._rest.get(server)
        if rest is None:
            rest = self._rest[server] = AriRest.from_config(self.cfg.for_server(server))
        return rest

    def fetch(self, server: str, name: str, wav: str) -> int:
        """The stored recording `name` of `server` into `wav`; its size in bytes."""
        folder = Path(wav).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FetchFailed(f"{folder}: {exc.strerror or exc}") from None
        tmp = folder / f".{Path(wav).name}.{os.getpid()}.part"
        try:
            with open(tmp, "wb") as out:
                size = self.rest(server).download(f"/recordings/stored/{_q(name)}/file", out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, wav)
        except AriHttpError as exc:
            if exc.status == 404:
                raise MissingWav(f"{name}: not stored on {server} (404)") from None
            raise FetchFailed(f"{name} from {server}: {exc}") from None
        except AriError as exc:
            raise FetchFailed(f"{name} from {server}: {exc}") from None
        except OSError as exc:
            raise FetchFailed(f"{wav}: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return size

    def delete(self, server: str, name: str) -> str | None:
        """DELETE the stored recording on `server`; None when gone, else why it is kept there."""
        try:
            self.rest(server).delete(f"/recordings/stored/{_q(name)}")
        except AriHttpError as exc:
            if exc.status != 404:  # 404: an earlier attempt deleted it already
                return f"WAV kept on {server}: {exc}"
        except AriError as exc:
            return f"WAV kept on {server}: {exc}"
        return None

    def close(self) -> None:
        for rest in self._rest.values():
            rest.close()
