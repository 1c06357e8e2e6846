"""wandb code as people write it (blog posts and FAQs), run with `import nbtracker as wandb`."""

from __future__ import annotations

import argparse
import json
import os
import random

import numpy as np
import pytest
from helpers import run_cli, run_python

import nbtracker as wandb


def stored(run):
    return wandb.Api().run(run.path)


# -- config ----------------------------------------------------------------------------------

def test_config_assigned_before_init():
    wandb.config = {"learning_rate": 0.001, "epochs": 5, "batch_size": 128}
    run = wandb.init(project="project-name")
    assert wandb.config["learning_rate"] == 0.001 and wandb.config.epochs == 5
    wandb.log({"loss": 0.5, "acc": 0.8})
    run.finish()
    assert stored(run).config == {"learning_rate": 0.001, "epochs": 5, "batch_size": 128}


def test_config_set_every_way_after_init():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="mlp")
    args = parser.parse_args(["--lr", "0.003", "--model", "cnn"])

    run = wandb.init(project="f-mnist")
    wandb.config = {"lr": 1e-3}
    wandb.config.update({"drop_rate": 0.5})
    wandb.config.update({"dataset": "ver1"})
    wandb.config.dropout = 0.2
    wandb.config.hidden_layer_size = 128
    cfg = {"learning_rate": 1e-3, "epochs": 5, "batch_size": 64}
    wandb.config.update(cfg)
    run.finish()
    # argparse values go in at init in the Chinese post; update(args) with a Namespace here
    run2 = wandb.init(project="f-mnist", reinit=True)
    wandb.config.update(args)
    run2.finish()

    assert stored(run).config == {"lr": 1e-3, "drop_rate": 0.5, "dataset": "ver1", "dropout": 0.2,
                                  "hidden_layer_size": 128, **cfg}
    assert stored(run2).config == vars(args) == {"lr": 0.003, "seed": 1, "model": "cnn"}
    ver1 = wandb.Api().runs("f-mnist", filters={"config.dataset": "ver1"})
    assert [r.id for r in ver1] == [run.id]


# -- names, notes, tags ----------------------------------------------------------------------

def test_run_name_set_then_saved():
    wandb.init()
    run_name = wandb.run.name
    assert isinstance(run_name, str) and run_name
    run = wandb.run
    wandb.run.name = "원하는 이름"
    wandb.run.save()
    assert wandb.run.name == "원하는 이름"
    wandb.finish()
    assert stored(run).name == "원하는 이름"
    assert run.id in run_cli("show", "원하는 이름").stdout


def test_generated_names_carry_a_sequence_number_and_given_names_do_not():
    names = []
    for _ in range(3):
        run = wandb.init(project="seq", reinit=True)
        names.append(run.name)
        run.finish()
    given = wandb.init(project="seq", name="snowy-owl")
    given.finish()
    assert [n.rsplit("-", 1)[1] for n in names] == ["1", "2", "3"]
    assert given.name == "snowy-owl" and stored(given).name == "snowy-owl"


def test_notes_and_tags():
    run = wandb.init(project="mnist", notes="baseline", tags=["custom loss", "custom optimizer"])
    wandb.log({"loss": 1.0})
    wandb.finish()
    r = stored(run)
    assert r.notes == "baseline" and r.tags == ["custom loss", "custom optimizer"]
    tagged = wandb.Api().runs("mnist", filters={"tags": {"$in": ["custom loss"]}})
    assert [x.id for x in tagged] == [run.id]


# -- log -------------------------------------------------------------------------------------

def test_log_with_step_per_epoch():
    run = wandb.init(project="f-mnist")
    train, test = [], []
    for epoch in range(5):
        train_loss = 2.0 / (epoch + 1)
        wandb.log({"train_loss": train_loss}, step=epoch)  # train(...)
        test_loss, correct = 1.5 / (epoch + 1), 0.5 + epoch / 10
        wandb.log({"test_loss": test_loss, "test_acc": correct}, step=epoch)  # test(...)
        train.append(train_loss)
        test.append((test_loss, correct))
    wandb.finish()
    df = stored(run).history()
    assert df["_step"].tolist() == list(range(5))  # one row per epoch
    assert df["train_loss"].tolist() == train
    assert df[["test_loss", "test_acc"]].values.tolist() == [list(t) for t in test]


def test_log_epoch_as_a_value():
    run = wandb.init(project="f-mnist")
    losses = [0.9 - 0.1 * e for e in range(6)]
    for epoch, loss in enumerate(losses):
        wandb.log({"train_loss": loss, "epoch": epoch})
    wandb.finish()
    df = stored(run).history()
    assert df["epoch"].tolist() == list(range(6)) and df["train_loss"].tolist() == losses
    assert stored(run).summary["epoch"] == 5


