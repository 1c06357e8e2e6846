"""Lightning: what NbtrackerLogger logs next to Lightning's WandbLogger (offline) on the same tiny
Trainer run, and what it costs per training step.

    .venv/bin/python bench/bench_int_lightning.py [--steps 400] [--repeats 7]

1. Keys and steps. The same run (a linear model, 2 epochs of 4 steps, every step logged, train
   metrics on_step and on_epoch, val loss per epoch) through each logger, each in a fresh process
   (wandb's in bench/.venv-integrations). Compared by the trainer's global step
   (`trainer/global_step`, which both log) and by `_step`.
2. Overhead. `--steps` training steps with every step logged (`--every 1`, the most a
   logger is called), interleaved repeats of: no logger (`logger=False`), a logger that does
   nothing (what Lightning itself spends once any logger is attached), and the tracker's logger;
   in its own venv, the same for WandbLogger. The training loop is timed from `on_train_start` to
   `on_train_end`, and the logger's `log_metrics` call by call; medians. On a busy machine the
   loop times move by more than a logger costs: the time inside the logger is the steady figure.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from integration_peers import PEERS_PY, compare, key_steps, print_compare, run_side  # noqa: E402


# -- the training, the same on both sides ------------------------------------------------------
def tiny(steps_per_epoch: int = 4, epochs: int = 2, every: int = 1):
    import lightning.pytorch as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self, lr: float = 0.1):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("train/loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val/loss", nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    class LoopTimer(pl.Callback):
        def on_train_start(self, trainer, module):
            self.t0 = time.perf_counter()

        def on_train_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.t0

    def data(n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 4, generator=g)
        return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)

    def fit(logger) -> dict:
        """Train; seconds of the training loop and of the whole fit()."""
        timer = LoopTimer()
        t = pl.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, logger=logger,
                       enable_progress_bar=False, enable_model_summary=False,
                       log_every_n_steps=every, num_sanity_val_steps=0, enable_checkpointing=False,
                       callbacks=[timer])
        t0 = time.perf_counter()
        t.fit(Tiny(), data(8 * steps_per_epoch, 0), data(16, 1))
        return {"loop": timer.seconds, "fit": time.perf_counter() - t0, "steps": t.global_step}

    return fit


def noop_logger():
    from lightning.pytorch.loggers import Logger

    class Noop(Logger):
        name, version = "noop", "0"

        def log_metrics(self, metrics, step=None):
            pass

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    return Noop()


def quiet() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    os.environ["NBTRACKER_SILENT"] = "true"


# -- one side, in its own process ----------------------------------------------------------------
def side_nbtracker(tmp: str) -> dict:
    os.environ["NBTRACKER_DIR"] = tmp
    from integration_peers import nbtracker_rows

    from nbtracker.integrations.lightning import NbtrackerLogger

    logger = NbtrackerLogger(project="bench")
    tiny()(logger)
    rows = nbtracker_rows(f"bench/{logger.version}")
    return {"global": key_steps(rows, "trainer/global_step"), "step": key_steps(rows)}


def side_wandb(tmp: str) -> dict:
    import wandb
    from integration_peers import wandb_rows
    from lightning.pytorch.loggers import WandbLogger

    tiny()(WandbLogger(project="bench", save_dir=tmp, offline=True))
    wandb.finish()
    wandb.teardown()  # its service process writes the transaction log out
    rows = wandb_rows(tmp)
    return {"global": key_steps(rows, "trainer/global_step"), "step": key_steps(rows)}


def timed(logger):
    """The logger, its `log_metrics` timed call by call (ns in `logger.call_ns`)."""
    inner = logger.log_metrics
    logger.call_ns = []

    def log_metrics(metrics, step=None):
        t = time.perf_counter_ns()
        inner(metrics, step)
        logger.call_ns.append(time.perf_counter_ns() - t)

    logger.log_metrics = log_metrics
    return logger


def overhead_side(make_logger, steps: int, repeats: int) -> dict:
    """Interleaved repeats of: no logger, a do-nothing logger, the tracker's logger."""
    fit = tiny(steps_per_epoch=steps, epochs=1, every=int(os.environ.get("BENCH_EVERY", "1")))
    fit(False)  # warm-up: imports, first-call costs
    fit(make_logger(0))
    arms: dict[str, list] = {"none": [], "noop": [], "logger": []}
    calls: list[int] = []
    for i in range(repeats):
        arms["none"].append(fit(False))
        arms["noop"].append(fit(noop_logger()))
        logger = timed(make_logger(i + 1))
        arms["logger"].append(fit(logger) | {"in_logger": sum(logger.call_ns) / 1e9})
        calls += logger.call_ns
    out: dict = {arm: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "steps"}
                 for arm, rs in arms.items()}
    calls.sort()
    out["call_us"] = {"median": calls[len(calls) // 2] / 1e3,
                      "p99": calls[int(len(calls) * 0.99)] / 1e3, "calls": len(calls) // repeats}
    out["steps"] = steps
    return out


def side_overhead_nbtracker(tmp: str, steps: int, repeats: int) -> dict:
    os.environ["NBTRACKER_DIR"] = tmp
    from nbtracker.integrations.lightning import NbtrackerLogger

    return overhead_side(lambda i: NbtrackerLogger(project="overhead", name=f"r{i}"),
                         steps, repeats)


def side_overhead_wandb(tmp: str, steps: int, repeats: int) -> dict:
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    def make(i):
        if wandb.run is not None:
            wandb.finish()  # WandbLogger leaves its run open
        return WandbLogger(project="overhead", name=f"r{i}", save_dir=tmp, offline=True)

    out = overhead_side(make, steps, repeats)
    wandb.finish()
    return out


# -- the report ----------------------------------------------------------------------------------
def per_step(o: dict) -> dict:
    n = o["steps"]
    none, noop, ours = o["none"]["loop"], o["noop"]["loop"], o["logger"]["loop"]
    inside = o["logger"]["in_logger"]
    return {"a step (no logger) us": round(1e6 * none / n, 1),
            "log_metrics call us (median, p99)": (round(o["call_us"]["median"], 1),
                                                  round(o["call_us"]["p99"], 1)),
            "in the logger per step us": round(1e6 * inside / n, 1),
            "in the logger % of a step": round(100 * inside / none, 2),
            "loop with vs without %": round(100 * (ours - none) / none, 1),
            "loop with a do-nothing logger %": round(100 * (noop - none) / none, 1),
            "fit() outside the loop ms (with - without)": round(
                1e3 * ((o["logger"]["fit"] - ours) - (o["none"]["fit"] - none)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=400, help="training steps per overhead run")
    ap.add_argument("--repeats", type=int, default=7, help="interleaved repeats (median)")
    ap.add_argument("--every", type=int, default=1,
                    help="log_every_n_steps of the overhead runs (Lightning's default: 50)")
    ap.add_argument("--no-wandb", action="store_true", help="nbtracker's side only")
    a = ap.parse_args()
    if a.side:  # a child process: one JSON line on stdout
        quiet()
        fn = globals()[f"side_{a.side}"]
        args = (a.tmp, a.steps, a.repeats) if a.side.startswith("overhead") else (a.tmp,)
        print(json.dumps(fn(*args)))
        return

    os.environ["BENCH_EVERY"] = str(a.every)  # read by the overhead sides
    with tempfile.TemporaryDirectory() as tmp:
        def side(name: str, **kw) -> dict:
            folder = tempfile.mkdtemp(dir=tmp)
            peer = name.endswith("wandb")
            if peer and not PEERS_PY.exists():
                raise SystemExit("run bench/setup_integrations.sh first (wandb and the frameworks)")
            return run_side(__file__, name, "--tmp", folder, "--steps", str(a.steps),
                            "--repeats", str(a.repeats), python=str(PEERS_PY) if peer else None,
                            **kw)

        ours = side("nbtracker")
        theirs = None if a.no_wandb else side_peer(side, "wandb")
        print("keys and steps by trainer/global_step (the same tiny run, 2 epochs x 4 steps):")
        print_compare(compare(ours["global"], theirs["global"] if theirs else {}))
        print("\nkeys and steps by _step (nbtracker: the global step; wandb: its log-call count):")
        print_compare(compare(ours["step"], theirs["step"] if theirs else {}))

        print(f"\nper-step overhead: {a.steps} steps, log_every_n_steps={a.every}, median of "
              f"{a.repeats} interleaved repeats")
        results = {"compare": {"nbtracker": ours, "wandb": theirs}}
        for name in ("overhead_nbtracker",) + (() if a.no_wandb else ("overhead_wandb",)):
            o = side_peer(side, name) if name.endswith("wandb") else side(name)
            figures = per_step(o)
            results[name] = {"raw": o, **figures}
            label = "NbtrackerLogger" if name.endswith("nbtracker") else "WandbLogger (offline)"
            print(f"  {label}:")
            for k, v in figures.items():
                print(f"    {k:44} {v}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "int_lightning.json").write_text(json.dumps(results, indent=2))


def side_peer(side, name: str) -> dict | None:
    try:
        return side(name)
    except SystemExit as e:  # no peers venv: our side alone
        print(f"wandb's side skipped: {e}")
        return None


if __name__ == "__main__":
    main()
