"""Alerts: recorded in the run, rate-limited per title, delivered to webhooks in the background.

`run.alert(title, text, level, wait_duration)` writes an `alert` record first (durable, shown
by the live panel through `run._emit("alert", rec)`), then queues its delivery. One daemon
thread per run (started with the first delivery) POSTs it to each channel from the settings:

    alert_webhooks        generic webhook: {"title", "text", "level", "ts",
                          "run": {"id", "name", "project", "url"?}}
    alert_slack_webhooks  Slack incoming webhook: {"text": fallback, "blocks": [...]}

Each attempt's outcome is an `alert_delivery` record: {"title", "alert_seq", "channel":
"webhook"|"slack", "target": host (never the URL's path or query, which often hold a secret),
"ok", "attempts", "error"?}.

Rate limit (as wandb's): an alert whose title was last sent less than `wait_duration` ago (this
call's; default 60 s, and as in wandb 0 means the default) is recorded with "suppressed": true
and not delivered.

Target rules (unless `alert_allow_private`): http or https only; every address the host
resolves to must be public — no private, loopback, link-local, multicast, reserved,
unspecified, shared (100.64/10), IPv6 unique-local or link-local address, nor such an IPv4
address embedded in IPv6 (mapped, 6to4, NAT64, Teredo). Cloud metadata endpoints are refused
even with `alert_allow_private`. The connection goes to the address that was checked (the host
is resolved once per attempt and the socket opened to that IP; https still sends the host
name for SNI and checks the certificate against it), so a DNS answer that changes between
check and connect cannot redirect it. Redirects are never followed (a 3xx is a failure).
Proxy settings (HTTPS_PROXY...) are not used: the checked address is the one connected to.

Retries: connection errors, timeouts, 408/425/429 and 5xx are retried (ATTEMPTS in all,
exponential backoff, Retry-After honoured up to MAX_BACKOFF). A failure is one warning per
target; a refused target is one warning; the run goes on. `finish()` waits up to
DRAIN_SECONDS for the queue to empty, then leaves what is left.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from . import output

LEVELS = ("INFO", "WARN", "ERROR")
DEFAULT_WAIT = 60.0  # seconds, wandb's default wait_duration
ATTEMPTS = 4
BACKOFF = 0.5  # seconds before the first retry, doubled each time
MAX_BACKOFF = 8.0
TIMEOUT = 5.0  # seconds per connect and per read
DRAIN_SECONDS = 3.0  # finish() waits at most this long for queued deliveries
MAX_QUEUE = 1000  # deliveries waiting; beyond this new ones are dropped (one warning)

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata",
                            "instance-data", "instance-data.ec2.internal"})
METADATA_ADDRS = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.169.253", "100.100.100.200",
    "fd00:ec2::254", "fd00:ec2::23"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """A target the rules do not allow; not retried."""


@dataclass(frozen=True)
class Channel:
    kind: str  # "webhook" | "slack"
    scheme: str
    host: str  # lower-case host name or address, no port: what records and warnings show
    port: int
    target: str  # path and query: never shown
    auth: str | None  # an Authorization header from user:password in the URL


def parse_channel(kind: str, url: str) -> Channel:
    """A channel from a configured URL; ValueError (without the URL's path) when unusable."""
    try:
        u = urlsplit(str(url).strip())
        port = u.port
    except ValueError:
        raise ValueError("not a valid URL") from None
    scheme = u.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"only http and https URLs are allowed, not {scheme or 'no scheme'!r}")
    host = (u.hostname or "").rstrip(".")
    if not host:
        raise ValueError("the URL has no host")
    auth = None
    if u.username is not None:
        cred = f"{unquote(u.username)}:{unquote(u.password or '')}".encode()
        auth = "Basic " + base64.b64encode(cred).decode()
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    return Channel(kind, scheme, host, port or (443 if scheme == "https" else 80), target, auth)


