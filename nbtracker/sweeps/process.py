"""A trial's command line (wandb's macros) and its process group (POSIX; tested on Linux).

Command line
------------
A sweep's `command` is a list of strings, by default
`["${env}", "${interpreter}", "${program}", "${args}"]`. As in wandb's agent, an element that is
exactly a macro is replaced by zero or more arguments; any other element is kept, after
`${envvar:NAME}` inside it is replaced by the variable's value:

    ${env}                    /usr/bin/env
    ${interpreter}            sys.executable (wandb writes `python`, found on PATH; we run the
                              interpreter of the agent, so the trial sees the agent's packages)
    ${program}                the sweep's `program`
    ${args}                   --name=value  for each parameter
    ${args_no_equals}         --name value  (two arguments)
    ${args_no_hyphens}        name=value
    ${args_no_boolean_flags}  --name for True, nothing for False, --name=value otherwise
    ${args_append_hydra}      +name=value
    ${args_override_hydra}    ++name=value
    ${args_json}              one argument: the parameters as a JSON object
    ${args_json_file}         the path of a file holding that JSON object (written in `workdir`)

`value` is Python's `str()` of the value, exactly as wandb's f-string formats it: `1e-05`, `0.0001`,
`True`, `None`, `[32, 64]`; a nested parameter is one top-level name whose value is a dict,
`--opt={'name': 'adam', 'beta': 0.9}`. JSON is `json.dumps`' (`1e-05`, `true`, `null`; NaN and
infinities as `NaN`/`Infinity`, which Python's json reads back). Parameters keep their order.
Values must be what JSON carries: None, bool, int, float, str, lists and dicts with str keys;
a tuple is taken as the list the sweep server would have turned it into. Where wandb is silent we
refuse, with one error naming the element or parameter: an unknown whole-element macro (wandb
drops it), a known macro inside a longer element (wandb leaves it unreplaced), `${program}` with no
program, `${envvar:NAME}` with NAME unset (wandb puts in the bare name).

Environment of a trial
----------------------
`trial_env()` gives the variables added to the agent's environment:

    NBTRACKER_SWEEP_ID          the sweep
    NBTRACKER_RUN_ID            the id the trial's run must take
    NBTRACKER_PROJECT           the sweep's project (when it has one)
    NBTRACKER_SWEEP_PARAM_PATH  a JSON file `{"name": value, ...}` (nested parameters as objects):
                                the trial's config, which `init()` reads

(wandb's agent sets the WANDB_ counterparts; we leave those alone so that a program that imports the
real wandb is not sent to wandb's servers.) The agent also puts the folder of its own interpreter
(`sys.executable`'s, symlinks kept) first on the trial's PATH, unless it is first already
(`interpreter_path()`): a `command` that names `python3` or `python`, as wandb's examples do
(`${env} python3 ${program} ${args}`), runs the agent's interpreter and sees its virtualenv's
packages, as if the virtualenv were activated. `prepare_trial()` does all of it in a temporary folder
owned by the trial and removes the folder when the trial is over:

    with prepare_trial(command, program, params, sweep_id=s, run_id=r, project=p) as trial:
        with TrialProcess.start(trial.argv, env=trial.env) as proc:
            proc.wait()

Process group
-------------
`TrialProcess.start` runs the command in a new session, hence its own process group, with stdin
from /dev/null and stdout/stderr passed through (or appended to a file). Being out of the agent's
group, a trial does not receive the terminal's Ctrl-C: the agent ends it. `stop(grace)` sends
SIGTERM to the whole group, waits up to `grace` seconds, then sends SIGKILL to the group, and
returns once no process of the group is left (zombies aside, which their parents or init reap).
That covers children and grandchildren, daemons that double-fork without `setsid` included.

A descendant that calls `setsid()` (or `setpgid`) leaves the group. Those are found through psutil:
the agent notes the leader's descendants while it waits (every `TRACK_INTERVAL` seconds) and once
more before signalling, and signals each of them along with the group. A process that escapes the
group and is orphaned between two looks is out of reach (Linux's PR_SET_CHILD_SUBREAPER would
keep it; we do not set it, because the agent would then have to reap every orphan).

Leaving a `with TrialProcess.start(...)` block always stops the group. `wait()` interrupted by an
exception (KeyboardInterrupt, SystemExit) stops the group and lets the exception go on; a second
KeyboardInterrupt during the grace period sends SIGKILL at once.

Exit status: `returncode` as subprocess's (negative: killed by that signal), `signal` (the signal's
number, or None), `stopped` (ended by `stop()` while running), `killed` (SIGKILL was needed) and
`exit_description` ("exit code 3", "signal SIGKILL (stopped)") for a failed trial's record.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal as _signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import psutil

DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")
ENV_PATH = "/usr/bin/env"
ARGS_JSON_FILE = "args.json"
PARAMS_FILE = "params.json"
DEFAULT_GRACE = 10.0
TRACK_INTERVAL = 0.5
_POLL = 0.05

_ARG_MACROS = {
    "args": lambda k, v: [f"--{k}={v}"],
    "args_no_equals": lambda k, v: [f"--{k}", str(v)],
    "args_no_hyphens": lambda k, v: [f"{k}={v}"],
    "args_no_boolean_flags": lambda k, v: (
        ([f"--{k}"] if v else []) if isinstance(v, bool) else [f"--{k}={v}"]
    ),
    "args_append_hydra": lambda k, v: [f"+{k}={v}"],
    "args_override_hydra": lambda k, v: [f"++{k}={v}"],
}
MACROS = frozenset({"env", "interpreter", "program", "args_json", "args_json_file", *_ARG_MACROS})
_WHOLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_ENVVAR = re.compile(r"\$\{envvar:([A-Za-z0-9_]*)\}")


class TrialCommand(NamedTuple):
    argv: list[str]
    files: list[Path]  # files build_command wrote (in workdir)


def _plain(value: Any, where: str) -> Any:
    """The value as JSON would carry it (tuples become lists); anything else is an error."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"parameter {where!r}: key {k!r} is not a string")
            out[k] = _plain(v, f"{where}.{k}")
        return out
    raise TypeError(
        f"parameter {where!r}: {type(value).__name__} value {value!r} is not one JSON carries "
        "(None, bool, int, float, str, list, dict)"
    )


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"parameter name {name!r} must be a non-empty string")
        out[name] = _plain(value, name)
    return out


