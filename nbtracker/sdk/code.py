"""Code and environment capture: what it takes to know where a run ran and to get its code back.

At init (unless `save_code` is off: `init(save_code=False)`, NBTRACKER_DISABLE_CODE=true), a
background thread, so that init stays fast, records

- an env record, `{"t":"env","d":{…}}`, with the keys
      python, implementation, platform, host, executable, argv, cwd, program, pid, started (Unix
      time), cpu_count, memory {total (bytes)}, gpu_count (only when an NVIDIA driver shows GPUs),
      git {root, commit, branch, remote, remote_name, dirty} (only in a git work tree; a remote
      URL without user name or password, `https://host/…`; with `incomplete: true`, and keys
      left out, when git did not answer within the capture's deadline), notebook {path, name} (in a
      notebook; path only when it can be known: JPY_SESSION_NAME from Jupyter, VS Code's
      `__vsc_ipynb_file__`)
  and gives it to the run's event listeners as `info`;
- files under the run's `files/`, each recorded as a `file` record like any saved file:
      code/diff.patch       `git diff HEAD` (uncommitted changes, staged or not, untracked files
                            not included, as wandb saves it), without the files matching the
                            run's ignore_globs; only when there are changes; at most
                            MAX_PATCH bytes (cut at a line's end, with a last line saying
                            so and how big the whole diff was)
      code/<name>.py        the script (`sys.argv[0]`), or in a notebook the source of the cells
                            run so far, `# In[n]:` before each, written again at finish so it
                            holds the cells run while the run was active
      requirements.txt      installed distributions, `name==version`, sorted by name
  (a file whose name matches one of the run's ignore_globs is not saved).

`close()` waits for the capture (so everything lands before the exit record) and rewrites the
notebook's code. git gets CAPTURE_TIMEOUT seconds from init for all its calls, and `close()`
waits at most CLOSE_WAIT seconds more: then a git still running is stopped and what is left is
not written (nothing is written once the run is done). Nothing here stops a run: git missing, not
a repository, a timeout — the keys are left out.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import platform
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..store import layout
from ..store.recordlog import make_record
from . import output

GIT_TIMEOUT = 5.0  # seconds for one git query
CAPTURE_TIMEOUT = 10.0  # seconds from init for all of the capture's git calls
CLOSE_WAIT = 2.0  # seconds finish() waits for the capture; then git is stopped
MAX_PATCH = 10 * 1024 * 1024  # bytes of diff.patch kept
START_DELAY = 0.02  # seconds the capture lets init() finish first (they would share the GIL)


def start(run: Any) -> CodeCapture | None:
    if not getattr(run.settings, "save_code", True):
        return None
    return CodeCapture(run)


class CodeCapture:
    def __init__(self, run: Any):
        self._run = run
        self._shell = _notebook_shell()
        self._closing = threading.Event()
        self._captured = threading.Event()
        self._budget = Budget(CAPTURE_TIMEOUT)
        _worker.submit(self._capture)

    def _capture(self) -> None:
        try:
            self._capture_all()
        finally:
            self._captured.set()

    def _capture_all(self) -> None:
        run = self._run
        self._closing.wait(START_DELAY)
        try:
            budget = self._budget
            env = environment(run.start_time, self._shell, budget)
            git = env.get("git") or {}
            patch = None
            if git.get("root") and git.get("commit") and git.get("dirty"):
                patch = self._make_patch(git["root"])
            if budget.cut:
                env.setdefault("git", {})["incomplete"] = True
            with run._mutex:
                if run._done:
                    if patch:
                        patch.unlink(missing_ok=True)
                    return
                run._append(make_record("env", env))
            run._emit("info", env)
            if patch:
                dst = patch.with_name("diff.patch")
                if not place_file(run, "code/diff.patch", patch, dst):
                    patch.unlink(missing_ok=True)
            self._save_code(env)
            save_bytes(run, "requirements.txt", requirements().encode())
        except Exception as e:
            run._warn_once("code", f"code and environment not fully recorded: {e}")

    def _make_patch(self, root: str) -> Path | None:
        """The diff in a temporary file beside where diff.patch goes, or None."""
        run = self._run
        if _ignored("code/diff.patch", list(run.settings.ignore_globs or ())):
            return None
        dst = Path(run._path) / layout.FILES_DIR / "code" / "diff.patch"
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(".diff.patch.tmp")
        if git_diff(root, list(run.settings.ignore_globs or ()), tmp, self._budget):
            return tmp
        tmp.unlink(missing_ok=True)
        return None

    def _save_code(self, env: dict) -> None:
        if self._shell is not None:
            self._save_cells(env.get("notebook", {}).get("name"))
            return
        script = sys.argv[0] if sys.argv else ""
        if script.endswith(".py") and os.path.isfile(script):
            save_bytes(self._run, f"code/{_safe_name(os.path.basename(script))}",
                       Path(script).read_bytes())

    def _save_cells(self, name: str | None) -> None:
        stem = _safe_name(os.path.splitext(name)[0]) if name else ""
        save_bytes(self._run, f"code/{stem or 'notebook'}.py",
                   notebook_source(self._shell).encode("utf-8", "replace"))

    def close(self, state: str) -> None:
        self._closing.set()
        if not self._captured.wait(CLOSE_WAIT):
            self._budget.cancel()  # git stops; what is left is quick (or not written at all)
            if not self._captured.wait(CLOSE_WAIT / 4):
                output.debug("code capture still running at finish; left out",
                             self._run._debug_path)
                return
        if self._shell is not None:  # the cells run since init, too
            path = notebook_path(self._shell)
            self._save_cells(os.path.basename(path) if path else None)


class _Worker:
    """One thread for the captures of all runs, started with the first: a run's init only
    queues its capture (starting a thread of its own can take milliseconds on a busy machine)."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def submit(self, job) -> None:
        self.jobs.put(job)
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="nbtracker-code",
                                               daemon=True)
                self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                job()
            except Exception:
                pass  # each job reports its own failure (CodeCapture._capture_all)


