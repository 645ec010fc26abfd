"""A lean ARI client for the consumer's hot path: one keep-alive http.client connection.

Same contract and the same error mapping as arimonitor.ari.rest.AriRest (`get`/`post`;
`rest.http_error`: AriAuthError on 401/403, else AriHttpError when Asterisk says no;
AriUnavailable with its kind when it does not answer) at a third of its CPU cost per request (measured:
0.3 ms against 1.0 ms for requests.Session), which is what lets two cores reach 300
originates/s. Not thread-safe: the placer keeps one per worker thread.

A request on a kept-alive connection the server has closed meanwhile is sent again once on a
new connection. For the originate that is safe by construction: its channelId is derived from
the request, so if the first copy did reach Asterisk the second meets a 409.
"""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from arimonitor.ari.rest import AriUnavailable, http_error, no_answer_kind, one_line

_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class LeanAri:
    def __init__(self, base_url: str, user: str, password: str, timeout: float = 5.0) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path
        self.timeout = timeout
        self.user = user
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"LeanAri({self._host}:{self._port}{self._prefix})"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, params: dict | None = None, body: Any = None) -> Any:
        url = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            reused = self._conn is not None
            try:
                conn = self._connection()
                conn.request(method, url, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except _STALE as exc:
                self.close()
                if reused and attempt == 1:
                    continue  # the server closed an idle kept-alive connection
                raise AriUnavailable(method, path, type(exc).__name__, no_answer_kind(exc)) from None
            except TimeoutError:
                self.close()
                raise AriUnavailable(method, path, f"no answer within {self.timeout:g} s",
                                     "timeout") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise AriUnavailable(method, path, type(exc).__name__, no_answer_kind(exc)) from None
        if response.will_close:
            self.close()
        status = response.status
        try:
            decoded = json.loads(payload) if payload else None
        except ValueError:
            decoded = one_line(payload.decode("utf-8", "replace"))
        if status >= 400:
            raise http_error(method, path, status, decoded, self.user)
        return decoded

    def get(self, path: str, params: dict | None = None) -> Any:
        return self.request("GET", path, params)

    def post(self, path: str, params: dict | None = None, body: Any = None) -> Any:
        return self.request("POST", path, params, body)
