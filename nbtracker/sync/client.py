"""HTTP client of a team server (`nbtracker server`): one `requests.Session`, the API key as a
Bearer token, timeouts on every call, large JSON bodies gzipped, and failures sorted into what
the uploader does about them:

    Retryable   connection errors, timeouts, 5xx, 429 (with `retry_after` from Retry-After)
    Conflict    409 on a record batch: `next_seq` is the sequence the server expects
    AuthError   401/403: the key is missing, wrong or revoked
    Fatal       any other 4xx: retrying the same request cannot help

`requests` is imported when the first Client is made (on the uploader's thread), never by
`import nbtracker`.
"""

from __future__ import annotations

import gzip
import os
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from .. import __version__
from .credentials import normalise_url, scrub

API = "/api/v1"
GZIP_ABOVE = 64 * 1024  # bytes: smaller bodies go as they are
TIMEOUT = (5.0, 60.0)  # (connect, read) seconds


class UploadError(Exception):
    """A request to the server failed; `reason` is one line fit to show (keys masked)."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(scrub(reason))
        self.reason = scrub(reason)
        self.status = status


class Retryable(UploadError):
    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason, status)
        self.retry_after = retry_after


class Conflict(UploadError):
    def __init__(self, reason: str, next_seq: int):
        super().__init__(reason, 409)
        self.next_seq = next_seq


class AuthError(UploadError):
    pass


class Fatal(UploadError):
    pass


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _detail(resp) -> tuple[str, dict]:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = (resp.text or "").strip().splitlines()[0][:200] if resp.text else ""
    return f"HTTP {resp.status_code}" + (f": {detail}" if detail else ""), body


class Client:
    """A team server at `base_url`, spoken to with `api_key`.

    >>> c = Client("http://127.0.0.1:8080", key)
    >>> c.whoami()
    {'user': 'alice', 'admin': False}
    """

    def __init__(self, base_url: str, api_key: str | None, timeout: tuple = TIMEOUT):
        import requests

        self.base_url = normalise_url(base_url)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = _trust_env(self.base_url)
        self.session.headers["User-Agent"] = f"nbtracker/{__version__}"
        if api_key:
            self.session.auth = _Bearer(api_key)

    def __repr__(self) -> str:  # the session holds the key: never show it
        return f"<Client {self.base_url}>"

    def close(self) -> None:
        self.session.close()

    # -- the one way out ------------------------------------------------------------------
    def request(self, method: str, path: str, *, body: bytes | None = None, json_body: Any = None,
                content_type: str = "application/json", params: dict | None = None,
                stream: bool = False):
        """Send a request; return the response of a 2xx, raise one of the errors above else."""
        headers = {}
        data: Any = body
        if json_body is not None:
            import orjson

            data = orjson.dumps(json_body)
        if data is not None:
            headers["Content-Type"] = content_type
            if isinstance(data, (bytes, bytearray)) and len(data) > GZIP_ABOVE \
                    and content_type == "application/json":
                data = gzip.compress(bytes(data), compresslevel=1)
                headers["Content-Encoding"] = "gzip"
        url = self.base_url + API + path
        import requests

        try:
            resp = self.session.request(method, url, data=data, headers=headers, params=params,
                                        timeout=self.timeout, stream=stream)
        except requests.RequestException as e:
            raise Retryable(f"cannot reach {self.base_url} ({type(e).__name__})") from None
        code = resp.status_code
        if code < 300:
            return resp
        reason, payload = _detail(resp)
        resp.close()
        if code in (401, 403):
            raise AuthError(f"the server refused the API key ({reason})", code)
        if code == 409 and type(payload.get("next_seq")) is int:
            raise Conflict(reason, payload["next_seq"])
        if code == 429 or code >= 500:
            raise Retryable(reason, code, parse_retry_after(resp.headers.get("Retry-After")))
        raise Fatal(reason, code)

    def _json(self, method: str, path: str, **kw: Any) -> dict:
        resp = self.request(method, path, **kw)
        try:
            out = resp.json()
        except ValueError:
            raise Retryable(f"the server answered {method} {path} with something not JSON") from None
        if not isinstance(out, dict):
            raise Retryable(f"the server answered {method} {path} with {type(out).__name__}")
        return out

    # -- routes -------------------------------------------------------------------------
    def whoami(self) -> dict:
        return self._json("GET", "/whoami")

    @staticmethod
    def run_path(project: str, run_id: str) -> str:
        return f"/projects/{quote(project, safe='')}/runs/{quote(run_id, safe='')}"

    def upsert_run(self, project: str, run_id: str, live: bool | None = None,
                   fingerprint: str | None = None) -> dict:
        """Create the run if need be: `{"next_seq", "eseq", "blobs"}`. `live` tells the server
        whether the run's process is alive (None: say nothing); `fingerprint` (the sha256 of
        the log's first line) lets it refuse a different run that has the same id (409)."""
        body: dict = {} if live is None else {"live": live}
        if fingerprint:
            body["fingerprint"] = fingerprint
        return self._json("PUT", self.run_path(project, run_id), json_body=body)

    def post_records(self, project: str, run_id: str, first_seq: int, lines: list[bytes]) -> int:
        """Send record-log lines as they are (no re-encoding); returns the server's next_seq."""
        body = b'{"first_seq":%d,"records":[' % first_seq + b",".join(lines) + b"]}"
        out = self._json("POST", self.run_path(project, run_id) + "/records", body=body)
        return _int(out, "next_seq")

    def post_edits(self, project: str, run_id: str, edits: list[dict]) -> int:
        out = self._json("POST", self.run_path(project, run_id) + "/edits",
                         json_body={"edits": edits})
        return _int(out, "eseq")

    def put_blob(self, project: str, run_id: str, sha256: str, path: os.PathLike | str) -> None:
        with open(path, "rb") as f:
            self.request("PUT", self.run_path(project, run_id) + f"/blobs/{sha256}", body=f,
                         content_type="application/octet-stream").close()

    def run_item(self, project: str, run_id: str) -> dict:
        return self._json("GET", self.run_path(project, run_id))


class _Bearer:
    """requests' auth hook: sets the header on every request (so .netrc cannot replace it)."""

    def __init__(self, key: str):
        self._key = key

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self._key}"
        return r

    def __repr__(self) -> str:
        return "<Bearer>"


def _int(out: dict, key: str) -> int:
    v = out.get(key)
    if type(v) is not int:
        raise Retryable(f"the server's answer has no integer {key!r}")
    return v


def _trust_env(base_url: str) -> bool:
    """Proxies from the environment apply, except to a server on this machine."""
    host = base_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return host not in ("127.0.0.1", "localhost", "::1")
