"""Console capture: what a script or a notebook prints while a run is active is in the run
(`ApiRun.output()`, `file("output.log")`), progress lines in their last state, and the user sees
exactly what they saw without it. The notebook executed here also checks notebook code capture
(one kernel for both)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from helpers import run_python

import nbtracker
from nbtracker.sdk import console
from nbtracker.store.recordlog import read_records

tqdm = pytest.importorskip("tqdm")


@pytest.fixture(autouse=True)
def capture_on(monkeypatch):
    """conftest turns console and code capture off for tests of other things; on here, as a
    user has them."""
    monkeypatch.setenv("NBTRACKER_CONSOLE", "auto")
    monkeypatch.delenv("NBTRACKER_DISABLE_CODE", raising=False)


CAPTURE_ENV = {"NBTRACKER_CONSOLE": "auto", "NBTRACKER_DISABLE_CODE": "false"}

SCRIPT = r"""
import logging, os, sys, threading, time
logging.basicConfig(format="%(levelname)s %(message)s")  # holds sys.stderr from before init
from tqdm import tqdm
import nbtracker

orig_out, orig_err = sys.stdout, sys.stderr
run = nbtracker.init(project="console", name="script")
print("hello from the script", 42)
print("to stderr", file=sys.stderr)
logging.warning("a logged warning")
for i in tqdm(range(50), bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}", mininterval=0,
              ncols=60, ascii=True):
    run.log({"i": i})
t = threading.Thread(target=lambda: print("from a thread"))
t.start(); t.join()
sys.stdout.write("no newline yet")
sys.stdout.flush()
if os.environ.get("LIVE_FILE"):
    time.sleep(1.6)  # a batch is written while the run goes on
    with open(os.path.join(run.storage_dir, "records.jsonl")) as f, \
            open(os.environ["LIVE_FILE"], "w") as out:
        out.write(str(sum('"output"' in r for r in f)))
print(" ... done")
print("x" * 100_000)
sys.stdout.flush()
run.finish()
print("after finish")
assert sys.stdout is orig_out and sys.stderr is orig_err
print(run.path)
"""


def run_script(tmp_path, **env):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return run_python(f"exec(open({str(script)!r}).read())",
                      env={"NBTRACKER_SILENT": "true", **CAPTURE_ENV, **env})


@pytest.fixture(autouse=True)
def silent(monkeypatch):
    """nbtracker's own lines (the start line) are console output like any other: kept quiet
    here so the tests compare what the test code prints."""
    monkeypatch.setenv("NBTRACKER_SILENT", "true")


def output_records(run_path: str) -> list[dict]:
    r = nbtracker.Api().run(run_path)
    return [rec for rec in read_records(Path(r.storage_dir, "records.jsonl")) if rec["t"] == "output"]


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory):
    """The script run with console capture and without: (captured, plain) processes."""
    tmp = tmp_path_factory.mktemp("script")
    store = tmp / "store"
    env = {"NBTRACKER_DIR": str(store)}
    live = tmp / "live.txt"
    captured = run_script(tmp, LIVE_FILE=str(live), **env)
    return store, captured, run_script(tmp, NBTRACKER_CONSOLE="off", **env), int(live.read_text())


@pytest.mark.slow
def test_script_output_is_kept_and_unchanged_for_the_user(script_runs, monkeypatch, tmp_path):
    store, captured, plain, live = script_runs
    monkeypatch.setenv("NBTRACKER_DIR", str(store))
    # what the user sees is byte for byte what it is without capture (ids aside)
    assert captured.stderr == plain.stderr
    assert captured.stdout.splitlines()[:-1] == plain.stdout.splitlines()[:-1]
    run_path = captured.stdout.splitlines()[-1]
    r = nbtracker.Api().run(run_path)
    out = r.output()
    lines = out.splitlines()
    assert lines[0] == "hello from the script 42"
    assert lines[1:3] == ["to stderr", "WARNING a logged warning"]
    assert lines[3].startswith("100%|") and lines[3].endswith("| 50/50")
    assert lines[4:6] == ["from a thread", "no newline yet ... done"]
    assert lines[6:] == ["x" * 100_000] and "after finish" not in out
    assert live >= 1  # records were written while the run was going on
    # the records: both streams, progress collapsed, batched, none above 64 KiB
    recs = output_records(run_path)
    assert {rec["stream"] for rec in recs} == {"stdout", "stderr"}
    text = "".join(rec["text"] for rec in recs)
    assert " 50%" not in text and "\r" not in text
    assert len(recs) < 12 and max(len(rec["text"]) for rec in recs) <= 64 * 1024
    # wandb's way to read it
    f = r.file("output.log")
    assert f.download(str(tmp_path)).read_text() == out
    assert f.path.read_text() == out


@pytest.mark.slow
def test_console_off_records_nothing(script_runs, monkeypatch):
    store, _, plain, _ = script_runs
    monkeypatch.setenv("NBTRACKER_DIR", str(store))
    run_path = plain.stdout.splitlines()[-1]
    assert output_records(run_path) == [] and nbtracker.Api().run(run_path).output() == ""
    with pytest.raises(KeyError):
        nbtracker.Api().run(run_path).file("output.log")


@pytest.mark.parametrize("how", ["setting", "wandb-env"])
def test_console_off_in_process(how, monkeypatch):
    if how == "wandb-env":
        monkeypatch.delenv("NBTRACKER_CONSOLE")  # the NBTRACKER_ name wins when both are set
        monkeypatch.setenv("WANDB_CONSOLE", "off")
    run = nbtracker.init(project="console", settings={"console": "off"} if how == "setting"
                         else None)
    print("not kept")
    run.finish()
    assert output_records(run.path) == []


def test_in_process_capture_restores_the_stream(capsys):
    before = sys.stdout
    own = dict(vars(before)) if hasattr(before, "__dict__") else None
    run = nbtracker.init(project="console", name="here")
    print("printed while active")
    run.finish()
    assert sys.stdout is before
    if own is not None:
        assert vars(before).get("write") is own.get("write")
    print("printed after")
    assert capsys.readouterr().out.count("printed while active") == 1
    assert nbtracker.Api().run(run.path).output().splitlines()[-1] == "printed while active"


def test_a_redirected_stream_is_not_kept_alive_after_the_run(capsys):
    """contextlib.redirect_stdout(StringIO()) around a run: once the run is finished and the
    redirect over, nothing of nbtracker's keeps the StringIO (and all it holds) alive."""
    import contextlib
    import gc
    import io
    import weakref

    refs = []
    for i in range(3):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            run = nbtracker.init(project="console", name=f"redirected{i}")
            print("into the StringIO")
            run.finish()
        assert buf.getvalue() == "into the StringIO\n"
        refs.append(weakref.ref(buf))
        del buf
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    assert nbtracker.Api().run(run.path).output() == "into the StringIO\n"


