"""ASGI middleware in front of every route: the Host header check and the body limits.

- `HostCheck` answers 400 to a request whose Host header names a host this server does not
  serve (see `ServerConfig.host_names`), before any route runs.
- `BodyLimit` reads a request body before the route does, at most `max_bytes` of it (413
  beyond, from Content-Length when given, else while reading), inflates a gzip body
  (`Content-Encoding: gzip`) with the same bound on what comes out (413: a gzip bomb never
  inflates past the limit), and hands the route the plain body. Blob uploads (`PUT
  .../blobs/{sha256}`) are streamed by their route instead, under their own limit.
"""

from __future__ import annotations

import re
import zlib

import orjson

_BLOB_PUT = re.compile(r"^/api/v1/projects/[^/]+/runs/[^/]+/blobs/[^/]+$")


async def _answer(send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def host_name(host: str) -> str:
    """The name part of a Host header value (no port), lower case: `[::1]:80` -> `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[:end + 1] if end != -1 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostCheck:
    def __init__(self, app, allowed: frozenset[str] | None):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.allowed is not None:
            host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed:
                if scope["type"] == "http":
                    await _answer(send, 400, "invalid Host header")
                return
        await self.app(scope, receive, send)


class TooLarge(Exception):
    pass


class BadEncoding(Exception):
    pass


def inflate(data: bytes, limit: int) -> bytes:
    """A gzip body inflated, refusing (TooLarge) anything that would exceed `limit` bytes."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise BadEncoding(f"the gzip body does not inflate: {e}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise TooLarge()
    if not d.eof:
        raise BadEncoding("the gzip body is cut short")
    return out


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (scope["method"] == "PUT" and _BLOB_PUT.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await _answer(send, 413, f"the request body is larger than {self.max_bytes} bytes")
            return
        try:
            body = await self._read(receive)
            body = self._decode(headers.get(b"content-encoding", b""), body)
        except TooLarge:
            await _answer(send, 413, f"the request body is larger than {self.max_bytes} bytes")
            return
        except BadEncoding as e:
            await _answer(send, 400, str(e))
            return
        except _Disconnected:
            return
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope.get("headers") or ()
                            if k not in (b"content-encoding", b"content-length")]
        scope["headers"].append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive) -> bytes:
        parts, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise TooLarge()
            parts.append(chunk)
            if not msg.get("more_body"):
                return b"".join(parts)

    def _decode(self, encoding: bytes, body: bytes) -> bytes:
        enc = encoding.decode("latin-1").strip().lower()
        if enc in ("", "identity"):
            return body
        if enc in ("gzip", "x-gzip"):
            return inflate(body, self.max_bytes)
        raise BadEncoding(f"unsupported Content-Encoding {enc!r}; send gzip or none")


class _Disconnected(Exception):
    pass
