"""Lineage: the graph of versions and runs, gathered from the runs' record logs, and its
forms (SVG, the notebook's bundle, text) for a pipeline made through the public API."""

from __future__ import annotations

import base64
import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

import nbtracker
from nbtracker.artifacts.lineage import MAX_PER_COLUMN, Lineage

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(\"x\")</script> & 'quoted' <img src=x onerror=alert(1)>"


def _run(project: str, name: str):
    return nbtracker.init(project=project, name=name, reinit=True)


@pytest.fixture
def pipeline(tmp_path):
    """run 1 logs the dataset mnist; run 2 uses mnist:latest and logs a model twice (two
    versions); run 3 uses the model's latest version."""
    (tmp_path / "train.csv").write_text("x,y\n1,2\n3,4\n")
    r1 = _run("lin", "prep")
    data = nbtracker.Artifact("mnist", type="dataset", metadata={"rows": 2})
    data.add_file(str(tmp_path / "train.csv"))
    r1.log_artifact(data)
    r1.finish()
    r2 = _run("lin", "train-1")
    used = r2.use_artifact("mnist:latest")
    models = []
    for epoch in range(2):
        (tmp_path / "model.pt").write_bytes(b"weights %d" % epoch)
        models.append(nbtracker.log_model(str(tmp_path / "model.pt"), name="mnist-cnn"))
    r2.finish()
    r3 = _run("lin", "evaluate")
    r3.use_artifact("mnist-cnn:latest")
    r3.finish()
    return {"runs": (r1, r2, r3), "data": used, "models": models}


def A(name: str, v: int, project: str = "lin") -> str:
    return f"artifact:{project}/{name}:v{v}"


def R(run) -> str:
    return f"run:{run.project}/{run.id}"


def _edges(lin: Lineage) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.kind) for e in lin.edges}


def _svg_nodes(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    return {g.get("data-id"): g for g in root.iter(f"{SVG}g") if g.get("class") == "nbt-node"}


def _label(g: ET.Element) -> str:
    (t,) = [t for t in g.iter(f"{SVG}text") if t.get("class") == "nbt-label"]
    return "".join(t.itertext())


def test_a_dataset_shows_who_logged_it_who_used_it_and_what_they_logged(pipeline):
    r1, r2, r3 = pipeline["runs"]
    lin = Lineage.of(pipeline["data"])
    assert {n.id for n in lin.nodes} == {R(r1), A("mnist", 0), R(r2), A("mnist-cnn", 0),
                                         A("mnist-cnn", 1)}
    assert _edges(lin) == {
        (R(r1), A("mnist", 0), "logged"),
        (A("mnist", 0), R(r2), "used"),
        (R(r2), A("mnist-cnn", 0), "logged"),
        (R(r2), A("mnist-cnn", 1), "logged"),
    }
    col = {n.id: n.column for n in lin.nodes}
    assert col[R(r1)] < col[A("mnist", 0)] < col[R(r2)] < col[A("mnist-cnn", 0)] == col[
        A("mnist-cnn", 1)]
    focus = lin.node(A("mnist", 0))
    assert focus.focus and lin.focused is focus and [n.id for n in lin.nodes if n.focus] == [
        focus.id]
    assert (focus.type, focus.aliases, focus.label) == ("dataset", ["latest"], "mnist:v0")
    run2 = lin.node(R(r2))
    assert (run2.kind, run2.name, run2.run_id, run2.state) == ("run", "train-1", r2.id,
                                                               "finished")
    # the same graph as the Artifact's own lineage() and its lineage queries
    assert {n.id for n in pipeline["data"].lineage().nodes} == {n.id for n in lin.nodes}
    assert pipeline["data"].logged_by().id == r1.id
    assert [r.id for r in pipeline["data"].used_by()] == [r2.id]


def test_a_model_version_shows_its_data_upstream_and_its_users_downstream(pipeline):
    r1, r2, r3 = pipeline["runs"]
    lin = nbtracker.Api().artifact("lin/mnist-cnn:v1").lineage()
    # one hop up: the run that logged it and that run's inputs; one hop down: its users
    assert {n.id for n in lin.nodes} == {A("mnist", 0), R(r2), A("mnist-cnn", 1), R(r3)}
    assert (A("mnist-cnn", 1), R(r3), "used") in _edges(lin)
    # v0, logged by the same run, is not this version's lineage
    assert A("mnist-cnn", 0) not in {n.id for n in lin.nodes}


def test_a_runs_lineage_from_a_live_run_an_api_run_or_its_path(pipeline):
    r1, r2, r3 = pipeline["runs"]
    api_run = nbtracker.Api().run(f"lin/{r2.id}")
    forms = [Lineage.of_run(api_run), Lineage.of_run(r2), Lineage.of_run(f"lin/{r2.id}")]
    want = {R(r1), A("mnist", 0), R(r2), A("mnist-cnn", 0), A("mnist-cnn", 1), R(r3)}
    for lin in forms:
        assert {n.id for n in lin.nodes} == want
        assert lin.focus == R(r2) and lin.focused.kind == "run"
    with pytest.raises(ValueError):
        Lineage.of_run(12)


def test_depth_bounds_the_walk(pipeline):
    r1, r2, r3 = pipeline["runs"]
    data = pipeline["data"]
    assert [n.id for n in Lineage.of(data, depth=0).nodes] == [A("mnist", 0)]
    one = {n.id for n in Lineage.of(data, depth=1).nodes}
    two = {n.id for n in Lineage.of(data, depth=2).nodes}
    assert R(r3) not in one and R(r3) in two and one < two
    assert {n.id for n in Lineage.of(data, depth=50).nodes} == two  # the graph ends there
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match="depth"):
            Lineage.of(data, depth=bad)


