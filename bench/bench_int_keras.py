"""Keras 3 (torch backend): what nbtracker's NbtrackerMetricsLogger and wandb's WandbMetricsLogger
log on the same tiny fit (keys and the steps they land on), and what the logger costs per batch.

    .venv/bin/python bench/bench_int_keras.py [--repeats 7] [--batches 300]

wandb's side runs in bench/.venv-integrations (bench/setup_integrations.sh), offline. wandb's
Keras callbacks import `tensorflow` at module level (for `tf.Variable`/`tf.Tensor` type checks
and `tensorflow.keras.callbacks`); with the torch backend there is no tensorflow, so that import
is served by a stand-in module whose `keras` is Keras 3 itself, only while wandb's module loads.

Overhead (one torch thread): one fit of `--batches` training batches with the logger
(log_freq="batch", the worst case; and "epoch") against the same fit without it, interleaved,
medians of `--repeats`, with the run started before and finished after (a one-off cost, printed
apart). On a shared machine that difference is within the noise of a fit, so the time spent
inside the logger's hooks is also measured directly (perf_counter_ns around each call), for
ours and for wandb's on the same fit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import types

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from integration_peers import PEERS_PY, compare, key_steps, overhead, print_compare, run_side  # noqa: E402

MODES = {"epoch": "epoch", "batch": "batch", "every 2nd batch": 2}


def tiny_fit(callbacks: list, epochs: int = 3, n: int = 64, batch_size: int = 16):
    """64 samples, a quarter for validation: 3 batches an epoch."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_split=0.25,
                     verbose=0, callbacks=callbacks)


def wandb_logger_class():
    import keras

    tf = types.ModuleType("tensorflow")
    tf.Variable = type("Variable", (), {})  # never an instance: Keras 3 variables take the
    tf.Tensor = type("Tensor", (), {})      # `.shape == ()` branch of wandb's _get_lr
    tf.keras = keras
    stand_ins = {"tensorflow": tf, "tensorflow.keras": keras,
                 "tensorflow.keras.callbacks": keras.callbacks}
    saved = {k: sys.modules.get(k) for k in stand_ins}
    sys.modules.update(stand_ins)
    try:
        from wandb.integration.keras import WandbMetricsLogger
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return WandbMetricsLogger


def side_wandb() -> dict:
    import wandb
    from integration_peers import wandb_rows

    logger = wandb_logger_class()
    out = {}
    for label, freq in MODES.items():
        with tempfile.TemporaryDirectory() as d:
            wandb.init(project="bench-keras", dir=d)
            tiny_fit([logger(log_freq=freq)])
            wandb.finish()
            wandb.teardown()  # else the next run's finish can return before this log is written
            rows = wandb_rows(d)
        out[label] = {"keys": key_steps(rows),
                      "batch_step": [r["batch/batch_step"] for r in rows if "batch/batch_step" in r]}
    return out


def side_nbtracker() -> dict:
    from integration_peers import nbtracker_rows

    import nbtracker
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    out = {}
    for label, freq in MODES.items():
        run = nbtracker.init(project="bench-keras")
        tiny_fit([NbtrackerMetricsLogger(log_freq=freq)])
        run.finish(quiet=True)
        rows = nbtracker_rows(run.path)
        out[label] = {"keys": key_steps(rows),
                      "batch_step": [r["batch/batch_step"] for r in rows if "batch/batch_step" in r]}
    return out


def timed(cb, ns: dict) -> object:
    """`cb` with the time spent in its batch and epoch hooks appended to ns["batch"/"epoch"]."""
    for hook, key in (("on_train_batch_end", "batch"), ("on_epoch_end", "epoch")):
        inner = getattr(cb, hook)

        def wrapper(i, logs=None, inner=inner, key=key):
            t = time.perf_counter_ns()
            inner(i, logs)
            ns.setdefault(key, []).append(time.perf_counter_ns() - t)

        setattr(cb, hook, wrapper)
    return cb


def overhead_model(batches: int):
    import keras
    import numpy as np
    import torch

    torch.set_num_threads(1)  # a shared 2-core machine: one thread times steadier
    rng = np.random.default_rng(0)
    bs = 32
    x = rng.normal(size=(batches * bs, 32)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=["accuracy"])

    def fit(callbacks):
        return lambda: model.fit(x, y, batch_size=bs, epochs=1, verbose=0, callbacks=callbacks)

    fit([])()  # warm up: the first fit builds the train step
    return fit


