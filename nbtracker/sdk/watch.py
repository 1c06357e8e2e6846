"""`watch()`: histograms of a PyTorch model's gradients and parameters while it trains, as
wandb's `watch` records them.

    run.watch(model, log="all", log_freq=100)

- `log="gradients"` (the default) puts a hook on every parameter that requires a gradient; each
  parameter counts the backward passes that reach it and, on every `log_freq`-th, logs the
  histogram of that gradient as `gradients/<parameter name>`.
- `log="parameters"` puts a forward hook on the model; every `log_freq`-th forward pass logs a
  histogram of each parameter as `parameters/<parameter name>`. `"all"` does both; None neither.

Histograms are logged with `commit=False`, so they join the row of the current step: the one the
next `log()` writes. Each has 64 bins between the tensor's smallest and largest finite value
(one bin when they are equal), computed by `torch.histc` where the tensor is (on the GPU for a
GPU tensor) so only 64 counts leave it; NaN and ±inf values are left out, a tensor with no
finite value is not logged. Names as wandb gives them: the first model watched in a run has no
prefix, the next ones `graph_1`, `graph_2`, … (`gradients/graph_1fc.weight`), or `idx=`'s.
Watching a model again replaces its hooks; `unwatch()` removes them, and so does `finish()`.

torch is imported only when `watch()` is called; without it `watch()` says so once and returns.
A hook never raises into the training loop: a tensor that cannot be summarised is one warning.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

BINS = 64
_LOGS = ("gradients", "parameters", "all")


def watch(run: Any, models: Any, criterion: Any = None, log: str | None = "gradients",
          log_freq: int = 1000, idx: int | None = None, log_graph: bool = False) -> None:
    """Hook `models` (a torch.nn.Module or a list of them) into `run`. See the module docstring."""
    if log is not None and log not in _LOGS:
        run._warn_once("watch:log", f"watch(log={log!r}): use 'gradients', 'parameters', 'all' or "
                       "None; nothing is watched")
        return
    torch = _torch(run)
    if torch is None:
        return
    if log_graph:
        run._warn_once("watch:graph", "watch(log_graph=True): the model graph is not recorded")
    freq = _freq(run, log_freq)
    if not isinstance(models, (list, tuple)):
        models = [models]
    watcher = _watcher(run)
    for i, model in enumerate(models):
        if not isinstance(model, torch.nn.Module):
            run._warn_once(f"watch:type:{type(model).__name__}", "watch() takes a torch.nn.Module "
                           f"(or a list of them), not {type(model).__name__}; it is not watched")
            continue
        watcher.add(model, log, freq, None if idx is None else idx + i)


def unwatch(run: Any, models: Any = None) -> None:
    """Remove the hooks `watch` put on `models` (all the run's when None)."""
    watcher = _watchers.get(run)
    if models is None:
        if watcher is not None:
            watcher.remove_all()
        return
    if not isinstance(models, (list, tuple)):
        models = [models]
    for model in models:
        if watcher is None or not watcher.remove(model):
            run._warn_once(f"unwatch:{id(model)}", f"unwatch(): {type(model).__name__} "
                           "is not watched by this run")


def _torch(run: Any):
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch
    try:
        import torch
    except ImportError:
        run._warn_once("watch:torch", "watch() needs PyTorch (pip install torch); nothing is "
                       "watched")
        return None
    return torch


def _freq(run: Any, log_freq: Any) -> int:
    try:
        if isinstance(log_freq, bool):
            raise TypeError
        return max(1, int(log_freq))
    except (TypeError, ValueError, OverflowError):
        run._warn_once("watch:freq", f"watch(log_freq={log_freq!r}) needs a whole number; "
                       "using 1000")
        return 1000


def _watcher(run: Any) -> Watcher:
    w = _watchers.get(run)
    if w is None:
        w = _watchers[run] = Watcher(run)
        run.add_finish_hook(_finished)
    return w


def _finished(run: Any) -> None:
    w = _watchers.pop(run, None)
    if w is not None:
        w.remove_all()


class Watcher:
    """The hooks one run put on models, by model. Holds the run weakly (a model outliving its
    run must not keep it in memory)."""

    def __init__(self, run: Any):
        self._run = weakref.ref(run)
        self._hooks: dict[int, tuple[Any, list]] = {}  # id(model) -> (weakref to it, handles)
        self._prefixes: dict[int, tuple[Any, str]] = {}  # id(model) -> (weakref, key prefix)
        self._count = 0  # models watched so far: wandb's index of the next one

    def add(self, model: Any, log: str | None, freq: int, idx: int | None) -> None:
        key = id(model)
        self.remove(model)  # watched again: new hooks replace the old ones
        known = self._prefixes.get(key)
        if idx is None and known is not None and known[0]() is model:
            prefix = known[1]  # watched before: the same names
        else:
            n = self._count if idx is None else idx
            self._count += 1  # as wandb's counter, which an explicit idx advances too
            prefix = f"graph_{n}" if n else ""
        self._prefixes[key] = (weakref.ref(model), prefix)
        handles: list = []
        if log in ("parameters", "all"):
            handles.append(model.register_forward_hook(self._parameters_hook(prefix, freq)))
        if log in ("gradients", "all"):
            for name, p in model.named_parameters():
                if p.requires_grad:
                    handles.append(p.register_hook(self._gradient_hook(
                        f"gradients/{prefix}{name}", freq)))
        self._hooks[key] = (weakref.ref(model), handles)

    def remove(self, model: Any) -> bool:
        entry = self._hooks.get(id(model))
        if entry is None or entry[0]() is not model:
            return False
        del self._hooks[id(model)]
        for h in entry[1]:
            h.remove()
        return True

    def remove_all(self) -> None:
        hooks, self._hooks = self._hooks, {}
        for _, handles in hooks.values():
            for h in handles:
                h.remove()

    def _parameters_hook(self, prefix: str, freq: int):
        seen = [0]

        def hook(module, inputs, output):
            seen[0] += 1
            if seen[0] < freq:
                return
            seen[0] = 0
            self._log({f"parameters/{prefix}{name}": p for name, p in module.named_parameters()})

        return hook

    def _gradient_hook(self, key: str, freq: int):
        seen = [0]

        def hook(grad):
            seen[0] += 1
            if seen[0] < freq:
                return
            seen[0] = 0
            self._log({key: grad})

        return hook

    def _log(self, tensors: dict) -> None:
        run = self._run()
        if run is None or run._done:
            return
        from .media import Histogram

        row = {}
        for key, t in tensors.items():
            try:
                h = histogram(t)
            except Exception as e:  # never into the training loop
                run._warn_once(f"watch:{key}", f"watch(): {key} not logged: {type(e).__name__}: {e}")
                continue
            if h is not None:
                row[key] = Histogram(np_histogram=h)
        if row:
            run.log(row, commit=False)


def histogram(tensor: Any, bins: int = BINS) -> tuple[list, list] | None:
    """(counts, edges) of a tensor's finite values: `bins` equal bins from its smallest to its
    largest value (one bin when they are equal); None when it has no finite value. A sparse
    tensor's implicit zeros are counted."""
    import torch

    t = tensor.detach()
    zeros = 0
    if t.is_sparse:
        t = t.coalesce()
        zeros = t.numel() - t.values().numel()
        t = t.values()
    flat = t.reshape(-1)
    if not flat.is_floating_point() or flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()  # what histc takes everywhere
    finite = torch.isfinite(flat)
    if not bool(finite.all()):
        flat = flat[finite]
    n = flat.numel()
    if n == 0 and not zeros:
        return None
    lo, hi = (flat.min().item(), flat.max().item()) if n else (0.0, 0.0)
    if zeros:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if lo == hi:
        return [n + zeros], [lo, hi]
    try:
        counts = torch.histc(flat, bins=bins, min=lo, max=hi)
    except (RuntimeError, NotImplementedError):  # a device or dtype without histc
        counts = torch.histc(flat.cpu().double(), bins=bins, min=lo, max=hi)
    counts = counts.cpu()
    if zeros:
        counts[min(bins - 1, int((0.0 - lo) / (hi - lo) * bins))] += zeros
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    return counts.tolist(), edges.tolist()


_watchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
