"""Command-line commands of the team server: `nbtracker server`, `user`, `project`, `key`.

The admin commands work directly on the database (`--db`, default SQLite in `--data-dir`),
the same one `nbtracker server` serves; a running server sees their changes at once. The
server stack (fastapi, sqlalchemy) is imported only when one of these commands runs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

from .config import DEFAULT_DATA_DIR, MAX_BLOB_BYTES, MAX_REQUEST_BYTES


def add_commands(sub) -> None:
    """Register the server's commands on the `nbtracker` parser."""
    _add_server(sub)
    _add_user(sub)
    _add_project(sub)
    _add_key(sub)


def _db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database URL (sqlite:///path or postgresql://user@host/db; "
                                "default: SQLite in the data dir)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help=f"where blobs (and the default SQLite database) live (default: ./{DEFAULT_DATA_DIR})")


def _add_server(sub) -> None:
    s = sub.add_parser("server", help="run the team server",
                       description="Serve the team HTTP API (migrating the database first). "
                                   "`nbtracker server migrate` only migrates.")
    s.add_argument("action", nargs="?", choices=["migrate"], help="migrate the database and exit")
    _db_options(s)
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0 picks a free one)")
    s.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host header name to accept besides the defaults (repeatable)")
    s.add_argument("--max-request-bytes", type=int, default=MAX_REQUEST_BYTES,
                   help="largest request body, after gzip inflation (default: 8 MiB)")
    s.add_argument("--max-blob-bytes", type=int, default=MAX_BLOB_BYTES,
                   help="largest file upload (default: 1 GiB)")
    s.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    s.set_defaults(fn=cmd_server)


def _add_user(sub) -> None:
    p = sub.add_parser("user", help="manage server users", description="Manage server users.")
    us = p.add_subparsers(dest="action", required=True)
    s = us.add_parser("create", help="create a user and print their API key (once)")
    s.add_argument("name")
    s.add_argument("--admin", action="store_true", help="the user sees every project")
    _db_options(s)
    s = us.add_parser("ls", help="list users")
    _db_options(s)
    s = us.add_parser("disable", help="disable a user (their keys stop working)")
    s.add_argument("name")
    _db_options(s)
    p.set_defaults(fn=cmd_user)


def _add_project(sub) -> None:
    p = sub.add_parser("project", help="manage server projects",
                       description="Manage server projects and their members.")
    ps = p.add_subparsers(dest="action", required=True)
    s = ps.add_parser("create", help="create a project")
    s.add_argument("name")
    s.add_argument("--owner", required=True, help="the user who owns it")
    _db_options(s)
    s = ps.add_parser("ls", help="list projects")
    _db_options(s)
    for action, what in (("add-member", "give a user access"), ("remove-member", "take access away")):
        s = ps.add_parser(action, help=what)
        s.add_argument("project")
        s.add_argument("user")
        _db_options(s)
    p.set_defaults(fn=cmd_project)


def _add_key(sub) -> None:
    p = sub.add_parser("key", help="manage API keys", description="Manage API keys.")
    ks = p.add_subparsers(dest="action", required=True)
    s = ks.add_parser("create", help="create a key for a user and print it (once)")
    s.add_argument("user")
    _db_options(s)
    s = ks.add_parser("ls", help="list keys (public ids only)")
    s.add_argument("user", nargs="?")
    _db_options(s)
    s = ks.add_parser("revoke", help="revoke a key by its public id")
    s.add_argument("id")
    _db_options(s)
    p.set_defaults(fn=cmd_key)


def _config(args):
    from .config import ServerConfig

    return ServerConfig(data_dir=Path(args.data_dir), db=args.db,
                        host=getattr(args, "host", "127.0.0.1"), port=getattr(args, "port", 8080),
                        allowed_hosts=tuple(getattr(args, "allowed_host", ())),
                        max_request_bytes=getattr(args, "max_request_bytes", MAX_REQUEST_BYTES),
                        max_blob_bytes=getattr(args, "max_blob_bytes", MAX_BLOB_BYTES))


def _database(args):
    """A migrated engine for an admin command (announcing a first admin key if it made one)."""
    from .serve import prepare_database

    return prepare_database(_config(args))


def _when(ts: float | None) -> str:
    return "" if ts is None else _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def cmd_server(args) -> int:
    from .serve import prepare_database, serve

    config = _config(args)
    if args.action == "migrate":
        prepare_database(config)
        print("database migrated")
        return 0
    serve(config, log_level=args.log_level)
    return 0


def cmd_user(args) -> int:
    from . import accounts
    from .db import read_transaction, write_transaction

    engine = _database(args)
    if args.action == "create":
        with write_transaction(engine) as conn:
            user, key = accounts.create_user(conn, args.name, admin=args.admin)
        print(f"{user.name} API key: {key}")
        print("  (shown once; `nbtracker login --host URL` stores it on the user's machine)")
    elif args.action == "disable":
        with write_transaction(engine) as conn:
            accounts.disable_user(conn, args.name)
        print(f"user {args.name} disabled")
    else:
        with read_transaction(engine) as conn:
            for u in accounts.list_users(conn):
                flags = ", ".join(f for f in ("admin" if u["admin"] else "",
                                              "disabled" if u["disabled"] else "") if f)
                print(f"{u['name']}\t{_when(u['created'])}\t{flags}")
    return 0


def cmd_project(args) -> int:
    from . import accounts
    from .db import read_transaction, write_transaction

    engine = _database(args)
    if args.action == "ls":
        with read_transaction(engine) as conn:
            for p in accounts.list_projects(conn):
                print(f"{p['name']}\towner {p['owner']}\t{p['runs']} runs")
        return 0
    with write_transaction(engine) as conn:
        if args.action == "create":
            accounts.create_project(conn, args.name, accounts.find_user(conn, args.owner))
            print(f"project {args.name} created, owned by {args.owner}")
        elif args.action == "add-member":
            accounts.add_member(conn, args.project, args.user)
            print(f"{args.user} added to {args.project}")
        else:
            accounts.remove_member(conn, args.project, args.user)
            print(f"{args.user} removed from {args.project}")
    return 0


def cmd_key(args) -> int:
    from . import accounts
    from .db import read_transaction, write_transaction

    engine = _database(args)
    if args.action == "create":
        with write_transaction(engine) as conn:
            key = accounts.create_key(conn, accounts.find_user(conn, args.user))
        print(f"{args.user} API key: {key}")
    elif args.action == "revoke":
        with write_transaction(engine) as conn:
            accounts.revoke_key(conn, args.id)
        print(f"key {args.id} revoked")
    else:
        with read_transaction(engine) as conn:
            for k in accounts.list_keys(conn, args.user):
                state = f"revoked {_when(k['revoked'])}" if k["revoked"] else "active"
                print(f"{k['key_id']}\t{k['user']}\t{_when(k['created'])}\t{state}")
    return 0