def _embedded_v4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, 6to4, Teredo client, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    v4 = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
    if v4 is None and ip in _NAT64:
        v4 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return v4


def address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                    allow_private: bool) -> str | None:
    """Why `ip` may not be reached (None if it may)."""
    embedded = _embedded_v4(ip)
    if ip in METADATA_ADDRS or embedded in METADATA_ADDRS:
        return "a cloud metadata address"
    if allow_private:
        return None
    if embedded is not None:
        why = address_problem(embedded, allow_private)
        if why:
            return f"{why} (embedded in an IPv6 address)"
        if ip.ipv4_mapped:  # ::ffff:0:0/96 is not "global" itself; the IPv4 address decides
            return None
    for what, bad in (("a loopback", ip.is_loopback), ("a link-local", ip.is_link_local),
                      ("a multicast", ip.is_multicast), ("an unspecified", ip.is_unspecified),
                      ("a shared (CGNAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
                      ("a reserved", ip.is_reserved), ("a private", ip.is_private),
                      ("a non-public", not ip.is_global)):
        if bad:
            return f"{what} address"
    return None


def resolve(ch: Channel, allow_private: bool) -> list[str]:
    """The addresses of `ch.host` that may be connected to; Refused when any of them may not
    (a host that answers with a public and a private address is refused as a whole)."""
    if ch.host.lower() in METADATA_HOSTS:
        raise Refused(f"{ch.host} is a cloud metadata endpoint")
    infos = socket.getaddrinfo(ch.host, ch.port, type=socket.SOCK_STREAM)
    addrs: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        a = str(sockaddr[0]).split("%", 1)[0]
        why = address_problem(ipaddress.ip_address(a), allow_private)
        if why:
            extra = "" if "metadata" in why else \
                " (set alert_allow_private, NBTRACKER_ALERT_ALLOW_PRIVATE=true, to allow it)"
            raise Refused(f"{ch.host} resolves to {a}, {why}{extra}")
        if a not in addrs:
            addrs.append(a)
    if not addrs:
        raise OSError(f"{ch.host} has no address")
    return addrs


@functools.cache
def _connections() -> tuple[type, type]:
    """HTTP and HTTPS connections pinned to a checked address (http.client and ssl are
    imported here, on the delivering thread: not at init)."""
    import http.client

    class PinnedHTTP(http.client.HTTPConnection):
        """Connects to the checked address; the Host header still names the host."""

        def __init__(self, host: str, port: int, ip: str, timeout: float):
            super().__init__(host, port, timeout=timeout)
            self._ip = ip

        def connect(self) -> None:
            self.sock = socket.create_connection((self._ip, self.port), self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    class PinnedHTTPS(http.client.HTTPSConnection):
        """As PinnedHTTP, with TLS: SNI and the certificate check use the host name."""

        def __init__(self, host: str, port: int, ip: str, timeout: float, context: Any):
            super().__init__(host, port, timeout=timeout, context=context)
            self._ip = ip

        def connect(self) -> None:
            sock = socket.create_connection((self._ip, self.port), self.timeout)
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)

    return PinnedHTTP, PinnedHTTPS


def post(ch: Channel, ip: str, body: bytes, timeout: float) -> tuple[int, str | None]:
    """POST `body` to the channel at address `ip`: (status, Retry-After header)."""
    import ssl

    http_cls, https_cls = _connections()
    if ch.scheme == "https":
        conn = https_cls(ch.host, ch.port, ip, timeout, ssl.create_default_context())
    else:
        conn = http_cls(ch.host, ch.port, ip, timeout)
    from .._version import __version__

    headers = {"Content-Type": "application/json", "User-Agent": f"nbtracker/{__version__}"}
    if ch.auth:
        headers["Authorization"] = ch.auth
    try:
        conn.request("POST", ch.target, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read(1 << 16)
        return resp.status, resp.getheader("Retry-After")
    finally:
        conn.close()


# -- payloads ---------------------------------------------------------------------------------
def run_info(run: Any) -> dict:
    info = {"id": run.id, "name": run.name, "project": run.project}
    base = getattr(run.settings, "base_url", None)
    if run.mode == "online" and base:
        info["url"] = f"{str(base).rstrip('/')}/api/v1/projects/{run.project}/runs/{run.id}"
    return info


def webhook_body(rec: dict, run: dict) -> dict:
    return {"title": rec["title"], "text": rec["text"], "level": rec["level"], "run": run,
            "ts": rec.get("ts")}


_EMOJI = {"INFO": ":information_source:", "WARN": ":warning:", "ERROR": ":rotating_light:"}


def _slack_escape(s: str) -> str:
    # Slack reads <...> as links and mentions (<!channel>): user text must not make any
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(rec: dict, run: dict) -> dict:
    """What a Slack incoming webhook takes: `text` (the notification's fallback) and blocks."""
    title, text, level = rec["title"], rec["text"], rec["level"]
    where = f"run {run['name']} ({run['id']}) in {run['project']}"
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150] or "alert"}},
    ]
    if text:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": _slack_escape(text)[:3000]}})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _slack_escape(f"{_EMOJI[level]} {level} · {where}")}]})
    fallback = f"[{level}] {title}: {text}" if text else f"[{level}] {title}"
    return {"text": _slack_escape(fallback)[:3000], "blocks": blocks}


