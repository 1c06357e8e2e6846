"""Command-line commands of the client: `nbtracker login`, `nbtracker sync`."""

from __future__ import annotations

import argparse
import sys


def add_commands(sub) -> None:
    """Register the client's commands on the `nbtracker` parser."""
    s = sub.add_parser(
        "login", help="store an API key for a team server",
        description="Check an API key against a team server (nbtracker server) and store it "
        "(<store root>/credentials.json, mode 0600); the server becomes the default, so runs "
        "upload while they log. The key is read from --key, else from stdin when it is not a "
        "terminal, else asked for without echo.")
    s.add_argument("--host", help="server address, e.g. http://127.0.0.1:8080 (default: the "
                   "configured server)")
    s.add_argument("--key", help="the API key (prefer stdin or the prompt: command lines are "
                   "visible to other users of the machine)")
    s.set_defaults(fn=cmd_login)

    s = sub.add_parser(
        "sync", help="upload runs to the team server",
        description="Upload runs that are not running any more (made offline, or left behind "
        "by a network cut or a killed process) to the configured server, each from where its "
        "last upload stopped. Runs still being written are skipped. Exit status 1 when a run "
        "could not be uploaded.")
    s.add_argument("runs", nargs="*", metavar="RUN", help="run directory, project/id or id")
    s.add_argument("--all", action="store_true", help="every run of the store")
    s.add_argument("--project", help="only runs of this project")
    s.add_argument("--host", help="server address (default: the configured server)")
    s.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="give up on a run after this long without progress (default: 60)")
    s.set_defaults(fn=cmd_sync)


def _root(args: argparse.Namespace):
    from ..sdk.settings import Settings, resolve_root

    return resolve_root(args.dir) if getattr(args, "dir", None) else Settings.resolve().root


def _read_key(args: argparse.Namespace) -> str:
    if args.key:
        return args.key
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    import getpass

    return getpass.getpass("API key (shown once by `nbtracker user create`): ").strip()


def cmd_login(args: argparse.Namespace) -> int:
    from ..sdk.output import safe
    from ..sdk.settings import Settings
    from .client import UploadError
    from .credentials import credentials_path, login, mask

    root = _root(args)
    host = args.host or Settings.resolve(root=root).base_url
    if not host:
        print("nbtracker: which server? Pass --host, e.g. --host http://127.0.0.1:8080",
              file=sys.stderr)
        return 2
    key = _read_key(args)
    try:
        who = login(host, key, root)
    except (ValueError, UploadError) as e:
        print(safe(f"nbtracker: login failed: {e}; nothing was stored"), file=sys.stderr)
        return 1
    print(safe(f"logged in to {host.rstrip('/')} as {who.get('user', '?')} "
               f"(key {mask(key)} stored in {credentials_path(root)})"))
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from ..sdk.output import safe
    from ..sdk.settings import Settings, read_file
    from .client import Client
    from .credentials import lookup_key
    from .sync import find_runs, sync_run

    if not args.runs and not args.all:
        print("nbtracker: name the runs to upload (directories, project/id or ids) or pass --all",
              file=sys.stderr)
        return 2
    root = _root(args)
    settings = Settings.resolve(root=root)
    base_url = args.host or settings.base_url
    if not base_url:
        print("nbtracker: no server configured; run `nbtracker login --host URL` first",
              file=sys.stderr)
        return 1
    try:
        dirs = find_runs(root, args.runs, all_runs=args.all, project=args.project)
        key = lookup_key(base_url, root, read_file(root))
        if key is None:
            raise ValueError(f"no API key for {base_url}; run `nbtracker login --host {base_url}`")
        client = Client(base_url, key)
    except (ValueError, FileNotFoundError) as e:
        print(safe(f"nbtracker: {e}"), file=sys.stderr)
        return 1
    failed = 0
    try:
        for i, d in enumerate(dirs):
            res = sync_run(d, client, patience=args.timeout)
            failed += res.status == "failed"
            print(safe(res.line()), flush=True)
            for note in res.notes:
                print(safe(f"  {note}"), flush=True)
            if res.server_down and i + 1 < len(dirs):
                failed += len(dirs) - i - 1
                print(f"{len(dirs) - i - 1} more run(s) not attempted", flush=True)
                break
    finally:
        client.close()
    if not dirs:
        print("no runs to upload")
    return 1 if failed else 0