def test_text_form_reads_as_the_pipeline(pipeline):
    r1, r2, r3 = pipeline["runs"]
    text = Lineage.of(pipeline["data"]).to_text()
    lines = text.splitlines()
    assert lines[0] == "lineage of mnist:v0 (dataset) in project lin"
    assert f"  run prep ({r1.id}, finished) → [mnist:v0 (dataset)]" in lines
    assert (f"  [mnist:v0 (dataset)] → run train-1 ({r2.id}, finished) → mnist-cnn:v0 (model), "
            f"mnist-cnn:v1 (model)") in lines
    assert repr(Lineage.of(pipeline["data"])) == text


def test_svg_is_xml_with_a_node_per_version_and_run(pipeline):
    lin = Lineage.of(pipeline["data"], depth=2)
    nodes = _svg_nodes(lin.to_svg())
    assert set(nodes) == {n.id for n in lin.nodes}
    for n in lin.nodes:
        g = nodes[n.id]
        assert g.get("data-kind") == n.kind
        assert _label(g) == (n.label if n.kind == "artifact" else n.name)
        assert (g.get("data-focus") == "true") == n.focus
    edges = [g for g in ET.fromstring(lin.to_svg()).iter(f"{SVG}g") if g.get("class") == "nbt-edge"]
    assert len(edges) == len(lin.edges)
    assert "<script" not in lin.to_svg() and "href" not in lin.to_svg()  # nothing to run or fetch


