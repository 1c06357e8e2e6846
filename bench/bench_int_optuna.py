"""Optuna: what one seeded study logs through nbtracker's NbtrackerCallback and through
optuna-integration's WeightsAndBiasesCallback (wandb offline, bench/.venv-integrations), and what
our callback costs per trial.

    .venv/bin/python bench/bench_int_optuna.py [--trials 8] [--repeats 7]

The study: a quadratic in `x` plus a categorical `kind`, TPE seeded, MedianPruner; trial 3 is
pruned (its reported curve is far above the others'), trial 5 fails (caught). Both sides log the
same study in one-run mode (a row per trial); the keys and steps are compared, and the values of
`value`.

The overhead: `study.optimize` of N trials of a small ridge regression fitted by gradient descent
(about 30 ms a trial, RandomSampler so the sampler costs the same each trial), with and without the
callback, interleaved, median of repeats; the difference per trial, in ms and in percent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# one BLAS thread: the objective's numpy does not fight the runs' threads for the cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(HERE))


def study_objective(optuna):
    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        for step in range(3):
            # the same curve for every trial but trial 3's, far above: only it is pruned
            trial.report(step + (1000.0 if trial.number == 3 else 0.0), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if trial.number == 5:
            raise RuntimeError("diverged")
        return (x - 2) ** 2 + (0.5 if kind == "b" else 0.0)

    return objective


def run_study(optuna, callbacks, n_trials):
    """The seeded study, with each callback's time per trial recorded in `run_study.times`."""
    times: list[float] = []

    def timed(study, trial):
        t = time.perf_counter()
        for cb in callbacks:
            cb(study, trial)
        times.append(time.perf_counter() - t)

    run_study.times = times
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
                                study_name="bench")
    study.optimize(study_objective(optuna), n_trials=n_trials, callbacks=[timed],
                   catch=(RuntimeError,))
    return study


def side(which: str, n_trials: int, mode: str) -> dict:
    """One side of the comparison, in this process; prints what it logged as JSON."""
    import optuna
    from integration_peers import key_steps

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    multirun = mode == "multirun"
    with tempfile.TemporaryDirectory() as tmp:
        if which == "wandb":
            import warnings

            warnings.simplefilter("ignore")
            import wandb
            from integration_peers import wandb_rows
            from optuna_integration.wandb import WeightsAndBiasesCallback

            os.environ["WANDB_DIR"] = tmp
            cb = WeightsAndBiasesCallback(wandb_kwargs={"project": "bench", "dir": tmp},
                                          as_multirun=multirun)
            study = run_study(optuna, [cb], n_trials)
            if wandb.run is not None:
                wandb.finish()
            wandb.teardown()  # the service writes the runs' logs after finish() returns
            if multirun:  # the last trial's run, each run read on its own
                per_run = []
                for i, d in enumerate(Path(tmp).glob("wandb/offline-run-*")):
                    (Path(tmp) / f"one{i}").mkdir()
                    (Path(tmp) / f"one{i}" / d.name).symlink_to(d)
                    per_run.append(wandb_rows(Path(tmp) / f"one{i}"))
                runs = per_run
            else:
                rows = wandb_rows(tmp)
        else:
            os.environ["NBTRACKER_DIR"] = tmp
            os.environ["NBTRACKER_SILENT"] = "true"
            import nbtracker
            from nbtracker.integrations.optuna import NbtrackerCallback

            cb = NbtrackerCallback(nbtracker_kwargs={"project": "bench"}, as_multirun=multirun)
            study = run_study(optuna, [cb], n_trials)
            nbtracker.finish()
            if multirun:
                runs = [list(r.scan_history()) for r in nbtracker.Api().runs("bench")]
            else:
                rows = list(nbtracker.Api().runs("bench")[0].scan_history())
    if multirun:  # the runs by trial; compared: the last trial's run
        by_trial = {r["trial_number"]: rs for rs in runs for r in rs if "trial_number" in r}
        rows = by_trial[max(by_trial)]
        values = {n: rs[-1]["value"] for n, rs in by_trial.items() if "value" in rs[-1]}
    else:
        values = {r["_step"]: r["value"] for r in rows if "value" in r}
    times = run_study.times
    return {"keys": key_steps(rows), "values": values,
            "callback ms": [round(1000 * times[0], 2),
                            round(1000 * statistics.median(times[1:]), 3)],
            "study": {t.number: [t.state.name, t.value] for t in study.trials}}


# -- overhead -----------------------------------------------------------------------------
def ridge_objective(np):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 32))
    y = X @ rng.normal(size=32) + rng.normal(scale=0.1, size=2000)
    Xt, yt, Xv, yv = X[:1500], y[:1500], X[1500:], y[1500:]

    def objective(trial):
        lam = trial.suggest_float("lam", 1e-4, 1.0, log=True)
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        w = np.zeros(32)
        for _ in range(600):
            w -= lr * (Xt.T @ (Xt @ w - yt) / len(yt) + lam * w)
        return float(np.mean((Xv @ w - yv) ** 2))

    return objective


