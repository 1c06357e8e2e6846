"""The `nbtracker` command line. It reads through the same `Api` as Python code does.

    nbtracker runs [PROJECT]                 table of runs
    nbtracker show RUN                       identity, config, summary, last values
    nbtracker export RUN --format csv        full history (csv, parquet or json)
    nbtracker export RUN --stream system     system metrics (CPU, memory, disk, network, GPU)
    nbtracker restore RUN [--to DIR]         the run's saved code, diff.patch, requirements.txt
    nbtracker reindex                        rebuild the run index from the record logs
    nbtracker offline | online               persist the default mode
    nbtracker version
    nbtracker sweep sweep.yaml               make a sweep (prints its id); also pause, resume,
                                             stop, cancel, requeue-failed, ls, show
    nbtracker agent SWEEP_ID [--count N]     run a sweep's trials (see nbtracker.sweeps.commands)
    nbtracker artifact ls [PROJECT]          artifacts, their versions and aliases; also show,
                                             get, rm, alias, cache size|cleanup, gc
                                             (see nbtracker.artifacts.commands)

Exit codes: 0 done, 1 the command failed (no such run, unreadable store), 2 bad usage (bad
arguments, a filter that is not valid JSON or uses an unknown operator). Errors are one line on
stderr starting with "nbtracker: ".

Text that comes from runs (names, tags, notes, config, summary, alerts) is printed with control
characters shown escaped (`\\x1b`, `\\u202e`), so a run cannot drive the terminal; csv is
escaped so only when stdout is a terminal (into a file or a pipe it is the data as stored), and
json escapes them by itself.

`export` writes numbers exactly as the record log holds them: floats with all their digits
(`repr`), integers of any size. json is JSON Lines as Python's json module writes it, NaN and
infinities as the tokens `NaN`, `Infinity`, `-Infinity` (read by `json.loads` and
`pandas.read_json(lines=True)`); csv writes them as `nan`, `inf`, `-inf` and a missing value as
an empty field.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import UsageError
from .sdk.output import safe


def _api(args: argparse.Namespace):
    from .api import Api

    return Api(dir=args.dir)


def _find(api, ref: str):
    try:
        return api.find(ref)
    except ValueError as e:
        raise SystemExit(safe(f"nbtracker: {e} (see `nbtracker runs`)")) from None


def _say(text: str = "") -> None:
    print(safe(text))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)  # every digit: show must not round what the log holds
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)


def _filters(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise UsageError(f"--filter is not valid JSON ({e}): {text!r}") from None


def _table(rows: list[list[str]], out=None) -> None:
    out = out or sys.stdout
    if not rows:
        return
    rows = [[safe(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def cmd_runs(args: argparse.Namespace) -> int:
    api = _api(args)
    runs = api.runs(args.project, filters=_filters(args.filter), order=args.sort)
    if args.format in ("json", "csv"):
        _write_records([_with_created_at(row) for row in runs.records()], args.format, sys.stdout)
        return 0
    if not runs:
        where = f"project {args.project!r}" if args.project else "the store"
        _say(f"no runs in {where} ({api.root})")
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
    _say(f"run      {r.project}/{r.id}")
    _say(f"name     {r.name}")
    _say(f"state    {r.state}")
    for f in ("group", "job_type", "notes"):
        if getattr(r, f):
            _say(f"{f:<8} {getattr(r, f)}")
    if r.tags:
        _say(f"tags     {', '.join(r.tags)}")
    _say(f"created  {r.created_at} UTC   runtime {r.runtime:.1f}s   steps {r.steps}")
    _say(f"stored   {r.storage_dir}")
    sections = [("config", flatten(r.config, ".")), ("summary", r.summary_metrics),
                ("last values", r.last_values)]
    for title, d in sections:
        print()
        _say(f"{title}:")
        if not d:
            _say("  (none)")
        for k in sorted(d):
            _say(f"  {k} = {_fmt(d[k])}")
    files = r.files()
    if files:
        print()
        _say("files:")
        for f in files:
            _say(f"  {f.name} ({f.size} bytes)")
    if r.alerts:
        print()
        _say("alerts:")
        for a in r.alerts:
            held = " (not sent: same title within wait_duration)" if a.get("suppressed") else ""
            _say(f"  [{a.get('level')}] {a.get('title')}: {a.get('text')}{held}")
    return 0


_META = ("_step", "_runtime", "_timestamp")


def _export_columns(r) -> list[str]:
    """`_step`, the logged keys in the order they first appear, `_runtime`, `_timestamp`."""
    keys: dict[str, None] = {}
    for row in r.scan_history():
        for k in row:
            keys.setdefault(k, None)
    return ["_step", *(k for k in keys if k not in _META), "_runtime", "_timestamp"]


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)  # shortest text that reads back as the same float: nan, inf, -inf too
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return v


class _SafeWriter:
    """A csv writer for a terminal: text cells with control characters escaped. (JSON output
    escapes them by itself; csv written to a file or a pipe keeps the text as it is.)"""

    def __init__(self, out):
        self._w = csv.writer(out, lineterminator="\n")

    def writerow(self, cells) -> None:
        self._w.writerow([safe(c) if isinstance(c, str) else c for c in cells])


def _csv_writer(out):
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    return _SafeWriter(out) if tty else csv.writer(out, lineterminator="\n")


def _write_table(rows, cols: list[str], fmt: str, out) -> int:
    """Write `rows` (dicts) under `cols` as csv or JSON Lines, values exactly; returns the count."""
    n = 0
    if fmt == "csv":
        w = _csv_writer(out)
        w.writerow(cols)
        for row in rows:
            w.writerow([_csv_cell(row.get(c)) for c in cols])
            n += 1
    else:
        for row in rows:
            out.write(json.dumps({c: row.get(c) for c in cols}) + "\n")
            n += 1
    return n


def _write_rows(r, fmt: str, out) -> int:
    """Write the history as a plain replay of the record log gives it, row by row (the
    DataFrame path would turn large integers and columns with gaps into rounded floats)."""
    return _write_table(r.scan_history(), _export_columns(r), fmt, out)


def _with_created_at(row: dict) -> dict:
    """A run's record with `created` (Unix time) as an ISO 8601 UTC `created_at`."""
    import datetime as dt

    out = {}
    for k, v in row.items():
        if k == "created":
            t = dt.datetime.fromtimestamp(v, dt.timezone.utc)
            out["created_at"] = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        else:
            out[k] = v
    return out