def test_log_epoch_and_loss_loop():
    def my_train_loop():
        for epoch in range(10):
            loss = 0  # change as appropriate :)
            wandb.log({"epoch": epoch, "loss": loss})

    run = wandb.init(project="my-project")
    my_train_loop()
    wandb.finish()
    df = stored(run).history()
    assert len(df) == 10 and df["epoch"].tolist() == list(range(10))
    assert (df["loss"] == 0).all()


def test_two_time_scales():
    run = wandb.init(project="scales")
    wandb.log({"train_accuracy": 0.9, "batch": 200})
    wandb.log({"val_acuracy": 0.8, "epoch": 4})
    wandb.log({"final_accuracy": 0.9})
    wandb.finish()
    r = stored(run)
    rows = r.history(pandas=False)
    assert len(rows) == 3
    assert (rows[0]["train_accuracy"], rows[0]["batch"]) == (0.9, 200)
    assert (rows[1]["val_acuracy"], rows[1]["epoch"]) == (0.8, 4)
    assert "val_acuracy" not in rows[0] and "batch" not in rows[1]  # as wandb's rows
    val = r.history(keys=["val_acuracy", "epoch"])
    assert val[["val_acuracy", "epoch"]].values.tolist() == [[0.8, 4]]
    train = r.history(keys=["train_accuracy", "batch"])
    assert train[["train_accuracy", "batch"]].values.tolist() == [[0.9, 200]]
    assert r.summary["final_accuracy"] == 0.9 and r.summary["batch"] == 200


def test_log_media():
    inputs = np.random.default_rng(1).random((8, 8, 3))
    outputs = np.random.default_rng(2).normal(size=(16, 10))
    captions = "<p>x</p>"
    run = wandb.init(project="media")
    wandb.log({"loss": 0.314, "epoch": 5,
               "inputs": wandb.Image(inputs),
               "logits": wandb.Histogram(outputs),
               "captions": wandb.Html(captions)})
    wandb.finish()
    r = stored(run)
    row = r.history(pandas=False)[0]
    assert row["loss"] == 0.314 and row["epoch"] == 5
    png = r.media_path(row["inputs"]).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and row["inputs"]["width"] == 8
    assert sum(row["logits"]["values"]) == outputs.size
    assert row["logits"]["bins"][0] == pytest.approx(outputs.min())
    assert row["logits"]["bins"][-1] == pytest.approx(outputs.max())
    assert r.media_path(row["captions"]).read_text(encoding="utf-8") == captions


# -- summary ---------------------------------------------------------------------------------

def test_summary_set_by_hand_wins_over_logged_values():
    run = wandb.init(project="f-mnist")
    accuracies = [0.5, 0.9, 0.7, 0.6]
    best_accuracy = 0
    for epoch, acc in enumerate(accuracies):
        wandb.log({"accuracy": acc}, step=epoch)
        if acc > best_accuracy:
            best_accuracy = acc
            wandb.run.summary["best_accuracy"] = best_accuracy
            wandb.run.summary["accuracy"] = best_accuracy
    wandb.finish()
    r = stored(run)
    assert r.summary["best_accuracy"] == max(accuracies)
    assert r.summary["accuracy"] == max(accuracies) != accuracies[-1]
    assert r.history()["accuracy"].tolist() == accuracies
    assert wandb.Api().runs("f-mnist").to_pandas()["summary.best_accuracy"].tolist() == [0.9]


def test_define_metric_min_and_max():
    random.seed(7)
    run = wandb.init()
    wandb.define_metric("loss", summary="min")
    wandb.define_metric("acc", summary="max")
    logged = []
    for i in range(10):
        log_dict = {
            "loss": random.uniform(0, 1 / (i + 1)),
            "acc": random.uniform(1 / (i + 1), 1),
        }
        wandb.log(log_dict)
        logged.append(log_dict)
    assert wandb.run.summary["loss"] == min(d["loss"] for d in logged)
    wandb.finish()
    r = stored(run)
    assert r.summary["loss"] == min(d["loss"] for d in logged)
    assert r.summary["acc"] == max(d["acc"] for d in logged)
    assert r.history()["loss"].tolist() == [d["loss"] for d in logged]


# -- the Api ---------------------------------------------------------------------------------

def test_api_config_edit_after_upload():
    run = wandb.init(project="project", config={"foo": 1, "bar": "x"})
    wandb.log({"loss": 0.1})
    wandb.finish()

    api = wandb.Api()
    r = api.run(f"username/project/{run.id}")
    r.config["foo"] = 32
    r.summary["eval_accuracy"] = 0.75  # an evaluation added after the run
    r.update()

    again = wandb.Api().run(f"username/project/{run.id}")
    assert again.config == {"foo": 32, "bar": "x"}
    assert again.summary["eval_accuracy"] == 0.75 and again.summary["loss"] == 0.1


