"""Keras 3 (torch backend): `model.fit` with NbtrackerMetricsLogger logs what Keras reports,
read back through nbtracker.Api and compared with Keras's own History and counters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# the backend is chosen once, when keras is first imported; without tensorflow or jax here,
# torch is the one there is (a process that already imported keras with another backend runs
# this file again in a fresh process: test_in_a_torch_process)
if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")

import nbtracker  # noqa: E402

TORCH = keras.backend.backend() == "torch"
needs_torch = pytest.mark.skipif(not TORCH, reason="keras was imported with another backend; "
                                 "test_in_a_torch_process runs these in a fresh process")
HERE = Path(__file__).resolve()
REPO = HERE.parents[2]


@pytest.mark.skipif(TORCH, reason="keras already runs on torch in this process")
@pytest.mark.slow
def test_in_a_torch_process():
    env = {**os.environ, "KERAS_BACKEND": "torch",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider"],
                       env=env, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]


def data(n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    return x, y


def model(optimizer) -> keras.Model:
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return m


class Recorder(keras.callbacks.Callback):
    """What Keras hands to callbacks after each training batch, and the optimizer's state then."""

    def __init__(self):
        super().__init__()
        self.batches: list[dict] = []

    def on_train_batch_end(self, batch, logs=None):
        opt = self.model.optimizer
        self.batches.append({"logs": dict(logs), "iterations": int(opt.iterations.numpy()),
                             "lr": float(opt.learning_rate)})


def rows_of(run_path: str) -> list[dict]:
    return list(nbtracker.Api().run(run_path).scan_history())


def only(rows: list[dict], prefix: str) -> list[dict]:
    return [r for r in rows if any(k.startswith(prefix) for k in r)]


def f32(v: float) -> float:
    return float(np.float32(v))


@needs_torch
def test_epochs_logged_as_history_says_in_a_run_of_its_own(monkeypatch):
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    monkeypatch.setenv("NBTRACKER_PROJECT", "keras-epochs")
    x, y = data()
    m = model(keras.optimizers.Adam(0.01))
    hist = m.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0,
                 callbacks=[NbtrackerMetricsLogger()])
    assert nbtracker.run is None  # the callback started the run, so it finished it

    (run,) = nbtracker.Api().runs("keras-epochs")
    assert run.state == "finished"
    rows = list(run.scan_history())
    assert [r["_step"] for r in rows] == [r["epoch/epoch"] for r in rows] == hist.epoch == [0, 1, 2]
    keys = {k for r in rows for k in r if not k.startswith("_")}
    assert keys == {"epoch/loss", "epoch/accuracy", "epoch/val_loss", "epoch/val_accuracy",
                    "epoch/epoch", "epoch/learning_rate"}
    for name, values in hist.history.items():
        assert [r[f"epoch/{name}"] for r in rows] == values  # the very floats Keras reported
    assert [r["epoch/learning_rate"] for r in rows] == [f32(0.01)] * 3
    assert {"name": "epoch/*", "step_metric": "epoch/epoch"} in run.metrics
    assert run.summary["epoch/val_loss"] == hist.history["val_loss"][-1]


@needs_torch
def test_every_batch_with_a_schedule_into_the_users_run():
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    run = nbtracker.init(project="keras-batches")
    run.log({"before": 1})
    x, y = data()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    m = model(keras.optimizers.SGD(schedule))
    rec = Recorder()
    hist = m.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=0,
                 callbacks=[NbtrackerMetricsLogger(log_freq="batch"), rec])
    assert nbtracker.run is run and run.state == "running"  # the user's run stays open
    run.finish()

    rows = rows_of(run.path)
    batches, epochs = only(rows, "batch/"), only(rows, "epoch/")
    n = int(m.optimizer.iterations.numpy())
    assert n == len(rec.batches) == 6  # 48 training samples, batches of 16, 2 epochs
    assert [r["batch/batch_step"] for r in batches] == list(range(n))
    assert [b["iterations"] - 1 for b in rec.batches] == list(range(n))
    for r, b in zip(batches, rec.batches, strict=True):
        assert r["batch/loss"] == b["logs"]["loss"]
        assert r["batch/accuracy"] == b["logs"]["accuracy"]
        # the optimizer's rate, the schedule at its iteration count (for the next update)
        assert r["batch/learning_rate"] == b["lr"] == f32(schedule(b["iterations"]))
    assert [r["epoch/loss"] for r in epochs] == hist.history["loss"]
    assert [r["epoch/learning_rate"] for r in epochs] == [rec.batches[2]["lr"], rec.batches[5]["lr"]]
    # rows in the order wandb's logger writes them: after the user's row, three batches, an epoch
    assert [r["_step"] for r in rows] == list(range(9))
    assert [("batch" if "batch/loss" in r else "epoch" if "epoch/loss" in r else "user")
            for r in rows] == ["user"] + (["batch"] * 3 + ["epoch"]) * 2
    assert {"name": "batch/*", "step_metric": "batch/batch_step"} in nbtracker.Api().run(
        run.path).metrics


