"""Sweeps under inputs and conditions users meet: numpy values in a config built in Python,
integer ranges Optuna cannot sample exactly, passwords in storage URLs, a torn journal."""

from __future__ import annotations

import json
import os
import stat

import pytest

import nbtracker
from nbtracker.sweeps.config import SweepConfigError, parse_sweep
from nbtracker.sweeps.engine import _safe_url, open_sweep

np = pytest.importorskip("numpy")
pytest.importorskip("optuna")


@pytest.mark.parametrize("method", ["grid", "random"])
def test_numpy_values_are_the_numbers_they_stand_for(method):
    sid = nbtracker.sweep({"method": method, "run_cap": 4, "parameters": {
        "batch_size": {"values": list(np.array([32, 64]))},
        "flag": {"values": [np.bool_(True), np.bool_(False)]},
        "lr": {"value": np.float32(0.5)},
        "layers": {"values": np.arange(1, 3)}}}, project="p")
    seen = []

    def train():
        seen.append(dict(nbtracker.init().config))

    assert nbtracker.agent(sid, function=train) == 4
    assert all(type(c["batch_size"]) is int and c["batch_size"] in (32, 64) for c in seen), seen
    assert all(type(c["flag"]) is bool and c["lr"] == 0.5 and c["layers"] in (1, 2) for c in seen)
    if method == "grid":
        got = sorted((c["batch_size"], c["flag"], c["layers"]) for c in seen)
        queued = [v for v in open_sweep(sid).views() if v.state == "queued"]
        assert len(set(got)) == 4 and len(queued) == 4  # 8 points, run_cap 4
    assert open_sweep(sid).raw["parameters"]["batch_size"]["values"] == [32, 64]


def test_int_uniform_beyond_what_optuna_samples_exactly_is_refused():
    with pytest.raises(SweepConfigError) as err:
        parse_sweep({"method": "random", "parameters": {"seed": {"min": 0, "max": 2**60}}})
    assert "seed" in err.value.problems[0] and "2**53" in err.value.problems[0]
    assert parse_sweep({"method": "random", "parameters": {"seed": {"min": 0, "max": 2**53}}})


@pytest.mark.parametrize("url", [
    "postgresql://user:pw123@db.example/nbt",
    "postgresql://:pw123@db.example/nbt",
    "postgresql://user:p@w123@db.example/nbt",
    "postgresql://user@db.example/nbt?password=pw123&sslmode=require",
    "postgresql+psycopg://user:pw123@db.example:5433/nbt",
])
def test_passwords_never_shown(url):
    shown = _safe_url(url)
    assert "pw123" not in shown and "db.example" in shown


def test_sweep_json_is_readable_by_its_owner_alone(store):
    sid = nbtracker.sweep({"method": "random", "parameters": {"x": {"values": [1]}}})
    mode = stat.S_IMODE(os.stat(store / "sweeps" / sid / "sweep.json").st_mode)
    assert mode & 0o077 == 0, oct(mode)


def test_a_torn_journal_tail_is_cut_before_the_next_write(store):
    sid = nbtracker.sweep({"method": "grid", "metric": {"name": "loss"},
                           "parameters": {"a": {"values": [0, 1, 2]}}}, project="p")

    def train():
        run = nbtracker.init()
        nbtracker.log({"loss": float(run.config.a)})

    assert nbtracker.agent(sid, function=train, count=1) == 1
    journal = store / "sweeps" / sid / "journal.log"
    size = journal.stat().st_size
    os.truncate(journal, size - 5)  # the last record half written (power cut, full disk)
    # the first trial's end was that record: it looks running, by an agent of this process no
    # longer running it, so it is ended crashed and its point runs again
    assert nbtracker.agent(sid, function=train) == 3
    s = open_sweep(sid)
    done = sorted(v.value for v in s.views() if v.state == "finished")
    assert done == [0.0, 1.0, 2.0] and s.remaining() == 0 and s.state == "finished"
    assert s.views()[0].state == "crashed"
    for line in journal.read_bytes().splitlines():
        json.loads(line)  # every line whole: nothing was glued onto the torn one