def side_overhead(repeats: int, batches: int) -> dict:
    import keras

    import nbtracker
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    class BatchNoop(keras.callbacks.Callback):
        """Any callback with a batch hook: Keras then hands it each batch's metrics at once."""

        def on_train_batch_end(self, batch, logs=None):
            pass

    fit = overhead_model(batches)
    out: dict = {"batches": batches}
    run = nbtracker.init(project="bench-keras-overhead")
    for freq in ("batch", "epoch"):
        res = overhead(fit([NbtrackerMetricsLogger(log_freq=freq)]), fit([]), repeats)
        res["per batch µs"] = round(1e6 * (res["with s"] - res["without s"]) / batches, 1)
        out[freq] = res
    out["batch ms"] = round(1e3 * out["epoch"]["without s"] / batches, 3)
    res = overhead(fit([BatchNoop()]), fit([]), repeats)
    res["per batch µs"] = round(1e6 * (res["with s"] - res["without s"]) / batches, 1)
    out["noop batch callback"] = res
    ns: dict = {}
    cb = timed(NbtrackerMetricsLogger(log_freq="batch"), ns)
    for _ in range(repeats):
        fit([cb])()
    run.finish(quiet=True)
    out["hook µs"] = {k: round(statistics.median(v) / 1e3, 1) for k, v in ns.items()}
    # a logger that starts and finishes its own run (no nbtracker.init): once per fit
    begin_end = []
    for _ in range(repeats):
        cb = NbtrackerMetricsLogger()
        t = time.perf_counter_ns()
        cb.on_train_begin()
        cb.on_train_end()
        begin_end.append(time.perf_counter_ns() - t)
    out["own run begin+end ms"] = round(statistics.median(begin_end) / 1e6, 1)
    return out


def side_wandb_overhead(repeats: int, batches: int) -> dict:
    import wandb

    fit = overhead_model(batches)
    logger = wandb_logger_class()
    ns: dict = {}
    with tempfile.TemporaryDirectory() as d:
        wandb.init(project="bench-keras-overhead", dir=d)
        cb = timed(logger(log_freq="batch"), ns)
        for _ in range(repeats):
            fit([cb])()
        wandb.finish()
        wandb.teardown()
    return {"hook µs": {k: round(statistics.median(v) / 1e3, 1) for k, v in ns.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", choices=["nbtracker", "wandb", "overhead", "wandb-overhead"])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batches", type=int, default=300)
    a = ap.parse_args()
    if a.side:
        os.environ.setdefault("NBTRACKER_SILENT", "true")
        if a.side == "nbtracker" or a.side == "overhead":
            os.environ["NBTRACKER_DIR"] = tempfile.mkdtemp(prefix="nbtracker-bench-")
        res = {"wandb": side_wandb, "nbtracker": side_nbtracker,
               "overhead": lambda: side_overhead(a.repeats, a.batches),
               "wandb-overhead": lambda: side_wandb_overhead(a.repeats, a.batches)}[a.side]()
        print(json.dumps(res))
        return

    ours = run_side(__file__, "nbtracker")
    theirs = run_side(__file__, "wandb")
    for label in MODES:
        print(f"\n== log_freq: {label} (64 samples, 3 batches an epoch, 3 epochs)")
        print_compare(compare(ours[label]["keys"], theirs[label]["keys"]))
        if ours[label]["batch_step"] != theirs[label]["batch_step"]:
            print(f"batch/batch_step values: nbtracker {ours[label]['batch_step']}, "
                  f"wandb {theirs[label]['batch_step']}")
    t = time.time()
    o = run_side(__file__, "overhead", "--repeats", str(a.repeats), "--batches", str(a.batches))
    print(f"\n== overhead: one epoch of {o['batches']} batches (Dense 32-64-1, batch 32), "
          f"medians of {a.repeats} interleaved repeats ({time.time() - t:.0f} s)")
    print(f"a training batch costs {o['batch ms']} ms (one torch thread)")
    for freq in ("batch", "epoch"):
        r = o[freq]
        print(f"log_freq={freq:5}: with {r['with s']} s, without {r['without s']} s, "
              f"overhead {r['overhead %']} % ({r['per batch µs']} µs a batch)")
    r = o["noop batch callback"]
    print(f"a do-nothing callback with a batch hook: overhead {r['overhead %']} % "
          f"({r['per batch µs']} µs a batch: Keras hands it each batch's metrics synchronously)")
    h = o["hook µs"]
    print(f"time inside the logger (medians): {h['batch']} µs a logged batch "
          f"({100 * h['batch'] / (1e3 * o['batch ms']):.2f} % of a batch), {h['epoch']} µs an "
          "epoch end")
    w = run_side(__file__, "wandb-overhead", "--repeats", str(a.repeats), "--batches",
                 str(a.batches), python=str(PEERS_PY))["hook µs"]
    print(f"wandb's WandbMetricsLogger on the same fit (offline): {w['batch']} µs a logged "
          f"batch, {w['epoch']} µs an epoch end")
    print(f"a logger starting and finishing its own run (no nbtracker.init): "
          f"{o['own run begin+end ms']} ms once per fit")

if __name__ == "__main__":
    main()
