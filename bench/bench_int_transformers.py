"""transformers' Trainer through nbtracker's callback and through wandb's: what each logs, and
what ours costs per training step.

    .venv/bin/python bench/bench_int_transformers.py [--repeats 15] [--steps 100]

1. The same tiny Trainer run (a 1-layer BERT from a config, random tokens, 2 epochs of 4 steps,
   logging_steps=1, an evaluation per epoch, then `evaluate()` and `predict()`) with
   `callbacks=[NbtrackerCallback()]` here and with wandb's `WandbCallback` (what
   `report_to="wandb"` adds; offline) in bench/.venv-integrations; both histories read back,
   keys and steps compared, by the run's `_step` and by `train/global_step`.
2. The overhead on a Trainer whose step costs what a small real step costs on a CPU (a 2-layer
   BERT, hidden 64, 8 x 32 tokens, one thread): `--steps` steps with logging_steps=1 (every
   step logged, the worst case), with and without our callback, interleaved, medians of
   `--repeats` (the run, started once, stays open across them; its start and finish are timed
   apart). On a shared machine those wall-clock (and CPU-time) medians move by a few percent
   from one invocation to the next, so what the run costs is also measured directly: the time
   spent inside the callback's `on_log` per logged step (the same for wandb's callback in its
   venv) plus the CPU time of the run's own threads (flusher, system metrics, console capture).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from integration_peers import (  # noqa: E402
    compare,
    key_steps,
    nbtracker_rows,
    overhead,
    print_compare,
    run_side,
    wandb_rows,
)


def tokens(n: int, seq: int, vocab: int, seed: int):
    import torch

    class Tokens(torch.utils.data.Dataset):
        def __init__(self):
            g = torch.Generator().manual_seed(seed)
            self.x = torch.randint(1, vocab, (n, seq), generator=g)
            self.y = torch.randint(0, 2, (n,), generator=g)

        def __len__(self):
            return n

        def __getitem__(self, i):
            return {"input_ids": self.x[i], "labels": self.y[i]}

    return Tokens()


def bert(hidden: int, layers: int, vocab: int, positions: int):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=positions))


def trainer(out: str, callbacks: list, report_to: str = "none", big: bool = False,
            steps: int = 0):
    from transformers import Trainer, TrainingArguments

    if big:
        model, seq, vocab, n, bs = bert(64, 2, 1000, 32), 32, 1000, 8 * steps, 8
    else:
        model, seq, vocab, n, bs = bert(16, 1, 32, 16), 8, 32, 16, 4
    args = TrainingArguments(
        output_dir=out, run_name="bench-tiny", num_train_epochs=1 if big else 2,
        per_device_train_batch_size=bs, per_device_eval_batch_size=bs, logging_steps=1,
        eval_strategy="no" if big else "epoch", save_strategy="no", report_to=report_to,
        use_cpu=True, disable_tqdm=True, seed=0)
    return Trainer(model=model, args=args, train_dataset=tokens(n, seq, vocab, 0),
                   eval_dataset=None if big else tokens(8, seq, vocab, 1), callbacks=callbacks)


def timed(callback_cls):
    """`callback_cls` whose every event handler adds its wall time to `spent[event]`."""
    spent: dict[str, list[float]] = {}

    class Timed(callback_cls):
        pass

    for name in ("on_train_begin", "on_log", "on_train_end", "on_evaluate", "on_predict"):
        fn = getattr(callback_cls, name)

        def wrapper(self, *a, _fn=fn, _name=name, **kw):
            t = time.perf_counter()
            try:
                return _fn(self, *a, **kw)
            finally:
                spent.setdefault(_name, []).append(time.perf_counter() - t)

        setattr(Timed, name, wrapper)
    return Timed, spent


def side_nbtracker(tmp: str) -> dict:
    os.environ["NBTRACKER_DIR"] = os.path.join(tmp, "store")
    os.environ.setdefault("NBTRACKER_SILENT", "true")
    import nbtracker
    from nbtracker.integrations.transformers import NbtrackerCallback

    Timed, spent = timed(NbtrackerCallback)
    cb = Timed()
    tr = trainer(os.path.join(tmp, "out"), [cb])
    tr.train()
    tr.evaluate()
    tr.predict(tokens(8, 8, 32, 2))
    path = cb.run.path
    nbtracker.finish()
    return {"rows": nbtracker_rows(path), "on_log_us": statistics.median(spent["on_log"]) * 1e6}


def side_wandb(tmp: str) -> dict:
    os.environ["WANDB_DIR"] = tmp
    os.environ.setdefault("WANDB_PROJECT", "huggingface")
    import wandb
    from transformers.integrations import WandbCallback

    Timed, spent = timed(WandbCallback)
    tr = trainer(os.path.join(tmp, "out"), [Timed()])  # as report_to="wandb" adds it
    tr.train()
    tr.evaluate()
    tr.predict(tokens(8, 8, 32, 2))
    wandb.finish()
    wandb.teardown()  # wandb's service writes the last of the transaction log by then
    return {"rows": wandb_rows(tmp), "on_log_us": statistics.median(spent["on_log"]) * 1e6}


def run_threads_cpu() -> dict:
    """CPU seconds used so far by each of nbtracker's threads (flusher, system metrics, console,
    code), by thread id."""
    import threading

    out = {}
    for t in threading.enumerate():
        if t.name.startswith("nbtracker") and t.ident is not None:
            try:
                out[t.ident] = time.clock_gettime(time.pthread_getcpuclockid(t.ident))
            except OSError:  # the thread ended meanwhile
                pass
    return out


def cpu_overhead(with_fn, without_fn, repeats: int) -> dict:
    """As `integration_peers.overhead`, in CPU time of this process (all its threads): what
    the other users of a shared machine do to the wall clock stays out of it."""
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((without_fn, b), (with_fn, a)):
            t = time.process_time()
            fn()
            out.append(time.process_time() - t)
    w, wo = statistics.median(a), statistics.median(b)
    return {"with cpu s": round(w, 4), "without cpu s": round(wo, 4),
            "cpu overhead %": round(100 * (w - wo) / wo, 2)}


def measure_overhead(steps: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(1)  # one core per step: a shared machine's other core stays out of it
    import nbtracker
    from nbtracker.integrations.transformers import NbtrackerCallback

    Timed, spent = timed(NbtrackerCallback)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NBTRACKER_DIR"] = os.path.join(tmp, "store")
        os.environ["NBTRACKER_SILENT"] = "true"
        plain = trainer(os.path.join(tmp, "a"), [], big=True, steps=steps)
        cb = Timed()
        ours = trainer(os.path.join(tmp, "b"), [cb], big=True, steps=steps)
        plain.train()  # warm-up: first-call costs out of the figures
        ours.train()  # starts the run, which stays open across train() calls (as wandb's)
        start = spent["on_train_begin"][0]
        spent.clear()
        threads_cpu: list[float] = []

        def with_cb():
            before = run_threads_cpu()
            ours.train()
            after = run_threads_cpu()
            threads_cpu.append(sum(v - before.get(k, 0.0) for k, v in after.items()))

        res = overhead(with_cb, plain.train, repeats=repeats)
        cpu = cpu_overhead(with_cb, plain.train, repeats=repeats)
        t = time.perf_counter()
        nbtracker.finish()
        finish = time.perf_counter() - t
    step_ms = res["without s"] / steps * 1e3
    per_log = statistics.median(spent["on_log"]) * 1e6
    background = statistics.median(threads_cpu) / steps * 1e6
    return {**res, **cpu, "steps": steps, "step ms": round(step_ms, 2),
            "on_log us (median)": round(per_log, 1),
            "run threads cpu us/step": round(background, 1),
            "both, share of a step %": round(100 * (per_log + background) / (step_ms * 1e3), 3),
            "run start ms (once)": round(start * 1e3, 1),
            "run finish ms (once)": round(finish * 1e3, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--side", choices=["nbtracker", "wandb"])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--steps", type=int, default=100)
    a = p.parse_args()
    if a.side:
        with tempfile.TemporaryDirectory() as tmp:
            out = side_nbtracker(tmp) if a.side == "nbtracker" else side_wandb(tmp)
        print(json.dumps(out))
        return

    ours = run_side(__file__, "nbtracker")
    theirs = run_side(__file__, "wandb")
    for step_key in ("_step", "train/global_step"):
        print(f"\nkeys and the {step_key} of each point, the same tiny Trainer run:")
        print_compare(compare(key_steps(ours["rows"], step_key),
                              key_steps(theirs["rows"], step_key)))
    print(f"\ntime inside the callback's on_log (median): nbtracker {ours['on_log_us']:.0f} µs, "
          f"wandb {theirs['on_log_us']:.0f} µs")
    res = measure_overhead(a.steps, a.repeats)
    print(f"\noverhead on a Trainer step (2-layer BERT, hidden 64, 8 x 32 tokens, logging_steps=1,"
          f" {a.steps} steps, median of {a.repeats} interleaved repeats):")
    for k, v in res.items():
        print(f"  {k:28} {v}")
    print(json.dumps({"compare": compare(key_steps(ours["rows"]), key_steps(theirs["rows"])),
                      "on_log_us": {"nbtracker": ours["on_log_us"], "wandb": theirs["on_log_us"]},
                      "overhead": res}))


if __name__ == "__main__":
    main()
