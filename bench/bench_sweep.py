"""A sweep's overhead per trial: agent start to the trial's `init()`, and the whole cost of a trial
of a trivial training, against floors and against plain Optuna, in one run.

    python bench/bench_sweep.py [--trials 20] [--repeats 5] [--pg URL] [--modes function,subprocess,log]

The sweep: `method: random` over two parameters (`lr` log_uniform_values, `batch_size` values),
`metric: loss`; the training is trivial: `init()`, five `log()` calls of two values, `finish()`.
Each case runs in a fresh process (its own store in a temporary folder), the cases of a repeat
one after the other, repeats interleaved; a figure is the median over repeats of each repeat's
median over its trials. "per trial" is a trial's cycle: from its start (the ask, the call, the
spawn) to the next trial's; "wall/N" is the whole loop over the trials, first one included (the
first trial of a fresh process imports and warms what the others reuse).

Function mode (`nbtracker.agent(sweep_id, function=train, count=N)`), times taken from outside:
`Agent._next` (the agent asking the sweep for a trial) is wrapped to note the time it is called, and
`train` notes when it is entered, when `init()` returns, and around `finish()`.

- ask → init(): from the agent asking for the trial to the trial's `init()` returning;
- agent before / after: the agent's time outside `train` (asking, recording the trial's values;
  then closing the run, collecting the trial's garbage, recording the outcome with the metric's
  value); the collection (`_release_memory`, a full `gc.collect()`) is timed by a wrapper too;
- agent() → 1st init(): from calling `agent()` in a fresh process (the sweep made by another
  one, so Optuna is imported there) to the first trial's `init()` returning.

Floors and peers: `train()` alone, the same function called N times with the trial's values as
`init(config=...)`; a bare Optuna `ask()` + two `suggest_*` + `tell()` on the same storage; the peer
is what a plain Optuna user pays: `study.optimize(objective, n_trials=N)` with a trivial objective
(the same two suggestions), and with an objective that runs `train()` (Optuna plus the tracker by
hand).

Subprocess mode (`agent(sweep_id, count=N)` with `program: trial.py`): the trial program writes
`time.time()` as its first statement, after `init()` returns and at its end into a file; the agent's
asks are noted by the same wrapper. ask → init() spans the processes (ask → start: the agent's work
and the spawn; start → init: the trial's imports and `init()`); "after" runs from the trial's end
(after `finish()`) to the next ask: its interpreter's exit, the agent noticing it, its records.
Floors: the same program run without a sweep (`subprocess.run`: spawn to `init()` returning, and
to its exit) and `python -c pass`.

With hyperband (`early_terminate`), the agent reports each logged value of the metric to Optuna
and judges the trial, inside `log()`: the log cases time `log()` of the metric (median, mean and
max over every call) in a sweep with and without `early_terminate: {type: hyperband, min_iter:
3}`, every trial logging the same values (none is stopped).

Storage: the local store (Optuna's journal file); with `--pg URL` or NBTRACKER_TEST_DATABASE_URL,
PostgreSQL too (a fresh database on that server, dropped at the end). wandb's agent is not a peer
here: its sweeps live on wandb's server, so it cannot run offline.

Results are also written to bench/results/sweep.json (or `--json PATH`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CONFIG = {
    "method": "random",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
                   "batch_size": {"values": [32, 64, 128]}},
}
PROJECT = "bench"
LOGS = 5

TRIAL_PROGRAM = """\
import time
t0 = time.time()
import os
import nbtracker
run = nbtracker.init(project="bench")
t1 = time.time()
lr = run.config.get("lr", 0.01)
for i in range(5):
    run.log({"loss": lr / (i + 1), "acc": 1.0 - lr / (i + 1)})