def _json(params: dict[str, Any]) -> str:
    return json.dumps(params)


def _envvars(element: str, i: int) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ValueError(f"command[{i}] {element!r}: environment variable {name!r} is not set")
        return os.environ[name]

    return _ENVVAR.sub(sub, element)


def build_command(
    command: Sequence[Any] | None,
    program: str | None,
    params: Mapping[str, Any],
    workdir: str | os.PathLike,
) -> TrialCommand:
    """The argv of a trial, with wandb's macros replaced (see the module docstring).

    Args:
        command: the sweep's `command` list, or None for the default
            `${env} ${interpreter} ${program} ${args}`.
        program: the sweep's `program` (needed only if `${program}` is used).
        params: the trial's parameters, `{name: value}`; nested parameters as dicts.
        workdir: an existing folder owned by the trial; `${args_json_file}` is written there.

    Returns:
        `TrialCommand(argv, files)`: the argument list and the files written.

    Example:
        >>> build_command(None, "train.py", {"lr": 1e-05, "deep": True}, "/tmp/t").argv
        ['/usr/bin/env', sys.executable, 'train.py', '--lr=1e-05', '--deep=True']
    """
    command = list(DEFAULT_COMMAND if command is None else command)
    if not command:
        raise ValueError("command is empty")
    values = _params(params)
    argv: list[str] = []
    files: list[Path] = []
    for i, element in enumerate(command):
        if isinstance(element, bool) or not isinstance(element, (str, int, float)):
            raise TypeError(f"command[{i}] {element!r}: must be a string")
        element = str(element)
        whole = _WHOLE.fullmatch(element)
        if whole:
            argv += _expand(whole.group(1), i, program, values, Path(workdir), files)
            continue
        for m in _WHOLE.finditer(element):
            if m.group(1) in MACROS:
                raise ValueError(
                    f"command[{i}] {element!r}: {m.group(0)} must be an element of its own "
                    "(macros are replaced only as whole elements)"
                )
        argv.append(_envvars(element, i))
    return TrialCommand(argv, files)


def _expand(
    name: str, i: int, program: str | None, values: dict[str, Any], workdir: Path, files: list[Path]
) -> list[str]:
    if name == "env":
        return [ENV_PATH]
    if name == "interpreter":
        return [sys.executable]
    if name == "program":
        if not program:
            raise ValueError(f"command[{i}] uses ${{program}} but the sweep has no program")
        return [str(program)]
    if name == "args_json":
        return [_json(values)]
    if name == "args_json_file":
        path = workdir / ARGS_JSON_FILE
        if path not in files:
            path.write_text(_json(values), encoding="utf-8")
            files.append(path)
        return [str(path)]
    if name in _ARG_MACROS:
        return [a for k, v in values.items() for a in _ARG_MACROS[name](k, v)]
    raise ValueError(
        f"command[{i}]: unknown macro ${{{name}}}; known: "
        + ", ".join("${" + m + "}" for m in sorted(MACROS))
    )


def write_params_file(path: str | os.PathLike, params: Mapping[str, Any]) -> Path:
    """Write the trial's config, `{"name": value, ...}` as JSON, for NBTRACKER_SWEEP_PARAM_PATH."""
    path = Path(path)
    path.write_text(_json(_params(params)), encoding="utf-8")
    return path


