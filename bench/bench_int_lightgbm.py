"""LightGBM: what nbtracker's nbtracker_callback + log_summary and wandb's wandb_callback +
log_summary log on the same tiny training (keys and the steps they land on), and what the
callback costs per boosting round.

    .venv/bin/python bench/bench_int_lightgbm.py [--repeats 9] [--rounds 200]

wandb's side runs in bench/.venv-integrations (bench/setup_integrations.sh), offline.

Overhead: `lgb.train` of `--rounds` rounds (10,000 x 20 rows, 15 leaves, a train and a valid set,
one thread) with the callback against the same training without it, interleaved, medians of
`--repeats`, with the run started before and finished after; and the time spent inside the
callback (perf_counter_ns around each call), for ours and for wandb's.
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

from bench_int_xgboost import media_as_one_key  # noqa: E402
from integration_peers import PEERS_PY, compare, key_steps, overhead, print_compare, run_side  # noqa: E402

PARAMS = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 4,
          "learning_rate": 0.3, "verbose": -1, "seed": 0, "num_threads": 1}


def tiny_train(callbacks: list):
    """The tests' training: 200 + 100 rows, early stopping after 3 rounds without progress."""
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=300) > 0).astype(int)
    dtr = lgb.Dataset(x[:200], y[:200])
    dva = lgb.Dataset(x[200:], y[200:], reference=dtr)
    return lgb.train(PARAMS, dtr, num_boost_round=40, valid_sets=[dtr, dva],
                     valid_names=["train", "valid"],
                     callbacks=[*callbacks, lgb.early_stopping(3, verbose=False)])


def side_wandb() -> dict:
    import wandb
    from integration_peers import wandb_rows
    from wandb.integration.lightgbm import log_summary, wandb_callback

    with tempfile.TemporaryDirectory() as d:
        run = wandb.init(project="bench-lightgbm", dir=d)
        booster = tiny_train([wandb_callback()])
        log_summary(booster)
        summary = {"best_iteration": run.summary["best_iteration"],
                   "config keys": sorted(run.config.keys())}
        wandb.finish()
        wandb.teardown()
        rows = wandb_rows(d)
    return {"keys": key_steps(rows), "best": booster.best_iteration, "summary": summary}


def side_nbtracker() -> dict:
    from integration_peers import nbtracker_rows

    import nbtracker
    from nbtracker.integrations.lightgbm import log_summary, nbtracker_callback

    run = nbtracker.init(project="bench-lightgbm")
    booster = tiny_train([nbtracker_callback()])
    log_summary(booster)
    summary = {"best_iteration": run.summary["best_iteration"],
               "config keys": sorted(run.config.keys())}
    run.finish(quiet=True)
    return {"keys": key_steps(nbtracker_rows(run.path)), "best": booster.best_iteration,
            "summary": summary}


def timed(cb, ns: list):
    def call(env):
        t = time.perf_counter_ns()
        cb(env)
        ns.append(time.perf_counter_ns() - t)

    call.order, call.before_iteration = cb.order, cb.before_iteration
    return call


def overhead_training(rounds: int):
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(10_000, 20))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=len(x)) > 0).astype(int)
    dtr = lgb.Dataset(x[:8000], y[:8000], free_raw_data=False)
    dva = lgb.Dataset(x[8000:], y[8000:], reference=dtr, free_raw_data=False)
    params = {**PARAMS, "num_leaves": 15}

    def train(callbacks):
        return lambda: lgb.train(params, dtr, num_boost_round=rounds, valid_sets=[dtr, dva],
                                 valid_names=["train", "valid"], callbacks=callbacks)

    train([])()  # warm up (and builds the datasets' bins once)
    return train


def side_overhead(repeats: int, rounds: int) -> dict:
    import nbtracker
    from nbtracker.integrations.lightgbm import nbtracker_callback

    train = overhead_training(rounds)
    run = nbtracker.init(project="bench-lightgbm-overhead")
    res = overhead(train([nbtracker_callback()]), train([]), repeats)
    res["round ms"] = round(1e3 * res["without s"] / rounds, 3)
    res["per round µs"] = round(1e6 * (res["with s"] - res["without s"]) / rounds, 1)
    ns: list = []
    for _ in range(repeats):
        train([timed(nbtracker_callback(), ns)])()
    run.finish(quiet=True)
    res["hook µs"] = round(statistics.median(ns) / 1e3, 1)
    return res


def side_wandb_overhead(repeats: int, rounds: int) -> dict:
    import wandb
    from wandb.integration.lightgbm import wandb_callback

    train = overhead_training(rounds)
    ns: list = []
    with tempfile.TemporaryDirectory() as d:
        wandb.init(project="bench-lightgbm-overhead", dir=d)
        for _ in range(repeats):
            train([timed(wandb_callback(), ns)])()
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
    print(f"== lgb.train, train + valid sets, early stopping, then log_summary: "
          f"{len(ours['keys']['iteration'])} rounds, the best {ours['best']} (wandb's side: "
          f"{len(theirs['keys']['iteration'])}, {theirs['best']})")
    print_compare(compare(ours["keys"], media_as_one_key(theirs["keys"])))
    print(f"summary: nbtracker {ours['summary']}\n         wandb     {theirs['summary']}")
    args = ("--repeats", str(a.repeats), "--rounds", str(a.rounds))
    t = time.time()
    o = run_side(__file__, "overhead", *args)
    w = run_side(__file__, "wandb-overhead", *args, python=str(PEERS_PY))
    print(f"\n== overhead: lgb.train of {a.rounds} rounds (10,000 x 20, 15 leaves, 2 eval sets, "
          f"1 thread), medians of {a.repeats} interleaved repeats ({time.time() - t:.0f} s)")
    print(f"a round costs {o['round ms']} ms")
    print(f"with {o['with s']} s, without {o['without s']} s: overhead {o['overhead %']} % "
          f"({o['per round µs']} µs a round)")
    print(f"time inside the callback (median): {o['hook µs']} µs a round "
          f"({100 * o['hook µs'] / (1e3 * o['round ms']):.2f} % of a round); wandb's "
          f"wandb_callback: {w['hook µs']} µs a round")


if __name__ == "__main__":
    main()