# -- init as in the Chinese posts ------------------------------------------------------------

def make_args(**over):
    args = argparse.Namespace(env_name="MPE", algorithm_name="rmappo", scenario_name="simple_spread",
                              seed=1, lr=0.0007, num_agents=3)
    for k, v in over.items():
        setattr(args, k, v)
    return args


def test_init_with_every_argument(tmp_path):
    args = make_args()
    seed = args.seed
    model_dir = tmp_path / "results" / "models"
    run = wandb.init(config=args,
                     project=args.env_name,
                     name=str(args.algorithm_name) + "_seed" + str(seed),
                     group=args.scenario_name,
                     dir=str(model_dir),
                     job_type="training",
                     reinit=True)
    steps = []
    for episode in range(5):
        total_num_steps = (episode + 1) * 400
        value_loss = 1.0 / (episode + 1)
        wandb.log({"value_loss": value_loss}, step=total_num_steps)
        steps.append(total_num_steps)
    run.finish()

    assert os.path.realpath(run.storage_dir).startswith(os.path.realpath(model_dir / "nbtracker"))
    for api in (wandb.Api(), wandb.Api(dir=str(model_dir))):
        r = api.run(f"MPE/{run.id}")
        assert (r.name, r.group, r.job_type, r.state) == (
            "rmappo_seed1", "simple_spread", "training", "finished")
        assert r.config == vars(args)
        df = r.history()
        assert df["_step"].tolist() == steps
        assert df["value_loss"].tolist() == [1.0 / (e + 1) for e in range(5)]
    grouped = wandb.Api().runs("MPE", filters={"group": "simple_spread"})
    assert [x.id for x in grouped] == [run.id]


def test_reinit_finishes_the_previous_run(tmp_path):
    runs = []
    for seed in (1, 2):
        args = make_args(seed=seed)
        run = wandb.init(config=args, project=args.env_name,
                         name=str(args.algorithm_name) + "_seed" + str(seed),
                         group=args.scenario_name, job_type="training", reinit=True)
        wandb.log({"value_loss": 0.5 / seed})
        runs.append(run)
    first, second = runs
    assert first.state == "finished" and second.state == "running"
    assert wandb.run is second
    assert stored(first).state == "finished"
    second.finish()
    got = {r.name: (r.state, r.config["seed"]) for r in wandb.Api().runs("MPE")}
    assert got == {"rmappo_seed1": ("finished", 1), "rmappo_seed2": ("finished", 2)}


def test_resume_in_a_second_process():
    silent = {"NBTRACKER_SILENT": "1"}
    run_python("""
        import nbtracker as wandb
        wandb.init(project="resume", resume=True, id="UNIQUE_ID", config={"lr": 0.1})
        for loss in (0.9, 0.7, 0.5):
            wandb.log({"loss": loss})
        wandb.run.summary["best"] = 0.5
    """, env=silent)  # no finish(): the run is finished when the script ends
    first = wandb.Api().run("resume/UNIQUE_ID")
    assert first.state == "finished" and len(first.history()) == 3

    p = run_python("""
        import json
        import nbtracker as wandb
        run = wandb.init(project="resume", resume=True, id="UNIQUE_ID")
        print(json.dumps({"resumed": run.resumed, "step": run.step,
                          "config": dict(wandb.config.items()),
                          "summary": dict(wandb.summary.items())}))
        for loss in (0.4, 0.3):
            wandb.log({"loss": loss, "extra": 1})
        wandb.summary["final_accuracy"] = 0.9
        wandb.finish()
    """, env=silent)
    seen = json.loads(p.stdout)
    assert seen["resumed"] is True and seen["step"] == 3
    assert seen["config"] == {"lr": 0.1} and seen["summary"] == {"loss": 0.5, "best": 0.5}

    r = wandb.Api().run("resume/UNIQUE_ID")
    df = r.history()
    assert df["_step"].tolist() == [0, 1, 2, 3, 4]
    assert df["loss"].tolist() == [0.9, 0.7, 0.5, 0.4, 0.3]
    assert r.config == {"lr": 0.1} and r.state == "finished"
    assert r.summary["best"] == 0.5 and r.summary["loss"] == 0.3
    assert r.summary["final_accuracy"] == 0.9
    assert [x.id for x in wandb.Api().runs("resume")] == ["UNIQUE_ID"]