def test_the_notebook_bundle_holds_the_svg_as_an_image_a_caption_and_text(pipeline):
    lin = Lineage.of(pipeline["data"])
    data = lin._repr_mimebundle_()
    assert set(data) == {"text/html", "image/svg+xml", "text/plain"}
    html = data["text/html"]
    assert 'data-nbt-static="lineage"' in html and "<script" not in html
    (src,) = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert base64.b64decode(src).decode() == data["image/svg+xml"]
    assert "mnist:v0" in html and "1 file" in html and "project lin" in html
    assert data["text/plain"] == lin.to_text()
    assert set(lin._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}
    assert "image/svg+xml" not in lin._repr_mimebundle_(exclude=["image/svg+xml"])
    # an Artifact shown as a cell's result is its lineage; a draft has no graph to show
    assert pipeline["data"]._repr_mimebundle_()["text/plain"] == data["text/plain"]
    assert nbtracker.Artifact("draft", type="dataset")._repr_mimebundle_() is None


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_hostile_run_and_project_names_are_escaped_everywhere(tmp_path):
    (tmp_path / "d.txt").write_text("d")
    project = "p&<b>\"q'"
    r = nbtracker.init(project=project, name=HOSTILE)
    art = nbtracker.Artifact("data", type="dataset")
    art.add_file(str(tmp_path / "d.txt"))
    r.log_artifact(art)
    r.finish()
    lin = art.lineage()
    svg = lin.to_svg()
    nodes = _svg_nodes(svg)  # parses: every & < > " escaped
    run_node = nodes[f"run:{project}/{r.id}"]
    shown = _label(run_node)
    assert shown.endswith("…") and HOSTILE.startswith(shown[:-1])  # cut, never unescaped
    titles = ["".join(t.itertext()) for t in run_node.iter(f"{SVG}title")]
    assert any(HOSTILE in t for t in titles)  # the whole name, as text
    assert "<script" not in svg and "<img" not in svg
    html = lin._repr_mimebundle_()["text/html"]
    p = _Tags()
    p.feed(html)
    assert [t for t, _ in p.tags if t not in ("div", "b", "span", "img")] == []
    assert all(not any(k.startswith("on") for k in a) for _, a in p.tags)
    assert "&lt;b&gt;" in html  # the project, escaped in the caption
    (src,) = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert b"<script" not in base64.b64decode(src)
    assert HOSTILE in lin.to_text()  # plain text holds it as it is


def test_long_labels_are_cut_and_boxes_fit_them(tmp_path):
    (tmp_path / "d.txt").write_text("d")
    long_name = "a-very-long-run-name-" * 5
    r = nbtracker.init(project="lin", name=long_name)
    art = nbtracker.Artifact("d" * 100, type="dataset")
    art.add_file(str(tmp_path / "d.txt"))
    r.log_artifact(art)
    r.finish()
    nodes = _svg_nodes(art.lineage().to_svg())
    labels = {k: _label(g) for k, g in nodes.items()}
    assert all(len(v) <= 30 and v.endswith("…") for v in labels.values())
    widths = {k: float(g.find(f"{SVG}rect").get("width")) for k, g in nodes.items()}
    short = nbtracker.init(project="lin", name="s")
    short.use_artifact(art.name)
    short.finish()
    nodes = _svg_nodes(art.lineage().to_svg())
    small = float(nodes[f"run:lin/{short.id}"].find(f"{SVG}rect").get("width"))
    assert small < widths[f"run:lin/{r.id}"]  # a box is as wide as its label


def test_a_crowded_column_folds_into_a_more_node(tmp_path):
    (tmp_path / "d.txt").write_text("d")
    r = nbtracker.init(project="crowd", name="prep")
    art = nbtracker.Artifact("shared", type="dataset")
    art.add_file(str(tmp_path / "d.txt"))
    r.log_artifact(art)
    r.finish()
    users = []
    for i in range(MAX_PER_COLUMN + 8):
        u = nbtracker.init(project="crowd", name=f"user-{i}")
        u.use_artifact("shared:v0")
        u.finish()
        users.append(u)
    lin = art.lineage()
    assert {R(u) for u in users} <= {n.id for n in lin.nodes}  # every user is in the data
    svg = lin.to_svg()
    nodes = _svg_nodes(svg)
    drawn_users = [k for k in nodes if k in {R(u) for u in users}]
    hidden = len(users) - len(drawn_users)
    assert len(drawn_users) == MAX_PER_COLUMN - 1
    more = [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("data-kind") == "more"]
    assert len(more) == 1 and _label(more[0]) == f"+{hidden} more"
    assert f"  [shared:v0 (dataset)] → +{hidden} more runs" in lin.to_text().splitlines()


def test_lineage_survives_losing_the_run_index(pipeline, store):
    before = Lineage.of(pipeline["data"], depth=2)
    os.remove(store / "index.sqlite")
    after = nbtracker.Api().artifact("lin/mnist:v0").lineage()
    after2 = Lineage.of(nbtracker.Api().artifact("lin/mnist:v0"), depth=2)
    assert after2.to_text() == before.to_text()
    assert _edges(after2) == _edges(before) and len(after.nodes) == 5
    nbtracker.Api().reindex()
    again = Lineage.of(nbtracker.Api().artifact("lin/mnist:v0"), depth=2)
    assert [n.id for n in again.nodes] == [n.id for n in before.nodes]


