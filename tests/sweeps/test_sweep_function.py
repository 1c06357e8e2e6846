"""The sweep agent in function mode, as a wandb user drives it: `import nbtracker as wandb`,
`wandb.sweep(config)`, `wandb.agent(sweep_id, train, count=N)`, `train()` calling `wandb.init()`.
Each trial is a run of its own, read back through `Api().runs(project, filters={"sweep": id})`
and the sweep's trial table (`Sweep.views()`): its config, summary, state and outcome."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("optuna")

import nbtracker  # noqa: E402
import nbtracker as wandb  # noqa: E402
from nbtracker.errors import TrialPruned  # noqa: E402
from nbtracker.sweeps.engine import open_sweep  # noqa: E402

PROJECT = "sweepy"


def sweep_runs(sweep_id: str) -> dict:
    """{run id: Api run} of the sweep's runs."""
    return {r.id: r for r in nbtracker.Api().runs(PROJECT, filters={"sweep": sweep_id})}


def views(sweep_id: str) -> list:
    return open_sweep(sweep_id).views()


def grid(values, **extra) -> dict:
    return {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"x": {"values": list(values)}}, **extra}


# -- wandb's examples ----------------------------------------------------------------------------
DOCS_CONFIG = {
    "method": "random",
    "metric": {"name": "val_loss", "goal": "minimize"},
    "parameters": {
        "optimizer": {"values": ["adam", "sgd"]},
        "fc_layer_size": {"values": [128, 256, 512]},
        "dropout": {"values": [0.3, 0.4, 0.5]},
        "epochs": {"value": 3},
        "learning_rate": {"distribution": "uniform", "min": 0, "max": 0.1},
        "batch_size": {"distribution": "q_log_uniform_values", "q": 8, "min": 32, "max": 256},
        "opt": {"parameters": {"momentum": {"min": 0.5, "max": 0.99},
                               "nesterov": {"values": [True, False]}}},
    },
}


def test_wandb_docs_example_runs_unchanged():
    """wandb's "Define a sweep" / "Tune hyperparameters" walkthrough, with the import changed."""
    sweep_id = wandb.sweep(DOCS_CONFIG, project=PROJECT)

    def train(config=None):
        with wandb.init(config=config):
            config = wandb.config
            for epoch in range(config.epochs):
                loss = config.learning_rate * (epoch + 1) + config.dropout + config.opt["momentum"]
                wandb.log({"val_loss": loss, "epoch": epoch})

    assert wandb.agent(sweep_id, train, count=5) == 5

    runs = sweep_runs(sweep_id)
    table = views(sweep_id)
    assert len(runs) == 5 and len(table) == 5
    for v in table:
        assert v.state == "finished"
        run = runs[v.run_id]
        assert run.state == "finished" and run.sweep_id == sweep_id
        config = dict(run.config)
        # the trial's values, nested parameters nested, as the run's config
        assert config["opt"] == {"momentum": v.params["opt.momentum"],
                                 "nesterov": v.params["opt.nesterov"]}
        for name in ("optimizer", "fc_layer_size", "dropout", "epochs", "learning_rate", "batch_size"):
            assert config[name] == v.params[name]
        assert config["epochs"] == 3 and config["batch_size"] % 8 == 0
        assert 0.5 <= config["opt"]["momentum"] <= 0.99
        # the metric in the summary, and the sweep's value is that summary value
        want = config["learning_rate"] * 3 + config["dropout"] + config["opt"]["momentum"]
        assert run.summary["val_loss"] == pytest.approx(want)
        assert v.value == pytest.approx(want)
    assert len({v.params["learning_rate"] for v in table}) == 5  # each trial its own values


