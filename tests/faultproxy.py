"""A fault-injecting HTTP proxy on loopback, for upload tests.

    proxy = FaultProxy(upstream_url, decide)      # decide(method, path, n) -> action
    ... client talks to proxy.url ...
    proxy.stop()

One request per client connection (forwarded with `Connection: close`, so the client opens a new
connection for the next one). Actions:

    "pass"          forward, answer what the server answered
    "drop_before"   close the client's connection before the server sees the request
    "drop_after"    forward (the server handles and commits it), then close the client's
                    connection without an answer: the answer is lost
    "dup"           forward the request twice, answer the second answer
    ("status", code, retry_after)   answer `code` without forwarding (`retry_after` or None)
    ("delay", seconds)              wait, then forward
    "reset"         forward nothing, reset the connection (RST)

`proxy.log` lists (method, path, action) for every request seen.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

Action = object


class FaultProxy:
    def __init__(self, upstream: str, decide: Callable[[str, str, int], Action] | None = None):
        u = urlsplit(upstream)
        self.up_host, self.up_port = u.hostname or "127.0.0.1", u.port or 80
        self.decide = decide or (lambda m, p, n: "pass")
        self.log: list[tuple[str, str, object]] = []
        self._n = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        try:
            self._sock.close()
        except OSError:
            pass

    def actions(self, path_part: str = "") -> list:
        return [a for m, p, a in self.log if path_part in p]

    # -- plumbing ------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            req = _read_request(conn)
            if req is None:
                return
            head, body = req
            method, path = head.split(b" ", 2)[:2]
            method_s, path_s = method.decode(), path.decode()
            with self._lock:
                self._n += 1
                n = self._n
            action = self.decide(method_s, path_s, n)
            self.log.append((method_s, path_s, action))
            data = self._rewrite(head) + body
            if action == "drop_before":
                return
            if action == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if isinstance(action, tuple) and action[0] == "status":
                code, retry_after = action[1], action[2] if len(action) > 2 else None
                extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
                msg = b'{"detail":"injected"}'
                conn.sendall(f"HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(msg)}\r\n{extra}Connection: close\r\n\r\n"
                             .encode() + msg)
                return
            if isinstance(action, tuple) and action[0] == "delay":
                time.sleep(action[1])
            answer = self._forward(data)
            if action == "dup":
                answer = self._forward(data)
            if action == "drop_after":
                return
            conn.sendall(answer)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _rewrite(self, head: bytes) -> bytes:
        lines = head.split(b"\r\n")
        out = [lines[0]]
        for line in lines[1:]:
            name = line.split(b":", 1)[0].strip().lower()
            if name in (b"host", b"connection", b"keep-alive"):
                continue
            if line:
                out.append(line)
        out.append(f"Host: {self.up_host}:{self.up_port}".encode())
        out.append(b"Connection: close")
        return b"\r\n".join(out) + b"\r\n\r\n"

    def _forward(self, data: bytes) -> bytes:
        with socket.create_connection((self.up_host, self.up_port), timeout=60) as s:
            s.sendall(data)
            chunks = []
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
        return b"".join(chunks)


def _read_request(conn: socket.socket) -> tuple[bytes, bytes] | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = conn.recv(65536)
        if not c:
            return None
        buf += c
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        c = conn.recv(65536)
        if not c:
            return None
        rest += c
    return head, rest[:length]


def chaos(seed: int, rate: float = 0.4, only: str = "/records", max_in_a_row: int = 3):
    """A `decide` that injects every kind of fault into requests whose path holds `only`,
    at `rate`, never more than `max_in_a_row` faults in a row (so uploads progress). The first
    faults are one of each kind, in a random order; then kinds are drawn at random."""
    rng = random.Random(seed)
    kinds = ["drop_before", "drop_after", "dup", ("status", 500), ("status", 503),
             ("status", 429, "0.05"), ("delay", 0.3), "reset"]
    first = rng.sample(kinds, len(kinds))
    streak = [0]
    lock = threading.Lock()

    def decide(method: str, path: str, n: int):
        with lock:
            if only not in path or streak[0] >= max_in_a_row or rng.random() >= rate:
                streak[0] = 0
                return "pass"
            streak[0] += 1
            return first.pop() if first else kinds[rng.randrange(len(kinds))]

    return decide
