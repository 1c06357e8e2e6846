"""NbtrackerLogger on a real Lightning Trainer: a tiny linear model on synthetic data, read back
through nbtracker.Api and checked against what Lightning itself reported (a CSVLogger beside it,
the trainer's own counters and logged metrics)."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("lightning")

import torch  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger, Logger  # noqa: E402
from tiny_lightning import Tiny, loader, module_class, pl, trainer  # noqa: E402

import nbtracker  # noqa: E402
from nbtracker.integrations.lightning import NbtrackerLogger  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KEYS = {"train/loss_step", "train/loss_epoch", "val/loss", "epoch", "trainer/global_step"}


def fit(logger, model=None, **kwargs):
    t = trainer(logger, **kwargs)
    t.fit(model or Tiny(), loader(), loader(seed=1))
    return t


def csv_rows(csv_logger) -> list[tuple[int, dict]]:
    """What Lightning gave the CSVLogger: (step, {key: value}) per call."""
    with open(Path(csv_logger.log_dir) / "metrics.csv", newline="") as f:
        return [(int(r.pop("step")), {k: float(v) for k, v in r.items() if v != ""})
                for r in csv.DictReader(f)]


def only_run(project: str):
    runs = nbtracker.Api().runs(project)
    assert len(runs) == 1, [r.id for r in runs]
    return runs[0]


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_metrics_at_the_global_step_with_the_values_lightning_reported(tmp_path):
    ours, theirs = NbtrackerLogger(project="pl"), CSVLogger(tmp_path / "csv")
    t = fit([ours, theirs], Tiny(lr=0.05, hidden=8))
    run = only_run("pl")
    assert run.state == "finished" and run.id == ours.version and ours.name == "pl"
    assert ours.log_dir == run.storage_dir and ours.save_dir is None
    rows = {r["_step"]: r for r in run.scan_history()}
    # every value Lightning logged, at its step, exactly; several calls at one step are one row
    expected = csv_rows(theirs)
    assert len(expected) == 4 * 2 + 2 * 2  # a row per step, and val + epoch metrics per epoch
    for step, values in expected:
        for k, v in values.items():
            assert rows[step][k] == v, (step, k)
    assert sorted(rows) == sorted({s for s, _ in expected}) == list(range(t.global_step))
    assert {k for r in rows.values() for k in r if not k.startswith("_")} == KEYS
    assert all(r["trainer/global_step"] == s for s, r in rows.items())
    assert [rows[s]["epoch"] for s in sorted(rows)] == [0] * 4 + [1] * 4
    # the last values are what the trainer holds
    summary = dict(run.summary)
    for k, v in t.logged_metrics.items():
        assert summary[k] == pytest.approx(float(v), rel=0, abs=0), k
    assert run.config == {"lr": 0.05, "hidden": 8, "fail_at": None, "interrupt_at": None}


def test_hyperparameters_namespace_nested_and_callables():
    import argparse

    logger = NbtrackerLogger(project="hp")
    logger.log_hyperparams(argparse.Namespace(lr=0.1, opt={"name": "sgd", "momentum": 0.9},
                                              act=torch.relu, dev=torch.device("cpu")))
    logger.finalize("success")
    run = only_run("hp")
    assert run.config == {"lr": 0.1, "opt": {"name": "sgd", "momentum": 0.9}, "act": "relu",
                          "dev": "cpu"}


def test_hyperparameter_numbers_arrays_and_tensors_are_values_not_text():
    import enum

    import numpy as np

    class Colour(enum.Enum):
        RED = 1

    class Odd:  # a scalar-like value whose item() fails: text, the rest still values
        ndim = 0

        def item(self):
            raise RuntimeError("no item")

        def __str__(self):
            return "odd"

    model = type("HP", (Tiny,), {})
    m = model(lr=0.05)
    m.save_hyperparameters({"t": torch.tensor(0.5), "n": np.float32(0.25), "arr": np.arange(3),
                            "m": torch.ones(2, 2), "i": np.int64(7), "c": Colour.RED,
                            "odd": Odd(), "act": torch.relu})
    logger = NbtrackerLogger(project="hp-values")
    logger.log_hyperparams(m.hparams)
    logger.finalize("success")
    assert only_run("hp-values").config == {
        "lr": 0.05, "hidden": 4, "fail_at": None, "interrupt_at": None,
        "t": 0.5, "n": 0.25, "arr": [0, 1, 2], "m": [[1.0, 1.0], [1.0, 1.0]], "i": 7,
        "c": "Colour.RED", "odd": "odd", "act": "relu"}


def test_images_tables_text_and_watch_read_back():
    import numpy as np

    class WithMedia(Tiny):
        def on_validation_epoch_end(self):
            img = torch.linspace(0, 1, 64).reshape(8, 8) * (self.current_epoch + 1) / 2
            self.logger.log_image("samples", [img, img.numpy()], caption=["a", "b"])
            self.logger.log_text("notes", columns=["epoch", "text"],
                                 data=[[self.current_epoch, f"epoch {self.current_epoch}"]])

    logger = NbtrackerLogger(project="media")
    model = WithMedia()
    logger.watch(model, log="all", log_freq=4)
    t = fit(logger, model)
    import pandas as pd

    logger.log_table("final", dataframe=pd.DataFrame({"x": [1, 2], "y": ["p", "q"]}),
                     step=t.global_step)
    logger.finalize("success")
    run = only_run("media")
    # media without a step join the row of the last logged metrics: the epoch's end
    images = run.media("samples")
    assert [(m.step, m.index, m.caption) for m in images] == [(3, 0, "a"), (3, 1, "b"),
                                                              (7, 0, "a"), (7, 1, "b")]
    assert images[0].load().shape == (8, 8) and np.array_equal(images[2].load(), images[3].load())
    notes = run.media("notes")
    assert [m.step for m in notes] == [3, 7]
    assert notes[1].load().values.tolist() == [[1, "epoch 1"]]
    final = run.media("final")
    assert [m.step for m in final] == [8]
    assert final[0].load().to_dict("list") == {"x": [1, 2], "y": ["p", "q"]}
    keys = set(run.history().columns)
    assert {"gradients/net.weight", "gradients/net.bias", "parameters/net.weight"} <= keys
    assert run.state == "finished"


def test_log_model_all_saves_each_checkpoint_as_it_is_written(tmp_path):
    logger = NbtrackerLogger(project="ckpt", log_model="all", save_dir=tmp_path / "out")
    ckpt = ModelCheckpoint(save_top_k=-1)  # its folder: save_dir/name/version, as for wandb
    fit(logger, enable_checkpointing=True, callbacks=[ckpt])
    run = only_run("ckpt")
    folder = tmp_path / "out" / "ckpt" / run.id / "checkpoints"
    assert Path(ckpt.dirpath) == folder and logger.save_dir == str(tmp_path / "out")
    assert Path(run.storage_dir).is_relative_to(tmp_path / "out" / "nbtracker")
    names = sorted(f.name for f in run.files() if f.name.startswith("checkpoints/"))
    assert names == ["checkpoints/epoch=0-step=4.ckpt", "checkpoints/epoch=1-step=8.ckpt"]
    for name in names:
        saved = run.file(name).download(tmp_path / "dl")
        assert sha256(saved) == sha256(folder / Path(name).name)
        assert torch.load(saved, weights_only=False)["global_step"] == int(name[-6])


def test_log_model_true_saves_the_best_when_training_ends(tmp_path):
    class Worse(Tiny):  # val/loss rises in epoch 2: the best checkpoint is the first
        def validation_step(self, batch, batch_idx):
            self.log("val/loss", float(self.current_epoch))

    logger = NbtrackerLogger(project="best", log_model=True, checkpoint_name="model")
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val/loss", save_top_k=1)
    fit(logger, Worse(), enable_checkpointing=True, callbacks=[ckpt])
    run = only_run("best")
    assert sorted(f.name for f in run.files() if f.name.startswith("model/")) == [
        "model/epoch=0-step=4.ckpt"]
    assert run.summary["best_checkpoint"] == "model/epoch=0-step=4.ckpt"


def test_a_run_already_active_is_used_and_left_running():
    mine = nbtracker.init(project="mine", config={"owner": "me"})
    logger = NbtrackerLogger(project="ignored")
    fit(logger)
    assert logger.experiment is mine and mine.state == "running"
    assert logger.name == "mine" and logger.version == mine.id
    mine.log({"after": 1.0})
    mine.finish()
    run = only_run("mine")
    assert run.config["owner"] == "me" and run.config["lr"] == 0.1
    assert run.history()["after"].dropna().tolist() == [1.0]
    assert nbtracker.Api().runs("ignored") == []


def test_fit_then_test_continue_one_run(monkeypatch):
    monkeypatch.setenv("NBTRACKER_PROJECT", "from-env")
    logger = NbtrackerLogger(name="fit-and-test")
    t = fit(logger)
    assert logger.experiment.state == "finished"  # reading it does not reopen it
    t.test(t.lightning_module, loader(seed=2))
    run = only_run("from-env")
    assert run.name == "fit-and-test" and run.state == "finished"
    h = run.history()
    test = h[h["test/loss"].notna()]
    assert test["_step"].tolist() == [t.global_step] and test["trainer/global_step"].tolist() == [8]
    assert test["test/loss"].iloc[0] == float(t.logged_metrics["test/loss"])


class Recorder(Logger):
    """What Lightning gives its loggers: (global step, {key: value}) per call."""

    name, version = "recorder", 0

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[int, dict]] = []

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.calls.append((step, dict(metrics)))


def reported_and_stored(recorder, run, keys):
    """Per key, the (global step, value) pairs Lightning reported and those in the run, in
    the order they were reported / by `_step`."""
    rows = sorted(run.scan_history(), key=lambda r: r["_step"])
    return ({k: [(s, m[k]) for s, m in recorder.calls if k in m] for k in keys},
            {k: [(r["trainer/global_step"], r[k]) for r in rows if r.get(k) is not None]
             for k in keys})


def test_a_value_lightning_reports_again_at_one_global_step_is_kept_after_the_last_row():
    ours, rec = NbtrackerLogger(project="again"), Recorder()
    t = fit([ours, rec], max_epochs=1)
    t.test(t.lightning_module, loader(16, seed=5), verbose=False)
    t.test(t.lightning_module, loader(16, seed=6), verbose=False)  # the same global step: 4
    t.validate(t.lightning_module, loader(16, seed=7), verbose=False)
    t.validate(t.lightning_module, loader(16, seed=8), verbose=False)
    fit([ours, rec], t.lightning_module, max_epochs=1)  # a new Trainer: global steps 0-3 again
    run = only_run("again")
    assert run.state == "finished" and run.id == ours.version
    keys = ("train/loss_step", "train/loss_epoch", "val/loss", "test/loss")
    reported, stored = reported_and_stored(rec, run, keys)
    assert [len(reported[k]) for k in keys] == [8, 2, 4, 2]
    assert stored == reported  # every value, with the trainer's step, in the order reported
    h = run.history()
    # the first fit at its global steps, then each test() and validate() in a row of its own
    # after the last (the run was finished and continued: it never goes back), and the
    # second fit after them
    assert h["_step"].tolist() == list(range(12))
    assert h["trainer/global_step"].tolist() == [0, 1, 2, 3, 4, 4, 4, 4, 0, 1, 2, 3]


def test_a_fit_in_a_run_with_rows_goes_on_after_them_and_a_resumed_fit_at_its_steps(tmp_path):
    mine = nbtracker.init(project="rows")
    for i in range(3):
        mine.log({"mine": i})
    ours, rec = NbtrackerLogger(), Recorder()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck")
    t = fit([ours, rec], max_epochs=1, enable_checkpointing=True, callbacks=[ckpt])
    t2 = trainer([ours, rec], max_epochs=2)
    t2.fit(t.lightning_module, loader(), loader(seed=1), ckpt_path=ckpt.best_model_path)
    assert t2.global_step == 8
    mine.finish()
    run = only_run("rows")
    keys = ("train/loss_step", "train/loss_epoch", "val/loss")
    reported, stored = reported_and_stored(rec, run, keys)
    assert stored == reported
    h = run.history()
    assert h["mine"].dropna().tolist() == [0, 1, 2] and h["_step"].tolist()[:3] == [0, 1, 2]
    # after the user's rows; the resumed fit at its own global steps, continuing the first
    ours_rows = h[h["trainer/global_step"].notna()]
    assert (ours_rows["_step"] - ours_rows["trainer/global_step"]).tolist() == [3] * 8


def test_a_users_rows_at_explicit_steps_stay_and_a_fresh_trainers_test_follows_them():
    mine = nbtracker.init(project="explicit")
    for s in (0, 5, 10):
        mine.log({"mine": s}, step=s)  # `step=` leaves the run's current step at the row
    rec = Recorder()
    t = fit([NbtrackerLogger(), rec], max_epochs=1)
    trainer([NbtrackerLogger(), rec]).test(t.lightning_module, loader(16, seed=5), verbose=False)
    mine.finish()
    run = only_run("explicit")
    # every earlier row as the user wrote it, alone in its row
    rows = sorted(run.scan_history(), key=lambda r: r["_step"])
    theirs = [r for r in rows if "mine" in r]
    assert [(r["_step"], r["mine"]) for r in theirs] == [(0, 0), (5, 5), (10, 10)]
    assert all(k == "mine" or k.startswith("_") for r in theirs for k in r)
    # every value Lightning reported, each after the last row (the test's in a row of its own)
    keys = ("train/loss_step", "train/loss_epoch", "val/loss", "test/loss")
    reported, stored = reported_and_stored(rec, run, keys)
    assert stored == reported and len(reported["test/loss"]) == 1
    ours = [r for r in rows if "trainer/global_step" in r]
    assert [r["_step"] for r in ours] == list(range(11, 16))
    assert [(r["trainer/global_step"], r["epoch"]) for r in ours] == [(s, 0) for s in range(4)] \
        + [(0, 0)]


def test_numpy_values_repeated_at_one_step_join_its_row():
    import numpy as np

    logger = NbtrackerLogger(project="np")
    for step in range(2):  # as fabric.log_dict(..., step=epoch) with numpy values
        logger.log_metrics({"lr": np.float64(0.1), "train": float(step)}, step=step)
        logger.log_metrics({"lr": np.float64(0.1), "val": np.float32(np.nan)}, step=step)
        logger.log_metrics({"val": np.float64(np.nan), "acc": np.int64(3)}, step=step)
        logger.log_metrics({"acc": 3}, step=step)
    logger.finalize("success")
    h = only_run("np").history()
    assert h["_step"].tolist() == [0, 1] == h["trainer/global_step"].tolist()
    assert h["lr"].tolist() == [0.1, 0.1] and h["val"].isna().all()
    assert h["acc"].tolist() == [3, 3] and h["train"].tolist() == [0.0, 1.0]


def test_a_large_array_or_tensor_hyperparameter_is_its_text():
    import numpy as np

    big, small = torch.randn(200, 10), np.arange(6)  # 2000 elements: a pretrained embedding
    nested = np.zeros(1001)
    logger = NbtrackerLogger(project="hp-large")
    logger.log_hyperparams({"lr": 0.1, "emb": big, "small": small,
                            "opt": {"name": "sgd", "w": nested}, "cap": torch.ones(1000)})
    logger.finalize("success")
    config = only_run("hp-large").config
    assert config == {"lr": 0.1, "emb": str(big), "small": [0, 1, 2, 3, 4, 5],
                      "opt": {"name": "sgd", "w": str(nested)}, "cap": [1.0] * 1000}
    assert len(config["emb"]) < 1000  # printed summarised, as torch prints it


def test_a_second_test_with_the_same_values_is_a_row_of_its_own_without_a_warning(capfd):
    ours, rec = NbtrackerLogger(project="twice"), Recorder()
    t = fit([ours, rec], max_epochs=1)
    t.test(t.lightning_module, loader(16, seed=5), verbose=False)
    t.test(t.lightning_module, loader(16, seed=5), verbose=False)  # the same values
    assert "warning" not in capfd.readouterr().err
    run = only_run("twice")
    reported, stored = reported_and_stored(rec, run, ("test/loss",))
    assert stored == reported and len(reported["test/loss"]) == 2
    h = run.history()
    assert h["_step"].tolist() == list(range(6))
    assert h["trainer/global_step"].tolist() == [0, 1, 2, 3, 4, 4]


def test_with_fabric_a_new_logger_ends_the_run_of_the_one_before(monkeypatch):
    from lightning.fabric import Fabric

    runs = []
    for cell in range(3):  # a notebook cell run three times; Fabric never calls finalize()
        fabric = Fabric(accelerator="cpu", devices=1, loggers=[NbtrackerLogger(project="fab")])
        for i in range(3):
            fabric.log_dict({"loss": 1.0 / (i + 1)}, step=i)
        runs.append(fabric.logger.experiment)
        if cell == 1:  # the cell raised: its run failed
            monkeypatch.setattr(sys, "last_value", RuntimeError("a bug"), raising=False)
            monkeypatch.setattr(sys, "last_exc", sys.last_value, raising=False)
    assert [r.state for r in runs] == ["finished", "failed", "running"]
    assert nbtracker.run is runs[2]
    fabric.logger.finalize("success")
    for r in runs:
        h = nbtracker.Api().run(f"fab/{r.id}").history()
        assert h["loss"].tolist() == [1.0, 0.5, 1.0 / 3] and h["_step"].tolist() == [0, 1, 2]
    assert {r.state for r in nbtracker.Api().runs("fab")} == {"finished", "failed"}


def test_a_trainer_in_a_callback_leaves_the_outer_trainers_run_running():
    inner_runs = []

    class Probe(pl.Callback):  # trains a probe with a logger of its own at each epoch's end
        def on_train_epoch_end(self, trainer, module):
            inner = NbtrackerLogger(project="inner")
            fit(inner, max_epochs=1)
            inner_runs.append(inner.experiment)

    outer = NbtrackerLogger(project="outer")
    fit(outer, callbacks=[Probe()])
    assert outer.experiment.state == "finished" and only_run("outer").state == "finished"
    assert only_run("outer").history()["_step"].tolist() == list(range(8))
    assert [r.state for r in inner_runs] == ["finished", "finished"]


def test_default_project_is_lightnings():
    logger = NbtrackerLogger()
    fit(logger, max_epochs=1)
    assert only_run("lightning_logs").state == "finished"


def test_an_exception_in_training_marks_the_run_failed_and_keeps_its_rows():
    logger = NbtrackerLogger(project="boom")
    with pytest.raises(RuntimeError, match="a bug"):
        fit(logger, Tiny(fail_at=2))
    run = only_run("boom")
    assert run.state == "failed"
    assert run.history()["train/loss_step"].notna().sum() == 2


def test_ctrl_c_marks_the_run_interrupted():
    logger = NbtrackerLogger(project="ctrl-c")
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown ends in sys.exit(1)
            fit(logger, Tiny(interrupt_at=3))
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores Ctrl-C from then on
    run = only_run("ctrl-c")
    assert run.state == "interrupted"
    assert run.history()["train/loss_step"].notna().sum() == 3


def test_a_run_that_cannot_start_is_one_warning_and_training_goes_on(capsys):
    logger = NbtrackerLogger(project="bad", version="no spaces allowed")
    t = fit(logger)
    assert t.global_step == 8 and t.state.finished
    err = capsys.readouterr().err
    assert err.count("NbtrackerLogger could not start a run") == 1
    assert nbtracker.Api().runs("bad") == []


def test_importing_nbtracker_and_integrations_imports_no_framework():
    code = ("import sys, nbtracker, nbtracker.integrations, nbtracker.integrations._lightning\n"
            "print([m for m in ('lightning', 'pytorch_lightning', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True).stdout
    assert out.strip() == "[]"


def test_pytorch_lightning_trainer_with_either_logger(tmp_path):
    pl_old = pytest.importorskip("pytorch_lightning")
    from nbtracker.integrations import pytorch_lightning as alias

    assert issubclass(alias.NbtrackerLogger, pl_old.loggers.Logger)
    for project, cls in (("old", alias.NbtrackerLogger), ("mixed", NbtrackerLogger)):
        t = trainer(cls(project=project), package=pl_old)
        t.fit(module_class(pl_old)(), loader(), loader(seed=1))
        run = only_run(project)
        assert run.state == "finished" and run.config["lr"] == 0.1
        h = run.history()
        assert h["_step"].tolist() == list(range(8)) == h["trainer/global_step"].tolist()


DDP_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from tiny_lightning import Tiny, loader, trainer
from nbtracker.integrations.lightning import NbtrackerLogger

t = trainer(NbtrackerLogger(project="ddp"), devices=2, strategy="ddp")
t.fit(Tiny(), loader(n=64), loader(seed=1))
print("RANK", t.global_rank, "STEP", t.global_step, flush=True)
"""


