"""watch(): a real PyTorch model trained a few steps logs histograms of its gradients and
parameters every `log_freq` passes, under wandb's keys, at the step the next log() writes;
unwatch() and finish() stop it; without torch it says so once."""

from __future__ import annotations

import math

import pytest
from helpers import run_python

import nbtracker

STEPS, FREQ = 20, 5
LOGGED_AT = [4, 9, 14, 19]  # the 5th, 10th, ... backward pass; log() after it writes step i


def _train(run, model, steps: int = STEPS, seen: dict | None = None, start: int = 0) -> None:
    """SGD on a fixed batch, `run.log({"loss"})` after each step; `seen[step]` keeps each
    parameter's value as the forward pass saw it and its gradient."""
    import torch

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)
    for i in range(start, start + steps):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        loss = ((model(x) - y) ** 2).mean()
        model.zero_grad()
        loss.backward()
        if seen is not None:
            seen[i] = {n: (before[n], p.grad.detach().clone())
                       for n, p in model.named_parameters()}
        with torch.no_grad():  # plain SGD (torch.optim's first use imports seconds of modules)
            for p in model.parameters():
                p -= 0.1 * p.grad
        run.log({"loss": loss.item()})


def _histograms(run, prefix: str) -> dict[str, dict[int, dict]]:
    """{key: {step: histogram ref}} of the keys under `prefix`, read back through the Api."""
    h = nbtracker.Api().run(run.path).history()
    out = {}
    for k in h.columns:
        if k.startswith(prefix):
            out[k] = {int(s): v for s, v in zip(h["_step"], h[k]) if isinstance(v, dict)}
    return out


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="watch() is tested on a real torch model")


@pytest.fixture
def model(torch):
    torch.manual_seed(0)
    return torch.nn.Linear(4, 2)


def test_gradient_histograms_every_log_freq_steps(model):
    run = nbtracker.init(project="watch")
    run.watch(model, log_freq=FREQ)
    seen: dict = {}
    _train(run, model, seen=seen)
    run.finish(quiet=True)
    grads = _histograms(run, "gradients/")
    assert sorted(grads) == ["gradients/bias", "gradients/weight"]
    assert not _histograms(run, "parameters/")
    for key, numel in (("gradients/weight", 8), ("gradients/bias", 2)):
        assert sorted(grads[key]) == LOGGED_AT
        for step, ref in grads[key].items():
            assert ref["_type"] == "histogram"
            assert len(ref["values"]) == 64 and len(ref["bins"]) == 65
            assert sum(ref["values"]) == numel
            grad = seen[step][key.split("/")[1]][1]
            assert ref["bins"][0] == pytest.approx(grad.min().item(), abs=1e-7)
            assert ref["bins"][-1] == pytest.approx(grad.max().item(), abs=1e-7)
    # the loss is untouched: one row per step, histograms joined to four of them
    h = nbtracker.Api().run(run.path).history()
    assert h["_step"].tolist() == list(range(STEPS)) and h["loss"].notna().all()


def test_parameter_histograms_and_all(model, torch):
    run = nbtracker.init(project="watch")
    nbtracker.watch(model, log="parameters", log_freq=FREQ)
    seen: dict = {}
    _train(run, model, seen=seen)
    run.finish(quiet=True)
    params = _histograms(run, "parameters/")
    assert sorted(params) == ["parameters/bias", "parameters/weight"]
    assert not _histograms(run, "gradients/")
    for key, numel in (("parameters/weight", 8), ("parameters/bias", 2)):
        assert sorted(params[key]) == LOGGED_AT
        for step, ref in params[key].items():
            assert sum(ref["values"]) == numel
            value = seen[step][key.split("/")[1]][0]  # as the forward pass of that step saw it
            assert ref["bins"][0] == pytest.approx(value.min().item(), abs=1e-7)
            assert ref["bins"][-1] == pytest.approx(value.max().item(), abs=1e-7)

    torch.manual_seed(1)
    other = torch.nn.Linear(4, 2)
    run = nbtracker.init(project="watch")
    run.watch(other, log="all", log_freq=FREQ)
    _train(run, other)
    run.finish(quiet=True)
    both = _histograms(run, "parameters/") | _histograms(run, "gradients/")
    assert sorted(both) == ["gradients/bias", "gradients/weight", "parameters/bias",
                            "parameters/weight"]
    assert all(sorted(steps) == LOGGED_AT for steps in both.values())