def test_init_then_module_config_and_no_finish():
    """train() calls wandb.init() and reads wandb.config.lr; it never finishes its run."""
    sweep_id = wandb.sweep({"method": "grid", "metric": {"name": "loss"},
                            "parameters": {"lr": {"values": [0.1, 0.2, 0.3]}}}, project=PROJECT)
    seen = []

    def train():
        run = wandb.init()
        seen.append((run.sweep_id, wandb.config.lr))
        wandb.log({"loss": wandb.config.lr * 2})

    assert wandb.agent(sweep_id, function=train) == 3
    assert seen == [(sweep_id, 0.1), (sweep_id, 0.2), (sweep_id, 0.3)]
    runs = sweep_runs(sweep_id)
    assert sorted((r.config["lr"], r.summary["loss"], r.state) for r in runs.values()) == [
        (0.1, 0.2, "finished"), (0.2, 0.4, "finished"), (0.3, 0.6, "finished")]
    assert wandb.run is None  # the agent finished what train() left open
    assert open_sweep(sweep_id).state == "finished"


def test_train_that_finishes_its_own_run():
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)

    def train():
        run = wandb.init(config={"fixed": "yes"})
        run.log({"loss": run.config.x / 10})
        run.finish()

    assert wandb.agent(sweep_id, train) == 2
    runs = sweep_runs(sweep_id)
    assert sorted((r.config["x"], r.config["fixed"], r.state) for r in runs.values()) == [
        (1, "yes", "finished"), (2, "yes", "finished")]
    assert [(v.state, v.value) for v in views(sweep_id)] == [("finished", 0.1), ("finished", 0.2)]


def test_each_trial_gets_a_clean_config():
    sweep_id = wandb.sweep(grid([1, 2, 3]), project=PROJECT)
    configs = []

    def train():
        with wandb.init() as run:
            configs.append(dict(run.config))
            if run.config.x == 1:
                run.config.update({"extra": 1})
                wandb.config.more = "m"
            if run.config.x == 2:
                run.config.update({"x": 99}, allow_val_change=True)  # a sweep's value is locked
            run.log({"loss": 1.0})

    assert wandb.agent(sweep_id, train) == 3
    assert configs == [{"x": 1}, {"x": 2}, {"x": 3}]
    by_x = {v.params["x"]: dict(sweep_runs(sweep_id)[v.run_id].config) for v in views(sweep_id)}
    assert by_x == {1: {"x": 1, "extra": 1, "more": "m"}, 2: {"x": 2}, 3: {"x": 3}}


def test_config_set_before_init_in_one_trial_does_not_reach_the_next():
    """`wandb.config.k = v` before init() belongs to the next run only."""
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)
    configs = []

    def train():
        if not configs:
            wandb.config.before = 1
        run = wandb.init()
        configs.append(dict(run.config))
        run.log({"loss": 1.0})

    wandb.agent(sweep_id, train)
    assert configs == [{"before": 1, "x": 1}, {"x": 2}]


def test_the_trials_values_win_over_what_train_passes():
    sweep_id = wandb.sweep(grid([5]), project=PROJECT)

    def train():
        with wandb.init(config={"x": 0, "y": 1}) as run:
            run.log({"loss": run.config.x + run.config.y})

    wandb.agent(sweep_id, train)
    (run,) = sweep_runs(sweep_id).values()
    assert dict(run.config) == {"x": 5, "y": 1} and run.summary["loss"] == 6


# -- failures ------------------------------------------------------------------------------------
def test_exception_fails_the_trial_and_the_agent_goes_on(capsys):
    sweep_id = wandb.sweep(grid([1, 2, 3]), project=PROJECT)

    def train():
        with wandb.init() as run:
            run.log({"loss": run.config.x})
            if run.config.x == 2:
                raise ValueError("x=2 diverged")

    assert wandb.agent(sweep_id, train) == 3
    table = views(sweep_id)
    runs = sweep_runs(sweep_id)
    assert [v.state for v in table] == ["finished", "failed", "finished"]
    assert table[1].exit == "ValueError: x=2 diverged" and table[1].value is None
    assert [runs[v.run_id].state for v in table] == ["finished", "failed", "finished"]
    assert "x=2 diverged" in capsys.readouterr().err  # the traceback is shown


