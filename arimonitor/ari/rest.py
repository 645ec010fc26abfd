"""A small ARI REST client: one requests.Session, basic auth, a timeout on every request.

Errors come in two kinds an operator reads differently:
- AriHttpError(status, body): Asterisk answered, and said no (404 gone, 409 not in Stasis...).
- AriNotAsterisk (an AriHttpError): something answered, but not Asterisk (wrong [ari] url).
- AriUnavailable(reason): no answer at all (refused, timeout, broken connection).
- AriAuthError (an AriHttpError, 401/403): Asterisk answered and refused our credentials, an
  operator's fix ([ari] user/password, ari.conf), not an outage.
The password lives only in the session's auth; it is never in a message or a repr.
"""

from __future__ import annotations

import re
import time
from typing import Any, BinaryIO

import requests

from arimonitor.config import Config


class AriError(Exception):
    """Base of every ARI REST failure."""


class AriHttpError(AriError):
    def __init__(self, method: str, path: str, status: int, body: Any):
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        detail = body.get("message") or body.get("error") if isinstance(body, dict) else body
        super().__init__(f"{method} {path}: HTTP {status} {detail or ''}".rstrip())


class AriAuthError(AriHttpError):
    """HTTP 401/403: Asterisk is up and refuses the user/password (named, never the password)."""

    def __init__(self, method: str, path: str, status: int, body: Any, user: str):
        super().__init__(method, path, status, body)
        self.user = user
        text = (f"{method} {path}: HTTP {status}: ARI refused user {user!r} "
                "(authentication failed: check [ari] user and password)")
        self.args = (text,)


class AriNotAsterisk(AriHttpError):
    """Something answered on the ARI URL, but not Asterisk's ARI: a wrong [ari] url (host,
    port or the /ari prefix), not a wrong password and not an outage."""

    def __init__(self, method: str, path: str, status: int, body: Any, url: str):
        super().__init__(method, path, status, body)
        self.args = ((f"{method} {path}: HTTP {status}: the server at {url} is not Asterisk's ARI "
                     "(check [ari] url: host, port and the /ari prefix)"),)


# Asterisk's own answers carry these; another server on the port (a web server, a proxy with its
# own login) does not. A 401 from Asterisk: realm "Asterisk REST Interface", JSON body.
ASTERISK_REALM = "Asterisk REST Interface"


def looks_like_asterisk(response: requests.Response) -> bool:
    if response.headers.get("Server", "").startswith("Asterisk"):
        return True
    if ASTERISK_REALM in response.headers.get("WWW-Authenticate", ""):
        return True
    if response.status_code in (401, 403):
        return False
    # an ARI error answer is a JSON object with a message (real captures: 400, 404, 409, 422, 500)
    body = _body(response)
    return isinstance(body, dict) or (response.status_code < 400 and isinstance(body, list))


class AriUnavailable(AriError):
    """No answer. `kind`: "refused" (nothing listens: Asterisk down or restarting), "timeout"
    (a stall), "reset" (the connection dropped mid-request), "other"."""

    def __init__(self, method: str, path: str, reason: str, kind: str = "other"):
        self.method = method
        self.path = path
        self.reason = reason
        self.kind = kind
        super().__init__(f"{method} {path}: Asterisk unavailable ({reason})")