def _write_records(rows: list[dict], fmt: str, out) -> None:
    """Rows with the union of their keys as columns, values written exactly (see export)."""
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    if cols:  # no runs: no header either
        _write_table(rows, list(cols), fmt, out)


def _beyond_int64(v: Any) -> bool:
    return type(v) is int and not -(2**63) <= v < 2**63


def _write_system(r, fmt: str, out) -> int:
    """The system stream (`history(stream="system")`), values as recorded."""
    rows = r.history(stream="system", pandas=False)
    cols = [*dict.fromkeys(k for row in rows for k in row if k not in _META), *_META[1:]]
    return _write_table(rows, cols, fmt, out)


def cmd_export(args: argparse.Namespace) -> int:
    r = _find(_api(args), args.run)
    out = args.output
    system = getattr(args, "stream", "default") == "system"
    write = _write_system if system else _write_rows
    if args.format == "parquet":
        df = r.history(stream="system") if system else r.history()
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].map(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v)
        out = out or f"{r.id}.parquet"
        for c in df.columns:
            # a column holding text and numbers, or integers beyond 64 bits, is written as text
            # (Parquet has no exact type for either; the digits are kept)
            if df[c].dtype == object and (df[c].map(type).nunique() > 1
                                          or df[c].map(_beyond_int64).any()):
                df[c] = df[c].map(lambda v: None if v is None else str(v))
        try:
            df.to_parquet(out, index=False)
        except ImportError:
            raise SystemExit("nbtracker: parquet export needs pyarrow: pip install "
                             "'nbtracker[parquet]'") from None
        except (ValueError, TypeError, OverflowError) as e:  # pyarrow's errors subclass these
            raise SystemExit(f"nbtracker: cannot write {r.id} as parquet ({safe(e)}); "
                             "--format json or csv keeps every value") from None
        n = len(df)
    elif out:
        with open(out, "w", encoding="utf-8", newline="") as f:
            n = write(r, args.format, f)
    else:
        n = write(r, args.format, sys.stdout)
    if out:
        print(f"wrote {n} rows to {out}", file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Write a run's saved code (files/code/*: the script or the notebook's cells, diff.patch)
    and requirements.txt into a folder. File names come from the run's log, so they are labels:
    one that would land outside the folder is refused. Every file is checked before the first is
    written: a refused one leaves the folder as it was."""
    import shutil
    from pathlib import Path

    r = _find(_api(args), args.run)
    wanted = [f for f in r.files() if f.name.startswith("code/") or f.name == "requirements.txt"]
    if not wanted:
        raise SystemExit(safe(f"nbtracker: run {r.project}/{r.id} has no saved code (it ran "
                              "with save_code off, or before code was saved)"))
    base = Path(args.target or r.id).resolve()
    todo = []
    for f in wanted:
        rel = f._relative()  # UsageError for an absolute name or one with ".."
        out = Path(*rel.parts[1:]) if rel.parts[0] == "code" else rel
        dst = base / out
        if not out.parts or dst.is_symlink() or (dst.exists() and not args.force):
            raise UsageError(f"{dst} exists; pass --force to overwrite it" if dst.exists()
                             else f"file {f.name!r} of the run has no usable name")
        if not dst.parent.resolve().is_relative_to(base):
            raise UsageError(f"file {f.name!r}: {dst} leads outside {base}; not writing it")
        todo.append((f, f._source(rel), dst))  # _source refuses a stored copy that is a symlink
    written = []
    for f, src, dst in todo:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.parent.resolve().is_relative_to(base) or dst.is_symlink():
            raise UsageError(f"file {f.name!r}: {dst} leads outside {base}; not writing it")
        shutil.copyfile(src, dst)
        written.append(dst)
    _say(f"restored {len(written)} file(s) of run {r.project}/{r.id} into {base}:")
    for dst in written:
        _say(f"  {dst.relative_to(base)}")
    git = (r.metadata or {}).get("git") or {}
    patch = base / "diff.patch"
    if git.get("commit"):
        where = f" (in a clone of {git['remote']})" if git.get("remote") else ""
        apply = f" && git apply {patch}" if patch in written else ""
        _say(f"to get the code back{where}:")
        _say(f"  git checkout {git['commit']}{apply}")
    elif patch in written:
        _say(f"apply the uncommitted changes with: git apply {patch}")
    if base / "requirements.txt" in written:
        _say(f"the packages it ran with: pip install -r {base / 'requirements.txt'}")
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
        prog="nbtracker", description="Query and manage nbtracker runs (on this machine, or on a "
        "team server once `nbtracker login` has named one), and run that server.")
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
                       description="Write a run's full history (one row per step), value for "
                       "value as the record log holds it.")
    s.add_argument("run", help="project/id, id, or a unique run name")
    s.add_argument("--format", choices=("csv", "parquet", "json"), default="csv",
                   help="csv: floats with all their digits, nan/inf/-inf, an empty field where "
                   "a step has no value; json: JSON Lines, one object per step, NaN, Infinity "
                   "and -Infinity as tokens (as Python's json module writes and reads them); "
                   "integers exact at any size in both")
    s.add_argument("-o", "--output", help="file to write (default: stdout; <id>.parquet)")
    s.add_argument("--stream", choices=("default", "system"), default="default",
                   help="system: the system metrics (one row per sample, system.<key> columns, "
                   "_runtime, _timestamp) instead of the history")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("restore", help="write a run's saved code into a folder",
                       description="Write a run's saved code (the script or the notebook's "
                       "cells, and diff.patch: its uncommitted changes) and requirements.txt "
                       "into a folder, and say how to check out its commit and apply the patch.")
    s.add_argument("run", help="project/id, id, or a unique run name")
    s.add_argument("--to", "-o", "--output", dest="target", metavar="DIR",
                   help="folder to write into (default: ./<run id>)")
    s.add_argument("--force", action="store_true", help="overwrite files that exist")
    s.set_defaults(fn=cmd_restore)

    s = sub.add_parser("reindex", help="rebuild the run index",
                       description="Rebuild the SQLite run index from the record logs.")
    s.set_defaults(fn=cmd_reindex)

    for mode in ("offline", "online"):
        s = sub.add_parser(mode, help=f"make {mode} the default mode",
                           description=f"Persist {mode} as the default mode in settings.json.")
        s.set_defaults(fn=cmd_mode)

    s = sub.add_parser("version", help="print the version", description="Print the version.")
    s.set_defaults(fn=cmd_version)

    # the team server's commands (server, user, project, key), the client's (login, sync), the
    # sweeps' (sweep, agent) and the artifacts' (artifact) live beside the code they drive; none
    # imports its stack (the server's, optuna, fsspec) until it runs
    from .artifacts.commands import add_commands as add_artifact_commands
    from .server.commands import add_commands as add_server_commands
    from .sweeps.commands import add_commands as add_sweep_commands
    from .sync.commands import add_commands as add_sync_commands

    add_sweep_commands(sub)
    add_artifact_commands(sub)
    add_sync_commands(sub)
    add_server_commands(sub)
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
    except UsageError as e:
        print(safe(f"nbtracker: {e}"), file=sys.stderr)
        return 2
    except (ValueError, OSError, sqlite3.Error) as e:
        print(safe(f"nbtracker: {e}"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
