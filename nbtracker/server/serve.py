"""Starting a server process: migrate, create the first admin, bind, serve with uvicorn."""

from __future__ import annotations

import socket
import sys

from . import accounts
from .config import ServerConfig
from .db import create_db_engine, database_url, migration_lock, upgrade, write_transaction


def prepare_database(config: ServerConfig, announce=print):
    """Migrate the schema and, on a database with no user, create `admin` and announce its key
    (once: under the migration lock, so two servers starting together make one admin)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(database_url(config.db, config.data_dir))
    with migration_lock(engine):
        upgrade(engine)
        with write_transaction(engine) as conn:
            key = accounts.create_first_admin(conn)
    if key:
        announce(f"admin API key: {key}")
        announce("  (shown once; create more users with `nbtracker user create NAME`)")
    return engine


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only for
    # sockets that say so, and without it every answer waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(config: ServerConfig, log_level: str = "warning") -> None:
    import uvicorn

    from .app import create_app

    def say(text: str) -> None:
        print(text, flush=True)

    engine = prepare_database(config, say)
    app = create_app(config, engine)
    sock = bind(config.host, config.port)
    port = sock.getsockname()[1]
    shown = f"[{config.host}]" if ":" in config.host else config.host
    say(f"nbtracker server listening on http://{shown}:{port} (data in {config.data_dir.resolve()})")
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False,
                                           proxy_headers=False, server_header=False,
                                           timeout_graceful_shutdown=5))
    server.run(sockets=[sock])
    sys.stdout.flush()
