"""`%tracker` / `%%tracker`: thin magics over the Python API.

    %tracker init [--project P] [--name N] [--group G] [--job-type J] [--tags a,b] [--notes T]
                  [--id ID] [--resume] [--mode offline|online|disabled] [--dir D] [key=value ...]
    %tracker finish [--exit-code N]
    %%tracker [init options]          the cell is one run: finished, failed or interrupted with it
    %tracker runs [PROJECT] [--filter EXPR] [--sort KEY] [--group-by KEY]
    %tracker compare RUN RUN ... [--metrics a,b] [--group-by KEY] [--smooth 0.6] [--x step|time|KEY]
    %tracker diff RUN RUN ... [--all]
    %tracker sweep SWEEP_ID [--storage URL]   a sweep's live panel: trials, best, charts, importance
    %tracker lineage REF [--depth N] [--run]   an artifact version's lineage (mnist:v1,
                                          project/mnist:latest), or a run's with --run
    %tracker status | silent on|off | offline | online
    %tracker panel [auto|widget|static]   live widget, or a chart image refreshed through the
                                          output (auto: static in Colab)

Bad arguments print one usage line, never a traceback.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import re
import shlex
import sys
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

import nbtracker

from ..sdk import output


class MagicUsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise MagicUsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:
        raise MagicUsageError(message or "")

    def print_help(self, file=None) -> None:
        print(self.format_help())


def _parser(name: str, help: str) -> _Parser:
    return _Parser(prog=f"%tracker {name}", description=help, add_help=True)


def _init_parser(prog: str = "init") -> _Parser:
    p = _parser(prog, "Start a run and show its live panel.")
    p.add_argument("--project", "-p")
    p.add_argument("--name", "-n")
    p.add_argument("--group", "-g")
    p.add_argument("--job-type", "-j", dest="job_type")
    p.add_argument("--tags", "-t", help="comma-separated")
    p.add_argument("--notes")
    p.add_argument("--id")
    p.add_argument("--resume", nargs="?", const="allow", default=None,
                   help="continue the run given by --id (allow|must|never)")
    p.add_argument("--mode", choices=("online", "offline", "disabled"))
    p.add_argument("--dir")
    p.add_argument("--no-panel", action="store_true", help="do not display the live panel")
    p.add_argument("config", nargs="*", metavar="key=value", help="config values")
    return p


def parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_config(items: list[str]) -> dict:
    config = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MagicUsageError(f"config values are key=value, not {item!r}")
        config[key] = parse_value(value)
    return config


_OPS = {"==": "$eq", "=": "$eq", "!=": "$ne", ">=": "$gte", "<=": "$lte", ">": "$gt", "<": "$lt",
        "=~": "$regex"}
_CLAUSE = re.compile(r"^\s*([^\s=!<>~]+)\s*(==|!=|>=|<=|=~|=|>|<)\s*([^=!<>~\s].*?)\s*$")


_NONFINITE = {"nan": float("nan"), "inf": float("inf"), "+inf": float("inf"),
              "-inf": float("-inf")}


def _filter_value(text: str) -> Any:
    """A clause's value: as `parse_value`, and nan, inf, -inf as the floats they name."""
    special = _NONFINITE.get(text.lower())
    return special if special is not None else parse_value(text)