def test_exception_with_the_run_left_open_fails_its_run():
    sweep_id = wandb.sweep(grid([1]), project=PROJECT)

    def train():
        wandb.init()
        wandb.log({"loss": 1.0})
        raise RuntimeError("boom")

    wandb.agent(sweep_id, train)
    (v,) = views(sweep_id)
    assert (v.state, v.exit) == ("failed", "RuntimeError: boom")
    assert sweep_runs(sweep_id)[v.run_id].state == "failed"
    assert wandb.run is None


def test_five_failures_in_a_row_stop_the_agent(capsys):
    sweep_id = wandb.sweep({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}},
                           project=PROJECT)

    def train():
        wandb.init()
        raise ZeroDivisionError("always")

    assert wandb.agent(sweep_id, train, count=20) == 5
    assert [v.state for v in views(sweep_id)] == ["failed"] * 5
    assert "5 trials in a row failed" in capsys.readouterr().err


def test_a_success_resets_the_failure_count():
    sweep_id = wandb.sweep(grid(range(12)), project=PROJECT)

    def train():
        with wandb.init() as run:
            run.log({"loss": 1.0})
            if run.config.x % 5 != 4:  # 4 failures, 1 success, ...
                raise ValueError("no")

    assert wandb.agent(sweep_id, train) == 12


def test_train_that_never_calls_init_fails_with_a_clear_message():
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)
    assert wandb.agent(sweep_id, lambda: None) == 2
    table = views(sweep_id)
    assert [v.state for v in table] == ["failed", "failed"]
    assert all("did not call nbtracker.init()" in v.exit for v in table)
    assert sweep_runs(sweep_id) == {}


def test_keyboard_interrupt_ends_the_trial_and_returns():
    sweep_id = wandb.sweep(grid([1, 2, 3]), project=PROJECT)

    def train():
        with wandb.init() as run:
            run.log({"loss": 1.0})
            if run.config.x == 2:
                raise KeyboardInterrupt

    assert wandb.agent(sweep_id, train) == 2  # returns, does not raise
    table = views(sweep_id)
    runs = sweep_runs(sweep_id)
    assert [(v.params["x"], v.state) for v in table] == [(1, "finished"), (2, "interrupted"),
                                                          (3, "queued"), (2, "queued")]
    assert runs[table[1].run_id].state == "interrupted"
    assert open_sweep(sweep_id).state == "running"

    # the next agent runs the rest, the interrupted point included, and nothing twice
    done = []

    def train2():
        with wandb.init() as run:
            done.append(run.config.x)
            run.log({"loss": 1.0})

    assert wandb.agent(sweep_id, train2) == 2
    assert sorted(done) == [2, 3]
    finished = sorted(v.params["x"] for v in views(sweep_id) if v.state == "finished")
    assert finished == [1, 2, 3]
    assert open_sweep(sweep_id).state == "finished"


def test_keyboard_interrupt_with_the_run_left_open():
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)

    def train():
        wandb.init()
        raise KeyboardInterrupt

    assert wandb.agent(sweep_id, train) == 1
    (v, *_) = views(sweep_id)
    assert (v.state, v.exit) == ("interrupted", "Ctrl-C")
    assert sweep_runs(sweep_id)[v.run_id].state == "interrupted"
    assert wandb.run is None


# -- hyperband -----------------------------------------------------------------------------------
EPOCHS = 9
HYPERBAND = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
             "parameters": {"quality": {"values": [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.95, 0.05]}},
             "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 2}}


def curve(quality: float, epoch: int) -> float:
    """A loss curve: good trials (high quality) are low from the start and keep falling."""
    return (1.0 - quality) * 10.0 / (epoch + 1)