def test_a_deleted_version_stays_in_the_graph_marked_deleted(pipeline):
    r1, r2, r3 = pipeline["runs"]
    nbtracker.Api().artifact("lin/mnist-cnn:v0").delete()
    lin = Lineage.of(pipeline["data"])
    gone = lin.node(A("mnist-cnn", 0))
    assert (gone.state, gone.type) == ("deleted", "model")
    assert "mnist-cnn:v0 (model, deleted)" in lin.to_text()
    assert "deleted" in "".join(_svg_nodes(lin.to_svg())[gone.id].itertext())


def test_a_run_that_uses_what_it_logged_makes_a_cycle_drawn_once(tmp_path):
    (tmp_path / "d.txt").write_text("d")
    a = nbtracker.init(project="loop", name="a")
    art = nbtracker.Artifact("x", type="dataset")
    art.add_file(str(tmp_path / "d.txt"))
    a.log_artifact(art)
    b = nbtracker.init(project="loop", name="b", reinit="create_new")  # a goes on running
    b.use_artifact("loop/x:v0")
    (tmp_path / "e.txt").write_text("e")
    y = nbtracker.Artifact("y", type="dataset")
    y.add_file(str(tmp_path / "e.txt"))
    b.log_artifact(y)
    b.finish()
    a.use_artifact("loop/y:v0")  # a used what came from what it logged: a → x → b → y → a
    a.use_artifact("loop/x:v0")  # and its own output
    a.finish()
    lin = Lineage.of(art, depth=10)
    ids = [n.id for n in lin.nodes]
    assert sorted(ids) == sorted({R(a), R(b), A("x", 0, "loop"), A("y", 0, "loop")})
    assert (A("x", 0, "loop"), R(a), "used") in _edges(lin)
    assert (R(a), A("x", 0, "loop"), "logged") in _edges(lin)
    assert set(_svg_nodes(lin.to_svg())) == set(ids)


def test_save_writes_svg_or_html(pipeline, tmp_path):
    lin = Lineage.of(pipeline["data"])
    svg = Path(lin.save(tmp_path / "g.svg")).read_text()
    assert svg == lin.to_svg()
    page = Path(lin.save(tmp_path / "g.html")).read_text()
    assert page.startswith("<!DOCTYPE html>") and lin._repr_mimebundle_()["text/html"] in page
    with pytest.raises(ValueError, match=r"\.svg or \.html"):
        lin.save(tmp_path / "g.png")


def test_a_draft_has_no_lineage():
    with pytest.raises(ValueError, match="draft"):
        Lineage.of(nbtracker.Artifact("draft", type="dataset"))


@pytest.fixture
def shell():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "nbtracker")
    return ip


def test_magic_shows_the_lineage_of_a_ref(pipeline, shell, monkeypatch, capsys):
    from nbtracker.notebook import magics

    r1, r2, r3 = pipeline["runs"]
    shown = []
    monkeypatch.setattr(magics, "display", shown.append)
    shell.run_line_magic("tracker", "lineage lin/mnist:latest")
    shell.run_line_magic("tracker", "lineage lin/mnist-cnn:v0 --depth 0")
    shell.run_line_magic("tracker", f"lineage --run lin/{r3.id}")
    assert [type(s) for s in shown] == [Lineage] * 3
    assert shown[0].focus == A("mnist", 0) and len(shown[0].nodes) == 5
    assert [n.id for n in shown[1].nodes] == [A("mnist-cnn", 0)]
    assert shown[2].focus == R(r3)
    assert capsys.readouterr().err == ""
    for bad in ("lineage", "lineage lin/nothing:v0", "lineage mnist:v0 --depth -1",
                "lineage lin/mnist:v9", "lineage --run nosuchrun"):
        shell.run_line_magic("tracker", bad)
        err = capsys.readouterr().err.strip()
        assert err.startswith("nbtracker:") and len(err.splitlines()) == 1, (bad, err)
    assert len(shown) == 3


