"""The `nbtracker` command line. It reads through the same `Api` as Python code does.

    nbtracker runs [PROJECT]                 table of runs
    nbtracker show RUN                       identity, config, summary, last values
    nbtracker export RUN --format csv        full history (csv, parquet or json)
    nbtracker reindex                        rebuild the run index from the record logs
    nbtracker offline | online               persist the default mode
    nbtracker version
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import UsageError


def _api(args: argparse.Namespace):
    from .api import Api

    return Api(dir=args.dir)


def _find(api, ref: str):
    try:
        return api.find(ref)
    except ValueError as e:
        raise SystemExit(f"nbtracker: {e} (see `nbtracker runs`)") from None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)


def _table(rows: list[list[str]], out=None) -> None:
    out = out or sys.stdout
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def cmd_runs(args: argparse.Namespace) -> int:
    api = _api(args)
    filters = json.loads(args.filter) if args.filter else None
    runs = api.runs(args.project, filters=filters, order=args.sort)
    if args.format == "json":
        df = runs.to_pandas()
        sys.stdout.write(df.to_json(orient="records", date_format="iso", lines=True))
        return 0
    if args.format == "csv":
        runs.to_pandas().to_csv(sys.stdout, index=False)
        return 0
    if not runs:
        where = f"project {args.project!r}" if args.project else "the store"
        print(f"no runs in {where} ({api.root})")
        return 0
    import time

    header = ["ID", "PROJECT", "NAME", "STATE", "GROUP", "CREATED", "STEPS", "RUNTIME"]
    rows = [header]
    for r in runs:
        rows.append([r.id, r.project, r.name, r.state, r.group or "",
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
                     str(r.steps),
                     f"{r.runtime:.1f}s"])
    _table(rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .api import flatten

    r = _find(_api(args), args.run)
    print(f"run      {r.project}/{r.id}")
    print(f"name     {r.name}")
    print(f"state    {r.state}")
    for f in ("group", "job_type", "notes"):
        if getattr(r, f):
            print(f"{f:<8} {getattr(r, f)}")
    if r.tags:
        print(f"tags     {', '.join(r.tags)}")
    print(f"created  {r.created_at} UTC   runtime {r.runtime:.1f}s   steps {r.last_step + 1}")
    print(f"stored   {r.storage_dir}")
    sections = [("config", flatten(r.config, ".")), ("summary", r.summary_metrics),
                ("last values", dict(r._stored.state.summary.last))]
    for title, d in sections:
        print(f"\n{title}:")
        if not d:
            print("  (none)")
        for k in sorted(d):
            print(f"  {k} = {_fmt(d[k])}")
    files = r.files()
    if files:
        print("\nfiles:")
        for f in files:
            print(f"  {f.name} ({f.size} bytes)")
    if r.alerts:
        print("\nalerts:")
        for a in r.alerts:
            print(f"  [{a.get('level')}] {a.get('title')}: {a.get('text')}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    r = _find(_api(args), args.run)
    df = r.history()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v)
    out = args.output
    if args.format == "parquet":
        out = out or f"{r.id}.parquet"
        for c in df.columns:  # a column holding text and numbers is written as text
            if df[c].dtype == object and df[c].map(type).nunique() > 1:
                df[c] = df[c].map(lambda v: None if v is None else str(v))
        try:
            df.to_parquet(out, index=False)
        except ImportError:
            raise SystemExit("nbtracker: parquet export needs pyarrow: pip install "
                             "'nbtracker[parquet]'") from None
    elif args.format == "csv":
        df.to_csv(out or sys.stdout, index=False)
    else:
        text = df.to_json(orient="records", lines=True)
        if out:
            with open(out, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
    if out:
        print(f"wrote {len(df)} rows to {out}", file=sys.stderr)
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    api = _api(args)
    n = api.reindex()
    print(f"indexed {n} run(s) in {api.root / 'index.sqlite'}")
    return 0


def cmd_mode(args: argparse.Namespace) -> int:
    from .sdk.init import set_mode
    from .sdk.settings import Settings, resolve_root

    root = resolve_root(args.dir) if args.dir else Settings.resolve().root
    path = set_mode(args.command, root)
    print(f"default mode is now {args.command} ({path}); NBTRACKER_MODE and init(mode=...) "
          "still take precedence")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"nbtracker {__version__}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nbtracker", description="Query and manage nbtracker runs stored on this machine.")
    p.add_argument("--dir", help="store root (default: NBTRACKER_DIR or ~/.nbtracker)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("runs", help="list runs", description="List runs, newest first.")
    s.add_argument("project", nargs="?", help="only this project")
    s.add_argument("--filter", help='MongoDB-style JSON filter, e.g. \'{"config.lr": 0.001}\'')
    s.add_argument("--sort", default="-created_at",
                   help="sort key, e.g. -created_at, +summary.loss (default: -created_at)")
    s.add_argument("--format", choices=("table", "csv", "json"), default="table")
    s.set_defaults(fn=cmd_runs)

    s = sub.add_parser("show", help="show one run",
                       description="Show a run's identity, config, summary and last values.")
    s.add_argument("run", help="project/id, id, or a unique run name")
    s.set_defaults(fn=cmd_show)

    s = sub.add_parser("export", help="export a run's history",
                       description="Write a run's full history (one row per step).")
    s.add_argument("run", help="project/id, id, or a unique run name")
    s.add_argument("--format", choices=("csv", "parquet", "json"), default="csv")
    s.add_argument("-o", "--output", help="file to write (default: stdout; <id>.parquet)")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("reindex", help="rebuild the run index",
                       description="Rebuild the SQLite run index from the record logs.")
    s.set_defaults(fn=cmd_reindex)

    for mode in ("offline", "online"):
        s = sub.add_parser(mode, help=f"make {mode} the default mode",
                           description=f"Persist {mode} as the default mode in settings.json.")
        s.set_defaults(fn=cmd_mode)

    s = sub.add_parser("version", help="print the version", description="Print the version.")
    s.set_defaults(fn=cmd_version)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:
        # the reader went away (`nbtracker runs | head`): not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except (ValueError, OSError, sqlite3.Error, UsageError) as e:
        print(f"nbtracker: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