class AriRest:
    """`rest.get("/channels")`; paths are relative to the ARI base URL (…/ari)."""

    def __init__(self, base_url: str, user: str, password: str, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.auth = (user, password)
        self._session.headers["Accept"] = "application/json"
        self.user = user
        # Filled by each request: what the probe and `stats` show.
        self.last_latency = 0.0

    @classmethod
    def from_config(cls, cfg: Config) -> AriRest:
        return cls(cfg["ari.url"], cfg["ari.user"], cfg["ari.password"], cfg["ari.rest_timeout"])

    def __repr__(self) -> str:
        return f"AriRest({self.base_url!r}, user={self.user!r})"

    def request(self, method: str, path: str, params: dict | None = None, body: Any = None,
                timeout: float | None = None) -> Any:
        response = self._answer(method, path, params, body, timeout)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AriHttpError(method, path, response.status_code,
                               f"answer is not JSON: {one_line(response.text)!r}") from None

    def download(self, path: str, dest: BinaryIO, timeout: float | None = None) -> int:
        """GET a file's bytes (`/recordings/stored/{name}/file`) into `dest`; how many.
        A connection cut mid-body is AriUnavailable (the caller keeps no partial file)."""
        response = self._answer("GET", path, None, None, timeout, stream=True)
        size = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                dest.write(chunk)
                size += len(chunk)
        except requests.RequestException as exc:
            raise AriUnavailable("GET", path, "cut mid-file: " + type(exc).__name__ + _short(exc),
                                 _no_answer_kind(exc)) from None
        finally:
            response.close()
        return size

    def _answer(self, method: str, path: str, params: dict | None, body: Any,
                timeout: float | None, stream: bool = False) -> requests.Response:
        """The response of a request Asterisk answered below 400; the errors mapped."""
        url = f"{self.base_url}{path}"
        started = time.monotonic()
        try:
            response = self._session.request(method, url, params=params, json=body,
                                             timeout=timeout or self.timeout, stream=stream)
        except requests.Timeout:
            raise AriUnavailable(method, path, f"no answer within {timeout or self.timeout:g} s",
                                 "timeout") from None
        except requests.RequestException as exc:
            kind = _no_answer_kind(exc)
            reason = {"refused": "connection refused", "reset": "connection reset"}.get(kind)
            raise AriUnavailable(method, path, reason or type(exc).__name__ + _short(exc), kind) from None
        finally:
            self.last_latency = time.monotonic() - started
        if not looks_like_asterisk(response):
            raise AriNotAsterisk(method, path, response.status_code, _body(response), self.base_url)
        if response.status_code >= 400:
            raise http_error(method, path, response.status_code, _body(response), self.user)
        return response

    def get(self, path: str, params: dict | None = None, timeout: float | None = None) -> Any:
        return self.request("GET", path, params=params, timeout=timeout)

    def post(self, path: str, params: dict | None = None, body: Any = None) -> Any:
        return self.request("POST", path, params=params, body=body)

    def delete(self, path: str, params: dict | None = None) -> Any:
        return self.request("DELETE", path, params=params)

    # ---- the few operations the engine itself needs ---------------------------------------

    def asterisk_info(self, timeout: float | None = None) -> dict:
        return self.get("/asterisk/info", timeout=timeout)

    def endpoints(self) -> list[dict]:
        return self.get("/endpoints")

    def channels(self) -> list[dict]:
        return self.get("/channels")

    def bridges(self) -> list[dict]:
        return self.get("/bridges")

    def continue_in_dialplan(self, channel_id: str) -> None:
        self.post(f"/channels/{_quote(channel_id)}/continue")

    def close(self) -> None:
        self._session.close()


def http_error(method: str, path: str, status: int, body: Any, user: str) -> AriHttpError:
    """The one mapping of an HTTP error answer (both ARI clients): 401/403 is AriAuthError."""
    if status in (401, 403):
        return AriAuthError(method, path, status, body, user)
    return AriHttpError(method, path, status, body)


def no_answer_kind(exc: BaseException) -> str:
    """What kind of "no answer" an exception of either client's transport is."""
    if isinstance(exc, (TimeoutError, requests.Timeout)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return _no_answer_kind(exc)


def _quote(part: str) -> str:
    return requests.utils.quote(part, safe="")


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return one_line(response.text)


_TAG = re.compile(r"<[^>]*>")
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.IGNORECASE | re.DOTALL)


def one_line(text: str, limit: int = 200) -> str:
    """A non-JSON answer as one short line: Asterisk's HTML error page (a 503 "Shutdown in
    progress" while it restarts) becomes "Service Unavailable: Shutdown in progress"."""
    title, paragraph = _TITLE.search(text), _PARAGRAPH.search(text)
    if title or paragraph:
        parts = [m.group(1) for m in (title, paragraph) if m]
        parts = [" ".join(_TAG.sub(" ", p).split()) for p in parts]
        text = ": ".join(p for p in parts if p)
        text = text.split(" ", 1)[1] if title and text[:3].isdigit() else text  # "503 Service…"
    return " ".join(text.split())[:limit]


def _no_answer_kind(exc: BaseException) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "refused"
    if "reset" in text or "aborted" in text or "remotedisconnected" in text:
        return "reset"
    return "other"


def _short(exc: Exception) -> str:
    # requests puts the URL (never the password: auth is a header) in its messages; keep it short.
    text = str(exc)
    return f": {text[:160]}" if text else ""