def test_hyperband_stops_the_bad_trials():
    sweep_id = wandb.sweep(HYPERBAND, project=PROJECT)
    flags = {}

    def train():
        with wandb.init() as run:
            q = run.config.quality
            for epoch in range(EPOCHS):
                wandb.log({"loss": curve(q, epoch)})  # never raises
                if run.pruned:
                    break
            flags[q] = (run.pruned, epoch + 1)

    assert wandb.agent(sweep_id, train) == 8
    table = {v.params["quality"]: v for v in views(sweep_id)}
    runs = sweep_runs(sweep_id)
    pruned = {q for q, v in table.items() if v.state == "pruned"}
    finished = {q for q, v in table.items() if v.state == "finished"}
    assert pruned and finished and pruned | finished == set(table)
    # the bad ones are the pruned ones: every pruned trial is worse than the best finished ones
    assert max(finished) > max(pruned) and min(pruned) < 0.5
    assert 0.95 in finished and 0.9 in finished and 0.05 in pruned
    for q, v in table.items():
        run = runs[v.run_id]
        assert run.state == v.state
        assert flags[q][0] == (q in pruned)
        if q in pruned:
            assert flags[q][1] < EPOCHS and "hyperband" in v.exit
            assert run.summary["loss"] == pytest.approx(curve(q, flags[q][1] - 1))
            assert v.value == pytest.approx(run.summary["loss"])
        else:
            assert flags[q][1] == EPOCHS


def test_hyperband_on_prune_raise():
    sweep_id = wandb.sweep(HYPERBAND, project=PROJECT)
    raised, went_on = [], []

    def train():
        with wandb.init() as run:
            try:
                for epoch in range(EPOCHS):
                    wandb.log({"loss": curve(run.config.quality, epoch)})
            except TrialPruned:
                raised.append(run.config.quality)
                raise
            went_on.append(run.config.quality)

    assert wandb.agent(sweep_id, train, on_prune="raise") == 8
    table = {v.params["quality"]: v for v in views(sweep_id)}
    pruned = {q for q, v in table.items() if v.state == "pruned"}
    assert pruned and set(raised) == pruned and set(went_on) == set(table) - pruned
    runs = sweep_runs(sweep_id)
    assert all(runs[v.run_id].state == v.state for v in table.values())


def test_a_trial_that_keeps_logging_after_being_pruned_still_ends_pruned():
    sweep_id = wandb.sweep(HYPERBAND, project=PROJECT)

    def train():
        with wandb.init() as run:
            for epoch in range(EPOCHS):
                run.log({"loss": curve(run.config.quality, epoch)})  # ignores run.pruned

    assert wandb.agent(sweep_id, train) == 8
    table = views(sweep_id)
    runs = sweep_runs(sweep_id)
    assert "pruned" in {v.state for v in table}
    for v in table:
        assert runs[v.run_id].state == v.state
        assert len(list(runs[v.run_id].scan_history(keys=["loss"]))) == EPOCHS  # every epoch logged


def test_agent_can_be_called_again_and_after_its_module_is_imported():
    """`wandb.agent` stays the function: importing the module of the same name (`sweeps/agent.py`,
    which a first call does) must not replace it."""
    code = ("import nbtracker as wandb; from nbtracker.sweeps.agent import Agent;"
            "print(callable(wandb.agent), callable(wandb.sweep), callable(Agent))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"]

    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)
    assert wandb.agent(sweep_id, lambda: wandb.init().log({"loss": 1.0}), count=1) == 1
    assert wandb.agent(sweep_id, lambda: wandb.init().log({"loss": 1.0}), count=1) == 1



def test_init_twice_in_train_returns_the_trials_run():
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)
    same = []

    def train():
        first = wandb.init()
        second = wandb.init()  # one warning; the trial's run
        same.append(first is second)
        second.log({"loss": second.config.x})

    assert wandb.agent(sweep_id, train) == 2
    assert same == [True, True]
    assert [(v.state, v.value) for v in views(sweep_id)] == [("finished", 1), ("finished", 2)]
    assert len(nbtracker.Api().runs(PROJECT)) == 2