def overhead(n_trials: int, repeats: int) -> dict:
    import numpy as np
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tmp = tempfile.mkdtemp()
    os.environ["NBTRACKER_DIR"] = tmp
    os.environ["NBTRACKER_SILENT"] = "true"
    import nbtracker
    from nbtracker.integrations.optuna import NbtrackerCallback

    objective = ridge_objective(np)

    def optimize(callbacks):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                                    study_name="overhead")
        study.optimize(objective, n_trials=n_trials, callbacks=callbacks)

    def callback_time(as_multirun: bool, n: int) -> dict:  # the callback's own time per call
        cb = NbtrackerCallback(nbtracker_kwargs={"project": "calls"}, as_multirun=as_multirun)
        times = []

        def timed(study, trial):
            t = time.perf_counter()
            cb(study, trial)
            times.append(time.perf_counter() - t)

        optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).optimize(
            lambda t: (t.suggest_float("x", -10, 10) - 2) ** 2, n_trials=n, callbacks=[timed])
        nbtracker.finish()
        return {"first ms": round(1000 * times[0], 2),
                "median ms": round(1000 * statistics.median(times[1:]), 3),
                "mean ms": round(1000 * statistics.mean(times[1:]), 3)}

    calls = {"one run": callback_time(False, 500), "multirun": callback_time(True, 50)}

    # (setup, timed, teardown): only `timed` is measured
    variants = {
        "without": (None, lambda _: optimize([]), None),
        # what Optuna itself spends on any callback (it hands each a copy of the trial)
        "a callback that does nothing": (None, lambda _: optimize([lambda study, t: None]),
                                         None),
        # the run started beforehand, as wandb's callback starts it when it is made
        "one run, started before": (lambda: nbtracker.init(project="overhead"),
                                    lambda _: optimize([NbtrackerCallback()]),
                                    lambda run: run.finish()),
        "one run, started and finished too": (
            None, lambda _: (optimize([NbtrackerCallback(nbtracker_kwargs={
                "project": "overhead"})]), nbtracker.finish()), None),
        "multirun, a run per trial": (None, lambda _: optimize([NbtrackerCallback(
            nbtracker_kwargs={"project": "overhead"}, as_multirun=True)]), None),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    shuffle = random.Random(0).shuffle
    for _ in range(repeats):  # interleaved, in a new order each time: drift hits them all
        shuffle(order)
        for name in order:
            setup, fn, teardown = variants[name]
            state = setup() if setup else None
            t = time.perf_counter()
            fn(state)
            times[name].append(time.perf_counter() - t)
            if teardown:
                teardown(state)
    base = statistics.median(times.pop("without"))
    out: dict = {"trial ms": round(1000 * base / n_trials, 2), "trials": n_trials,
                 "calls": calls, "without s": round(base, 4)}
    for name, ts in times.items():
        w = statistics.median(ts)
        out[name] = {"with s": round(w, 4), "without s": round(base, 4),
                     "overhead %": round(100 * (w - base) / base, 2),
                     "per trial ms": round(1000 * (w - base) / n_trials, 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", choices=["nbtracker", "wandb"])
    ap.add_argument("--mode", choices=["one-run", "multirun"], default="one-run")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--overhead-trials", type=int, default=30)
    ap.add_argument("--no-compare", action="store_true", help="only the overhead")
    a = ap.parse_args()
    if a.side:
        print(json.dumps(side(a.side, a.trials, a.mode)))
        return

    from integration_peers import compare, print_compare, run_side

    me = Path(__file__)
    for mode in () if a.no_compare else ("one-run", "multirun"):
        ours = run_side(me, "nbtracker", "--trials", str(a.trials), "--mode", mode)
        theirs = run_side(me, "wandb", "--trials", str(a.trials), "--mode", mode)
        what = "a row per trial" if mode == "one-run" else "the last trial's run"
        print(f"\n== {mode}: {what}; keys and the steps they were logged at")
        print_compare(compare(ours["keys"], theirs["keys"]))
        print("trials:", {n: s for n, (s, _) in ours["study"].items()})
        same_study = ours["study"] == theirs["study"]
        print(f"the same study on both sides: {same_study}")
        ov, tv = ours["values"], theirs["values"]
        at = "steps" if mode == "one-run" else "trials' runs"
        print(f"`value` — nbtracker: {len(ov)} points, wandb: {len(tv)} points; at the {at} "
              f"both logged, equal: {all(ov[s] == tv[s] for s in ov if s in tv)}; "
              f"{at} only wandb logged: {sorted(set(tv) - set(ov), key=int)}")
        for who, r in (("nbtracker", ours), ("wandb", theirs)):
            first, median = r["callback ms"]
            print(f"{who} callback's time per trial: first {first} ms, then median {median} ms")

    print(f"\n== overhead: {a.overhead_trials} trials, median of {a.repeats} interleaved repeats")
    res = overhead(a.overhead_trials, a.repeats)
    res.pop("without s")
    print(f"an objective's trial: {res.pop('trial ms')} ms; {res.pop('trials')} trials")
    calls = res.pop("calls")
    print("the callback's own time per trial (first call: starts the run):")
    for name, c in calls.items():
        print(f"  {name:10} first {c['first ms']} ms, then median {c['median ms']} ms, "
              f"mean {c['mean ms']} ms")
    print(f"{'callback':36} {'with s':>8} {'without s':>9} {'overhead %':>10} {'ms/trial':>9}")
    for name, r in res.items():
        print(f"{name:36} {r['with s']:>8} {r['without s']:>9} {r['overhead %']:>10} "
              f"{r['per trial ms']:>9}")


if __name__ == "__main__":
    main()