_worker = _Worker()


def _after_fork_in_child() -> None:
    global _worker
    _worker = _Worker()  # the parent's thread and queue are not this process's


os.register_at_fork(after_in_child=_after_fork_in_child)


# -- environment -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _machine() -> dict:
    """What does not change while the process lives."""
    d: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "executable": sys.executable,
    }
    return d


def environment(started: float, shell: Any = None, budget: Budget | None = None) -> dict:
    """The env record's values for this process (see the module docstring)."""
    d = dict(_machine())
    d.update({"argv": list(sys.argv), "cwd": os.getcwd(), "pid": os.getpid(),
              "started": started, "cpu_count": os.cpu_count()})
    mem = _memory_total()
    if mem:
        d["memory"] = {"total": mem}
    gpus = _gpu_count()
    if gpus:
        d["gpu_count"] = gpus
    git = git_info(d["cwd"], budget)
    if git:
        d["git"] = git
    if shell is not None:
        path = notebook_path(shell)
        nb: dict[str, Any] = {"name": os.path.basename(path) if path else None}
        if path:
            nb["path"] = path
        d["notebook"] = nb
        d["program"] = path or "<notebook>"
    elif sys.argv and sys.argv[0]:
        d["program"] = os.path.abspath(sys.argv[0]) if os.path.isfile(sys.argv[0]) else sys.argv[0]
    return d


def _memory_total() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _gpu_count() -> int:
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