# -- arguments --------------------------------------------------------------------------------
def level_of(level: Any, warn) -> str:
    if level is None:
        return "INFO"
    s = str(getattr(level, "value", level)).strip().upper()
    s = {"WARNING": "WARN", "CRITICAL": "ERROR", "FATAL": "ERROR"}.get(s, s)
    if s not in LEVELS:
        warn("alert-level", f"alert() level must be INFO, WARN or ERROR, not {level!r}; using INFO")
        return "INFO"
    return s


def seconds_of(wait: Any, warn) -> float:
    if wait is None:
        return DEFAULT_WAIT
    if isinstance(wait, timedelta):
        secs = wait.total_seconds()
    elif isinstance(wait, (int, float)) and not isinstance(wait, bool):
        secs = float(wait)
    else:
        secs = -1.0
    if not secs >= 0 or secs == float("inf"):
        warn("alert-wait", f"alert() wait_duration must be seconds (a number or a timedelta), "
             f"not {wait!r}; using {DEFAULT_WAIT:g} s")
        return DEFAULT_WAIT
    return secs or DEFAULT_WAIT  # as wandb: 0 means the default


# -- the part ---------------------------------------------------------------------------------
def start(run: Any) -> Alerts:
    """The run's alerts: rate limits always; delivery when channels are configured."""
    s = run.settings
    channels: list[Channel] = []
    for kind, urls in (("webhook", getattr(s, "alert_webhooks", None) or []),
                       ("slack", getattr(s, "alert_slack_webhooks", None) or [])):
        for i, url in enumerate(urls):
            try:
                channels.append(parse_channel(kind, url))
            except ValueError as e:
                run._warn_once(f"alert-url:{kind}:{i}", f"alert {kind} #{i + 1} is not used: {e}")
    part = Alerts(run, channels, bool(getattr(s, "alert_allow_private", False)))
    run._alerts = part
    return part