def read_params_file(path: str | os.PathLike) -> dict[str, Any]:
    """The parameters written by `write_params_file` (floats come back bit for bit)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def trial_env(
    sweep_id: str, run_id: str, project: str | None, params_path: str | os.PathLike
) -> dict[str, str]:
    """The variables a trial gets on top of the agent's environment (see the module docstring)."""
    env = {
        "NBTRACKER_SWEEP_ID": str(sweep_id),
        "NBTRACKER_RUN_ID": str(run_id),
        "NBTRACKER_SWEEP_PARAM_PATH": str(params_path),
    }
    if project:
        env["NBTRACKER_PROJECT"] = str(project)
    return env


def interpreter_path(path: str | None, executable: str | None = None) -> str:
    """`path` (a PATH value) with the folder of `executable` (default: `sys.executable`) first,
    unless it is first already; `path` unchanged when the interpreter is unknown.

    Example:
        >>> interpreter_path("/usr/bin:/bin", "/home/me/venv/bin/python")
        '/home/me/venv/bin:/usr/bin:/bin'
    """
    executable = sys.executable if executable is None else executable
    path = path or ""
    if not executable:
        return path
    folder = os.path.dirname(os.path.abspath(executable))  # not resolved: a venv's python is a link
    entries = path.split(os.pathsep) if path else []
    if entries and os.path.normpath(entries[0] or ".") == os.path.normpath(folder):
        return path
    return os.pathsep.join([folder, *entries])


@dataclass
class PreparedTrial:
    argv: list[str]
    env: dict[str, str]  # the variables to add to the agent's environment
    workdir: Path
    params_path: Path
    files: list[Path] = field(default_factory=list)