# -- git -------------------------------------------------------------------------------------
class Budget:
    """One deadline for all of a capture's git calls; `cut` says one was refused or stopped for
    it. `cancel()` ends it now and stops the git running."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.cut = False
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def cancel(self) -> None:
        with self.lock:
            self.deadline = 0.0
            if self.proc is not None:
                _kill(self.proc)


def _kill(p: subprocess.Popen) -> None:
    try:  # the whole group: a git that is a script leaves a child holding the pipe otherwise
        os.killpg(p.pid, signal.SIGKILL)
    except (AttributeError, OSError):
        try:
            p.kill()
        except OSError:
            pass


def _git(args: list[str], cwd: str, timeout: float = GIT_TIMEOUT, stdout: Any = None,
         budget: Budget | None = None) -> str | None:
    """A git command's output (stripped), or None when it fails, times out or git is missing."""
    if budget is not None:
        left = budget.left()
        if left <= 0:
            budget.cut = True
            return None
        timeout = min(timeout, left)
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        p = subprocess.Popen(["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=stdout if stdout is not None else subprocess.PIPE,
                             stderr=subprocess.DEVNULL, start_new_session=os.name == "posix")
    except (OSError, subprocess.SubprocessError):
        return None
    if budget is not None:
        with budget.lock:
            budget.proc = p
            if budget.left() <= 0:  # cancelled meanwhile
                _kill(p)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(p)
        p.communicate()
        if budget is not None:
            budget.cut = True
        return None
    finally:
        if budget is not None:
            with budget.lock:
                budget.proc = None
    if p.returncode != 0:
        if budget is not None and p.returncode < 0 and budget.left() <= 0:
            budget.cut = True  # stopped by cancel()
        return None
    return "" if stdout is not None else out.decode("utf-8", "replace").strip()


def git_info(cwd: str, budget: Budget | None = None) -> dict | None:
    """{root, commit, branch, remote, remote_name, dirty} of the work tree holding `cwd`, or
    None outside one. commit is None before the first commit, branch when HEAD is detached,
    remote when there is none."""
    root = _git(["rev-parse", "--show-toplevel"], cwd, budget=budget)
    if not root:
        return None
    commit = _git(["rev-parse", "--verify", "-q", "HEAD"], root, budget=budget) or None
    branch = _git(["symbolic-ref", "-q", "--short", "HEAD"], root, budget=budget) or None
    status = _git(["status", "--porcelain", "--untracked-files=no"], root, budget=budget)
    info: dict[str, Any] = {"root": root, "commit": commit, "branch": branch,
                            "remote": None, "dirty": bool(status)}
    config = _git(["config", "--get-regexp", r"^(remote\..*\.url|branch\..*\.remote)$"], root,
                  budget=budget)
    remotes: dict[str, str] = {}
    upstream = None
    for line in (config or "").splitlines():
        key, _, value = line.partition(" ")
        if key.startswith("remote.") and key.endswith(".url"):
            remotes.setdefault(key[7:-4], value)
        elif branch and key == f"branch.{branch}.remote":
            upstream = value
    name = upstream if upstream in remotes else ("origin" if "origin" in remotes
                                                 else next(iter(remotes), None))
    if name:
        info["remote"] = clean_url(remotes[name])
        info["remote_name"] = name
    return info


def clean_url(url: str) -> str:
    """A remote URL without credentials: `https://user:token@host/x` -> `https://host/x`; an ssh
    user name (`ssh://git@host/x`, `git@host:x`) is kept, a password never; query and fragment
    (where tokens go too) are dropped."""
    if "://" not in url:  # scp-like user@host:path, or a local path
        user, at, rest = url.partition("@")
        if at and ":" in user:
            return f"{user.split(':', 1)[0]}@{rest}"
        return url
    try:
        p = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/]*@", "//", url)
    host = p.netloc.rpartition("@")[2]
    user = p.username if p.scheme.startswith("ssh") or p.scheme.endswith("+ssh") else None
    netloc = f"{user}@{host}" if user else host
    return urlunsplit((p.scheme, netloc, p.path, "", ""))


def git_diff(root: str, ignore_globs: list[str], dst: Path, budget: Budget | None = None,
             limit: int | None = None) -> bool:
    """Write `git diff HEAD` of the work tree at `root` to `dst`, without the files that match
    one of `ignore_globs` (fnmatch on the path from the repository root or on the file name),
    cut to `limit` bytes (MAX_PATCH). True when something was written."""
    spec = ["--", "."]
    if ignore_globs:
        names = _git(["diff", "HEAD", "--name-only", "-z"], root, budget=budget)
        if names is None:
            return False
        for name in names.split("\0"):
            if name and _ignored(name, ignore_globs):
                spec.append(f":(exclude,literal){name}")
    with open(dst, "wb") as f:
        ok = _git(["diff", "--submodule=diff", "HEAD", *spec], root, CAPTURE_TIMEOUT, stdout=f,
                  budget=budget)
    if ok is None:
        return False
    size = dst.stat().st_size
    cap = MAX_PATCH if limit is None else limit
    if size > cap:
        _cut(dst, size, cap)
    return size > 0