# -- runs train() starts besides its trial's run ---------------------------------------------------
@pytest.mark.parametrize("reinit", [True, "create_new"])
def test_runs_train_starts_and_leaves_open_do_not_leak_into_the_next_trial(reinit):
    sweep_id = wandb.sweep(grid([1, 2, 3]), project=PROJECT)

    def train():
        run = wandb.init()
        run.log({"loss": run.config.x})
        extra = wandb.init(project=PROJECT, reinit=reinit, config={"eval": True})
        extra.log({"acc": 1.0})

    assert wandb.agent(sweep_id, train) == 3
    assert [v.state for v in views(sweep_id)] == ["finished"] * 3
    assert [v.value for v in views(sweep_id)] == [1, 2, 3]
    assert wandb.run is None
    others = [r for r in nbtracker.Api().runs(PROJECT) if r.sweep_id is None]
    assert len(others) == 3 and all(r.state == "finished" and r.config["eval"] for r in others)


def test_a_run_active_before_the_agent_stays_and_each_trial_gets_its_own():
    outer = wandb.init(project=PROJECT, name="outer")
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)

    def train():
        with wandb.init() as run:
            assert run is not outer
            wandb.log({"loss": wandb.config.x})

    assert wandb.agent(sweep_id, train) == 2
    assert [(v.state, v.value) for v in views(sweep_id)] == [("finished", 1), ("finished", 2)]
    assert wandb.run is outer and outer.state == "running" and "x" not in outer.config
    outer.log({"after": 1})
    outer.finish()
    assert nbtracker.Api().run(f"{PROJECT}/{outer.id}").summary["after"] == 1


def test_disabled_mode_trials_get_their_values_and_leave_nothing_open():
    sweep_id = wandb.sweep(grid([1, 2, 3]), project=PROJECT)
    seen = []

    def train():
        run = wandb.init(mode="disabled")
        seen.append((run.config.x, run.sweep_id))
        wandb.log({"loss": run.config.x})

    assert wandb.agent(sweep_id, train) == 3
    assert seen == [(1, sweep_id), (2, sweep_id), (3, sweep_id)]
    assert [v.state for v in views(sweep_id)] == ["finished"] * 3
    assert wandb.run is None
    assert len(nbtracker.Api().runs(PROJECT)) == 0


def test_disabled_mode_from_the_environment(monkeypatch):
    monkeypatch.setenv("NBTRACKER_MODE", "disabled")
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)
    seen = []

    def train():
        with wandb.init() as run:
            seen.append(run.config.x)
            wandb.log({"loss": 1.0})

    assert wandb.agent(sweep_id, train) == 2
    assert seen == [1, 2] and [v.state for v in views(sweep_id)] == ["finished"] * 2