class Alerts:
    """A run's alerts: rate limits, the `alert` records, and their delivery queue."""

    def __init__(self, run: Any, channels: list[Channel], allow_private: bool = False):
        self._run = run
        self.channels = channels
        self.allow_private = allow_private
        self._last: dict[str, float] = {}  # title -> when an alert of it was last sent
        self._queue: deque = deque()
        self._cv = threading.Condition()
        self._busy = False
        self._closed = False
        self._deadline: float | None = None  # set by close(): give up retrying after it
        self._thread: threading.Thread | None = None
        self._run_info: dict | None = None

    # -- recording ------------------------------------------------------------------------------
    def alert(self, title: Any, text: Any = "", level: Any = None,
              wait_duration: Any = None) -> dict | None:
        """Record an alert and queue its delivery; the record, or None if the run is closed."""
        run = self._run
        lvl = level_of(level, run._warn_once)
        wait = seconds_of(wait_duration, run._warn_once)
        rec: dict[str, Any] = {"t": "alert", "title": str(title), "text": str(text),
                               "level": lvl, "wait_duration": wait}
        with run._mutex:
            if run._done:
                run._closed_call("alert")
                return None
            now = time.monotonic()
            last = self._last.get(rec["title"])
            if last is not None and now - last < wait:
                rec["suppressed"] = True
            else:
                self._last[rec["title"]] = now
            run._append(rec)
            run._state.alerts.append({k: v for k, v in rec.items() if k not in ("t", "seq")})
        run._emit("alert", dict(rec))
        output.debug(f"alert [{lvl}] {rec['title']}: {rec['text']}"
                     + (" (suppressed: sent less than wait_duration ago)"
                        if rec.get("suppressed") else ""), run._debug_path)
        if not rec.get("suppressed"):
            self._submit(rec)
        return rec

    def _submit(self, rec: dict) -> None:
        if not self.channels:
            return
        with self._cv:
            if self._closed:
                return
            if len(self._queue) + len(self.channels) > MAX_QUEUE:
                self._run._warn_once("alert-queue", f"more than {MAX_QUEUE} alert deliveries are "
                                     "waiting; newer alerts are recorded but not delivered")
                return
            for ch in self.channels:
                self._queue.append((rec, ch))
            self._cv.notify_all()
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._cv:
            if self._thread is not None and self._thread.is_alive():
                return
            t = threading.Thread(target=self._loop, name=f"nbtracker-alerts-{self._run.id}",
                                 daemon=True)
            try:
                t.start()
            except RuntimeError:  # at interpreter shutdown no thread starts: close() delivers
                return
            self._thread = t

    # -- delivering -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return
                rec, ch = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(rec, ch)
            except Exception as e:  # never let the thread die with deliveries queued
                output.debug(f"alert delivery failed: {e}", self._run._debug_path)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _deliver(self, rec: dict, ch: Channel) -> None:
        run = self._run
        if self._run_info is None:
            self._run_info = run_info(run)
        payload = (slack_body if ch.kind == "slack" else webhook_body)(rec, self._run_info)
        body = json.dumps(payload, ensure_ascii=False).encode()
        ok, error, attempts = self._attempts(ch, body)
        result: dict[str, Any] = {"t": "alert_delivery", "title": rec["title"],
                                  "alert_seq": rec.get("seq"), "channel": ch.kind,
                                  "target": ch.host, "ok": ok, "attempts": attempts}
        if error:
            result["error"] = error
        with run._mutex:
            if not run._done:
                run._append(result)
        if self._closed:  # finish() stopped waiting for it and said so: no late warning
            output.debug(f"alert {rec['title']!r} to {ch.kind} {ch.host} after finish: "
                         f"{'delivered' if ok else error}", run._debug_path)
        elif ok:
            output.debug(f"alert {rec['title']!r} delivered to {ch.kind} {ch.host}", run._debug_path)
        elif error.startswith("refused"):
            run._warn_once(f"alert-refused:{ch.kind}:{ch.host}", f"alert {ch.kind} {ch.host} is "
                           f"not used: {error[len('refused: '):]}")
        else:
            run._warn_once(f"alert-failed:{ch.kind}:{ch.host}",
                           f"alert {rec['title']!r} could not be delivered to {ch.kind} {ch.host} "
                           f"({error}); the run goes on, and later alerts are still tried")

    def _attempts(self, ch: Channel, body: bytes) -> tuple[bool, str, int]:
        """(ok, error, attempts made)."""
        from http.client import HTTPException

        error = ""
        delay = 0.0
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                if not self._sleep(delay):
                    return False, f"{error}; gave up when the run finished", attempt - 1
            delay = min(MAX_BACKOFF, BACKOFF * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
            try:
                addrs = resolve(ch, self.allow_private)
            except Refused as e:
                return False, f"refused: {e}", attempt
            except OSError as e:
                error = f"cannot resolve {ch.host}: {e.strerror or e}"
                continue
            status, retry_after, error = 0, None, ""
            for ip in addrs:
                try:
                    status, retry_after = post(ch, ip, body, self._timeout())
                    break
                except (OSError, HTTPException) as e:
                    error = _describe(e)
            if not status:
                continue
            if 200 <= status < 300:
                return True, "", attempt
            if 300 <= status < 400:
                return False, f"HTTP {status}: redirects are not followed", attempt
            error = f"HTTP {status}"
            if status not in (408, 425, 429) and status < 500:
                return False, error, attempt
            if retry_after:
                try:
                    delay = min(MAX_BACKOFF, max(0.0, float(retry_after)))
                except ValueError:
                    pass
        return False, error, ATTEMPTS

    def _timeout(self) -> float:
        if self._deadline is None:
            return TIMEOUT
        return max(0.2, min(TIMEOUT, self._deadline - time.monotonic()))

    def _sleep(self, seconds: float) -> bool:
        """Wait before a retry; False when the run's finish leaves no time for it."""
        end = time.monotonic() + seconds
        with self._cv:
            while True:
                if self._deadline is not None and end > self._deadline:
                    return False
                left = end - time.monotonic()
                if left <= 0:
                    return True
                self._cv.wait(left)

    # -- the end --------------------------------------------------------------------------------
    def close(self, state: str) -> None:
        """At finish: the run's own end alert (alert_on_finish / alert_on_failure), then wait up
        to DRAIN_SECONDS for queued deliveries."""
        s = self._run.settings
        run = self._run
        elapsed = _duration(time.time() - getattr(run, "_started", time.time()))
        where = f"in project {run.project}"
        if state == "finished" and getattr(s, "alert_on_finish", False):
            self.alert(f"Run {run.name} finished", f"Run {run.name} ({run.id}) {where} finished "
                       f"after {elapsed}.", "INFO")
        elif state in ("failed", "crashed", "interrupted") and getattr(s, "alert_on_failure", False):
            self.alert(f"Run {run.name} {state}", f"Run {run.name} ({run.id}) {where} {state} "
                       f"after {elapsed}.", "WARN" if state == "interrupted" else "ERROR")
        self.drain(DRAIN_SECONDS)

    def drain(self, seconds: float) -> bool:
        """Wait up to `seconds` for the queue to empty; then stop. True if it emptied."""
        deadline = time.monotonic() + seconds
        with self._cv:
            self._deadline = deadline
            self._cv.notify_all()
            pending = bool(self._queue)
        if pending and (self._thread is None or not self._thread.is_alive()):
            self._loop_inline(deadline)
        with self._cv:
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._cv.wait(deadline - time.monotonic())
            emptied = not (self._queue or self._busy)
            left = len(self._queue) + self._busy
            self._queue.clear()
            self._closed = True
            self._cv.notify_all()
        if left:
            self._run._warn_once("alert-left", f"{left} alert deliveries were still waiting "
                                 "when the run finished; they are recorded but not delivered")
        return emptied

    def _loop_inline(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            with self._cv:
                if not self._queue:
                    return
                rec, ch = self._queue.popleft()
            try:
                self._deliver(rec, ch)
            except Exception as e:
                output.debug(f"alert delivery failed: {e}", self._run._debug_path)


def _describe(e: BaseException) -> str:
    import ssl

    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {e.verify_message or e}"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return f"{type(e).__name__}: {e}"


def _duration(secs: float) -> str:
    secs = max(0, int(secs))
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s" if m else f"{s}s"