@needs_torch
def test_every_nth_batch_counted_over_the_training_and_resumed():
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    run = nbtracker.init(project="keras-nth")
    x, y = data()
    m = model(keras.optimizers.Adam(0.01))
    rec = Recorder()
    m.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=0,
          callbacks=[NbtrackerMetricsLogger(log_freq=2), rec])
    # 3 batches an epoch: the 0th, 2nd and 4th batch of the training, whatever the epoch
    # (wandb's logger counts N within each epoch and its batch_step drifts: 0, 2, 4, 6)
    first = only(rows_of(run.path), "batch/")
    assert [r["batch/batch_step"] for r in first] == [0, 2, 4]
    assert [r["batch/loss"] for r in first] == [rec.batches[i]["logs"]["loss"] for i in (0, 2, 4)]

    # resumed: two more epochs, the batch index goes on from the 6 batches already trained
    m.fit(x, y, batch_size=16, epochs=4, initial_epoch=2, validation_split=0.25, verbose=0,
          callbacks=[NbtrackerMetricsLogger(log_freq=2, initial_global_step=6)])
    run.finish()
    rows = rows_of(run.path)
    assert [r["batch/batch_step"] for r in only(rows, "batch/")] == [0, 2, 4, 6, 8, 10]
    assert [r["epoch/epoch"] for r in only(rows, "epoch/")] == [0, 1, 2, 3]


@needs_torch
def test_learning_rate_as_keras_own_scheduler_reports_it():
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    run = nbtracker.init(project="keras-lr")
    x, y = data()
    m = model(keras.optimizers.Adam(0.02))
    hist = m.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[
        keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.02 / (epoch + 1)),
        NbtrackerMetricsLogger()])
    run.finish()
    rows = rows_of(run.path)
    assert [r["epoch/learning_rate"] for r in rows] == hist.history["learning_rate"]
    assert hist.history["learning_rate"] == [f32(0.02), f32(0.01), f32(0.02 / 3)]


@needs_torch
def test_checkpoints_are_kept_with_the_run(tmp_path):
    from nbtracker.integrations.keras import NbtrackerMetricsLogger, NbtrackerModelCheckpoint

    run = nbtracker.init(project="keras-ckpt")
    x, y = data()
    m = model(keras.optimizers.Adam(0.01))
    ckpt = NbtrackerModelCheckpoint(str(tmp_path / "ckpt" / "m-{epoch}.keras"))
    m.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[NbtrackerMetricsLogger(), ckpt])
    run.finish()
    files = {f.name: f for f in nbtracker.Api().run(run.path).files()}
    for name in ("m-1.keras", "m-2.keras"):
        assert files[name].path.read_bytes() == (tmp_path / "ckpt" / name).read_bytes()
    restored = keras.saving.load_model(files["m-2.keras"].path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), m.predict(x, verbose=0))


@needs_torch
def test_a_run_finished_mid_training_costs_one_warning_not_the_training(capfd):
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    class FinishAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                nbtracker.finish()

    run = nbtracker.init(project="keras-closed")
    x, y = data()
    hist = model(keras.optimizers.Adam(0.01)).fit(
        x, y, batch_size=16, epochs=3, verbose=0,
        callbacks=[NbtrackerMetricsLogger(log_freq="batch"), FinishAfterFirstEpoch()])
    assert hist.epoch == [0, 1, 2]
    rows = rows_of(run.path)
    assert [r["epoch/epoch"] for r in only(rows, "epoch/")] == [0]
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "is finished" in warnings[0]


def test_log_freq_is_checked():
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    for bad in (0, -1, "step", 1.5, True):
        with pytest.raises(ValueError, match="log_freq"):
            NbtrackerMetricsLogger(log_freq=bad)


def test_importing_nbtracker_imports_no_framework():
    code = ("import sys, nbtracker, nbtracker.integrations\n"
            "print(sorted({'keras', 'xgboost', 'lightgbm', 'torch', 'tensorflow'} & set(sys.modules)))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.stdout.strip() == "[]"


@pytest.mark.parametrize("module,extra", [("keras", "keras"), ("xgboost", "xgboost"),
                                          ("lightgbm", "lightgbm")])
def test_without_the_framework_the_error_names_the_extra(module, extra):
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            f"import nbtracker.integrations.{module}")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 1
    assert f"pip install 'nbtracker[{extra}]'" in p.stderr.strip().splitlines()[-1]


# -- in a notebook ------------------------------------------------------------------------------

NOTEBOOK_FIT = """\
import os
os.environ["KERAS_BACKEND"] = "torch"
import keras, numpy as np
from nbtracker.integrations.keras import NbtrackerMetricsLogger
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32"); y = (x[:, 0] > 0).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
hist = model.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0,
                 callbacks=[NbtrackerMetricsLogger(log_freq="batch")])
"""