def _cut(path: Path, size: int, cap: int) -> None:
    """Cut the patch at `path` (`size` bytes) to at most `cap`, at a line's end, and end it with
    a line saying so."""
    note = (f"# nbtracker: diff.patch cut here at {cap} bytes; the whole diff was {size} "
            "bytes\n").encode()
    room = max(cap - len(note), 0)
    with open(path, "r+b") as f:
        start = max(room - 1024 * 1024, 0)
        f.seek(start)
        chunk = f.read(room - start)
        nl = chunk.rfind(b"\n")
        keep = start + nl + 1 if nl >= 0 else 0
        f.truncate(keep)
        f.seek(keep)
        f.write(note)


def _ignored(path: str, globs: list[str]) -> bool:
    base = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(base, g) for g in globs)


# -- notebook --------------------------------------------------------------------------------
def _notebook_shell() -> Any:
    """The IPython shell when this process is a notebook's kernel, else None."""
    if not output.in_notebook():
        return None
    try:
        from IPython import get_ipython

        return get_ipython()
    except Exception:
        return None


def notebook_path(shell: Any) -> str | None:
    """The notebook's file when it can be known: VS Code names it in the namespace, Jupyter's
    server in JPY_SESSION_NAME (ipykernel copies it to `__session__`). Colab says nothing."""
    ns = getattr(shell, "user_ns", {}) or {}
    vsc = ns.get("__vsc_ipynb_file__")
    if isinstance(vsc, str) and vsc:
        return vsc
    p = os.environ.get("JPY_SESSION_NAME") or ns.get("__session__")
    if not isinstance(p, str) or not p.endswith(".ipynb"):
        return None
    if not os.path.isabs(p):  # a path from the server's root; the kernel runs beside the file
        here = os.path.join(os.getcwd(), os.path.basename(p))
        if os.path.isfile(here):
            return here
    return p


def notebook_source(shell: Any) -> str:
    """The source of the cells run so far in this kernel, each after `# In[n]:`."""
    hist = list(getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
                or shell.user_ns.get("In", []))
    parts = []
    for n, src in enumerate(hist):
        if n == 0 or not isinstance(src, str) or not src.strip():
            continue
        parts.append(f"# In[{n}]:\n{src.rstrip()}\n")
    return "\n\n".join(parts)


# -- packages --------------------------------------------------------------------------------
_listed: tuple[tuple, str] | None = None  # (what the folders on sys.path were, the list)


def requirements() -> str:
    """`requirements_list()`, read again only when a folder on sys.path has changed (an install
    changes its folder's modification time)."""
    global _listed
    key = []
    for entry in sys.path:
        try:
            key.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            key.append((entry, None))
    if _listed is not None and _listed[0] == tuple(key):
        return _listed[1]
    text = requirements_list()
    _listed = (tuple(key), text)
    return text


def requirements_list() -> str:
    """`name==version` of every distribution on sys.path (the first of a name wins, as for
    imports), sorted by name. Read from the metadata folders' names, which wheels and pip name
    `<name>-<version>.dist-info`; others have their metadata read."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for n in names:
            if n.endswith(".dist-info"):
                name, _, version = n[:-10].partition("-")
            elif n.endswith(".egg-info"):
                name, _, version = n[:-9].partition("-")
                version = version.split("-py", 1)[0]
            else:
                continue
            if not version:
                try:
                    import importlib.metadata as md  # slow to import: only when needed

                    dist = md.Distribution.at(os.path.join(entry or ".", n))
                    name, version = dist.metadata["Name"] or name, dist.version
                except Exception:
                    continue
            key = re.sub(r"[-_.]+", "-", name).lower()
            if key and version and key not in found:
                found[key] = f"{name}=={version}"
    return "".join(f"{found[k]}\n" for k in sorted(found))


# -- files -----------------------------------------------------------------------------------
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def _safe_name(name: str) -> str:
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    return name


def save_bytes(run: Any, rel: str, data: bytes) -> None:
    """Write `data` as the run's file `files/<rel>` and record it (a `file` record), unless the
    run's ignore_globs match it or the run is done."""
    if _ignored(rel, list(run.settings.ignore_globs or ())) or run._done:
        return
    dst = Path(run._path) / layout.FILES_DIR / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.write_bytes(data)
    if not place_file(run, rel, tmp, dst):
        tmp.unlink(missing_ok=True)