def test_the_stream_looks_the_same_to_user_code_while_captured(capsys):
    """While a run captures, sys.stdout is still an io.TextIOBase and acts as the stream does:
    `with sys.stdout:` closes it, closed/encoding/fileno are the stream's."""
    import contextlib
    import io

    assert isinstance(sys.stdout, io.TextIOBase)
    run = nbtracker.init(project="console", name="same")
    assert isinstance(sys.stdout, io.TextIOBase) and isinstance(sys.stderr, io.TextIOBase)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        inner = nbtracker.init(project="console", name="inner", reinit="create_new")
        assert isinstance(sys.stdout, io.TextIOBase) and sys.stdout is not buf
        print("kept")
        assert not sys.stdout.closed and sys.stdout.writable() and sys.stdout.tell() == 5
        with sys.stdout as s:
            assert s is sys.stdout
        assert buf.closed and sys.stdout.closed
        inner.finish()
    run.finish()
    assert nbtracker.Api().run(inner.path).output() == "kept\n"


def test_two_runs_at_once_each_record_while_active(capsys):
    a = nbtracker.init(project="console", name="a")
    print("only a")
    b = nbtracker.init(project="console", name="b", reinit="create_new")
    print("both")
    a.finish()
    print("only b")
    b.finish()
    seen = capsys.readouterr().out
    assert [seen.count(s) for s in ("only a", "both", "only b")] == [1, 1, 1]
    api = nbtracker.Api()
    assert api.run(a.path).output() == "only a\nboth\n"
    assert api.run(b.path).output() == "both\nonly b\n"


def test_a_stream_replaced_meanwhile_is_left_alone(capsys):
    class Upper:
        def __init__(self, inner):
            self.inner = inner

        def write(self, s):
            return self.inner.write(s.upper())

        def flush(self):
            self.inner.flush()

    original = sys.stdout
    a = nbtracker.init(project="console", name="wrapped")
    print("before wrapping")
    wrapper = Upper(sys.stdout)
    sys.stdout = wrapper
    print("wrapped")
    a.finish()
    assert sys.stdout is wrapper  # not ours to undo
    print("after")
    b = nbtracker.init(project="console", name="next")
    print("next run")
    b.finish()
    assert sys.stdout is wrapper
    sys.stdout = original
    seen = capsys.readouterr().out
    assert seen.count("NEXT RUN") == 1 and seen.count("AFTER") == 1  # never twice
    api = nbtracker.Api()
    assert api.run(a.path).output() == "before wrapping\nWRAPPED\n"
    assert api.run(b.path).output() == "next run\n"  # what its own tap saw, once


