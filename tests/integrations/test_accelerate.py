"""NbtrackerTracker in a real accelerate training loop (a tiny regression on random data): what
the loop logged through the Accelerator is what the run holds, read back through
`nbtracker.Api()`."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("accelerate")
torch = pytest.importorskip("torch")

from accelerate import Accelerator  # noqa: E402

import nbtracker  # noqa: E402
from nbtracker.integrations.accelerate import NbtrackerTracker  # noqa: E402

INTERNAL = ("_step", "_runtime", "_timestamp")


def train(accelerator: Accelerator, steps: int = 6) -> list[float]:
    """A few optimiser steps, each loss logged at its step; returns the losses logged."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    model, opt, data = accelerator.prepare(model, opt, data)
    losses = []
    step = 0
    while step < steps:
        for xb, yb in data:
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            accelerator.backward(loss)
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
            accelerator.log({"train/loss": losses[-1], "epoch": step // 4}, step=step)
            step += 1
            if step == steps:
                break
    return losses


def history(run) -> list[dict]:
    api_run = nbtracker.Api().run(f"{run.project}/{run.id}")
    return [{k: v for k, v in r.items() if k not in INTERNAL} for r in api_run.scan_history()]


def test_a_training_loop_is_recorded_and_end_training_finishes_the_run():
    tracker = NbtrackerTracker("acc", name="tiny-loop", tags=["cpu"])
    accelerator = Accelerator(log_with=tracker, cpu=True)
    accelerator.init_trackers("acc", config={"lr": 0.1, "batch_size": 8, "note": None})
    run = accelerator.get_tracker("nbtracker", unwrap=True)
    assert run is tracker.tracker is nbtracker.run
    losses = train(accelerator)
    accelerator.end_training()
    assert run.state == "finished"
    api_run = nbtracker.Api().run(f"acc/{run.id}")
    assert (api_run.name, api_run.tags, api_run.state) == ("tiny-loop", ["cpu"], "finished")
    assert api_run.config == {"lr": 0.1, "batch_size": 8, "note": None}
    rows = list(api_run.scan_history())
    assert [r["_step"] for r in rows] == list(range(6))
    assert [r["train/loss"] for r in rows] == losses
    assert api_run.summary["train/loss"] == losses[-1]


def test_log_with_the_name_nbtracker():
    accelerator = Accelerator(log_with="nbtracker", cpu=True)
    accelerator.init_trackers("by-name", config={"lr": 0.1},
                              init_kwargs={"nbtracker": {"name": "named"}})
    run = accelerator.get_tracker("nbtracker", unwrap=True)
    assert (run.project, run.name) == ("by-name", "named")
    losses = train(accelerator, steps=3)
    accelerator.end_training()
    assert [r["train/loss"] for r in history(run)] == losses
    assert nbtracker.Api().run(f"by-name/{run.id}").config == {"lr": 0.1}


def test_images_and_tables():
    accelerator = Accelerator(log_with=NbtrackerTracker("media"), cpu=True)
    accelerator.init_trackers("media")
    tracker = accelerator.get_tracker("nbtracker")
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    tracker.log_images({"samples": [img, 255 - img]}, step=2)
    tracker.log_table("preds", columns=["x", "y"], data=[[1, "a"], [2, "b"]], step=2)
    run = tracker.tracker
    accelerator.end_training()
    api_run = nbtracker.Api().run(f"media/{run.id}")
    samples = api_run.media("samples")  # a list logged at one step: one item each
    assert [(m.step, m.index) for m in samples] == [(2, 0), (2, 1)]
    assert [np.array_equal(m.load(), a) for m, a in zip(samples, [img, 255 - img])] == [True, True]
    (table,) = api_run.media("preds")
    frame = table.load()
    assert list(frame.columns) == ["x", "y"] and frame.values.tolist() == [[1, "a"], [2, "b"]]


def test_an_active_run_is_used_and_left_open():
    mine = nbtracker.init(project="mine")
    accelerator = Accelerator(log_with=NbtrackerTracker("ignored"), cpu=True)
    accelerator.init_trackers("ignored", config={"lr": 0.1})
    assert accelerator.get_tracker("nbtracker", unwrap=True) is mine
    train(accelerator, steps=2)
    accelerator.end_training()
    assert mine.state == "running"
    mine.finish()
    assert nbtracker.Api().run(f"mine/{mine.id}").config == {"lr": 0.1}
    assert [p.name for p in nbtracker.Api().projects()] == ["mine"]


def test_a_loop_that_raised_is_finished_by_the_next_init_trackers_not_continued():
    first = Accelerator(log_with=NbtrackerTracker("acc"), cpu=True)
    first.init_trackers("acc", config={"lr": 0.1})
    first_run = nbtracker.run
    with pytest.raises(RuntimeError):
        train(first, steps=2)
        raise RuntimeError("a bug before end_training()")
    second = Accelerator(log_with=NbtrackerTracker("acc"), cpu=True)
    second.init_trackers("acc", config={"lr": 0.2})
    run = second.get_tracker("nbtracker", unwrap=True)
    losses = train(second, steps=3)
    second.end_training()
    assert nbtracker.run is None and run is not first_run
    assert (first_run.state, run.state) == ("failed", "finished")
    assert [r["train/loss"] for r in history(run)] == losses
    assert len(history(first_run)) == 2
    assert nbtracker.Api().run(f"acc/{first_run.id}").config == {"lr": 0.1}


def test_a_run_finished_before_end_training_costs_one_warning(capfd):
    accelerator = Accelerator(log_with=NbtrackerTracker("acc"), cpu=True)
    accelerator.init_trackers("acc")
    run = nbtracker.run
    accelerator.log({"a": 1}, step=0)
    run.finish()
    accelerator.log({"a": 2}, step=1)
    accelerator.log({"a": 3}, step=2)
    accelerator.end_training()
    assert history(run) == [{"a": 1}]
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "finished before end_training()" in warnings[0], warnings


def test_a_store_that_cannot_be_written_warns_once_and_training_goes_on(tmp_path, monkeypatch,
                                                                         capfd):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store should be")
    monkeypatch.setenv("NBTRACKER_DIR", str(blocker))
    accelerator = Accelerator(log_with=NbtrackerTracker("nowhere"), cpu=True)
    accelerator.init_trackers("nowhere", config={"lr": 0.1})
    assert len(train(accelerator, steps=4)) == 4
    accelerator.end_training()
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("nbtracker:")]
    assert len(warnings) == 1 and "could not start a run" in warnings[0], warnings


def test_without_accelerate_the_import_error_names_the_extra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['accelerate'] = None\n"
            "try:\n    import nbtracker.integrations.accelerate\n"
            "except ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'nbtracker[accelerate]'" in out.stdout


@pytest.mark.parametrize("log_with", ["nbtracker", "instance"])
def test_a_second_init_trackers_ends_the_first_run_and_starts_its_own(log_with):
    accelerator = Accelerator(cpu=True, log_with=NbtrackerTracker("p") if log_with == "instance"
                              else "nbtracker")
    accelerator.init_trackers("p", config={"lr": 0.1})
    for s in range(3):
        accelerator.log({"loss": 1.0 + s}, step=s)
    first = accelerator.get_tracker("nbtracker", unwrap=True)
    # the loop never reached end_training(): a new experiment on the same Accelerator
    accelerator.init_trackers("p", config={"lr": 0.5})
    second = accelerator.get_tracker("nbtracker", unwrap=True)
    assert second is not first and first.state == "failed"
    accelerator.log({"loss": 10.0}, step=0)
    accelerator.end_training()
    assert second.state == "finished"
    a, b = (nbtracker.Api().run(f"p/{r.id}") for r in (first, second))
    assert a.config["lr"] == 0.1 and b.config["lr"] == 0.5
    assert [(r["_step"], r["loss"]) for r in a.scan_history()] == [(0, 1.0), (1, 2.0), (2, 3.0)]
    assert [r["loss"] for r in b.scan_history()] == [10.0]
