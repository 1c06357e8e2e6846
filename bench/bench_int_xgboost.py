"""XGBoost: what nbtracker's NbtrackerCallback and wandb's WandbCallback log on the same tiny
training (keys and the steps they land on), and what the callback costs per boosting round.

    .venv/bin/python bench/bench_int_xgboost.py [--repeats 9] [--rounds 200]

wandb's side runs in bench/.venv-integrations (bench/setup_integrations.sh), offline.

Overhead: `xgb.train` of `--rounds` rounds (10,000 x 20 rows, depth 4, a train and a valid eval
set, one thread) with the callback against the same training without it, interleaved, medians of
`--repeats`, with the run started before and finished after; and the time spent inside the
callback's per-round hook (perf_counter_ns around each call), for ours and for wandb's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from integration_peers import PEERS_PY, compare, key_steps, overhead, print_compare, run_side  # noqa: E402

PARAMS = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 2,
          "eta": 0.3, "seed": 0, "nthread": 1}


def media_as_one_key(keys: dict[str, list]) -> dict[str, list]:
    """wandb's rows spell a logged table as its reference's fields (`K/_type`, `K/path`, ...):
    one key `K` here, as nbtracker's rows hold it. And `wandb.plot.bar(table, ...)` logged as
    "Feature Importance" keeps its table as "Feature Importance_table" (the chart itself is not
    a history value): compared as "Feature Importance"."""
    tables = {k[: -len("/_type")] for k in keys if k.endswith("/_type")}
    out = {k: v for k, v in keys.items() if k.rsplit("/", 1)[0] not in tables}
    out.update({t: keys[t + "/_type"] for t in tables})
    return {k.removesuffix("_table") if k.startswith("Feature Importance") else k: v
            for k, v in out.items()}


def tiny_train(callbacks: list):
    """The tests' training: 200 + 100 rows, early stopping after 3 rounds without progress."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=300) > 0).astype(int)
    dtr, dva = xgb.DMatrix(x[:200], y[:200]), xgb.DMatrix(x[200:], y[200:])
    return xgb.train(PARAMS, dtr, num_boost_round=40, evals=[(dtr, "train"), (dva, "valid")],
                     early_stopping_rounds=3, verbose_eval=False, callbacks=callbacks)


def side_wandb() -> dict:
    import wandb
    from integration_peers import wandb_rows
    from wandb.integration.xgboost import WandbCallback

    with tempfile.TemporaryDirectory() as d:
        run = wandb.init(project="bench-xgboost", dir=d)
        booster = tiny_train([WandbCallback()])
        summary = {k: run.summary[k] for k in ("best_iteration", "best_score")}
        wandb.finish()
        wandb.teardown()
        rows = wandb_rows(d)
    return {"keys": key_steps(rows), "rounds": booster.num_boosted_rounds(), "summary": summary}


def side_nbtracker() -> dict:
    from integration_peers import nbtracker_rows

    import nbtracker
    from nbtracker.integrations.xgboost import NbtrackerCallback

    run = nbtracker.init(project="bench-xgboost")
    booster = tiny_train([NbtrackerCallback()])
    summary = {k: run.summary[k] for k in ("best_iteration", "best_score")}
    run.finish(quiet=True)
    return {"keys": key_steps(nbtracker_rows(run.path)), "rounds": booster.num_boosted_rounds(),
            "summary": summary}


def timed(cb, ns: list) -> object:
    inner = cb.after_iteration

    def after_iteration(model, epoch, evals_log):
        t = time.perf_counter_ns()
        stop = inner(model, epoch, evals_log)
        ns.append(time.perf_counter_ns() - t)
        return stop

    cb.after_iteration = after_iteration
    return cb


def overhead_training(rounds: int):
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(10_000, 20))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=len(x)) > 0).astype(int)
    dtr, dva = xgb.DMatrix(x[:8000], y[:8000]), xgb.DMatrix(x[8000:], y[8000:])
    params = {**PARAMS, "max_depth": 4}

    def train(callbacks):
        return lambda: xgb.train(params, dtr, num_boost_round=rounds,
                                 evals=[(dtr, "train"), (dva, "valid")], verbose_eval=False,
                                 callbacks=callbacks)

    train([])()  # warm up
    return train


def side_overhead(repeats: int, rounds: int) -> dict:
    import nbtracker
    from nbtracker.integrations.xgboost import NbtrackerCallback

    train = overhead_training(rounds)
    run = nbtracker.init(project="bench-xgboost-overhead")
    res = overhead(train([NbtrackerCallback(log_feature_importance=False)]), train([]), repeats)
    res["round ms"] = round(1e3 * res["without s"] / rounds, 3)
    res["per round µs"] = round(1e6 * (res["with s"] - res["without s"]) / rounds, 1)
    ns: list = []
    cb = timed(NbtrackerCallback(log_feature_importance=False), ns)
    for _ in range(repeats):
        train([cb])()
    run.finish(quiet=True)
    res["hook µs"] = round(statistics.median(ns) / 1e3, 1)
    return res


def side_wandb_overhead(repeats: int, rounds: int) -> dict:
    import wandb
    from wandb.integration.xgboost import WandbCallback

    train = overhead_training(rounds)
    ns: list = []
    with tempfile.TemporaryDirectory() as d:
        wandb.init(project="bench-xgboost-overhead", dir=d)
        cb = timed(WandbCallback(log_feature_importance=False), ns)
        for _ in range(repeats):
            train([cb])()
        wandb.finish()
        wandb.teardown()
    return {"hook µs": round(statistics.median(ns) / 1e3, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", choices=["nbtracker", "wandb", "overhead", "wandb-overhead"])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=200)
    a = ap.parse_args()
    if a.side:
        os.environ.setdefault("NBTRACKER_SILENT", "true")
        if a.side in ("nbtracker", "overhead"):
            os.environ["NBTRACKER_DIR"] = tempfile.mkdtemp(prefix="nbtracker-bench-")
        res = {"wandb": side_wandb, "nbtracker": side_nbtracker,
               "overhead": lambda: side_overhead(a.repeats, a.rounds),
               "wandb-overhead": lambda: side_wandb_overhead(a.repeats, a.rounds)}[a.side]()
        print(json.dumps(res))
        return

    ours = run_side(__file__, "nbtracker")
    theirs = run_side(__file__, "wandb")
    print(f"== xgb.train, train + valid eval sets, early stopping: {ours['rounds']} rounds "
          f"(wandb's side: {theirs['rounds']})")
    print_compare(compare(ours["keys"], media_as_one_key(theirs["keys"])))
    print(f"summary: nbtracker {ours['summary']}, wandb {theirs['summary']}")
    args = ("--repeats", str(a.repeats), "--rounds", str(a.rounds))
    t = time.time()
    o = run_side(__file__, "overhead", *args)
    w = run_side(__file__, "wandb-overhead", *args, python=str(PEERS_PY))
    print(f"\n== overhead: xgb.train of {a.rounds} rounds (10,000 x 20, depth 4, 2 eval sets, "
          f"1 thread), medians of {a.repeats} interleaved repeats ({time.time() - t:.0f} s)")
    print(f"a round costs {o['round ms']} ms")
    print(f"with {o['with s']} s, without {o['without s']} s: overhead {o['overhead %']} % "
          f"({o['per round µs']} µs a round)")
    print(f"time inside the callback (median): {o['hook µs']} µs a round "
          f"({100 * o['hook µs'] / (1e3 * o['round ms']):.2f} % of a round); wandb's "
          f"WandbCallback: {w['hook µs']} µs a round")


if __name__ == "__main__":
    main()
