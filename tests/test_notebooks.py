"""The example notebooks run headless (nbclient) without error, and save their widget state."""

from __future__ import annotations

import json
import shutil

import nbformat
import pytest
from helpers import REPO

nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def execute(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     store_widget_state=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def errors(nb) -> list[str]:
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"{out.get('ename')}: {out.get('evalue')}")
            elif out.get("output_type") == "stream" and "Traceback" in out.get("text", ""):
                found.append(out["text"])
    return found


def widget_models(nb) -> dict:
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return state.get("state", {})


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_example_notebook_runs_clean(path, tmp_path):
    nb = execute(path, tmp_path)
    assert errors(nb) == []
    models = widget_models(nb)
    kinds = [m["state"].get("_kind") for m in models.values()]
    assert kinds.count("library") == 1  # the charting library travels once
    if path.name == "quickstart.ipynb":
        live = [m["state"] for m in models.values() if m["state"].get("_kind") == "live"]
        assert len(live) == 1
        snap = live[0]["snapshot"]
        assert set(snap) >= {"train/loss", "train/acc", "val/loss"}
        assert live[0]["info"]["state"] == "finished"
        # downsampled, but complete at both ends: the steps the store holds for train/loss
        import nbtracker

        run = nbtracker.Api().runs("quickstart")[0]
        steps = run.history(keys=["train/loss"])["_step"]
        xs = snap["train/loss"]["c"][0] + snap["train/loss"]["t"][0]
        assert min(xs) == steps.min() == 0 and max(xs) == steps.max() > 999
        assert live[0]["xlabels"].get("val/loss") == "epoch"
        # an image and a histogram per epoch, read back as logged
        images = run.media("samples")
        assert [m.step for m in images] == sorted(m.step for m in images) and len(images) == 5
        assert images[-1].load().shape == (48, 48) and images[-1].caption == "epoch 4"
        assert len(run.media("weights")) == 5
        # a checkpoint logged each epoch: five versions, the last one shown with its lineage
        versions = nbtracker.Api().artifacts("model", "quickstart/toy-model")
        assert [v.aliases[0] for v in versions] == [f"epoch-{i}" for i in range(5)]
        assert versions[-1].logged_by().id == run.id
        last = nb.cells[-1].outputs
        assert any("image/svg+xml" in o.get("data", {}) for o in last)
        assert "toy-model:v4" in "".join(o.get("data", {}).get("text/plain", "") for o in last)


def test_saved_size_per_extra_panel(tmp_path):
    """Twenty live panels must not carry twenty copies of the charting library."""
    def notebook(n):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("%load_ext nbtracker")]
        for i in range(n):
            nb.cells.append(nbformat.v4.new_code_cell(
                f"%tracker init --project size --name p{i}\n"
                "import nbtracker\n"
                "for s in range(50): nbtracker.log({'loss': 1 / (s + 1)})\n"))
            nb.cells.append(nbformat.v4.new_code_cell("%tracker finish"))
        return nb

    sizes = {}
    for n in (1, 20):
        path = tmp_path / f"n{n}.ipynb"
        nbformat.write(notebook(n), path)
        nb = execute(path, tmp_path)
        assert errors(nb) == []
        nbformat.write(nb, path)
        sizes[n] = path.stat().st_size
    per_panel = (sizes[20] - sizes[1]) / 19
    print(f"saved notebook: 1 panel {sizes[1]} bytes, 20 panels {sizes[20]} bytes, "
          f"{per_panel:.0f} bytes per extra panel")
    assert sizes[1] > 800_000  # the library is saved once...
    assert per_panel < 60_000  # ...and each further panel costs kilobytes, not a megabyte
    shutil.copy(tmp_path / "n20.ipynb", tmp_path / "keep.ipynb")
    json.loads((tmp_path / "keep.ipynb").read_text())


def test_run_as_last_expression_shows_its_panel(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import nbtracker\nrun = nbtracker.init(project='expr', name='shown')\n"
        "for i in range(10): nbtracker.log({'x': i})\nrun"),
        nbformat.v4.new_code_cell("run.finish()\nrun")]
    path = tmp_path / "expr.ipynb"
    nbformat.write(nb, path)
    nb = execute(path, tmp_path)
    assert errors(nb) == []
    shown = [o["data"] for c in nb.cells for o in c.outputs if o.get("data", {}).get("text/plain")]
    # the live panel, replaced by the finished run's static form; then that form again
    assert len(shown) == 2
    for data in shown:
        assert "application/vnd.jupyter.widget-view+json" not in data
        assert "shown" in data["text/html"] and "finished" in data["text/plain"]
        assert "step 10" in data["text/html"]
    live = [m["state"] for m in widget_models(nb).values() if m["state"].get("_kind") == "live"]
    assert len(live) == 1 and live[0]["info"]["state"] == "finished"  # one panel per run
    assert live[0]["snapshot"]["x"]["c"][0] == list(range(10))


def test_kernel_restart_leaves_an_unfinished_run_crashed():
    from jupyter_client.manager import start_new_kernel

    import nbtracker

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        reply = kc.execute_interactive(
            "import nbtracker\nrun = nbtracker.init(project='restart')\n"
            "nbtracker.log({'a': 1})\nprint(run.path)", timeout=60)
        assert reply["content"]["status"] == "ok"
        km.restart_kernel(now=False)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    run = nbtracker.Api().runs("restart")[0]
    assert run.state == "crashed" and run.history()["a"].tolist() == [1]