def test_quickstart_script_run_three_times():
    script = """
        import random
        import wandb

        wandb.login()

        epochs = 10
        lr = 0.01

        run = wandb.init(
            project="my-awesome-project",
            config={
                "learning_rate": lr,
                "epochs": epochs,
            })

        offset = random.random() / 5
        print(f"lr: {lr}")

        for epoch in range(2, epochs):
            acc = 1 - 2 ** -epoch - random.random() / epoch - offset
            loss = 2 ** -epoch + random.random() / epoch + offset
            print(f"epoch={epoch}, accuracy={acc}, loss={loss}")
            wandb.log({"accuracy": acc, "loss": loss})
    """.replace("import wandb", "import nbtracker as wandb")
    printed = [run_python(script).stdout for _ in range(3)]
    runs = wandb.Api().runs("my-awesome-project")
    assert len(runs) == 3 and {r.state for r in runs} == {"finished"}
    assert len({r.name for r in runs}) == 3
    for r, out in zip(runs, reversed(printed)):  # newest first
        assert r.config == {"learning_rate": 0.01, "epochs": 10}
        df = r.history()
        assert len(df) == 8
        last = [ln for ln in out.splitlines() if ln.startswith("epoch=9,")][0]
        assert f"loss={r.summary['loss']!r}" in last
        assert f"accuracy={float(df['accuracy'].iloc[-1])!r}" in last


# -- modes and output ------------------------------------------------------------------------

def test_wandb_mode_dryrun_means_offline(monkeypatch):
    run_cli("online")  # a persisted default the environment overrides
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    run = wandb.init(project="modes")
    assert run.mode == "offline" and run.offline
    run.finish()
    monkeypatch.delenv("WANDB_MODE")
    run = wandb.init(project="modes")
    assert run.mode == "online"
    run.finish()


INIT_LOG_FINISH = """
    import nbtracker as wandb
    run = wandb.init(project="quiet", config={"lr": 0.1})
    for i in range(5):
        wandb.log({"loss": 1 / (i + 1)})
    wandb.finish()
"""


def test_wandb_silent():
    loud = run_python(INIT_LOG_FINISH)
    assert loud.stdout + loud.stderr != ""  # something to silence
    quiet = run_python(INIT_LOG_FINISH, env={"WANDB_SILENT": "true"})
    assert (quiet.stdout, quiet.stderr) == ("", "")
    in_script = run_python('import os\nos.environ["WANDB_SILENT"] = "true"\n'
                           + INIT_LOG_FINISH.replace("\n    ", "\n"))
    assert (in_script.stdout, in_script.stderr) == ("", "")
    runs = wandb.Api().runs("quiet")
    assert len(runs) == 3 and all(len(r.history()) == 5 for r in runs)


def test_watch_is_accepted_with_a_warning():
    p = run_python("""
        import nbtracker as wandb

        class Model:
            def parameters(self):
                return []

        run = wandb.init(project="watch")
        model = Model()
        wandb.watch(model)
        wandb.watch(model, log="all", log_freq=10)
        wandb.log({"loss": 0.5})
        wandb.finish()
    """)
    warnings = [ln for ln in p.stderr.splitlines() if "watch()" in ln]
    assert len(warnings) == 1 and "warning" in warnings[0]
    assert "Traceback" not in p.stderr
    (r,) = wandb.Api().runs("watch")
    assert r.state == "finished" and r.history()["loss"].tolist() == [0.5]


def test_login_without_a_server(store):
    assert wandb.login() is True
    assert not (store / "settings.json").exists()
    run = wandb.init(project="my-project")
    assert run.mode == "offline"
    run.finish()


# -- files and alerts ------------------------------------------------------------------------

def test_save_model_file(tmp_path):
    run = wandb.init(project="my-project")
    (tmp_path / "mymodel.h5").write_bytes(b"\x89HDF\r\n\x1a\nweights")
    wandb.save("mymodel.h5")
    wandb.finish()
    (f,) = stored(run).files()
    assert f.name == "mymodel.h5" and f.path.read_bytes() == b"\x89HDF\r\n\x1a\nweights"


def test_alert_on_low_accuracy():
    run = wandb.init(project="my-project")
    acc_threshold = 0.3
    for training_step, accuracy in enumerate([0.5, 0.25, 0.4]):
        wandb.log({"accuracy": accuracy})
        if accuracy <= acc_threshold:
            wandb.alert(
                title="Low Accuracy",
                text=f"Accuracy {accuracy} at step {training_step} is below the acceptable "
                     f"theshold, {acc_threshold}",
            )
    wandb.alert(title="제목", text="내용")
    wandb.finish()
    alerts = stored(run).alerts
    assert [(a["title"], a["text"]) for a in alerts] == [
        ("Low Accuracy", "Accuracy 0.25 at step 1 is below the acceptable theshold, 0.3"),
        ("제목", "내용")]
