"""What a server process is started with (`nbtracker server` options)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_DIR = "nbtracker-server"
MAX_REQUEST_BYTES = 8 * 1024 * 1024
MAX_BLOB_BYTES = 1024 * 1024 * 1024
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


@dataclass
class ServerConfig:
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR))
    db: str | None = None  # a database URL; None: SQLite in data_dir
    host: str = "127.0.0.1"
    port: int = 8080
    allowed_hosts: tuple[str, ...] = ()
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_blob_bytes: int = MAX_BLOB_BYTES

    def host_names(self) -> frozenset[str] | None:
        """The Host header names requests may carry (any port), None for any.

        Bound to a loopback address, only loopback names (plus `allowed_hosts`): a web page
        the user visits cannot reach this server through a DNS name of its own (DNS
        rebinding). Bound elsewhere, any name unless `allowed_hosts` lists some."""
        extra = frozenset(h.lower() for h in self.allowed_hosts)
        if is_loopback(self.host):
            return frozenset(LOOPBACK_NAMES) | extra
        return extra or None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