@needs_torch
@pytest.mark.slow
def test_model_fit_in_a_notebook_feeds_the_live_panel(tmp_path, store):
    """The callback starts the run inside the kernel, shows its panel, and the panel (saved
    widget state) holds every point fit logged, at the steps the store holds."""
    nbclient = pytest.importorskip("nbclient")
    import json

    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext nbtracker"),
                nbformat.v4.new_code_cell(NOTEBOOK_FIT),
                nbformat.v4.new_code_cell("import json; print(json.dumps(hist.history))")]
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     store_widget_state=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells for o in c.outputs if o.get("output_type") == "error"]
    assert errors == []
    history = json.loads(nb.cells[2].outputs[0]["text"])

    (run,) = nbtracker.Api().runs()
    assert run.state == "finished"
    rows = list(run.scan_history())
    assert [r["epoch/loss"] for r in only(rows, "epoch/")] == history["loss"]

    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    (panel,) = [m["state"] for m in state.values() if m["state"].get("_kind") == "live"]
    assert panel["info"]["state"] == "finished"
    snap = panel["snapshot"]
    for key in ("epoch/loss", "epoch/val_loss", "epoch/learning_rate", "batch/loss"):
        steps, values = snap[key]["c"][0] + snap[key]["t"][0], snap[key]["c"][1] + snap[key]["t"][1]
        x = panel["xlabels"][key]  # drawn against the step metric the logger defined
        # the saved panel holds 6 significant digits (display only; the store has them all)
        logged = [(r[x], float(f"{r[key]:.6g}")) for r in rows if key in r]
        assert list(zip(steps, values)) == logged, key
    assert panel["xlabels"]["epoch/loss"] == "epoch/epoch"
    assert panel["xlabels"]["batch/loss"] == "batch/batch_step"


@needs_torch
def test_logging_epochs_leaves_keras_free_to_dispatch_batch_callbacks_asynchronously():
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    CallbackList = keras.callbacks.CallbackList
    m = model(keras.optimizers.Adam(0.01))
    # Keras hands batch metrics to callbacks from a thread pool unless one defines a batch hook
    epochs = CallbackList([NbtrackerMetricsLogger()], model=m)
    batches = CallbackList([NbtrackerMetricsLogger(log_freq="batch")], model=m)
    assert epochs._async_train and not batches._async_train


class RaiseAt(keras.callbacks.Callback):
    """Raises `exc` at the end of epoch `epoch`: a bug, or Ctrl-C."""

    def __init__(self, epoch: int, exc: BaseException):
        super().__init__()
        self.epoch, self.exc = epoch, exc

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise self.exc


@needs_torch
def test_a_fit_that_raised_leaves_its_run_to_no_later_fit():
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    x, y = data()
    m = model(keras.optimizers.Adam(0.01))
    logger = NbtrackerMetricsLogger()
    with pytest.raises(RuntimeError):
        m.fit(x, y, epochs=3, verbose=0, callbacks=[logger, RaiseAt(1, RuntimeError("a bug"))])
    hist = m.fit(x, y, epochs=2, verbose=0, callbacks=[logger])
    assert nbtracker.run is None  # both runs were the logger's: both finished
    first, second = sorted(nbtracker.Api().runs(), key=lambda r: r.created)
    assert (first.state, second.state) == ("failed", "finished")
    assert [r["epoch/epoch"] for r in first.scan_history()] == [0, 1]
    rows = list(second.scan_history())
    assert [r["epoch/epoch"] for r in rows] == hist.epoch == [0, 1]
    assert [r["epoch/loss"] for r in rows] == hist.history["loss"]


@needs_torch
@pytest.mark.parametrize("known", ["being handled", "uncaught in a cell"])
def test_a_fit_stopped_by_ctrl_c_is_interrupted(known, monkeypatch):
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    x, y = data()
    m = model(keras.optimizers.Adam(0.01))
    try:
        m.fit(x, y, epochs=3, verbose=0,
              callbacks=[NbtrackerMetricsLogger(), RaiseAt(0, KeyboardInterrupt())])
    except KeyboardInterrupt as e:
        if known == "being handled":  # a fit started in the `except` block
            m.fit(x, y, epochs=1, verbose=0, callbacks=[NbtrackerMetricsLogger()])
        else:  # where IPython keeps the exception that ended a cell
            monkeypatch.setattr(sys, "last_value", e, raising=False)
            monkeypatch.setattr(sys, "last_exc", e, raising=False)
    if known != "being handled":
        m.fit(x, y, epochs=1, verbose=0, callbacks=[NbtrackerMetricsLogger()])
    first, second = sorted(nbtracker.Api().runs(), key=lambda r: r.created)
    assert (first.state, second.state) == ("interrupted", "finished")
    assert [r["epoch/epoch"] for r in first.scan_history()] == [0]
    assert [r["epoch/epoch"] for r in second.scan_history()] == [0]


@needs_torch
def test_two_loggers_of_one_fit_share_its_run():
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    x, y = data()
    hist = model(keras.optimizers.Adam(0.01)).fit(
        x, y, batch_size=16, epochs=2, verbose=0,
        callbacks=[NbtrackerMetricsLogger(), NbtrackerMetricsLogger(log_freq=2)])
    (run,) = nbtracker.Api().runs()
    assert run.state == "finished"
    rows = list(run.scan_history())
    assert {r["epoch/epoch"] for r in only(rows, "epoch/")} == set(hist.epoch)  # from each
    assert [r["batch/batch_step"] for r in only(rows, "batch/")] == [0, 2, 4, 6]
