"""Command-line commands of sweeps: `nbtracker sweep …` and `nbtracker agent …`.

    nbtracker sweep sweep.yaml [--project P] [--seed N]      make a sweep; prints its id
    nbtracker sweep --storage postgresql://u@db/nbt sweep.yaml  a sweep agents on many machines share
    nbtracker agent ID [--count N] [--storage URL]           run its trials here, one at a time
    nbtracker sweep pause|resume|stop|cancel ID              agents wait | go on | finish their
                                                             trial and stop | end it and stop
    nbtracker sweep requeue-failed ID                        run failed and crashed points again
    nbtracker sweep ls [PROJECT]                             the sweeps, with trials done and best
    nbtracker sweep show ID                                  one sweep's trials

`nbtracker sweep CONFIG` prints the id alone on stdout's last line (`ID=$(nbtracker sweep s.yaml)`),
and how to start agents on stderr. ID may be "ID", "project/ID" or "entity/project/ID". A sweep
made on another machine is reached with the id and its `--storage` (or NBTRACKER_SWEEP_STORAGE).
A config file named like an action (`pause`) is given as `./pause`.

`nbtracker agent` runs the sweep's `program`/`command`; a relative `program` is relative to the
folder the agent is started in (as wandb's agent). Ctrl-C, SIGTERM and SIGHUP end the running
trial's process group (recorded `interrupted`; its point is run again by the next agent) and stop
the agent with exit status 130.

Exit codes: 0 done, 1 failed (an invalid config, an unknown sweep, a storage that cannot be
opened; an agent that stopped after NBTRACKER_AGENT_MAX_FAILURES failed trials in a row), 2 bad
usage; errors are one line on stderr starting with "nbtracker: ".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ACTIONS = ("pause", "resume", "stop", "cancel", "requeue-failed", "ls", "show")
SWEEP_USAGE = ("nbtracker sweep [--project P] [--entity E] [--storage URL] [--seed N] CONFIG\n"
               "       nbtracker sweep pause|resume|stop|cancel|requeue-failed|show ID "
               "[--storage URL]\n"
               "       nbtracker sweep ls [PROJECT] [--storage URL]")


def add_commands(sub) -> None:
    """Register `sweep` and `agent` on the `nbtracker` parser."""
    s = sub.add_parser(
        "sweep", help="make a sweep, or manage one (pause, resume, stop, cancel, requeue-failed, "
        "ls, show)", usage=SWEEP_USAGE,
        description="Make a sweep from a config file in wandb's sweep format and print its id; "
        "or act on a sweep: pause (agents wait), resume (agents go on; a stopped or finished "
        "sweep runs what is left), stop (no new trials; running ones finish), cancel (running "
        "trials are ended too), requeue-failed (failed and crashed trials run again), ls (the "
        "sweeps), show (one sweep's trials).")
    s.add_argument("words", nargs="+", metavar="CONFIG | ACTION ID",
                   help="a sweep config (.yaml, .yml or .json), or an action and its argument")
    s.add_argument("--project", help="the project of the sweep's runs (default: the config's "
                   "`project`, else the default project)")
    s.add_argument("--entity", help="accepted as wandb's `sweep` accepts it (kept with the sweep)")
    s.add_argument("--storage", metavar="URL", help="a PostgreSQL URL (postgresql://user@host/db) "
                   "agents on several machines share (default: NBTRACKER_SWEEP_STORAGE, else the "
                   "local store)")
    s.add_argument("--seed", type=int, help="seed the sampler (random, bayes), so one agent "
                   "repeats the sweep exactly")
    s.set_defaults(fn=cmd_sweep)

    s = sub.add_parser(
        "agent", help="run a sweep's trials",
        description="Run a sweep's trials one after another, each as a process group of its "
        "own running the sweep's program/command, until the sweep has nothing left, is stopped "
        "or cancelled, or --count trials have run. Start one per GPU or machine; they share the "
        "sweep. A relative `program` is relative to the folder the agent is started in.")
    s.add_argument("sweep_id", metavar="ID", help='the sweep id ("ID", "project/ID" or '
                   '"entity/project/ID")')
    s.add_argument("--count", type=int, help="the most trials to run (default: no limit)")
    s.add_argument("--storage", metavar="URL", help="the sweep's PostgreSQL URL when it was made "
                   "on another machine (default: NBTRACKER_SWEEP_STORAGE, else the local store)")
    s.add_argument("--project", help="accepted as wandb's agent accepts it (the sweep knows "
                   "its project)")
    s.add_argument("--entity", help="accepted as wandb's agent accepts it")
    s.set_defaults(fn=cmd_agent)


# -- helpers ---------------------------------------------------------------------------------
def _root(args: argparse.Namespace) -> Path | None:
    from ..sdk.settings import resolve_root

    return resolve_root(args.dir) if getattr(args, "dir", None) else None


def _err(text: Any) -> SystemExit:
    from ..sdk.output import safe

    return SystemExit(safe(f"nbtracker: {text}"))


@contextlib.contextmanager
def _fails() -> Iterator[None]:
    """What the sweep machinery refuses (no such sweep, a storage it cannot open, an invalid
    config) ends the command with one line and exit status 1."""
    from ..errors import UsageError
    from .config import SweepConfigError

    try:
        yield
    except SweepConfigError as e:
        raise _err(_config_problem(e)) from None
    except UsageError as e:
        raise _err(e) from None
    except Exception as e:
        if _is_storage_error(e):  # the database went away or refused us
            raise _err(f"the sweep storage failed: {type(e).__name__}: {_first_line(e)}") from None
        raise


def _is_storage_error(e: Exception) -> bool:
    mod = type(e).__module__ or ""
    return mod.startswith(("sqlalchemy", "psycopg", "optuna"))


def _first_line(e: Any) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def _config_problem(e) -> str:
    problems = e.problems
    if len(problems) == 1:
        return f"invalid sweep config: {problems[0]}"
    return f"invalid sweep config ({len(problems)} problems): " + "; ".join(problems)


def _open(args: argparse.Namespace, sweep_id: str):
    from .engine import open_sweep

    return open_sweep(sweep_id, storage=args.storage, root=_root(args))


def _words(args: argparse.Namespace, action: str, low: int, high: int) -> list[str]:
    from ..errors import UsageError

    rest = args.words[1:]
    if not low <= len(rest) <= high:
        want = "PROJECT" if action == "ls" else "ID"
        raise UsageError(f"usage: nbtracker sweep {action} "
                         + (f"[{want}]" if low == 0 else want) + " [--storage URL]")
    if action != "create":
        for opt in ("project", "entity", "seed"):
            if getattr(args, opt) is not None and not (action == "ls" and opt == "project"):
                raise UsageError(f"--{opt} is for making a sweep (nbtracker sweep CONFIG), "
                                 f"not for `sweep {action}`")
    return rest


# -- nbtracker sweep -------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace) -> int:
    from ..errors import UsageError

    first = args.words[0]
    if first not in ACTIONS:
        if len(args.words) != 1:
            raise UsageError(f"nbtracker sweep takes one config file, or an action "
                             f"({', '.join(ACTIONS)}) and its argument; got {args.words!r}")
        return _create(args, first)
    if first == "ls":
        rest = _words(args, "ls", 0, 1)
        if rest and args.project and rest[0] != args.project:
            raise UsageError("give the project once (as PROJECT or --project)")
        return _ls(args, rest[0] if rest else args.project)
    (sweep_id,) = _words(args, first, 1, 1)
    if first == "show":
        return _show(args, sweep_id)
    if first == "requeue-failed":
        return _requeue(args, sweep_id)
    return _set_state(args, first, sweep_id)


def _create(args: argparse.Namespace, path: str) -> int:
    from ..sdk.output import safe
    from .engine import create_sweep

    with _fails():
        s = create_sweep(Path(path), project=args.project, entity=args.entity,
                         storage=args.storage, seed=args.seed, root=_root(args))
    cfg = s.config
    size = f", {cfg.grid_size()} grid points" if cfg.method == "grid" else ""
    where = f" in {s.where}" if s.url else ""
    elsewhere = f" (on another machine: nbtracker agent {s.id} --storage URL)" if s.url else ""
    print(safe(f"nbtracker: created sweep {s.id} (project {s.project}, {cfg.method}{size}){where}; "
               f"run it with: nbtracker agent {s.id}{elsewhere}"), file=sys.stderr)
    print(s.id, flush=True)
    return 0


_STATE_OF = {"pause": "paused", "resume": "running", "stop": "stopped", "cancel": "cancelled"}


def _set_state(args: argparse.Namespace, action: str, sweep_id: str) -> int:
    from ..sdk.output import safe

    with _fails():
        s = _open(args, sweep_id)
        before, after = s.state, _STATE_OF[action]
        if action == "pause" and before != "running":
            raise _err(f"sweep {s.id} is {before}, not running; only a running sweep is paused")
        if action in ("stop", "cancel") and before == "finished":
            raise _err(f"sweep {s.id} is finished; there is nothing to {action}")
        if action in ("stop", "cancel") and before == "cancelled":
            raise _err(f"sweep {s.id} is cancelled already")
        left = s.remaining()
        if after == "running" and left == 0 and before == "finished":
            after = "finished"  # resumed with nothing left, it would only wait to be finished
        else:
            s.set_state(after)
    tail = {
        "paused": f"agents wait until `nbtracker sweep resume {s.id}`",
        "stopped": "agents finish their trials and stop; `resume` runs what is left",
        "cancelled": "agents end their trials and stop; `resume` runs what is left",
    }.get(after)
    if after in ("running", "finished") and action == "resume":
        tail = ("nothing is left to run (`requeue-failed` runs failed trials again)" if left == 0
                else f"{'no end' if left is None else left} trial(s) left; start agents with "
                f"`nbtracker agent {s.id}`")
    _out(safe(f"sweep {s.id}: {before} -> {after}; {tail}"))
    return 0


def _requeue(args: argparse.Namespace, sweep_id: str) -> int:
    with _fails():
        s = _open(args, sweep_id)
        numbers = s.requeue_failed()
        state = s.state
    if not numbers:
        _out(f"sweep {s.id}: no failed or crashed trial to run again")
        return 0
    more = "" if state == "running" else f" (the sweep is {state}: `nbtracker sweep resume {s.id}`)"
    _out(f"sweep {s.id}: requeued {len(numbers)} trial(s) "
         f"({', '.join('#' + str(n) for n in numbers)}); start agents with "
         f"`nbtracker agent {s.id}`{more}")
    return 0


def _out(text: str) -> None:
    from ..sdk.output import safe

    print(safe(text))


def _counts(s) -> dict[str, Any]:
    """done (ran to an end and counts), running, left, total (None: no end), best."""
    views = s.views()
    retried = s.retried()
    done = sum(1 for v in views if v.state in ("finished", "failed", "pruned")
               and v.number not in retried)
    running = sum(1 for v in views if v.state == "running")
    left = s.remaining()
    total = None if left is None else done + running + left
    return {"done": done, "running": running, "left": left, "total": total, "best": s.best(),
            "views": views}


def _value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _best(s, best) -> str:
    if best is None:
        return ""
    return f"{s.config.metric.name}={_value(best.value)} (#{best.number})"


def _ls(args: argparse.Namespace, project: str | None) -> int:
    from ..cli import _table
    from ..errors import UsageError
    from .engine import list_sweeps

    def problem(sid: str, why: str) -> None:  # listed on, each in one line on stderr
        print(_err(why if sid in why else f"sweep {sid}: {why}").code, file=sys.stderr)

    with _fails():
        problems: list = []
        sweeps = list_sweeps(project, storage=args.storage, root=_root(args), problems=problems)
        for sid, why in problems:
            problem(sid, why)
        rows = [["ID", "PROJECT", "NAME", "METHOD", "STATE", "TRIALS", "RUNNING", "LEFT", "BEST",
                 "CREATED"]]
        for s in sweeps:
            try:
                c = _counts(s)
            except UsageError as e:  # its trials cannot be read
                problem(s.id, str(e))
                continue
            trials = f"{c['done']}/{c['total']}" if c["total"] is not None else str(c["done"])
            rows.append([s.id, s.project, s.config.name or "-", s.config.method, s.state, trials,
                         str(c["running"]), "-" if c["left"] is None else str(c["left"]),
                         _best(s, c["best"]),
                         time.strftime("%Y-%m-%d %H:%M", time.localtime(s.created))])
    if len(rows) == 1:
        where = f"project {project!r}" if project else "the store"
        _out(f"no sweeps in {where}")
        return 0
    _table(rows)
    return 0


def _duration(v) -> str:
    d = v.duration
    return "" if d is None else f"{d:.1f}s"


def _show(args: argparse.Namespace, sweep_id: str) -> int:
    from ..cli import _table

    with _fails():
        s = _open(args, sweep_id)
        c = _counts(s)
        m = s.config.metric
    params = [p.name for p in s.config.parameters if p.distribution != "constant"]
    _out(f"sweep    {s.project}/{s.id}" + (f"  ({s.name})" if s.name != s.id else ""))
    _out(f"method   {s.config.method}" + (f"   metric {m.name} ({m.goal})" if m else ""))
    _out(f"state    {s.state}")
    total = "" if c["total"] is None else f" of {c['total']}"
    left = "no end" if c["left"] is None else str(c["left"])
    _out(f"trials   {c['done']} done{total}, {c['running']} running, {left} left")
    if c["best"] is not None:
        _out(f"best     {_best(s, c['best'])}  run {c['best'].run_id}")
    _out(f"stored   {s.where}")
    views = c["views"]
    if not views:
        return 0
    print()
    rows = [["#", "STATE", "RUN", *params, *([m.name] if m else []), "DURATION", "EXIT"]]
    for v in views:
        rows.append([str(v.number), v.state, v.run_id or "",
                     *(_value(v.params.get(p)) for p in params),
                     *([_value(v.value)] if m else []), _duration(v), v.exit or ""])
    _table(rows)
    return 0


# -- nbtracker agent -------------------------------------------------------------------------
def _interrupt_on(*signals: int) -> None:
    """These signals end the agent as Ctrl-C does: the trial's process group is ended first."""
    def handler(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in signals:
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, handler)