def test_unwatch_stops_logging_and_finish_removes_the_hooks(model, torch, capfd):
    run = nbtracker.init(project="watch")
    run.watch(model, log="all", log_freq=FREQ)
    _train(run, model, steps=10)
    nbtracker.unwatch(model)
    _train(run, model, steps=10, start=10)
    run.finish(quiet=True)
    assert {k: sorted(v) for k, v in _histograms(run, "gradients/").items()} == {
        "gradients/weight": [4, 9], "gradients/bias": [4, 9]}
    assert sorted(_histograms(run, "parameters/")["parameters/weight"]) == [4, 9]

    # a run that ends leaves no hook behind: the next run of the same model logs nothing
    # it did not ask for, and nothing complains about the finished run
    run = nbtracker.init(project="watch")
    run.watch(model, log="gradients", log_freq=1)
    run.finish(quiet=True)
    nxt = nbtracker.init(project="watch")
    _train(nxt, model, steps=3)
    nxt.finish(quiet=True)
    assert not _histograms(nxt, "gradients/")
    assert "finished" not in capfd.readouterr().err

    # unwatch() with no model removes them all
    run = nbtracker.init(project="watch")
    run.watch(model, log="all", log_freq=1)
    run.unwatch()
    _train(run, model, steps=2)
    run.finish(quiet=True)
    assert not _histograms(run, "gradients/") and not _histograms(run, "parameters/")


def test_second_model_gets_wandb_prefix_and_rewatching_replaces_hooks(torch):
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    run = nbtracker.init(project="watch")
    run.watch([a, b], log_freq=2)
    run.watch(a, log_freq=2)  # again (a re-run notebook cell): same names, one set of hooks
    _train(run, a, steps=2)
    _train(run, b, steps=2, start=2)
    run.finish(quiet=True)
    grads = {k: sorted(v) for k, v in _histograms(run, "gradients/").items()}
    assert grads == {"gradients/weight": [1], "gradients/bias": [1],
                     "gradients/graph_1weight": [3], "gradients/graph_1bias": [3]}


def test_non_finite_values_are_left_out(model, torch):
    with torch.no_grad():
        model.weight[0, 0] = math.inf
        model.weight[1, 1] = math.nan
    run = nbtracker.init(project="watch")
    run.watch(model, log="parameters", log_freq=1)
    model(torch.zeros(1, 4))
    run.log({"x": 1})
    run.finish(quiet=True)
    ref = _histograms(run, "parameters/")["parameters/weight"][0]
    assert sum(ref["values"]) == 6  # 8 weights, 2 not finite
    assert all(math.isfinite(b) for b in ref["bins"])


def test_histogram_of_tensors(torch):
    from nbtracker.sdk.watch import histogram

    counts, edges = histogram(torch.tensor([1.0, 2.0, 2.0, 3.0]))
    assert len(counts) == 64 and sum(counts) == 4 and edges[0] == 1.0 and edges[-1] == 3.0
    assert counts[0] == 1 and counts[-1] == 1
    assert histogram(torch.tensor([float("nan"), float("inf")])) is None
    assert histogram(torch.tensor([])) is None
    assert histogram(torch.full((3, 3), 0.5)) == ([9], [0.5, 0.5])
    counts, edges = histogram(torch.arange(10, dtype=torch.int64))  # integers, half floats
    assert sum(counts) == 10 and (edges[0], edges[-1]) == (0.0, 9.0)
    assert sum(histogram(torch.ones(5, dtype=torch.float16) * torch.arange(5))[0]) == 5
    # a sparse gradient (nn.Embedding(sparse=True)) counts its implicit zeros
    sparse = torch.sparse_coo_tensor([[0, 3]], [2.0, 4.0], (10,), check_invariants=True)
    counts, edges = histogram(sparse)
    assert sum(counts) == 10 and counts[0] == 8 and (edges[0], edges[-1]) == (0.0, 4.0)


def test_bad_arguments_are_one_warning_each(model, capfd):
    run = nbtracker.init(project="watch")
    run.watch(model, log="weights")
    run.watch(object())
    run.watch(object())
    _train(run, model, steps=2)
    run.finish(quiet=True)
    err = [ln for ln in capfd.readouterr().err.splitlines() if "watch(" in ln]
    assert len(err) == 2 and "log='weights'" in err[0] and "torch.nn.Module" in err[1]
    assert not _histograms(run, "gradients/")


def test_without_torch_watch_says_so_once_and_training_goes_on():
    p = run_python("""
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        import nbtracker
        run = nbtracker.init(project="notorch")
        nbtracker.watch(object())
        nbtracker.watch(object(), log="all")
        nbtracker.log({"loss": 0.5})
        nbtracker.unwatch()
        nbtracker.finish()
    """)
    lines = [ln for ln in p.stderr.splitlines() if "watch()" in ln]
    assert len(lines) == 1 and "needs PyTorch" in lines[0] and "Traceback" not in p.stderr
    (r,) = nbtracker.Api().runs("notorch")
    assert r.state == "finished" and r.history()["loss"].tolist() == [0.5]