def test_magic_names_resolve_in_the_active_runs_project(pipeline, shell, monkeypatch):
    from nbtracker.notebook import magics

    shown = []
    monkeypatch.setattr(magics, "display", shown.append)
    run = nbtracker.init(project="lin", name="looking")
    shell.run_line_magic("tracker", "lineage mnist:v0")
    run.finish()
    assert shown and shown[0].focus == A("mnist", 0)


@pytest.mark.slow
def test_a_saved_notebook_holds_the_lineage_as_svg(tmp_path):
    """Executed headless: an Artifact as a cell's last expression and `%tracker lineage` both
    leave image/svg+xml (and the static HTML) in the saved outputs."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbtracker"),
        nbformat.v4.new_code_cell(
            "import pathlib, nbtracker\n"
            "pathlib.Path('train.csv').write_text('x\\n1\\n')\n"
            "run = nbtracker.init(project='nb', name='prep')\n"
            "art = nbtracker.Artifact('mnist', type='dataset')\n"
            "art.add_file('train.csv')\n"
            "run.log_artifact(art)\n"
            "run.finish()\n"
            "art"),
        nbformat.v4.new_code_cell("%tracker lineage nb/mnist:latest"),
    ]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    saved = nbformat.read(path, as_version=4)
    for cell, kind in ((saved.cells[1], "execute_result"), (saved.cells[2], "display_data")):
        assert not [o for o in cell.outputs if o.output_type == "error"]
        (out,) = [o for o in cell.outputs if o.output_type == kind]
        svg = out.data["image/svg+xml"]
        nodes = _svg_nodes(svg)
        assert any(k.startswith("artifact:nb/mnist:v0") for k in nodes)
        assert any(k.startswith("run:nb/") for k in nodes)
        assert 'data-nbt-static="lineage"' in out.data["text/html"]
        assert "mnist:v0 (dataset)" in out.data["text/plain"]


def test_a_version_no_run_touched_is_drawn_alone(tmp_path):
    (tmp_path / "d.txt").write_text("d")
    art = nbtracker.Artifact("alone", type="dataset")
    art.add_file(str(tmp_path / "d.txt"))
    art.save(project="solo")  # no run: nothing logged it
    lin = art.lineage()
    assert [n.id for n in lin.nodes] == [A("alone", 0, "solo")] and lin.edges == []
    assert lin.to_text().splitlines()[1] == "  [alone:v0 (dataset)]: no run logged or used it"
    assert set(_svg_nodes(lin.to_svg())) == {A("alone", 0, "solo")}


def test_the_run_that_logged_a_version_is_named_even_once_its_folder_is_gone(tmp_path):
    import shutil

    (tmp_path / "d.txt").write_text("d")
    r = nbtracker.init(project="gone", name="prep")
    art = nbtracker.Artifact("kept", type="dataset")
    art.add_file(str(tmp_path / "d.txt"))
    r.log_artifact(art)
    r.finish()
    shutil.rmtree(nbtracker.Api().run(f"gone/{r.id}").storage_dir)
    lin = nbtracker.Api().artifact("gone/kept:v0").lineage()
    run = lin.node(R(r))  # from the version's created_by
    assert (run.state, run.run_id) == ("not in store", r.id)
    assert f"run {r.id} ({r.id}, not in store) → [kept:v0 (dataset)]" in lin.to_text()


def test_gathering_stops_at_max_nodes(pipeline, monkeypatch):
    from nbtracker.artifacts import lineage

    monkeypatch.setattr(lineage, "MAX_NODES", 3)
    lin = Lineage.of(pipeline["data"], depth=3)
    # prep, mnist, train-1; the two models next to them are left out, and the walk ends there
    assert {n.id for n in lin.nodes} == {R(pipeline["runs"][0]), A("mnist", 0),
                                         R(pipeline["runs"][1])}
    assert lin.truncated == 2 and lin.focused.id == A("mnist", 0)
    assert "(stopped at 3 nodes: 2 more next to them, and what lies beyond, not shown)" in (
        lin.to_text())
    assert set(_svg_nodes(lin.to_svg())) == {n.id for n in lin.nodes}