def parse_filter(expr: str | None) -> dict | None:
    """`{"config.lr": 0.001}` (JSON), or `config.lr > 0.001 and state == finished`."""
    if not expr:
        return None
    expr = expr.strip()
    if expr.startswith("{"):
        try:
            return json.loads(expr)
        except ValueError as e:
            raise MagicUsageError(f"--filter is not valid JSON: {e}") from None
    clauses = []
    for part in re.split(r"\s+and\s+", expr):
        m = _CLAUSE.match(part)
        if not m:
            raise MagicUsageError(f"cannot read filter clause {part!r}; write KEY OP VALUE "
                                  "with OP one of == != > >= < <= =~")
        key, op, value = m.groups()
        v = value if op == "=~" else _filter_value(value.strip("'\""))
        clauses.append({key: {_OPS[op]: v}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as e:
        raise MagicUsageError(f"cannot parse arguments: {e}") from None


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@magics_class
class TrackerMagics(Magics):
    @line_cell_magic
    def tracker(self, line: str, cell: str | None = None):
        """Experiment tracking in the notebook; `%tracker help` lists the commands."""
        try:
            if cell is not None:
                return self._cell(line, cell)
            return self._line(line)
        except MagicUsageError as e:
            msg = str(e).strip()
            if msg:
                print(f"nbtracker: {msg}", file=sys.stderr)
        except (ValueError, OSError, nbtracker.UsageError) as e:
            # e.g. a store that cannot be written: one line, as for bad arguments
            print(f"nbtracker: {e}", file=sys.stderr)
        return None

    def _line(self, line: str):
        args = _split(line)
        if not args or args[0] in ("help", "-h", "--help"):
            print(__doc__.strip())
            return None
        cmd, rest = args[0], args[1:]
        fn = getattr(self, f"_cmd_{cmd.replace('-', '_')}", None)
        if fn is None:
            raise MagicUsageError(f"unknown command {cmd!r}; commands: init, finish, runs, "
                                  "compare, diff, sweep, lineage, status, silent, panel, offline, "
                                  "online")
        return fn(rest)

    # -- runs --------------------------------------------------------------------------
    def _start(self, rest: list[str]):
        a = _init_parser().parse_args(rest)
        panel = not a.no_panel and a.mode != "disabled"
        with output.panel_follows() if panel else contextlib.nullcontext():
            run = nbtracker.init(project=a.project, name=a.name, group=a.group,
                                 job_type=a.job_type, tags=_csv(a.tags), notes=a.notes, id=a.id,
                                 resume=a.resume, mode=a.mode, dir=a.dir,
                                 config=parse_config(a.config), reinit=True)
        if panel and not getattr(run, "disabled", False):
            from .live import show

            show(run)
        return run

    def _cmd_init(self, rest: list[str]):
        self._start(rest)
        return None

    def _cmd_finish(self, rest: list[str]):
        p = _parser("finish", "Finish the current run.")
        p.add_argument("--exit-code", type=int, default=None)
        a = p.parse_args(rest)
        nbtracker.finish(exit_code=a.exit_code)

    def _cell(self, line: str, cell: str):
        rest = _split(line)
        if rest and rest[0] == "init":
            rest = rest[1:]
        run = self._start(rest)
        result = self.shell.run_cell(cell, store_history=False)
        err = result.error_in_exec or result.error_before_exec
        if err is None:
            run.finish()
        elif isinstance(err, KeyboardInterrupt):
            run._finish("interrupted", 255)
        else:
            run._finish("failed", 1)
        return None

    def _cmd_status(self, rest: list[str]):
        run = nbtracker.run
        if run is None:
            print("no active run; start one with %tracker init")
            return None
        print(f"run {run.name} ({run.project}/{run.id}): {run.state}, step {run.step}, "
              f"mode {run.mode}\nstored in {getattr(run, 'storage_dir', '')}")
        return None

    def _cmd_silent(self, rest: list[str]):
        if rest not in (["on"], ["off"]):
            raise MagicUsageError("usage: %tracker silent on|off")
        output.set_silent(rest[0] == "on")

    def _cmd_panel(self, rest: list[str]):
        from .live import PANEL_MODES, panel_mode, set_panel_mode

        if len(rest) > 1 or (rest and rest[0] not in PANEL_MODES):
            raise MagicUsageError(f"usage: %tracker panel [{'|'.join(PANEL_MODES)}]")
        if rest:
            set_panel_mode(rest[0])
        print(f"panels are drawn as: {panel_mode()}")

    def _mode(self, mode: str, rest: list[str]):
        if rest:
            raise MagicUsageError(f"usage: %tracker {mode}")
        from ..sdk.init import set_mode

        path = set_mode(mode)
        output.say(f"default mode is now {mode} ({path})")

    def _cmd_offline(self, rest: list[str]):
        self._mode("offline", rest)

    def _cmd_online(self, rest: list[str]):
        self._mode("online", rest)

    # -- looking at runs -----------------------------------------------------------------
    def _cmd_runs(self, rest: list[str]):
        p = _parser("runs", "A table of runs: sort, filter, group, select and compare.")
        p.add_argument("project", nargs="?")
        p.add_argument("--filter", help="JSON, or KEY OP VALUE [and ...]")
        p.add_argument("--sort", default="-created_at")
        p.add_argument("--group-by", dest="group_by", default="",
                       help="a column: group, job_type, state, config.lr, ...")
        a = p.parse_args(rest)
        from . import runs_table

        display(runs_table(a.project, filters=parse_filter(a.filter), order=a.sort,
                           group_by=a.group_by))

    def _cmd_compare(self, rest: list[str]):
        p = _parser("compare", "Overlaid curves of runs and their config diff.")
        p.add_argument("runs", nargs="+", metavar="RUN")
        p.add_argument("--metrics", "-m")
        p.add_argument("--group-by", dest="group_by")
        p.add_argument("--smooth", type=float, default=0.0)
        p.add_argument("--x", default="step", help="step, time, or a logged metric (epoch)")
        a = p.parse_args(rest)
        if not 0.0 <= a.smooth < 1.0:
            raise MagicUsageError("--smooth must be in [0, 1)")
        from . import compare_view, diff

        runs = _resolve(a.runs)
        display(compare_view(*runs, metrics=_csv(a.metrics), group_by=a.group_by,
                             smooth=a.smooth, x=a.x))
        display(diff(*runs))

    def _cmd_diff(self, rest: list[str]):
        p = _parser("diff", "Config of runs side by side, differing keys highlighted.")
        p.add_argument("runs", nargs="+", metavar="RUN")
        p.add_argument("--all", action="store_true", help="show equal keys too")
        a = p.parse_args(rest)
        from . import diff

        display(diff(*_resolve(a.runs), show_all=a.all))

    def _cmd_sweep(self, rest: list[str]):
        p = _parser("sweep", "A sweep's live panel: its trials, the best so far, parallel "
                             "coordinates, the metric against each parameter, importance.")
        p.add_argument("sweep_id", metavar="SWEEP_ID")
        p.add_argument("--storage", help="the sweep's PostgreSQL URL, when it was made elsewhere")
        a = p.parse_args(rest)
        from .sweep import sweep_panel

        display(sweep_panel(a.sweep_id, storage=a.storage))

    def _cmd_lineage(self, rest: list[str]):
        p = _parser("lineage", "Where an artifact version came from and went: the runs that "
                               "logged and used it, their inputs and outputs, as a graph.")
        p.add_argument("ref", metavar="REF", help="mnist:v1, mnist:latest, project/mnist:best; "
                                                  "with --run: project/run_id, an id or a name")
        p.add_argument("--depth", type=int, default=1, help="hops each way (default 1)")
        p.add_argument("--run", action="store_true", help="REF names a run")
        a = p.parse_args(rest)
        if a.depth < 0:
            raise MagicUsageError("--depth must be 0 or more")
        from ..artifacts.lineage import Lineage

        api = _store_api()
        if a.run:
            display(Lineage.of_run(api.find(a.ref), depth=a.depth))
        else:
            display(Lineage.of(api.artifact(a.ref), depth=a.depth))


def _store_api():
    """The local store as the current run sees it (its folder; its project for names that
    give none), as `use_artifact` reads names; the default store without a run."""
    run = nbtracker.run
    root = getattr(getattr(run, "settings", None), "root", None)
    if run is None or getattr(run, "disabled", False) or root is None:
        return nbtracker.Api(dir=str(_default_root()))
    return nbtracker.Api(overrides={"project": run.project}, dir=str(root))


def _default_root():
    from ..sdk.settings import Settings

    return Settings.resolve().root


def _resolve(refs: list[str]) -> list:
    api = nbtracker.Api()
    return [api.find(r) for r in refs]
