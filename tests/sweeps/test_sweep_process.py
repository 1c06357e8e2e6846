"""A trial's command line (wandb's macros, checked against hand-written expectations) and its
process group, with real processes: children, grandchildren, a double-forked daemon and a child
that leaves the group must all be gone after stop(), Ctrl-C included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from nbtracker.sweeps.process import (
    DEFAULT_COMMAND,
    TrialProcess,
    build_command,
    prepare_trial,
    read_params_file,
    trial_env,
)

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="process groups and /usr/bin/env as on Linux")
pytestmark = linux_only

PY = sys.executable
ENV = "/usr/bin/env"
PARAMS = {
    "lr": 1e-05,
    "momentum": 0.0001,
    "wd": 1e16,
    "third": 0.1 + 0.2,
    "batch_size": 64,
    "deep": True,
    "shuffle": False,
    "layers": [32, 64, 0.5],
    "none": None,
    "opt": {"name": "adam", "betas": [0.9, 0.999]},
    "tag": "a b",
}


# -- the command line ---------------------------------------------------------------------------


def test_default_command_as_wandb_formats_it(tmp_path):
    argv, files = build_command(None, "train.py", PARAMS, tmp_path)
    assert argv == [
        ENV,
        PY,
        "train.py",
        "--lr=1e-05",
        "--momentum=0.0001",
        "--wd=1e+16",
        "--third=0.30000000000000004",
        "--batch_size=64",
        "--deep=True",
        "--shuffle=False",
        "--layers=[32, 64, 0.5]",
        "--none=None",
        "--opt={'name': 'adam', 'betas': [0.9, 0.999]}",
        "--tag=a b",
    ]
    assert files == []
    assert build_command(list(DEFAULT_COMMAND), "train.py", PARAMS, tmp_path).argv == argv


def test_every_args_macro(tmp_path):
    p = {"lr": 1e-05, "deep": True, "shuffle": False, "n": None, "opt": {"name": "sgd"}}

    def run(macro):
        return build_command(["x", "${" + macro + "}", "y"], None, p, tmp_path).argv[1:-1]

    assert run("args_no_hyphens") == [
        "lr=1e-05", "deep=True", "shuffle=False", "n=None", "opt={'name': 'sgd'}"
    ]  # fmt: skip
    assert run("args_no_equals") == [
        "--lr", "1e-05", "--deep", "True", "--shuffle", "False", "--n", "None",
        "--opt", "{'name': 'sgd'}",
    ]  # fmt: skip
    assert run("args_no_boolean_flags") == ["--lr=1e-05", "--deep", "--n=None", "--opt={'name': 'sgd'}"]
    assert run("args_append_hydra") == [
        "+lr=1e-05", "+deep=True", "+shuffle=False", "+n=None", "+opt={'name': 'sgd'}"
    ]  # fmt: skip
    assert run("args_override_hydra")[0] == "++lr=1e-05"
    assert run("args_json") == [
        '{"lr": 1e-05, "deep": true, "shuffle": false, "n": null, "opt": {"name": "sgd"}}'
    ]
    assert build_command(["${args}"], None, {}, tmp_path).argv == []


def test_args_json_file_is_written_and_exact(tmp_path):
    cmd = ["${interpreter}", "-m", "train", "--config", "${args_json_file}", "${args_json_file}"]
    argv, files = build_command(cmd, None, PARAMS, tmp_path)
    path = tmp_path / "args.json"
    assert argv == [PY, "-m", "train", "--config", str(path), str(path)]
    assert files == [path]
    text = path.read_text()
    assert text == json.dumps(PARAMS)
    assert '"lr": 1e-05' in text and '"third": 0.30000000000000004' in text
    back = json.loads(text)
    assert back == PARAMS and back["third"].hex() == (0.1 + 0.2).hex()


def test_nan_and_tuples_as_wandb_sees_them(tmp_path):
    argv = build_command(["${args}", "${args_json}"], None, {"x": float("nan"), "t": (1, 2)}, tmp_path)
    assert argv.argv == ["--x=nan", "--t=[1, 2]", '{"x": NaN, "t": [1, 2]}']


def test_envvar_macro_inside_an_element(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_ROOT", "/data")
    argv = build_command(["--data=${envvar:DATA_ROOT}/mnist", 7], None, {}, tmp_path).argv
    assert argv == ["--data=/data/mnist", "7"]


@pytest.mark.parametrize(
    "command, program, params, message",
    [
        (["${argz}"], None, {}, r"unknown macro \$\{argz\}"),
        (["--cfg=${args_json_file}"], None, {}, r"command\[0\].*must be an element of its own"),
        (["${program}"], None, {}, r"no program"),
        (["${envvar:NBT_SURELY_UNSET}"], None, {}, r"'NBT_SURELY_UNSET' is not set"),
        ([], None, {}, r"command is empty"),
        (["${args}"], None, {"s": {1, 2}}, r"parameter 's': set value"),
        (["${args}"], None, {"opt": {"a": [object()]}}, r"parameter 'opt.a\[0\]'"),
        (["${args}"], None, {"opt": {1: 2}}, r"parameter 'opt': key 1 is not a string"),
        (["${args}", None], None, {}, r"command\[1\] None: must be a string"),
    ],
)
def test_bad_input_one_clear_error(tmp_path, command, program, params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build_command(command, program, params, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_trial_env():
    assert trial_env("sw1", "run1", "mnist", "/t/params.json") == {
        "NBTRACKER_SWEEP_ID": "sw1",
        "NBTRACKER_RUN_ID": "run1",
        "NBTRACKER_PROJECT": "mnist",
        "NBTRACKER_SWEEP_PARAM_PATH": "/t/params.json",
    }
    assert "NBTRACKER_PROJECT" not in trial_env("sw1", "run1", None, "/p")


def test_prepared_trial_runs_and_its_folder_is_removed(tmp_path):
    program = tmp_path / "train.py"
    program.write_text(
        textwrap.dedent("""
        import json, os, sys
        seen = {k: v for k, v in os.environ.items() if k.startswith("NBTRACKER_SWEEP")}
        seen["argv"] = sys.argv[1:]
        seen["file"] = json.load(open(sys.argv[1]))
        seen["params"] = json.load(open(os.environ["NBTRACKER_SWEEP_PARAM_PATH"]))
        json.dump(seen, open(os.environ["OUT"], "w"))
        """)
    )
    out = tmp_path / "seen.json"
    command = ["${env}", "${interpreter}", "${program}", "${args_json_file}", "${args}"]
    with prepare_trial(command, str(program), PARAMS, sweep_id="sw", run_id="r1", dir=tmp_path) as t:
        assert t.workdir.is_dir() and t.workdir.parent == tmp_path
        assert read_params_file(t.params_path) == PARAMS
        assert t.files == [t.params_path, t.workdir / "args.json"]
        with TrialProcess.start(t.argv, env={**t.env, "OUT": str(out)}) as proc:
            assert proc.wait(timeout=20) == 0
    assert not t.workdir.exists()
    seen = json.loads(out.read_text())
    assert seen["NBTRACKER_SWEEP_ID"] == "sw"
    assert seen["argv"][0] == str(t.workdir / "args.json")
    assert seen["argv"][1:3] == ["--lr=1e-05", "--momentum=0.0001"]
    assert seen["file"] == PARAMS and seen["params"] == PARAMS


def test_prepared_trial_folder_removed_on_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown macro"):
        with prepare_trial(["${nope}"], None, {}, sweep_id="s", run_id="r", dir=tmp_path):
            pass
    assert list(tmp_path.iterdir()) == []


# -- the process group --------------------------------------------------------------------------

# The trial: a child that starts a grandchild, a daemon that double-forks (staying in the group),
# and a child in a session of its own (out of the group); it writes their pids, then sleeps.
TREE = textwrap.dedent("""
    import json, os, signal, subprocess, sys, time
    out, flags = sys.argv[1], sys.argv[2:]
    if "ignore_term" in flags:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pids = {"leader": os.getpid()}
    child = subprocess.Popen([sys.executable, "-c",
        "import subprocess, sys, time\\n"
        "g = subprocess.Popen(['sleep', '60'])\\n"
        "print(g.pid, flush=True)\\n"
        "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    pids["child"] = child.pid
    pids["grandchild"] = int(child.stdout.readline())
    r, w = os.pipe()
    if os.fork() == 0:
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            time.sleep(60)
        os._exit(0)
    os.close(w)
    pids["daemon"] = int(os.read(r, 32))
    if "escape" in flags:
        pids["escaped"] = subprocess.Popen(["sleep", "60"], start_new_session=True).pid
    with open(out + ".tmp", "w") as f:
        json.dump(pids, f)
    os.rename(out + ".tmp", out)
    time.sleep(60)
""")


def _start_tree(tmp_path, *flags, **kw) -> tuple[TrialProcess, dict[str, int]]:
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    pids_file = tmp_path / "pids.json"
    proc = TrialProcess.start([PY, str(script), str(pids_file), *flags], **kw)
    return proc, _read_pids(pids_file, proc)


def _read_pids(pids_file: Path, proc: TrialProcess | None = None) -> dict[str, int]:
    deadline = time.monotonic() + 15
    while not pids_file.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the trial ended early: {proc.returncode}")
        assert time.monotonic() < deadline, "the trial did not start its tree in time"
        time.sleep(0.02)
    return json.loads(pids_file.read_text())


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_all_gone(pids: dict[str, int], within: float = 5.0) -> None:
    # Killed orphans are zombies until init reaps them: allow it a moment.
    deadline = time.monotonic() + within
    while (alive := {k: p for k, p in pids.items() if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert alive == {}, f"left alive: {alive}"


def _kill_leftovers(pids: dict[str, int]) -> None:
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_stop_ends_children_grandchildren_daemon_and_escapee(tmp_path):
    proc, pids = _start_tree(tmp_path, "escape")
    try:
        assert all(_alive(p) for p in pids.values())
        assert os.getpgid(pids["daemon"]) == proc.pgid != os.getpgid(pids["escaped"])
        assert psutil.Process(pids["daemon"]).ppid() != pids["leader"]  # double-forked away
        assert proc.wait(timeout=0.2) is None and proc.poll() is None
        t0 = time.monotonic()
        assert proc.stop(grace=5) == -signal.SIGTERM
        assert time.monotonic() - t0 < 4
        _assert_all_gone(pids)
        assert proc.returncode == -signal.SIGTERM and proc.signal == signal.SIGTERM
        assert proc.stopped and not proc.killed
        assert proc.stop() == -signal.SIGTERM  # again: nothing left to do
    finally:
        _kill_leftovers(pids)


def test_trial_ignoring_sigterm_is_killed_after_the_grace(tmp_path):
    proc, pids = _start_tree(tmp_path, "ignore_term")
    try:
        t0 = time.monotonic()
        proc.stop(grace=0.6)
        took = time.monotonic() - t0
        assert 0.6 <= took < 5, took
        _assert_all_gone(pids)
        assert proc.signal == signal.SIGKILL and proc.returncode == -signal.SIGKILL
        assert proc.stopped and proc.killed
        assert proc.exit_description == "signal SIGKILL (stopped)"
    finally:
        _kill_leftovers(pids)


def test_with_block_stops_the_group_on_an_error(tmp_path):
    pids = {}
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with _start_tree(tmp_path, grace=2)[0] as proc:
                pids = _read_pids(tmp_path / "pids.json")
                raise RuntimeError("boom")
        _assert_all_gone(pids)
        assert proc.stopped and proc.signal == signal.SIGTERM
    finally:
        _kill_leftovers(pids)


def test_keyboard_interrupt_while_waiting_stops_the_group(tmp_path):
    proc, pids = _start_tree(tmp_path, grace=2)
    timer = threading.Timer(0.3, signal.raise_signal, (signal.SIGINT,))
    try:
        with proc:
            timer.start()
            t0 = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                proc.wait(timeout=20)
            assert time.monotonic() - t0 < 5
            _assert_all_gone(pids, within=0.5)  # stopped before the interrupt went on
        assert proc.stopped and proc.signal == signal.SIGTERM
    finally:
        timer.cancel()
        _kill_leftovers(pids)


def test_a_second_ctrl_c_kills_without_waiting_out_the_grace(tmp_path):
    proc, pids = _start_tree(tmp_path, "ignore_term", grace=30)
    timers = [threading.Timer(t, signal.raise_signal, (signal.SIGINT,)) for t in (0.2, 0.8)]
    try:
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            for t in timers:
                t.start()
            proc.wait(timeout=20)
        assert time.monotonic() - t0 < 6
        _assert_all_gone(pids)
        assert proc.killed and proc.signal == signal.SIGKILL
    finally:
        for t in timers:
            t.cancel()
        _kill_leftovers(pids)


AGENT = textwrap.dedent("""
    import sys
    from nbtracker.sweeps.process import TrialProcess
    with TrialProcess.start([sys.executable, sys.argv[1], sys.argv[2], "escape"], grace=2) as p:
        p.wait()
""")


def test_ctrl_c_to_an_agent_process_leaves_no_child(tmp_path):
    (tmp_path / "tree.py").write_text(TREE)
    (tmp_path / "agent.py").write_text(AGENT)
    pids_file = tmp_path / "pids.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    agent = subprocess.Popen(
        [PY, str(tmp_path / "agent.py"), str(tmp_path / "tree.py"), str(pids_file)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids = {}
    try:
        pids = _read_pids(pids_file)
        agent.send_signal(signal.SIGINT)
        _, err = agent.communicate(timeout=10)
        assert agent.returncode == -signal.SIGINT, err  # Python's exit for an uncaught Ctrl-C
        assert "KeyboardInterrupt" in err
        _assert_all_gone(pids)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(5)
        _kill_leftovers(pids)


def test_exit_status_of_a_failing_trial(tmp_path):
    with TrialProcess.start([PY, "-c", "import sys; sys.exit(3)"]) as proc:
        assert proc.wait(timeout=20) == 3
    assert (proc.returncode, proc.signal, proc.stopped, proc.killed) == (3, None, False, False)
    assert proc.exit_description == "exit code 3"
    abort = "import os, signal; os.kill(os.getpid(), signal.SIGABRT)"
    with TrialProcess.start([PY, "-c", abort]) as proc:
        assert proc.wait(timeout=20) == -signal.SIGABRT
    assert proc.signal == signal.SIGABRT and not proc.stopped
    assert proc.exit_description == "signal SIGABRT"
    with pytest.raises(FileNotFoundError):
        TrialProcess.start([str(tmp_path / "no-such-program")])
    with TrialProcess.start(build_command(None, str(tmp_path / "missing.py"), {}, tmp_path).argv) as p:
        assert p.wait(timeout=20) == 2  # python: can't open file


def test_what_a_finished_trial_leaves_in_its_group_is_ended(tmp_path):
    code = "import subprocess; print(subprocess.Popen(['sleep', '60']).pid, flush=True)"
    out = tmp_path / "out.txt"
    left = {}
    try:
        with TrialProcess.start([PY, "-c", code], output=out) as proc:
            assert proc.wait(timeout=20) == 0
            left["sleep"] = int(out.read_text())
            assert _alive(left["sleep"])
        _assert_all_gone(left)
        assert proc.returncode == 0 and not proc.stopped and proc.exit_description == "exit code 0"
    finally:
        _kill_leftovers(left)


def test_output_to_a_file(tmp_path):
    out = tmp_path / "trial.log"
    out.write_text("before\n")
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"
    with TrialProcess.start([PY, "-c", code], output=out, env={"PYTHONUNBUFFERED": "1"}) as p:
        p.wait(timeout=20)
    assert out.read_text().splitlines() == ["before", "to stdout", "to stderr"]


def test_stop_returns_the_leaders_signal_however_fast_it_dies():
    # A leader that dies at once on SIGTERM can die between the reap and the scan of its group:
    # stop() must still reap it and return its code, every time.
    codes = []
    for _ in range(30):
        proc = TrialProcess.start(["sleep", "30"])
        time.sleep(0.005)
        codes.append(proc.stop(grace=5))
    assert codes == [-signal.SIGTERM] * 30