def test_a_forked_child_writes_nothing_to_the_run(tmp_path):
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    p = run_python("""
        import os, sys
        import nbtracker
        run = nbtracker.init(project="console", name="fork")
        print("parent before")
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            print("child says hi")
            sys.stdout.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent after")
        run.finish()
        print(run.path)
    """, env={"NBTRACKER_SILENT": "true"})
    assert "child says hi" in p.stdout  # the user still sees it
    out = nbtracker.Api().run(p.stdout.splitlines()[-1]).output()
    assert out == "parent before\nparent after\n"


def test_progress_lines_collapse_as_a_terminal_shows_them():
    line = console._Line()
    writes = [("stderr", "\r  0%|     |"), ("stderr", "\r 50%|##   |"), ("stdout", ""),
              ("stderr", "\r100%|#####|"), ("stderr", "\n"), ("stdout", "abc\r\n"),
              ("stdout", "12345\rxy"), ("stdout", "\n")]
    out = line.feed(writes, 0.0, final=True)
    assert out == [("stderr", "100%|#####|\n"), ("stdout", "abc\nxy345\n")]
    # a bar that is still drawing is held, then written in its state after HOLD_PROGRESS
    line = console._Line()
    assert line.feed([("stderr", "\r 10%"), ("stderr", "\r 20%")], 0.0, False) == []
    assert line.feed([("stderr", "\r 30%")], console.HOLD_PROGRESS + 1, False) == [("stderr", " 30%")]
    assert line.feed([("stderr", "\r 40%\n")], console.HOLD_PROGRESS + 2, False) == [
        ("stderr", "\r 40%\n")]


# -- notebook ----------------------------------------------------------------------------
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

CELLS = [
    "import sys, threading\nimport nbtracker",
    "run = nbtracker.init(project='nb', name='cells')",
    "print('printed in a cell')",
    "t = threading.Thread(target=lambda: print('printed by a thread'))\nt.start(); t.join()",
    "from tqdm import tqdm\nfor i in tqdm(range(20), bar_format='{l_bar}{bar}| {n_fmt}/{total_fmt}',"
    " mininterval=0, ascii=True):\n    run.log({'i': i})",
    "print('to stderr', file=sys.stderr)",
    "run.finish()",
    "print('printed after finish')\nprint(run.path)",
]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The cells run headless; the kernel is told the notebook's path as Jupyter tells it
    (JPY_SESSION_NAME; nbclient sets nothing of the kind)."""
    tmp = tmp_path_factory.mktemp("nb")
    store = tmp / "store"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    path = tmp / "analysis.ipynb"
    nbformat.write(nb, path)
    repo = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, **CAPTURE_ENV, "NBTRACKER_DIR": str(store),
           "JPY_SESSION_NAME": str(path),
           "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp)}})
    client.execute(env=env)
    return nb, store, path


def cell_text(nb, i: int) -> str:
    return "".join(o.get("text", "") for o in nb.cells[i].get("outputs", [])
                   if o.get("output_type") == "stream")


@pytest.mark.slow
def test_notebook_cells_show_their_output_and_the_run_keeps_it(notebook, monkeypatch):
    nb, store, _ = notebook
    monkeypatch.setenv("NBTRACKER_DIR", str(store))
    assert cell_text(nb, 2) == "printed in a cell\n"
    assert "printed by a thread" in cell_text(nb, 3)
    assert "100%" in cell_text(nb, 4) and "to stderr" in cell_text(nb, 5)
    run_path = cell_text(nb, 7).splitlines()[-1]
    out = nbtracker.Api().run(run_path).output()
    lines = out.splitlines()
    assert "printed in a cell" in lines and "printed by a thread" in lines
    assert "to stderr" in lines and "printed after finish" not in out
    bars = [line for line in lines if "|" in line]
    assert len(bars) == 1 and bars[0].startswith("100%") and bars[0].endswith("20/20")


@pytest.mark.slow
def test_notebook_code_is_the_cells_run_so_far(notebook, monkeypatch, tmp_path):
    nb, store, path = notebook
    monkeypatch.setenv("NBTRACKER_DIR", str(store))
    r = nbtracker.Api().run(cell_text(nb, 7).splitlines()[-1])
    meta = r.metadata
    assert meta["notebook"] == {"path": str(path), "name": "analysis.ipynb"}
    assert meta["program"] == str(path)
    code = r.file("code/analysis.py").download(str(tmp_path)).read_text()
    for n, src in enumerate(CELLS[:7], start=1):  # up to the cell that finished the run
        assert f"# In[{n}]:\n{src}\n" in code
    assert "printed after finish" not in code
    json.dumps(meta)