# -- Ctrl-C wherever it lands ---------------------------------------------------------------------
CTRL_C_PROGRAM = """
import sys
import nbtracker as wandb

started = []


def train():
    if not started:
        print("START", flush=True)  # from here on, Ctrl-C meets the agent's loop
        started.append(1)
    with wandb.init() as run:
        run.log({"loss": run.config.x})


n = wandb.agent(sys.argv[1], train)
print("RETURNED", n, flush=True)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="SIGINT to a process as on Linux")
def test_ctrl_c_wherever_it_lands_ends_the_agent_cleanly(tmp_path, store):
    """Trials short enough that Ctrl-C often lands in the agent's own work (asking the sweep for
    a trial, finishing the run, recording the outcome) rather than in train(): each time the agent
    returns, no trial is left running, and the sweep resumed later runs each point once."""
    import os
    import signal
    import time

    program = tmp_path / "agent.py"
    program.write_text(CTRL_C_PROGRAM)
    sweep_id = wandb.sweep(grid(range(300)), project=PROJECT)
    env = {**os.environ, "NBTRACKER_DIR": str(store), "NBTRACKER_SYSTEM_INTERVAL": "0"}
    for i in range(6):
        proc = subprocess.Popen([sys.executable, str(program), sweep_id], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.readline().strip() == "START"
        time.sleep(0.1 + 0.037 * i)  # a few trials in, at different moments of one
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "RETURNED" in out, err[-2000:]
        table = views(sweep_id)
        assert "running" not in {v.state for v in table}, err[-2000:]
        runs = sweep_runs(sweep_id)
        assert "running" not in {r.state for r in runs.values()}
        for v in table:
            if v.state == "interrupted" and v.run_id in runs:
                run = runs[v.run_id]
                # (Ctrl-C inside init(), before the run was made, leaves it crashed: init's own)
                assert run.state == "interrupted" or (run.state == "crashed" and run.steps == 0)
    ran = [v for v in views(sweep_id) if v.state == "finished"]
    assert len(ran) >= 6
    assert len({v.params["x"] for v in ran}) == len(ran)  # no point ran twice
    queued = {v.params["x"] for v in views(sweep_id) if v.state == "queued"}
    assert queued == set(range(300)) - {v.params["x"] for v in ran}


def test_system_exit_in_train_ends_the_trial_and_goes_through():
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)

    def train():
        wandb.init()
        wandb.log({"loss": 1.0})
        sys.exit(3)

    with pytest.raises(SystemExit) as e:
        wandb.agent(sweep_id, train)
    assert e.value.code == 3
    table = views(sweep_id)
    assert [(v.params["x"], v.state) for v in table] == [(1, "failed"), (2, "queued")]
    assert "SystemExit" in table[0].exit and "3" in table[0].exit
    assert sweep_runs(sweep_id)[table[0].run_id].state == "failed"
    assert wandb.run is None
    assert wandb.agent(sweep_id, logs_loss) == 1  # the next agent goes on


def logs_loss():
    with wandb.init() as run:
        run.log({"loss": 1.0})


def test_a_trial_whose_run_lives_outside_the_store_gets_its_value(tmp_path):
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)
    elsewhere = tmp_path / "elsewhere"

    def train():
        with wandb.init(dir=str(elsewhere)) as run:
            run.log({"loss": run.config.x * 3})

    assert wandb.agent(sweep_id, train) == 2
    assert [(v.state, v.value) for v in views(sweep_id)] == [("finished", 3), ("finished", 6)]


# -- in a notebook kernel ---------------------------------------------------------------------------
KERNEL_CELL = """
import time
import nbtracker as wandb

def train():
    with wandb.init() as run:
        run.log({"loss": run.config.x})
        time.sleep(0.02)