@pytest.mark.slow
def test_ddp_on_cpu_logs_one_run_from_rank_zero(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(here=str(HERE))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]),
           "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                       timeout=240, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    ranks = sorted(line.split()[1] for line in p.stdout.splitlines() if line.startswith("RANK"))
    assert ranks == ["0", "1"]  # both processes trained
    assert [p.name for p in nbtracker.Api().projects()] == ["ddp"]
    run = only_run("ddp")  # and only rank 0 logged
    assert run.state == "finished" and run.config["lr"] == 0.1
    h = run.history()
    # 64 samples, batches of 8, split over 2 processes: 4 steps an epoch
    assert h["_step"].tolist() == list(range(8)) == h["trainer/global_step"].tolist()
    assert h["train/loss_step"].notna().all() and h["val/loss"].notna().sum() == 2


NOTEBOOK_CELLS = [
    "import sys\nsys.path[:0] = [{repo!r}, {here!r}]\n"
    "from tiny_lightning import Tiny, loader, trainer\n"
    "from nbtracker.integrations.lightning import NbtrackerLogger",
    # the logger starts the run: its live panel appears under the cell that trains
    "t = trainer(NbtrackerLogger(project='nb', name='started-by-logger'))\n"
    "t.fit(Tiny(), loader(), loader(seed=1))",
    # the run shown by %tracker init: the logger logs to it, its panel grows
    "%load_ext nbtracker\n%tracker init --project nb --name shown-first",
    "t = trainer(NbtrackerLogger())\nt.fit(Tiny(lr=0.2), loader(), loader(seed=1))",
    "%tracker finish",
]


@pytest.mark.slow
def test_in_a_notebook_the_live_panel_receives_the_trainers_metrics(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.format(repo=str(REPO), here=str(HERE))) for c in NOTEBOOK_CELLS]
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     store_widget_state=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells for o in c.outputs if o.get("output_type") == "error"]
    assert errors == []
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    panels = {m["state"]["info"]["name"]: m["state"] for m in state.values()
              if m["state"].get("_kind") == "live"}
    assert set(panels) == {"started-by-logger", "shown-first"}
    for run in nbtracker.Api().runs("nb"):
        panel = panels[run.name]
        assert panel["info"]["state"] == "finished" == run.state
        h = run.history()
        for key in ("train/loss_step", "val/loss", "train/loss_epoch", "epoch"):
            s = panel["snapshot"][key]
            xs, ys = s["c"][0] + s["t"][0], s["c"][1] + s["t"][1]
            stored = h[h[key].notna()]
            assert xs == stored["_step"].tolist(), key
            assert ys == pytest.approx(stored[key].tolist(), rel=1e-5), key  # the panel rounds