@contextmanager
def prepare_trial(
    command: Sequence[Any] | None,
    program: str | None,
    params: Mapping[str, Any],
    *,
    sweep_id: str,
    run_id: str,
    project: str | None = None,
    dir: str | os.PathLike | None = None,
) -> Iterator[PreparedTrial]:
    """A trial's argv, environment and files, in a temporary folder removed on exit.

    Args:
        command, program, params: as for `build_command`.
        sweep_id, run_id, project: as for `trial_env`.
        dir: where the temporary folder goes (default: the system's temporary folder).
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"nbtracker-trial-{run_id}-", dir=dir))
    try:
        params_path = write_params_file(workdir / PARAMS_FILE, params)
        argv, files = build_command(command, program, params, workdir)
        env = trial_env(sweep_id, run_id, project, params_path)
        yield PreparedTrial(argv, env, workdir, params_path, [params_path, *files])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _signal_name(number: int) -> str:
    try:
        return _signal.Signals(number).name
    except ValueError:
        return str(number)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_proc(p: psutil.Process, sig: int) -> None:
    try:
        p.send_signal(sig)  # psutil checks the pid still names the process it saw
    except psutil.Error:
        pass


class TrialProcess:
    """A trial's command running in its own process group; see the module docstring.

    Example:
        >>> with TrialProcess.start([sys.executable, "train.py"], env={"X": "1"}) as p:
        ...     code = p.wait(timeout=60)   # None if still running; the group is stopped on exit
    """

    def __init__(self, popen: subprocess.Popen, grace: float, output: IO | None):
        self._popen = popen
        self.pid = popen.pid
        self.pgid = popen.pid  # start_new_session: the leader's pid names the group
        self.grace = grace
        self._output = output
        self._tracked: dict[int, psutil.Process] = {}
        self._last_track = 0.0
        self.stopped = False
        self.killed = False
        try:
            self._leader = psutil.Process(self.pid)
        except psutil.Error:
            self._leader = None
        self._track()

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        output: str | os.PathLike | None = None,
        grace: float = DEFAULT_GRACE,
    ) -> TrialProcess:
        """Start `argv` in a new session (its own process group).

        Args:
            argv: the command line (e.g. `PreparedTrial.argv`).
            env: variables added to the agent's environment (e.g. `PreparedTrial.env`).
            cwd: the trial's working folder (default: the agent's).
            output: a file to append the trial's stdout and stderr to (default: passed through).
            grace: seconds between SIGTERM and SIGKILL when the group is stopped by leaving the
                `with` block or by an interrupted `wait()`.
        """
        if not argv:
            raise ValueError("argv is empty")
        full_env = dict(os.environ)
        if env:
            full_env.update({str(k): str(v) for k, v in env.items()})
        out = open(output, "ab") if output is not None else None
        try:
            popen = subprocess.Popen(
                [str(a) for a in argv],
                env=full_env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                start_new_session=True,
            )
        except BaseException:
            if out is not None:
                out.close()
            raise
        return cls(popen, grace, out)

    # exit status

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    @property
    def signal(self) -> int | None:
        rc = self._popen.returncode
        return -rc if rc is not None and rc < 0 else None

    @property
    def exit_description(self) -> str | None:
        """`"exit code 3"`, `"signal SIGKILL"` (`"... (stopped)"` if `stop()` ended it), or None."""
        rc = self._popen.returncode
        if rc is None:
            return None
        text = f"exit code {rc}" if rc >= 0 else f"signal {_signal_name(-rc)}"
        return text + " (stopped)" if self.stopped else text

    def poll(self) -> int | None:
        """The leader's return code, or None while it runs."""
        rc = self._popen.poll()
        if rc is None:
            self._track_every()
        return rc

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the leader to exit; its return code, or None if `timeout` ran out first.

        An exception while waiting (KeyboardInterrupt, SystemExit) stops the group first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    return self._popen.wait(timeout=_POLL)
                except subprocess.TimeoutExpired:
                    pass
                self._track_every()
                if deadline is not None and time.monotonic() >= deadline:
                    return self._popen.poll()
        except BaseException:
            self.stop(self.grace)
            raise

    # the group

    def _track(self) -> None:
        """Note the leader's descendants, so those that leave the group can be found later."""
        self._last_track = time.monotonic()
        if self._leader is None:
            return
        try:
            children = self._leader.children(recursive=True)
        except psutil.Error:
            return
        for c in children:
            self._tracked.setdefault(c.pid, c)

    def _track_every(self) -> None:
        if time.monotonic() - self._last_track >= TRACK_INTERVAL:
            self._track()

    def _track_tree(self) -> None:
        """Descendants of every tracked process too (an escaped child's own children)."""
        self._track()
        for p in list(self._tracked.values()):
            try:
                for c in p.children(recursive=True):
                    self._tracked.setdefault(c.pid, c)
            except psutil.Error:
                pass

    def _group_members(self) -> list[psutil.Process]:
        """Live processes whose process group is ours (leader excluded once reaped)."""
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        members = []
        for p in psutil.process_iter():
            try:
                if os.getpgid(p.pid) == self.pgid and _alive(p):
                    members.append(p)
            except (OSError, psutil.Error):
                pass
        return members

    def _remaining(self) -> list[psutil.Process]:
        self._popen.poll()  # reap the leader as soon as it dies, or it stays a zombie
        left = {p.pid: p for p in self._group_members()}
        for pid, p in self._tracked.items():
            if pid not in left and _alive(p):
                left[pid] = p
        return list(left.values())

    def _signal_all(self, sig: int) -> None:
        if self._popen.returncode is None or self._group_members():
            try:
                os.killpg(self.pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for p in self._tracked.values():
            _signal_proc(p, sig)

    def _reap(self) -> None:
        """Collect the leader's status once nothing of the trial is left alive: it may have died
        between `_remaining`'s reap and its scan of the group, and is then a zombie to wait for."""
        if self._popen.returncode is None:
            try:
                self._popen.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass

    def _wait_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            if not self._remaining():
                self._reap()
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)

    def stop(self, grace: float | None = None) -> int | None:
        """End the trial and every process of its group: SIGTERM, `grace` seconds, SIGKILL.

        Returns the leader's return code. Safe to call again, and after the trial has ended
        (it then ends what the trial left running in its group).
        """
        grace = self.grace if grace is None else grace
        if self._popen.poll() is None:
            self.stopped = True
        self._track_tree()
        try:
            if self._remaining():
                self._signal_all(_signal.SIGTERM)
                if not self._wait_gone(grace):
                    self._kill()
        except KeyboardInterrupt:
            self._kill()  # a second Ctrl-C: no more grace
            raise
        finally:
            self._close()
        return self._popen.returncode

    def _kill(self) -> None:
        self._track_tree()  # what the group spawned during the grace period
        self.killed = True
        for _ in range(3):
            self._signal_all(_signal.SIGKILL)
            if self._wait_gone(5.0):
                break
        try:
            self._popen.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # unkillable (uninterruptible sleep): leave it
            pass

    def _close(self) -> None:
        if self._popen.returncode is not None and self._output is not None:
            self._output.close()
            self._output = None

    def __enter__(self) -> TrialProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(self.grace)

    def __repr__(self) -> str:
        state = "running" if self._popen.returncode is None else f"returncode={self.returncode}"
        return f"<TrialProcess pid={self.pid} {state}>"


__all__ = [
    "DEFAULT_COMMAND",
    "MACROS",
    "PreparedTrial",
    "TrialCommand",
    "TrialProcess",
    "build_command",
    "interpreter_path",
    "prepare_trial",
    "read_params_file",
    "trial_env",
    "write_params_file",
]