run.finish()
t2 = time.time()
fd = os.open(os.environ["BENCH_MARKS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, f"{run.id} {t0!r} {t1!r} {t2!r}\\n".encode())
os.close(fd)
"""


# -- the children: one case, one repeat, in a fresh process ----------------------------------------
def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _cycles(starts: list[float], end: float) -> list[float]:
    """Each trial's time from its start to the next one's (the last: to `end`)."""
    nxt = starts[1:] + [end]
    return [nxt[i] - starts[i] for i in range(len(starts))]


def _ms(xs: list[float]) -> float | None:
    m = _median(xs)
    return None if m is None else m * 1e3


def _journal(path: str):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


def _optuna_storage(a: dict):
    import optuna

    if a.get("url"):
        from nbtracker.sweeps.engine import storage_url

        return optuna.storages.RDBStorage(storage_url(a["url"]))
    return _journal(os.path.join(a["dir"], "optuna.log"))


def _suggest(trial) -> tuple[float, int]:
    return (trial.suggest_float("lr", 1e-5, 1e-1, log=True),
            trial.suggest_categorical("batch_size", [32, 64, 128]))


def _study(a: dict):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=_optuna_storage(a), sampler=optuna.samplers.RandomSampler(seed=0),
                               study_name=f"bench-{os.getpid()}-{time.time_ns()}")


class Marks:
    """Times noted by `train` (perf_counter)."""

    def __init__(self) -> None:
        self.call: list[float] = []
        self.init: list[float] = []
        self.body: list[float] = []
        self.ret: list[float] = []


def make_train(marks: Marks, config=None):
    import nbtracker

    def train(params: dict | None = None) -> float:
        pc = time.perf_counter
        marks.call.append(pc())
        if params is None:
            run = nbtracker.init()  # a sweep's trial: project and values come from the agent
        else:
            run = nbtracker.init(project=PROJECT, config=params)
        marks.init.append(pc())
        lr = run.config.get("lr", 0.01)
        for i in range(LOGS):
            run.log({"loss": lr / (i + 1), "acc": 1.0 - lr / (i + 1)})
        marks.body.append(pc())
        run.finish()
        marks.ret.append(pc())
        return lr / LOGS

    return train


def child_train(a: dict) -> dict:
    """train() alone, N times, with values as Optuna would give them."""
    import random

    marks = Marks()
    train = make_train(marks)
    rng = random.Random(0)
    t = time.perf_counter()
    for _ in range(a["trials"]):
        train({"lr": 10 ** rng.uniform(-5, -1), "batch_size": rng.choice([32, 64, 128])})
    end = time.perf_counter()
    n = a["trials"]
    return {"per_trial_ms": _ms(_cycles(marks.call, end)), "wall_per_trial_ms": (end - t) / n * 1e3,
            "init_ms": _ms([marks.init[i] - marks.call[i] for i in range(n)]),
            "finish_ms": _ms([marks.ret[i] - marks.body[i] for i in range(n)])}


def child_ask_tell(a: dict) -> dict:
    """A bare Optuna trial: ask(), two suggestions, tell()."""
    study = _study(a)
    each = []
    t = time.perf_counter()
    for _ in range(a["trials"]):
        s = time.perf_counter()
        trial = study.ask()
        lr, _bs = _suggest(trial)
        study.tell(trial, lr)
        each.append(time.perf_counter() - s)
    wall = time.perf_counter() - t
    return {"per_trial_ms": _ms(each), "wall_per_trial_ms": wall / a["trials"] * 1e3}


def child_optimize(a: dict) -> dict:
    """Optuna's own loop: study.optimize(objective, n_trials=N), trivial objective or train()."""
    study = _study(a)
    marks = Marks()
    train = make_train(marks) if a["case"] == "optimize_train" else None
    asked: list[float] = []

    def objective(trial) -> float:
        asked.append(time.perf_counter())
        lr, bs = _suggest(trial)
        if train is None:
            return lr
        return train({"lr": lr, "batch_size": bs})

    t = time.perf_counter()
    study.optimize(objective, n_trials=a["trials"])
    end = time.perf_counter()
    out = {"per_trial_ms": _ms(_cycles(asked, end)), "wall_per_trial_ms": (end - t) / a["trials"] * 1e3}
    if train is not None:
        n = a["trials"]
        out["init_ms"] = _ms([marks.init[i] - marks.call[i] for i in range(n)])
        out["finish_ms"] = _ms([marks.ret[i] - marks.body[i] for i in range(n)])
        # outside train: Optuna's ask/suggest before, tell after
        nxt = asked[1:] + [end]
        out["outside_ms"] = _ms([(marks.call[i] - asked[i]) + (nxt[i] - marks.ret[i]) for i in range(n)])
    return out


def _wrap_next(clock) -> list[float]:
    """Note when the agent asks the sweep for each trial."""
    import importlib

    agent_mod = importlib.import_module("nbtracker.sweeps.agent")
    asks: list[float] = []
    orig = agent_mod.Agent._next

    def _next(self):
        asks.append(clock())
        return orig(self)

    agent_mod.Agent._next = _next
    return asks


def _wrap_release() -> list[float]:
    """Time the function-mode agent's collection of a trial's garbage (`_release_memory`: a full
    `gc.collect()`), when the agent has one."""
    import importlib

    agent_mod = importlib.import_module("nbtracker.sweeps.agent")
    spent: list[float] = []
    orig = getattr(agent_mod, "_release_memory", None)
    if orig is None:
        return spent

    def release():
        t = time.perf_counter()
        orig()
        spent.append(time.perf_counter() - t)

    agent_mod._release_memory = release
    return spent


def child_sweep(a: dict) -> dict:
    """nbtracker.agent(sweep_id, function=train, count=N) in a fresh process."""
    import nbtracker

    marks = Marks()
    train = make_train(marks)
    t0 = time.perf_counter()  # the agent's modules are imported by the wrapper: counted
    agent = nbtracker.agent  # taken before the wrapper imports the module of the same name
    asks = _wrap_next(time.perf_counter)
    released = _wrap_release()
    t = time.perf_counter()
    ran = agent(a["sweep"], function=lambda: train(), count=a["trials"],
                          storage=a.get("url"))
    end = time.perf_counter()
    n = len(marks.ret)
    if ran != a["trials"] or n != ran or len(asks) != n:
        raise SystemExit(f"{ran} trials ran, {n} returned, {len(asks)} asked; {a['trials']} meant")
    nxt = asks[1:] + [end]
    before = [marks.call[i] - asks[i] for i in range(n)]
    after = [nxt[i] - marks.ret[i] for i in range(n)]
    return {"per_trial_ms": _ms(_cycles(asks, end)), "wall_per_trial_ms": (end - t) / n * 1e3,
            "ask_to_init_ms": _ms([marks.init[i] - asks[i] for i in range(n)]),
            "before_ms": _ms(before), "after_ms": _ms(after),
            "outside_ms": _ms([before[i] + after[i] for i in range(n)]),
            "init_ms": _ms([marks.init[i] - marks.call[i] for i in range(n)]),
            "finish_ms": _ms([marks.ret[i] - marks.body[i] for i in range(n)]),
            "gc_ms": _ms(released), "first_init_ms": (marks.init[0] - t0) * 1e3}


def child_log_cost(a: dict) -> dict:
    """log() of the sweep metric in a function-mode trial, with and without hyperband: every
    trial logs the same values, so none is stopped and each logs them all."""
    import nbtracker

    each: list[float] = []

    def train() -> None:
        run = nbtracker.init()
        for i in range(a["logs"]):
            t = time.perf_counter()
            run.log({"loss": 1.0 / (i + 1)})
            each.append(time.perf_counter() - t)

    nbtracker.agent(a["sweep"], function=train, count=a["trials"], storage=a.get("url"))
    return {"log_us": _median(each) * 1e6, "mean_us": sum(each) / len(each) * 1e6,
            "max_us": max(each) * 1e6}


def _marks_file(path: str) -> list[tuple[float, float, float]]:
    out = []
    for line in Path(path).read_text().splitlines():
        _rid, t0, t1, t2 = line.split()
        out.append((float(t0), float(t1), float(t2)))
    return out


def child_sub_sweep(a: dict) -> dict:
    """nbtracker.agent(sweep_id, count=N): each trial runs trial.py as a process group."""
    import nbtracker

    marks_path = os.path.join(a["dir"], "marks.txt")
    os.environ["BENCH_MARKS"] = marks_path
    t0 = time.time()
    agent = nbtracker.agent
    asks = _wrap_next(time.time)
    t = time.time()
    ran = agent(a["sweep"], count=a["trials"], storage=a.get("url"))
    end = time.time()
    marks = _marks_file(marks_path)
    n = len(marks)
    if ran != a["trials"] or n != ran or len(asks) != n:
        raise SystemExit(f"{ran} trials ran, {n} wrote their times, {len(asks)} asked")
    nxt = asks[1:] + [end]
    return {"per_trial_ms": _ms(_cycles(asks, end)), "wall_per_trial_ms": (end - t) / n * 1e3,
            "ask_to_init_ms": _ms([marks[i][1] - asks[i] for i in range(n)]),
            "ask_to_start_ms": _ms([marks[i][0] - asks[i] for i in range(n)]),
            "start_to_init_ms": _ms([marks[i][1] - marks[i][0] for i in range(n)]),
            "after_ms": _ms([nxt[i] - marks[i][2] for i in range(n)]),
            "first_init_ms": (marks[0][1] - t0) * 1e3}


def child_sub_floor(a: dict) -> dict:
    """trial.py run directly (no sweep), N times: Popen → init() returning, and → exit."""
    # the agent's process has these imported; so has this one
    import optuna  # noqa: F401

    import nbtracker  # noqa: F401

    marks_path = os.path.join(a["dir"], "marks.txt")
    env = dict(os.environ, BENCH_MARKS=marks_path)
    spawned, exited = [], []
    for _ in range(a["trials"]):
        spawned.append(time.time())
        subprocess.run([sys.executable, a["program"]], env=env, check=True, cwd=a["dir"],
                       stdin=subprocess.DEVNULL)
        exited.append(time.time())
    marks = _marks_file(marks_path)
    n = len(marks)
    return {"per_trial_ms": _ms(_cycles(spawned, exited[-1])),
            "wall_per_trial_ms": (exited[-1] - spawned[0]) / n * 1e3,
            "ask_to_init_ms": _ms([marks[i][1] - spawned[i] for i in range(n)]),
            "ask_to_start_ms": _ms([marks[i][0] - spawned[i] for i in range(n)]),
            "start_to_init_ms": _ms([marks[i][1] - marks[i][0] for i in range(n)]),
            "after_ms": _ms([exited[i] - marks[i][2] for i in range(n)])}


def child_python(a: dict) -> dict:
    """`python -c pass`, N times: an interpreter's start and exit."""
    each = []
    for _ in range(a["trials"]):
        s = time.time()
        subprocess.run([sys.executable, "-c", "pass"], check=True, stdin=subprocess.DEVNULL)
        each.append(time.time() - s)
    return {"per_trial_ms": _ms(each), "wall_per_trial_ms": sum(each) / len(each) * 1e3}


CHILDREN = {"log_plain": child_log_cost, "log_hyperband": child_log_cost,
            "train": child_train, "ask_tell": child_ask_tell, "optimize": child_optimize,
            "optimize_train": child_optimize, "sweep": child_sweep, "sub_sweep": child_sub_sweep,
            "sub_floor": child_sub_floor, "python": child_python}


# -- the run -------------------------------------------------------------------------------------
FUNCTION_CASES = ["train", "ask_tell", "optimize", "optimize_train", "sweep"]
LOG_CASES = ["log_plain", "log_hyperband"]
HYPERBAND = {"type": "hyperband", "min_iter": 3}
SUBPROCESS_CASES = ["python", "sub_floor", "sub_sweep"]
LABELS = {
    "train": "train() alone (init, 5 log, finish)",
    "ask_tell": "Optuna ask + suggest ×2 + tell",
    "optimize": "Optuna optimize, trivial objective",
    "optimize_train": "Optuna optimize, objective = train()",
    "sweep": "nbtracker.agent(function=train)",
    "python": "python -c pass",
    "sub_floor": "python trial.py (no sweep)",
    "sub_sweep": "nbtracker.agent(), program trial.py",
}


class PgDatabase:
    """A fresh database on the server of `url`, dropped by close()."""

    def __init__(self, url: str):
        import psycopg

        self.admin = url
        self.name = f"nbt_bench_sweep_{os.getpid()}"
        base, _, _db = url.rpartition("/")
        self.url = f"{base}/{self.name}"
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.name}"')

    def close(self) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def run_case(case: str, storage: str, url: str | None, trials: int, program: Path,
             logs: int = 0) -> dict:
    work = Path(tempfile.mkdtemp(prefix="nbt-bench-sweep-"))
    try:
        a = {"case": case, "trials": trials, "dir": str(work), "url": url, "program": str(program)}
        made_ms = None
        if case in ("sweep", "sub_sweep", *LOG_CASES):
            from nbtracker.sweeps.engine import create_sweep

            cfg = dict(CONFIG, program=str(program)) if case == "sub_sweep" else CONFIG
            if case == "log_hyperband":
                cfg = dict(CONFIG, early_terminate=HYPERBAND)
            a["logs"] = logs
            t = time.perf_counter()
            a["sweep"] = create_sweep(cfg, project=PROJECT, root=work, storage=url).id
            made_ms = (time.perf_counter() - t) * 1e3
        env = dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_DIR=str(work),
                   NBTRACKER_SILENT="true")
        env.pop("NBTRACKER_SWEEP_STORAGE", None)
        p = subprocess.run([sys.executable, __file__, "--child", json.dumps(a)], env=env, cwd=work,
                           capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
        if p.returncode != 0 or not lines:
            raise RuntimeError(f"{case} ({storage}) failed:\n{p.stderr[-3000:]}")
        out = json.loads(lines[-1])
        if made_ms is not None:
            out["sweep_made_ms"] = made_ms
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summarise(reps: list[dict]) -> dict:
    keys = {k for r in reps for k in r}
    return {k: _median([r[k] for r in reps if r.get(k) is not None]) for k in sorted(keys)}


def fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def print_function(storage: str, s: dict[str, dict]) -> None:
    train = s["train"]["per_trial_ms"]
    at = s["ask_tell"]["per_trial_ms"]
    print(f"\nfunction mode, {storage}: ms per trial (median over repeats)")
    print(f"{'':<40}{'per trial':>10}{'× train':>9}{'wall/N':>8}{'init':>8}{'finish':>8}"
          f"{'outside':>9}{'ask→init':>10}")
    for case in FUNCTION_CASES:
        r = s[case]
        print(f"{LABELS[case]:<40}{fmt(r['per_trial_ms']):>10}{r['per_trial_ms'] / train:>9.2f}"
              f"{fmt(r.get('wall_per_trial_ms')):>8}"
              f"{fmt(r.get('init_ms')):>8}{fmt(r.get('finish_ms')):>8}{fmt(r.get('outside_ms')):>9}"
              f"{fmt(r.get('ask_to_init_ms')):>10}")
    sw, ot = s["sweep"], s["optimize_train"]
    print(f"- the sweep's cost per trial over train() alone: {sw['per_trial_ms'] - train:.1f} ms "
          f"(Optuna + train() by hand: {ot['per_trial_ms'] - train:.1f} ms; a bare ask+tell: {at:.1f} ms)")
    print(f"- the agent outside train(): {fmt(sw['before_ms'])} ms before (ask, values recorded), "
          f"{fmt(sw['after_ms'])} ms after (run closed, garbage collected, outcome and value "
          f"recorded), of which gc.collect() {fmt(sw.get('gc_ms'))} ms")
    print(f"- agent() → first init() in a fresh process (Optuna imported, sweep opened): "
          f"{sw['first_init_ms']:.0f} ms; making the sweep (create_sweep, in this warm process): "
          f"{sw['sweep_made_ms']:.0f} ms")


def print_subprocess(storage: str, s: dict[str, dict]) -> None:
    print(f"\nsubprocess mode, {storage}: ms per trial (median over repeats)")
    print(f"{'':<40}{'per trial':>10}{'wall/N':>8}{'ask→start':>11}{'start→init':>12}"
          f"{'ask→init':>10}{'after':>8}")
    for case in SUBPROCESS_CASES:
        r = s[case]
        print(f"{LABELS[case]:<40}{fmt(r['per_trial_ms']):>10}{fmt(r.get('wall_per_trial_ms')):>8}"
              f"{fmt(r.get('ask_to_start_ms')):>11}"
              f"{fmt(r.get('start_to_init_ms')):>12}{fmt(r.get('ask_to_init_ms')):>10}"
              f"{fmt(r.get('after_ms')):>8}")
    sw, fl = s["sub_sweep"], s["sub_floor"]
    print(f"- over the program alone: ask→init {sw['ask_to_init_ms'] - fl['ask_to_init_ms']:.1f} ms "
          f"(Popen→init), per trial {sw['per_trial_ms'] - fl['per_trial_ms']:.1f} ms, after the trial "
          f"{sw['after_ms'] - fl['after_ms']:.1f} ms")
    print(f"- agent() → first trial's init() in a fresh process: {sw['first_init_ms']:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--modes", default="function,subprocess,log",
                    help="function, subprocess, log (log() of the metric with hyperband)")
    ap.add_argument("--logs", type=int, default=50, help="log() calls per trial in the log cases")
    ap.add_argument("--pg", default=os.environ.get("NBTRACKER_TEST_DATABASE_URL"),
                    help="a PostgreSQL URL (trust auth; a fresh database is made on its server)")
    ap.add_argument("--no-pg", action="store_true", help="the local store only")
    ap.add_argument("--json", default=str(HERE / "results" / "sweep.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        args = json.loads(a.child)
        print(json.dumps(CHILDREN[args["case"]](args)))
        return

    modes = a.modes.split(",")
    cases = (FUNCTION_CASES if "function" in modes else []) + \
        (SUBPROCESS_CASES if "subprocess" in modes else []) + (LOG_CASES if "log" in modes else [])
    pg = None if a.no_pg or not a.pg else PgDatabase(a.pg)
    storages = [("local", None)] + ([("postgresql", pg.url)] if pg else [])
    work = Path(tempfile.mkdtemp(prefix="nbt-bench-sweep-prog-"))
    program = work / "trial.py"
    program.write_text(TRIAL_PROGRAM)
    raw: dict[str, dict[str, list[dict]]] = {}
    try:
        for rep in range(a.repeats):
            for storage, url in storages:
                for case in cases:
                    r = run_case(case, storage, url, a.trials, program, a.logs)
                    raw.setdefault(storage, {}).setdefault(case, []).append(r)
            print(f"  repeat {rep + 1}/{a.repeats} done", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if pg is not None:
            pg.close()

    out = {storage: {case: summarise(reps) for case, reps in by.items()} for storage, by in raw.items()}
    print(f"{a.trials} trials per sweep, {a.repeats} repeats, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    for storage, s in out.items():
        if "sweep" in s:
            print_function(storage, s)
        if "sub_sweep" in s:
            print_subprocess(storage, s)
        if "log_hyperband" in s:
            plain, hb = s["log_plain"], s["log_hyperband"]
            print(f"\nlog() of the sweep metric in a trial, {storage}, {a.logs} per trial, µs "
                  f"(median / mean / max): {plain['log_us']:.1f} / {plain['mean_us']:.1f} / "
                  f"{plain['max_us']:.0f} without early_terminate, {hb['log_us']:.1f} / "
                  f"{hb['mean_us']:.1f} / {hb['max_us']:.0f} with hyperband "
                  f"(min_iter {HYPERBAND['min_iter']}; judged at each bracket, then at most "
                  f"once a second)")
    path = Path(a.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"summary": out, "repeats_raw": raw, "trials": a.trials,
                                "repeats": a.repeats, "cores": os.cpu_count(),
                                "when": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))


if __name__ == "__main__":
    main()