def test_a_lock_left_by_an_agent_killed_while_writing_holds_nobody_up(store):
    import subprocess
    import sys
    import time

    sid = nbtracker.sweep({"method": "grid", "parameters": {"a": {"values": [0, 1]}}})
    folder = store / "sweeps" / sid
    # what Optuna's own file locks leave when their holder is SIGKILLed mid-write
    (folder / "journal.log.lock").write_text("")
    # and an flock held by a process that is then killed
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(folder / 'journal.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    start = time.monotonic()
    assert nbtracker.agent(sid, function=lambda: nbtracker.init().finish()) == 2
    assert time.monotonic() - start < 10  # Optuna's stale-lock wait is 30 s


def test_a_damaged_sweep_is_one_line_and_the_others_are_still_listed(store):
    import subprocess
    import sys

    good = nbtracker.sweep({"method": "random", "parameters": {"x": {"values": [1]}}})
    bad = {name: nbtracker.sweep({"method": "random", "parameters": {"x": {"values": [1]}}})
           for name in ("null", "list", "storage", "journal")}
    (store / "sweeps" / bad["null"] / "sweep.json").write_text("null")
    (store / "sweeps" / bad["list"] / "sweep.json").write_text("[]")
    (store / "sweeps" / bad["storage"] / "sweep.json").write_text('{"storage": 5}')
    journal = store / "sweeps" / bad["journal"] / "journal.log"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + b'{"op_code": 0, "worker_id": ~~~}\n' + b"".join(lines[1:]))
    env = {**os.environ, "NBTRACKER_DIR": str(store), "PYTHONPATH": os.pathsep.join(sys.path)}
    ls = subprocess.run([sys.executable, "-m", "nbtracker", "sweep", "ls"], env=env,
                        capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0 and good in ls.stdout, ls.stderr
    assert "Traceback" not in ls.stderr
    for name, sid in bad.items():
        assert sid not in ls.stdout
        assert sum(sid in line for line in ls.stderr.splitlines()) == 1, (name, ls.stderr)
        show = subprocess.run([sys.executable, "-m", "nbtracker", "sweep", "show", sid], env=env,
                              capture_output=True, text=True, timeout=60)
        assert show.returncode == 1 and "Traceback" not in show.stderr, (name, show.stderr)
        assert len(show.stderr.strip().splitlines()) == 1 and sid in show.stderr, show.stderr


@pytest.mark.filterwarnings("ignore:Fixed parameter")  # the point out of range, on purpose
def test_a_point_that_cannot_be_drawn_fails_its_trial_and_every_listing_still_works(store):
    import subprocess
    import sys

    good = nbtracker.sweep({"method": "random", "parameters": {"x": {"values": [1]}}})
    # the widest log-normal the config check takes, and a point beyond its range in the store
    # (edited by hand, or left by a release that checked less): exp() of it overflows
    odd = nbtracker.sweep({"method": "random", "metric": {"name": "loss"}, "parameters": {
        "x": {"distribution": "log_normal", "mu": 702, "sigma": 1}}})
    open_sweep(odd).study.enqueue_trial({"x/u": 1 - 2**-53}, skip_if_exists=False)
    # a sweep made when its config was taken, which is refused now
    stale = nbtracker.sweep({"method": "random", "parameters": {"x": {"distribution": "log_normal"}}})
    study = open_sweep(stale).study
    meta = study.user_attrs["nbt"]
    meta["config"]["parameters"]["x"]["mu"] = 800
    study.set_user_attr("nbt", meta)

    env = {**os.environ, "NBTRACKER_DIR": str(store), "PYTHONPATH": os.pathsep.join(sys.path)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "nbtracker", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    def listings_work():
        ls = cli("sweep", "ls")
        assert ls.returncode == 0 and "Traceback" not in ls.stderr, ls.stderr
        assert good in ls.stdout and odd in ls.stdout and stale not in ls.stdout, ls.stdout
        (line,) = ls.stderr.strip().splitlines()
        assert stale in line and "parameters.x: exp(mu + 7.03 sigma)" in line, line
        show = cli("sweep", "show", odd)
        assert show.returncode == 0 and "Traceback" not in show.stderr, show.stderr
        assert [v.params for v in open_sweep(odd).views()][:1] == [{}]  # its value left out

    listings_work()  # the point queued
    ran = []
    assert nbtracker.agent(odd, function=lambda: ran.append(nbtracker.init().finish())) == 0
    assert ran == []
    first = open_sweep(odd).views()[0]
    assert first.state == "failed"
    assert first.exit == "its values could not be drawn: OverflowError: math range error"
    listings_work()  # its trial failed

    show = cli("sweep", "show", stale)
    assert show.returncode == 1 and "Traceback" not in show.stderr, show.stderr
    assert show.stderr.strip().splitlines() == [
        f"nbtracker: sweep {stale}: its config, stored in the local store {store}, is not valid: "
        "parameters.x: exp(mu + 7.03 sigma) = exp(807.034) overflows (mu 800, sigma 1.0); a "
        "log_normal takes mu and sigma of the natural log of the value"]
    # the agent goes on with drawn points once the damaged one has failed
    assert nbtracker.agent(odd, function=lambda: nbtracker.init().finish(), count=2) == 2
    assert [v.state for v in open_sweep(odd).views()] == ["failed", "finished", "finished"]


def test_a_trial_its_agent_never_stamped_is_recovered_after_a_minute(store):
    import time

    from nbtracker.sweeps import engine

    sid = nbtracker.sweep({"method": "grid", "parameters": {"a": {"values": [0, 1]}}})
    s = open_sweep(sid)
    asked = s.study.ask()  # an agent died right after asking: no stamp on its trial
    assert s.recover() == []  # a moment later: its agent may still be stamping it
    assert s.recover(now=time.time() + engine.UNSTAMPED_SECONDS + 1) == [asked.number]
    ran = []
    assert nbtracker.agent(sid, function=lambda: ran.append(nbtracker.init().config["a"])) == 2
    assert sorted(ran) == [0, 1]


def test_early_terminate_stores_a_trials_values_at_its_brackets_alone(store):
    sid = nbtracker.sweep({"method": "grid", "metric": {"name": "loss"},
                           "early_terminate": {"type": "hyperband", "min_iter": 3},
                           "parameters": {"a": {"values": [1.0]}}}, project="p")
    journal = store / "sweeps" / sid / "journal.log"

    def train():
        run = nbtracker.init()
        before = journal.stat().st_size
        for i in range(2000):
            run.log({"loss": run.config.a / (i + 1), "other": i})
        sizes.append(journal.stat().st_size - before)

    sizes: list = []
    assert nbtracker.agent(sid, function=train) == 1
    t = open_sweep(sid).trials()[0]
    assert t.intermediate_values == {3: 1 / 3, 9: 1 / 9, 27: 1 / 27, 81: 1 / 81, 243: 1 / 243,
                                     729: 1 / 729}
    assert sizes[0] < 20_000, sizes  # a few bracket values and judgements, not 2000 writes


@pytest.mark.parametrize("goal, target, values, ran", [
    ("minimize", 0.25, [0.9, 0.5, 0.2, 0.1, 0.05], 3),
    ("maximize", 0.5, [0.1, 0.5, 0.9, 1.0], 2),
    ("minimize", -1.0, [0.9, 0.5, 0.2], 3),  # never reached: every point runs
])
def test_a_trial_reaching_the_metric_target_finishes_the_sweep(goal, target, values, ran):
    sid = nbtracker.sweep({"method": "grid", "metric": {"name": "m", "goal": goal, "target": target},
                           "parameters": {"v": {"values": values}}}, project="p")

    def train():
        run = nbtracker.init()
        nbtracker.log({"m": run.config.v})

    assert nbtracker.agent(sid, function=train) == ran
    s = open_sweep(sid)
    assert s.state == "finished"
    assert [v.value for v in s.views() if v.state == "finished"] == values[:ran]


def test_an_int_metric_beyond_2_53_is_recorded_exactly():
    big = 2**53 + 1
    sid = nbtracker.sweep({"method": "grid", "metric": {"name": "m", "goal": "maximize"},
                           "parameters": {"v": {"values": [1]}}}, project="p")
    nbtracker.agent(sid, function=lambda: nbtracker.log({"m": big}) if nbtracker.init() else None)
    (view,) = open_sweep(sid).views()
    assert view.value == big and type(view.value) is int


@pytest.mark.parametrize("goal, expect", [("minimize", 1.0), ("maximize", 5.0)])
def test_a_metric_summarised_two_ways_gives_the_goals_side(goal, expect):
    sid = nbtracker.sweep({"method": "grid", "metric": {"name": "m", "goal": goal},
                           "parameters": {"v": {"values": [1]}}}, project="p")

    def train():
        nbtracker.init()
        nbtracker.define_metric("m", summary="min,max")
        for x in (3.0, 1.0, 5.0, 2.0):
            nbtracker.log({"m": x})

    nbtracker.agent(sid, function=train)
    (view,) = open_sweep(sid).views()
    assert view.state == "finished" and view.value == expect


def test_a_sweep_resumed_with_nothing_left_is_finished_again(store):
    import subprocess
    import sys

    sid = nbtracker.sweep({"method": "grid", "parameters": {"a": {"values": [0]}}})
    nbtracker.agent(sid, function=lambda: nbtracker.init())
    s = open_sweep(sid)
    assert s.state == "finished"
    s.set_state("running")  # resumed by hand (or by an older agent)
    assert nbtracker.agent(sid, function=lambda: nbtracker.init()) == 0
    assert open_sweep(sid).state == "finished"
    env = {**os.environ, "NBTRACKER_DIR": str(store), "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-m", "nbtracker", "sweep", "resume", sid], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "nothing is left to run" in out.stdout + out.stderr
    assert open_sweep(sid).state == "finished"


def test_an_agent_that_gives_up_on_failing_trials_exits_non_zero(store, tmp_path):
    import subprocess
    import sys

    prog = tmp_path / "fail.py"
    prog.write_text("import sys\nsys.exit(3)\n")
    sid = nbtracker.sweep({"method": "grid", "program": str(prog),
                           "parameters": {"a": {"values": list(range(8))}}})
    env = {**os.environ, "NBTRACKER_DIR": str(store), "PYTHONPATH": os.pathsep.join(sys.path),
           "NBTRACKER_AGENT_MAX_FAILURES": "2"}
    out = subprocess.run([sys.executable, "-m", "nbtracker", "agent", sid], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "2 trials in a row failed" in out.stderr
    assert [v.state for v in open_sweep(sid).views()][:2] == ["failed", "failed"]


def test_a_daemon_a_subprocess_trial_double_forks_ends_with_the_trial(tmp_path):
    import time

    import psutil

    from nbtracker.sweeps.agent import Agent

    marker = f"nbt-daemon-{os.getpid()}-{time.time_ns()}"
    prog = tmp_path / "daemonize.py"
    prog.write_text(
        "import os, sys, time, nbtracker\n"
        "run = nbtracker.init()\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execv(sys.executable,\n"
        f"                 [sys.executable, '-c', 'import time; time.sleep(600)  # {marker}'])\n"
        "    os._exit(0)\n"
        "time.sleep(0.2)\n"
        "run.log({'loss': 1.0})\n")
    sid = nbtracker.sweep({"method": "grid", "program": str(prog),
                           "parameters": {"a": {"values": [0]}}}, project="p")
    try:
        assert Agent(open_sweep(sid)).run() == 1
        left = [p for p in psutil.process_iter(["cmdline"])
                if any(marker in c for c in (p.info["cmdline"] or []))]
        assert left == []
    finally:
        for p in psutil.process_iter(["cmdline"]):
            if any(marker in c for c in (p.info["cmdline"] or [])):
                p.kill()


@pytest.mark.parametrize("on_prune", ["flag", "raise"])
def test_cancelling_a_sweep_tells_a_function_mode_trial(on_prune):
    import threading
    import time

    sid = nbtracker.sweep({"method": "grid", "parameters": {"a": {"values": [0, 1]}}}, project="p")
    steps = []

    def train():
        run = nbtracker.init()
        threading.Timer(0.3, lambda: open_sweep(sid).set_state("cancelled")).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not run.pruned:
            run.log({"x": 1})
            steps.append(1)
            time.sleep(0.02)

    assert nbtracker.agent(sid, function=train, on_prune=on_prune) == 1
    (trial,) = [v for v in open_sweep(sid).views() if v.state != "queued"]
    assert trial.state == "interrupted" and trial.exit == "the sweep was cancelled"
    assert nbtracker.Api().run(f"p/{trial.run_id}").state == "interrupted"
    assert len(steps) < 1000  # told within seconds, not at the 30 s deadline


@pytest.mark.parametrize("method", ["bayes", "random"])
def test_seeded_agents_asking_at_once_never_get_the_same_point(store, method):
    import subprocess
    import sys

    worker = (
        "import sys, time, nbtracker\n"
        "def train():\n"
        "    run = nbtracker.init(); run.log({'loss': (run.config['x'] - 0.3) ** 2}); time.sleep(0.2)\n"
        "nbtracker.agent(sys.argv[1], function=train, count=4)\n")
    sid = nbtracker.sweep({"method": method, "metric": {"name": "loss"},
                           "parameters": {"x": {"min": 0.0, "max": 1.0}}}, project="p", seed=2)
    env = {**os.environ, "NBTRACKER_DIR": str(store), "PYTHONPATH": os.pathsep.join(sys.path),
           "NBTRACKER_SILENT": "true"}
    procs = [subprocess.Popen([sys.executable, "-c", worker, sid], env=env) for _ in range(3)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    xs = [v.params["x"] for v in open_sweep(sid).views()]
    assert len(xs) == 12 and len(set(xs)) == 12, sorted(xs)


def test_importance_on_equal_values_says_nothing_to_the_user():
    import warnings

    sid = nbtracker.sweep({"method": "random", "metric": {"name": "m"}, "run_cap": 6,
                           "parameters": {"x": {"min": 0.0, "max": 1.0}}}, project="p", seed=1)

    def train():
        nbtracker.init()
        nbtracker.log({"m": 1.0})  # every trial the same: Optuna's evaluator has nothing to rank

    nbtracker.agent(sid, function=train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importance = open_sweep(sid).importance()
    assert importance is not None and set(importance) == {"x"}
    assert [str(w.message) for w in caught] == []