def place_file(run: Any, rel: str, tmp: Path, dst: Path) -> bool:
    """Move `tmp` to `dst` and record it as the run's file `rel`, unless the run is done."""
    with run._mutex:
        if run._done:
            return False
        os.replace(tmp, dst)
        run._record_file(rel, dst)
        return True


# -- run.log_code() ---------------------------------------------------------------------------
# Never walked into, whatever exclude_fn says: copying the store into the run, a repository's
# objects or a virtualenv's thousands of packages is never what `log_code(".")` means (wandb
# walks them; here they are left out on purpose).
_NEVER_ENTERED = frozenset({".git", "__pycache__", "node_modules"})


def is_code_file(path: str, root: str | None = None) -> bool:
    """wandb's default `include_fn` of `log_code`: Python files, requirements.txt, Dockerfiles."""
    name = os.path.basename(path)
    return name.endswith(".py") or name.startswith("Dockerfile") or name == "requirements.txt"


def in_wandb_folder(path: str, root: str) -> bool:
    """wandb's default `exclude_fn` of `log_code`: files under `wandb/` or `.wandb/`."""
    rel = os.path.relpath(path, root)
    return any(rel.startswith(d + os.sep) for d in ("wandb", ".wandb"))


def _call(fn: Any, path: str, root: str) -> bool:
    """`fn(path, root)` or `fn(path)`, as wandb calls include_fn and exclude_fn."""
    import inspect

    try:
        two = len(inspect.signature(fn).parameters) >= 2
    except (TypeError, ValueError):
        two = False
    return bool(fn(path, root) if two else fn(path))


def log_code(run: Any, root: Any, name: str | None, include_fn: Any, exclude_fn: Any
             ) -> list[str] | None:
    """`run.log_code(...)`: copy the matching files under `root` into the run's files as
    `code/[name/]<relative path>`; the names saved, or None (with a warning) when none matched."""
    import shutil

    include_fn = include_fn or is_code_file
    exclude_fn = exclude_fn or in_wandb_folder
    top = os.path.abspath(os.fspath(root if root is not None else "."))
    if not os.path.isdir(top):
        run._warn_once(f"log_code:{top}", f"log_code(): {top} is not a folder; no code is kept")
        return None
    prefix = "code/" + (f"{_safe_name(str(name))}/" if name and _safe_name(str(name)) else "")
    store = {os.path.realpath(p) for p in (Path(run._path).parent.parent.parent,
                                           run.settings.root)}
    globs = list(run.settings.ignore_globs or ())
    saved: list[str] = []
    for dirpath, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in _NEVER_ENTERED
                         and os.path.realpath(os.path.join(dirpath, d)) not in store
                         and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg")))
        for fname in sorted(files):
            path = os.path.join(dirpath, fname)
            if not os.path.isfile(path):
                continue
            try:
                if not _call(include_fn, path, top) or _call(exclude_fn, path, top):
                    continue
            except Exception as e:  # the user's function: one warning, the walk goes on
                run._warn_once("log_code:fn", f"log_code(): include_fn/exclude_fn failed on "
                               f"{path}: {e}; that file is left out")
                continue
            rel = prefix + Path(os.path.relpath(path, top)).as_posix()
            if run._bad_name(rel, path) or _ignored(rel, globs):
                continue
            dst = Path(run._path) / layout.FILES_DIR / rel
            tmp = dst.with_name(f".{dst.name}.tmp")
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, tmp)
            except OSError as e:
                run._warn_once(f"log_code:{path}", f"log_code(): could not copy {path}: {e}")
                continue
            if not place_file(run, rel, tmp, dst):
                tmp.unlink(missing_ok=True)
                break  # the run finished meanwhile
            saved.append(rel)
    if not saved:
        run._warn_once(f"log_code-none:{top}", f"log_code(): no file under {top} matched; "
                       "no code is kept")
        return None
    return saved