def _check_program(s) -> None:
    """A program the agent cannot find would fail every trial; say so once, up front."""
    from .process import DEFAULT_COMMAND

    cfg = s.config
    command = [str(c) for c in (cfg.command or DEFAULT_COMMAND)]
    if cfg.program is None or "${program}" not in command:
        return
    i = command.index("${program}")
    if i > 0 and command[i - 1] == "-m":  # a module, not a file
        return
    if not Path(cfg.program).expanduser().exists():
        raise _err(f"sweep {s.id}: its program {cfg.program!r} is not in {os.getcwd()} (a "
                   "relative program is relative to the folder the agent is started in)")


def cmd_agent(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from .agent import Agent

    if args.count is not None and args.count < 0:
        raise UsageError(f"--count is a number of trials (≥ 0), not {args.count}")
    with _fails():
        s = _open(args, args.sweep_id)
        agent = Agent(s, None, args.count)
    _check_program(s)
    _interrupt_on(signal.SIGTERM, signal.SIGHUP)
    try:
        with _fails():
            agent.run()
    except KeyboardInterrupt as e:  # between trials, in the sweep's bookkeeping
        print(f"nbtracker: agent stopped ({str(e) or 'Ctrl-C'})", file=sys.stderr)
        return 130
    return 130 if agent.interrupted else 1 if agent.gave_up else 0
