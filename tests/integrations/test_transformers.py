"""NbtrackerCallback on real tiny Trainers (models built from configs, random token data): what
the Trainer reported (its `state.log_history`, its arguments, its model) is what the run holds,
read back through `nbtracker.Api()`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerState,
    TrainingArguments,
)

import nbtracker  # noqa: E402
from nbtracker.integrations.transformers import SUMMARY_KEYS, NbtrackerCallback, rewrite_logs  # noqa: E402

VOCAB = 32
INTERNAL = ("_step", "_runtime", "_timestamp")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: torch's threads only contend with each other (and with other processes)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Tokens(torch.utils.data.Dataset):
    """Random token sequences with a label: no tokenizer, no download."""

    def __init__(self, n: int, seed: int = 0, seq: int = 8, target_len: int | None = None):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(1, VOCAB, (n, seq), generator=g)
        self.y = (torch.randint(1, VOCAB, (n, target_len), generator=g) if target_len
                  else torch.randint(0, 2, (n,), generator=g))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.x[i], "labels": self.y[i]}


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16))


def arguments(tmp_path, cls=TrainingArguments, **kw) -> TrainingArguments:
    base = dict(output_dir=str(tmp_path / "out"), num_train_epochs=2,
                per_device_train_batch_size=4, per_device_eval_batch_size=4, logging_steps=1,
                eval_strategy="epoch", save_strategy="no", report_to="none", use_cpu=True,
                disable_tqdm=True, seed=0)
    base.update(kw)
    return cls(**base)


def trainer(tmp_path, callback, model=None, **kw) -> Trainer:
    return Trainer(model=model or tiny_bert(), args=arguments(tmp_path, **kw),
                   train_dataset=Tokens(16), eval_dataset=Tokens(8, seed=1),
                   callbacks=[callback])


def rows_of(run) -> list[dict]:
    api_run = nbtracker.Api().run(f"{run.project}/{run.id}")
    return [{k: v for k, v in r.items() if k not in INTERNAL} for r in api_run.scan_history()]


def expected_rows(log_history: list[dict]) -> list[dict]:
    """What wandb's callback logs for each Trainer log: its keys renamed, the summary-only
    values left out, the global step added."""
    out = []
    for entry in log_history:
        values = {k: v for k, v in entry.items() if k != "step" and k not in SUMMARY_KEYS}
        out.append({**rewrite_logs(values), "train/global_step": entry["step"]})
    return out


def test_every_trainer_log_is_a_row_at_its_global_step_with_config_and_summary(tmp_path):
    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, run_name="tiny")
    tr.train()
    run = cb.run
    assert run.state == "running"  # evaluate() and predict() after train() land in it
    tr.evaluate()
    predicted = tr.predict(Tokens(8, seed=2))
    nbtracker.finish()

    history = tr.state.log_history
    assert [e["step"] for e in history][-3:] == [8, 8, 8]  # epoch-end eval, train end, evaluate()
    expected = expected_rows(history)
    expected.append({**rewrite_logs(predicted.metrics), "train/global_step": 8})
    assert rows_of(run) == expected  # every value exactly, at the trainer's step, in order
    assert rows_of(run)[0].keys() == {"train/loss", "train/grad_norm", "train/learning_rate",
                                      "train/epoch", "train/global_step"}

    api_run = nbtracker.Api().run(run.path)
    assert (api_run.name, api_run.project, api_run.state) == ("tiny", "huggingface", "finished")
    final = next(e for e in history if "train_runtime" in e)
    assert {k: api_run.summary[k] for k in SUMMARY_KEYS} == {k: final[k] for k in SUMMARY_KEYS}
    assert api_run.summary["eval/loss"] == history[-1]["eval_loss"]
    cfg = api_run.config
    args = tr.args
    assert (cfg["learning_rate"], cfg["num_train_epochs"], cfg["run_name"], cfg["seed"]) == \
        (args.learning_rate, args.num_train_epochs, "tiny", 0)
    assert (cfg["hidden_size"], cfg["vocab_size"], cfg["model_type"]) == (16, VOCAB, "bert")
    assert cfg["model/num_parameters"] == tr.model.num_parameters()
    assert {d["name"]: d.get("step_metric") for d in api_run.metrics} == {
        "train/global_step": None, "train/*": "train/global_step",
        "eval/*": "train/global_step", "test/*": "train/global_step"}


def test_an_active_run_is_used_and_left_open(tmp_path):
    mine = nbtracker.init(project="mine", name="by hand", config={"note": "kept"})
    mine.log({"before": 1})
    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, num_train_epochs=1, eval_strategy="no")
    tr.train()
    assert cb.run is mine and mine.state == "running"
    mine.finish()
    api_run = nbtracker.Api().run(mine.path)
    assert api_run.config["note"] == "kept" and api_run.config["learning_rate"] == 5e-5
    rows = rows_of(mine)
    assert rows[0] == {"before": 1}
    assert rows[1:] == expected_rows(tr.state.log_history)
    assert len(nbtracker.Api().runs()) == 1


def test_evaluate_alone_starts_a_run_in_the_project_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRACKER_PROJECT", "hf-evals")
    cb = NbtrackerCallback(tags=["eval-only"])
    tr = trainer(tmp_path, cb)
    metrics = tr.evaluate()
    run = cb.run
    assert run.project == "hf-evals" and run.tags == ("eval-only",)
    nbtracker.finish()
    assert rows_of(run) == [{**rewrite_logs(metrics), "train/global_step": 0}]


def test_a_new_train_after_finish_is_a_new_run(tmp_path):
    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, num_train_epochs=1, eval_strategy="no")
    tr.train()
    first = cb.run
    nbtracker.finish()
    tr.train()
    assert cb.run is not first and cb.run.state == "running"
    nbtracker.finish()
    assert [r.state for r in nbtracker.Api().runs("huggingface")] == ["finished", "finished"]


def test_only_the_main_process_records(tmp_path):
    cb = NbtrackerCallback()
    args = arguments(tmp_path)
    state = TrainerState(is_world_process_zero=False, is_local_process_zero=False)
    cb.on_train_begin(args, state, None, model=tiny_bert())
    cb.on_log(args, state, None, logs={"loss": 1.0})
    cb.on_predict(args, state, None, metrics={"test_loss": 1.0})
    assert cb.run is None and nbtracker.run is None
    assert len(nbtracker.Api().runs()) == 0


def test_a_store_that_cannot_be_written_warns_once_and_training_finishes(tmp_path, monkeypatch,
                                                                         capfd):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store should be")
    monkeypatch.setenv("NBTRACKER_DIR", str(blocker))
    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb)
    tr.train()
    tr.evaluate()
    assert tr.state.global_step == 8 and "train_runtime" in tr.state.log_history[-2]
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("nbtracker:")]
    assert len(warnings) == 1, warnings
    assert "could not start a run" in warnings[0] and "training goes on" in warnings[0]


def test_a_config_that_cannot_be_read_warns_and_the_metrics_are_still_logged(tmp_path, capfd):
    model = tiny_bert()
    count = model.num_parameters

    def broken(*args, **kwargs):  # the Trainer's own calls pass arguments and still work
        if not args and not kwargs:
            raise RuntimeError("no count")
        return count(*args, **kwargs)

    model.num_parameters = broken
    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, model=model, num_train_epochs=1, eval_strategy="no")
    tr.train()
    run = cb.run
    nbtracker.finish()
    assert rows_of(run) == expected_rows(tr.state.log_history)
    assert nbtracker.Api().run(f"{run.project}/{run.id}").config["learning_rate"] == 5e-5
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "could not record the configuration" in warnings[0], warnings


def test_log_model_end_keeps_the_final_model_files(tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRACKER_LOG_MODEL", "end")
    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, num_train_epochs=1, eval_strategy="no")
    tr.train()
    run = cb.run
    nbtracker.finish()
    files = {f.name: f for f in nbtracker.Api().run(run.path).files()}
    assert {"model/config.json", "model/model.safetensors",
            "model/model_architecture.txt"} <= set(files)
    got = files["model/config.json"].download(root=str(tmp_path / "dl"))
    assert json.loads(got.read_text())["hidden_size"] == 16
    from safetensors.torch import load_file

    weights = load_file(str(files["model/model.safetensors"].download(root=str(tmp_path / "dl"))))
    for name, tensor in tr.model.state_dict().items():
        if name in weights:
            assert torch.equal(weights[name], tensor), name


def test_log_model_checkpoint_keeps_each_checkpoint_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRACKER_LOG_MODEL", "checkpoint")
    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, eval_strategy="no", save_strategy="epoch", save_total_limit=1)
    tr.train()
    run = cb.run
    nbtracker.finish()
    names = {f.name for f in nbtracker.Api().run(run.path).files()}
    for step in (4, 8):  # kept although save_total_limit removed the first folder from disk
        assert {f"checkpoint-{step}/model.safetensors",
                f"checkpoint-{step}/trainer_state.json"} <= names
    assert not (tmp_path / "out" / "checkpoint-4").exists()


def test_watch_all_logs_gradient_and_parameter_histograms(tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRACKER_WATCH", "all")
    cb = NbtrackerCallback()
    tr = Trainer(model=tiny_bert(), args=arguments(tmp_path, max_steps=100, logging_steps=100,
                                                    per_device_train_batch_size=1,
                                                    eval_strategy="no"),
                 train_dataset=Tokens(100, seq=4), callbacks=[cb])
    tr.train()  # 100 steps: watch's log_freq is max(100, logging_steps), as wandb's
    run = cb.run
    nbtracker.finish()
    keys = set(nbtracker.Api().run(run.path).history().columns)
    assert any(k.startswith("gradients/") for k in keys)
    assert any(k.startswith("parameters/") for k in keys)


@pytest.mark.slow
def test_hyperparameter_search_gives_one_run_per_trial_with_its_parameters(tmp_path):
    pytest.importorskip("optuna")
    suggested = []

    def hp_space(trial):
        params = {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
                  "per_device_train_batch_size": trial.suggest_categorical(
                      "per_device_train_batch_size", [2, 4])}
        suggested.append(params)
        return params

    cb = NbtrackerCallback()
    tr = Trainer(model_init=lambda: tiny_bert(), args=arguments(tmp_path, num_train_epochs=1),
                 train_dataset=Tokens(16), eval_dataset=Tokens(8, seed=1), callbacks=[cb])
    tr.hyperparameter_search(hp_space=hp_space, n_trials=2, direction="minimize",
                             backend="optuna")
    assert cb.run.state == "finished" and nbtracker.run is None  # a trial's run ends with it
    runs = sorted(nbtracker.Api().runs("huggingface"), key=lambda r: r.created)
    assert len(runs) == 2 and [r.state for r in runs] == ["finished", "finished"]
    for run, params in zip(runs, suggested):
        assert {k: run.config[k] for k in params} == params
        assert run.group == str(tmp_path / "out")
        assert run.summary["train_loss"] > 0 and "eval/loss" in run.summary.keys()
        steps = [r["train/global_step"] for r in rows_of(run) if "train/loss" in r]
        assert steps == list(range(1, len(steps) + 1))  # each trial from step 1 in its own run


def runs_by_creation(project: str | None = None) -> list:
    return sorted(nbtracker.Api().runs(project), key=lambda r: r.created)


def lr_space(trial) -> dict:
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)}


@pytest.mark.parametrize("eval_strategy", ["epoch", "no"])  # "no": evaluate() after train()
def test_a_search_leaves_the_users_run_current_and_each_trial_run_finished(tmp_path,
                                                                          eval_strategy):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    user = nbtracker.init(project="mine", config={"who": "user"})
    cb = NbtrackerCallback()
    tr = Trainer(model_init=lambda: tiny_bert(),
                 args=arguments(tmp_path, num_train_epochs=1, eval_strategy=eval_strategy),
                 train_dataset=Tokens(8), eval_dataset=Tokens(8, seed=1), callbacks=[cb])
    best = tr.hyperparameter_search(hp_space=lr_space, n_trials=2, direction="minimize",
                                    backend="optuna")
    assert nbtracker.run is user
    nbtracker.log({"after": 1})
    user.finish()
    assert rows_of(user) == [{"after": 1}] and nbtracker.Api().run(user.path).config == {
        "who": "user"}
    trials = runs_by_creation("huggingface")
    assert [r.state for r in trials] == ["finished", "finished"]
    for run in trials:  # each trial's evaluation (its objective) logged before its run ended
        assert [r["train/global_step"] for r in rows_of(run) if "eval/loss" in r] == [2]
    assert best.objective == min(r.summary["eval/loss"] for r in trials)


@pytest.mark.parametrize("multirun", [False, True])
def test_trainers_in_an_optuna_objective_train_into_runs_of_their_own(tmp_path, multirun):
    optuna = pytest.importorskip("optuna")
    from nbtracker.integrations.optuna import NbtrackerCallback as StudyCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    histories = []

    def objective(trial):
        tr = trainer(tmp_path, NbtrackerCallback(), num_train_epochs=1,
                     run_name=f"hf-{trial.number}",
                     learning_rate=trial.suggest_float("lr", 1e-4, 1e-2, log=True))
        tr.train()
        loss = tr.evaluate()["eval_loss"]
        histories.append(tr.state.log_history)
        return loss

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=2, callbacks=[StudyCallback(
        as_multirun=multirun, nbtracker_kwargs={"project": "study"})])
    while nbtracker.run is not None:
        nbtracker.finish()
    hf = runs_by_creation("huggingface")
    assert [r.name for r in hf] == ["hf-0", "hf-1"]
    for run, history, trial in zip(hf, histories, study.trials):
        assert run.config["learning_rate"] == trial.params["lr"]
        assert rows_of(run) == expected_rows(history)
    values = [r.get("value") for run in runs_by_creation("study") for r in run.scan_history()]
    assert values == [t.value for t in study.trials]


@pytest.mark.parametrize("whose", ["user", "callback"])
def test_a_run_finished_during_training_gets_nothing_more_from_it(tmp_path, whose, capfd):
    from transformers import TrainerCallback

    class FinishAtStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                nbtracker.finish()

    if whose == "user":
        nbtracker.init(project="mine")
    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, num_train_epochs=1)
    tr.add_callback(FinishAtStep2())
    tr.train()
    assert tr.state.global_step == 4 and nbtracker.run is None
    (run,) = nbtracker.Api().runs()
    assert (run.project, run.state) == ("mine" if whose == "user" else "huggingface", "finished")
    assert [r["train/global_step"] for r in run.scan_history()] == [1]
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "finished during training" in warnings[0]


@pytest.mark.parametrize("exc, state", [(RuntimeError("a bug"), "failed"),
                                        (KeyboardInterrupt(), "interrupted")])
def test_a_train_that_raised_is_finished_by_the_next_train(tmp_path, exc, state):
    from transformers import TrainerCallback

    class RaiseAtStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise exc

    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, num_train_epochs=1)
    tr.add_callback(RaiseAtStep2)
    try:
        tr.train()
    except type(exc):
        tr.remove_callback(RaiseAtStep2)
        if state == "interrupted":  # a train() started while Ctrl-C is handled knows of it
            tr.train()
    if state == "failed":
        tr.train()
    first, second = runs_by_creation()
    assert (first.state, second.state) == (state, "running")  # the second open for evaluate()
    assert cb.run.id == second.id
    assert [r["train/global_step"] for r in rows_of(first)] == [1]  # step 2 raised first
    assert rows_of(cb.run) == expected_rows(tr.state.log_history)


@pytest.mark.parametrize("users_run", [True, False])
def test_evaluate_after_a_train_that_raised_is_logged(tmp_path, users_run, capfd):
    from transformers import TrainerCallback

    class RaiseAtStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise RuntimeError("a bug")

    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, num_train_epochs=1)
    tr.add_callback(RaiseAtStep2)
    with pytest.raises(RuntimeError):
        tr.train()
    failed = cb.run
    if users_run:  # a run of the user's, which finishes the open one
        mine = nbtracker.init(project="mine", reinit="finish_previous")
    metrics = tr.evaluate()
    assert "warning" not in capfd.readouterr().err
    if users_run:
        assert cb.run is mine and failed.state == "finished"  # the user's init finished it
    else:
        assert failed.state == "failed" and cb.run is not failed and cb.run is nbtracker.run
    (row,) = rows_of(cb.run)
    assert row["eval/loss"] == metrics["eval_loss"] and row["train/global_step"] == 2


def test_a_keras_fit_after_a_train_logs_to_a_run_of_its_own(tmp_path, monkeypatch):
    if "keras" not in sys.modules:
        monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras was imported with another backend")
    from nbtracker.integrations.keras import NbtrackerMetricsLogger

    cb = NbtrackerCallback()
    tr = trainer(tmp_path, cb, num_train_epochs=1)
    tr.train()
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    m.compile("sgd", "mse")
    x = np.random.default_rng(0).random((16, 3)).astype("float32")
    hist = m.fit(x, x.sum(1), epochs=2, verbose=0, callbacks=[NbtrackerMetricsLogger()])
    assert nbtracker.run is cb.run and cb.run.state == "running"  # the Trainer's, again
    tr.evaluate()
    nbtracker.finish()
    hf, fit = runs_by_creation()
    assert hf.id == cb.run.id and fit.state == "finished"
    assert rows_of(cb.run) == expected_rows(tr.state.log_history)
    assert [r["epoch/loss"] for r in fit.scan_history()] == hist.history["loss"]


def test_seq2seq_trainer_is_recorded(tmp_path):
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=VOCAB, d_model=16, d_kv=8, d_ff=16, num_layers=1, num_decoder_layers=1,
        num_heads=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))
    cb = NbtrackerCallback()
    tr = Seq2SeqTrainer(model=model, args=arguments(tmp_path, Seq2SeqTrainingArguments,
                                                    num_train_epochs=1,
                                                    predict_with_generate=True,
                                                    generation_max_length=4),
                        train_dataset=Tokens(8, target_len=4),
                        eval_dataset=Tokens(4, seed=1, target_len=4), callbacks=[cb])
    tr.train()
    run = cb.run
    nbtracker.finish()
    assert rows_of(run) == expected_rows(tr.state.log_history)
    cfg = nbtracker.Api().run(run.path).config
    assert cfg["d_model"] == 16 and cfg["predict_with_generate"] is True


def test_importing_the_integrations_package_imports_no_framework():
    code = ("import sys, nbtracker, nbtracker.integrations\n"
            "print(sorted(m for m in ('transformers', 'accelerate', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ})
    assert out.stdout.strip() == "[]"


def test_without_transformers_the_import_error_names_the_extra():
    code = ("import sys; sys.modules['transformers'] = None\n"
            "try:\n    import nbtracker.integrations.transformers\n"
            "except ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'nbtracker[transformers]'" in out.stdout


NOTEBOOK_SETUP = '''
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from nbtracker.integrations.transformers import NbtrackerCallback

torch.set_num_threads(1)
torch.manual_seed(0)

class Tokens(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.x, self.y = torch.randint(1, 32, (n, 8), generator=g), torch.randint(0, 2, (n,), generator=g)
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.y[i]}

model = BertForSequenceClassification(BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1,
    num_attention_heads=2, intermediate_size=16, max_position_embeddings=16))
args = TrainingArguments(output_dir="out", run_name="in-a-notebook", num_train_epochs=2,
    per_device_train_batch_size=4, logging_steps=1, eval_strategy="epoch", save_strategy="no",
    report_to="none", use_cpu=True, disable_tqdm=True)
trainer = Trainer(model=model, args=args, train_dataset=Tokens(16, 0), eval_dataset=Tokens(8, 1),
                  callbacks=[NbtrackerCallback()])
'''


@pytest.mark.slow
def test_a_trainer_in_a_notebook_feeds_its_live_panel(tmp_path):
    pytest.importorskip("nbclient")
    import nbformat
    from test_notebooks import errors, execute, widget_models

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "%load_ext nbtracker", NOTEBOOK_SETUP, "trainer.train();", "trainer.evaluate();",
        "import nbtracker\nnbtracker.finish()")]
    path = tmp_path / "trainer.ipynb"
    nbformat.write(nb, path)
    nb = execute(path, tmp_path)
    assert errors(nb) == []

    live = [m["state"] for m in widget_models(nb).values() if m["state"].get("_kind") == "live"]
    assert len(live) == 1  # shown once, by the cell that trains
    panel = live[0]
    assert panel["info"]["name"] == "in-a-notebook" and panel["info"]["state"] == "finished"
    run = nbtracker.Api().runs("huggingface")[0]
    rows = [r for r in run.scan_history() if "train/loss" in r]
    snap = panel["snapshot"]["train/loss"]
    xs = snap["c"][0] + snap["t"][0]
    ys = snap["c"][1] + snap["t"][1]
    # drawn against the trainer's step, every point as logged (6 significant digits kept)
    assert panel["xlabels"]["train/loss"] == "train/global_step"
    assert xs == [r["train/global_step"] for r in rows] == list(range(1, 9))
    assert ys == pytest.approx([r["train/loss"] for r in rows], rel=1e-5)
    eval_snap = panel["snapshot"]["eval/loss"]
    assert sorted(set(eval_snap["c"][0] + eval_snap["t"][0])) == [4, 8]  # epochs; evaluate() at 8
    outputs = [o for o in nb.cells[2].outputs if o.get("output_type") == "display_data"]
    assert outputs, "the panel is shown under the cell that trains"
