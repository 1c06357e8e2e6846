"""Run lifecycle: defaults, exit states, context manager, reinit, disabled mode, auto-resume."""

from __future__ import annotations

import pytest
from helpers import run_python

import nbtracker


def state_of(path):
    return nbtracker.Api().run(path).state


def test_init_without_arguments(monkeypatch, store):
    run = nbtracker.init()
    assert run.project == "uncategorized" and run.name.endswith("-1") and len(run.id) == 8
    assert run.storage_dir.startswith(str(store))
    run.finish()
    monkeypatch.setenv("NBTRACKER_PROJECT", "from-env")
    run2 = nbtracker.init()
    assert run2.project == "from-env"
    run2.finish()


def test_generated_names_count_up_and_a_given_name_is_kept():
    names = []
    for _ in range(3):
        with nbtracker.init(project="names") as run:
            names.append(run.name)
    assert [n.rsplit("-", 1)[1] for n in names] == ["1", "2", "3"]
    with nbtracker.init(project="names", name="mine") as run:
        assert run.name == "mine"


def test_context_manager_states():
    with nbtracker.init(project="ctx") as run:
        nbtracker.log({"a": 1})
    assert state_of(run.path) == "finished"
    with pytest.raises(ZeroDivisionError):
        with nbtracker.init(project="ctx") as run:
            raise ZeroDivisionError("boom")
    assert state_of(run.path) == "failed"
    with pytest.raises(KeyboardInterrupt):
        with nbtracker.init(project="ctx") as run:
            raise KeyboardInterrupt
    assert state_of(run.path) == "interrupted"
    run = nbtracker.init(project="ctx")
    run.finish(exit_code=3)
    r = nbtracker.Api().run(run.path)
    assert r.state == "failed" and r.exit_code == 3


@pytest.mark.parametrize("ending, state", [
    ("pass", "finished"),
    ("raise RuntimeError('boom')", "failed"),
    ("raise KeyboardInterrupt", "interrupted"),
])
def test_process_exit_without_finish(ending, state):
    p = run_python(f"""
        import nbtracker
        run = nbtracker.init(project="exit")
        nbtracker.log({{"a": 1}})
        print(run.path, flush=True)
        {ending}
    """, check=False)
    path = p.stdout.split()[0]
    assert state_of(path) == state


def test_reinit_finishes_the_previous_run(capsys):
    first = nbtracker.init(project="re")
    second = nbtracker.init(project="re", reinit=True)
    assert first is not second and nbtracker.run is second
    assert state_of(first.path) == "finished"
    third = nbtracker.init(project="re")  # not in a notebook: the active run is returned
    assert third is second and "already active" in capsys.readouterr().err
    second.finish()
    assert nbtracker.run is None


def test_disabled_mode_accepts_everything_and_writes_nothing(store):
    run = nbtracker.init(project="off", mode="disabled", config={"lr": 1})
    nbtracker.log({"a": 1})
    nbtracker.config.update({"b": 2})
    nbtracker.define_metric("a", summary="max")
    nbtracker.alert(title="t", text="x")
    run.summary["s"] = 1
    assert run.config["b"] == 2 and run.summary["s"] == 1 and run.disabled
    nbtracker.finish()
    assert not (store / "runs").exists()


def test_env_mode_and_wandb_names(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    run = nbtracker.init(project="m")
    assert run.mode == "offline"
    run.finish()
    monkeypatch.setenv("NBTRACKER_MODE", "disabled")
    assert nbtracker.init(project="m").disabled
    nbtracker.finish()
    with pytest.raises(ValueError, match="mode must be"):
        nbtracker.init(project="m", mode="sometimes")


def test_resume_true_without_id_continues_the_last_unfinished_run():
    p = run_python("""
        import os, nbtracker
        run = nbtracker.init(project="auto")
        nbtracker.log({"a": 1})
        print(run.id, flush=True)
        os.kill(os.getpid(), 9)
    """, check=False)
    crashed_id = p.stdout.split()[0]
    run = nbtracker.init(project="auto", resume=True)
    assert run.id == crashed_id and run.resumed and run.step == 1
    run.finish()
    fresh = nbtracker.init(project="auto", resume=True)  # the last one finished: a new run
    assert fresh.id != crashed_id and not fresh.resumed
    fresh.finish()


def test_bad_init_arguments_are_clear():
    with pytest.raises(ValueError, match="project name"):
        nbtracker.init(project="a/b")
    with pytest.raises(ValueError, match="run id"):
        nbtracker.init(project="p", id="has space")
    with pytest.raises(nbtracker.UsageError, match="resume must be"):
        nbtracker.init(project="p", resume="perhaps")


def test_silent_prints_nothing():
    p = run_python("""
        import nbtracker
        run = nbtracker.init(project="quiet")
        nbtracker.log({"a": object(), "b": 1})
        nbtracker.finish()
    """, env={"NBTRACKER_SILENT": "true"})
    assert p.stdout == "" and p.stderr == ""
    loud = run_python("""
        import nbtracker
        nbtracker.init(project="quiet")
        for i in range(100):
            nbtracker.log({"b": i})
        nbtracker.finish()
    """)
    lines = loud.stderr.strip().splitlines()
    assert len(lines) == 2 and "started" in lines[0] and "finished" in lines[1]
    assert loud.stdout == ""


def test_a_script_that_imports_ipykernel_is_not_a_notebook(tmp_path):
    """The start line goes to stderr as text; no notebook output, no finish as "crashed"."""
    import subprocess
    import sys

    code = ("import ipykernel, nbtracker\n"
            "run = nbtracker.init(project='script')\n"
            "run.log({'a': 1})\n")
    env = {**__import__("os").environ, "NBTRACKER_DIR": str(tmp_path)}
    env.pop("NBTRACKER_SILENT", None)
    env.pop("WANDB_SILENT", None)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and "nbtracker: run" in p.stderr
    assert nbtracker.Api(dir=str(tmp_path)).runs("script")[0].state == "finished"