n = wandb.agent(%r, train)
print("RETURNED", n)
"""


def test_in_a_notebook_kernel_interrupt_stops_the_agent_and_the_kernel_goes_on(store):
    """The kernel's interrupt (the notebook's stop button) ends the trial that runs as
    `interrupted` and returns from agent() without an error; the kernel keeps its state, a run
    of an earlier cell stays active, and the next agent() goes on with the sweep."""
    pytest.importorskip("ipykernel")
    import threading
    import time

    from jupyter_client.manager import start_new_kernel

    sweep_id = wandb.sweep(grid(range(200)), project=PROJECT)
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        def run_cell(code: str) -> tuple[dict, str]:
            out: list[str] = []

            def hook(msg):
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    out.append("ERROR " + msg["content"]["ename"])

            reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
            return reply["content"], "".join(out)

        content, _ = run_cell(f"import nbtracker as wandb\nouter = wandb.init(project={PROJECT!r})")
        assert content["status"] == "ok"
        for round_ in range(3):
            got: list = []
            cell = threading.Thread(target=lambda got=got: got.append(run_cell(KERNEL_CELL % sweep_id)))
            cell.start()
            deadline = time.monotonic() + 60
            before = sum(v.state == "finished" for v in views(sweep_id))
            while time.monotonic() < deadline and sum(
                    v.state == "finished" for v in views(sweep_id)) < before + 2 + round_:
                time.sleep(0.05)
            km.interrupt_kernel()
            cell.join(60)
            content, out = got[0]
            assert content["status"] == "ok" and "RETURNED" in out and "ERROR" not in out, out
            assert "running" not in {v.state for v in views(sweep_id)}
        content, out = run_cell("print(wandb.run is outer, outer.state, 'x' in outer.config)")
        assert out.split() == ["True", "running", "False"]
        table = views(sweep_id)
        assert sum(v.state == "interrupted" for v in table) <= 3
        runs = sweep_runs(sweep_id)
        assert "running" not in {r.state for r in runs.values()}
        content, out = run_cell(f"print(wandb.agent({sweep_id!r}, train, count=2))")
        assert out.split()[-1] == "2"
        # init() twice in a trial: the second returns the trial's run, in a notebook as in a script
        content, out = run_cell(
            "def twice():\n"
            "    first = wandb.init()\n"
            "    second = wandb.init()\n"
            "    second.log({'loss': 5.0})\n"
            "    print('SAME', first is second)\n"
            f"wandb.agent({sweep_id!r}, twice, count=1)")
        assert "SAME True" in out, out
        last = views(sweep_id)
        last = max((v for v in last if v.state != "queued"), key=lambda v: v.number)
        assert (last.state, last.value) == ("finished", 5.0)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_second_function_mode_agent_at_once_in_one_process_is_refused():
    """Trials are handed to the next init() of the process: two agents at once would swap them."""
    import threading
    import time

    first = wandb.sweep(grid(range(3)), project=PROJECT)
    second = wandb.sweep(grid(range(3)), project=PROJECT)
    inside = threading.Event()
    go_on = threading.Event()

    def slow():
        with wandb.init() as run:
            inside.set()
            go_on.wait(30)
            run.log({"loss": 1.0})

    result = []
    agent = threading.Thread(target=lambda: result.append(wandb.agent(first, slow, count=1)))
    agent.start()
    try:
        assert inside.wait(30)
        with pytest.raises(nbtracker.UsageError, match="one function-mode agent at a time"):
            wandb.agent(second, lambda: time.sleep(0))
    finally:
        go_on.set()
        agent.join(30)
    assert result == [1]
    assert [v.state for v in views(second)] == ["queued"] * 3
    assert wandb.agent(second, logs_loss) == 3  # once the first is done


def ctrl_c_in_finish_at(line: str):
    """A tracer raising KeyboardInterrupt once, as Ctrl-C would, when `Run._finish` reaches the
    line holding `line`."""
    import linecache

    fired = []

    def tracer(frame, event, arg):
        if event == "call":
            return tracer if frame.f_code.co_name == "_finish" else None
        if (event == "line" and not fired
                and line in linecache.getline(frame.f_code.co_filename, frame.f_lineno)):
            fired.append(frame.f_lineno)
            raise KeyboardInterrupt
        return tracer

    return tracer, fired


@pytest.mark.parametrize("line", ["self._done = True", "self._lock.release()",
                                  "self._on_finish(self)"])
def test_ctrl_c_while_the_trials_run_finishes(line):
    """Ctrl-C inside the run's finish() (the end of `with wandb.init()`): the trial and its run
    end interrupted, the run is no longer the active one, the next agent goes on."""
    sweep_id = wandb.sweep(grid([1, 2]), project=PROJECT)
    tracer, fired = ctrl_c_in_finish_at(line)

    def train():
        sys.settrace(tracer)
        try:
            with wandb.init() as run:
                run.log({"loss": 1.0})
        finally:
            sys.settrace(None)

    assert wandb.agent(sweep_id, train) == 1
    assert fired
    (v, *_) = views(sweep_id)
    assert v.state == "interrupted"
    assert sweep_runs(sweep_id)[v.run_id].state == "interrupted"
    assert wandb.run is None
    assert wandb.agent(sweep_id, logs_loss) == 2
    assert sorted(v.params["x"] for v in views(sweep_id) if v.state == "finished") == [1, 2]
