"""The lineage graph in Chromium: its static HTML draws every node, readable and apart, inside
the page, with no script run and nothing fetched; in JupyterLab an Artifact as a cell's result
and `%tracker lineage` show it."""

from __future__ import annotations

import base64
import itertools
import re

from nbdriver import foreign_requests, open_and_run, screenshot, wait_idle

import nbtracker
from nbtracker.artifacts.lineage import Lineage

# each tries to run a script if its text reached the page as markup
HOSTILE = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> & '
           "'quoted'")

# every node box: its id, label and detail text, and the boxes of the rectangle and the texts
BOXES = """() => [...document.querySelectorAll('svg g.nbt-node')].map(g => {
  const r = g.querySelector('rect').getBoundingClientRect();
  const [label, detail] = [...g.querySelectorAll('text')];
  const box = e => { const b = e.getBoundingClientRect();
                     return {l: b.left, r: b.right, t: b.top, b: b.bottom}; };
  return {id: g.dataset.id, label: label.textContent, detail: detail.textContent,
          rect: box(g.querySelector('rect')), labelBox: box(label), detailBox: box(detail),
          visible: r.width > 0 && r.height > 0 &&
                   getComputedStyle(label).visibility !== 'hidden'};
})"""


def _pipeline(tmp_path):
    (tmp_path / "train.csv").write_text("x\n1\n")
    r1 = nbtracker.init(project="lin", name="prep", reinit=True)
    data = nbtracker.Artifact("mnist", type="dataset")
    data.add_file(str(tmp_path / "train.csv"))
    r1.log_artifact(data)
    r1.finish()
    r2 = nbtracker.init(project="lin", name=HOSTILE, reinit=True)
    r2.use_artifact("mnist:latest")
    for epoch in range(2):
        (tmp_path / "model.pt").write_bytes(b"w%d" % epoch)
        nbtracker.log_model(str(tmp_path / "model.pt"), name="mnist-cnn")
    r2.finish()
    r3 = nbtracker.init(project="lin", name="evaluate-" + "x" * 60, reinit=True)
    r3.use_artifact("mnist-cnn:latest")
    r3.finish()
    return data


def _inside(inner: dict, outer: dict, slack: float = 0.5) -> bool:
    return (inner["l"] >= outer["l"] - slack and inner["r"] <= outer["r"] + slack
            and inner["t"] >= outer["t"] - slack and inner["b"] <= outer["b"] + slack)


def _apart(a: dict, b: dict) -> bool:
    return a["r"] <= b["l"] or b["r"] <= a["l"] or a["b"] <= b["t"] or b["b"] <= a["t"]


def test_static_lineage_draws_every_node_apart_and_inside_the_page(page, tmp_path):
    data = _pipeline(tmp_path)
    lin = Lineage.of(data, depth=2)
    html = lin._repr_mimebundle_()["text/html"]
    page.set_content(f"<!DOCTYPE html><html><body>{html}</body></html>")
    page.wait_for_function("() => { const i = document.querySelector('.nbt-static img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    caption = page.locator(".nbt-static").inner_text()
    assert "mnist:v0" in caption and "project lin" in caption
    img = page.locator(".nbt-static img")
    box = img.bounding_box()
    view = page.viewport_size
    assert box["x"] >= 0 and box["x"] + box["width"] <= view["width"]
    assert box["y"] >= 0 and box["y"] + box["height"] <= view["height"]
    svg_text = base64.b64decode(img.get_attribute("src").split(",", 1)[1]).decode()
    width = int(re.search(r'width="(\d+)"', svg_text).group(1))
    assert page.evaluate("() => document.querySelector('.nbt-static img').naturalWidth") == width
    assert page.evaluate("() => window.__pwned") is None

    # the very image the HTML shows, drawn as a document of its own to look inside it
    page.set_content(f'<!DOCTYPE html><html><body style="margin:0">{svg_text}</body></html>')
    boxes = page.evaluate(BOXES)
    assert sorted(b["id"] for b in boxes) == sorted(n.id for n in lin.nodes)
    svg_box = page.locator("svg").bounding_box()
    frame = {"l": svg_box["x"], "r": svg_box["x"] + svg_box["width"], "t": svg_box["y"],
             "b": svg_box["y"] + svg_box["height"]}
    assert frame["r"] <= view["width"] and frame["b"] <= view["height"]
    for b in boxes:
        node = lin.node(b["id"])
        full = node.label if node.kind == "artifact" else node.name
        shown = b["label"]
        assert shown == full or (shown.endswith("…") and full.startswith(shown[:-1])), b
        assert b["visible"]
        assert page.get_by_text(shown, exact=True).first.is_visible()
        assert _inside(b["rect"], frame)
        # the label and the detail line fit inside their box
        assert _inside(b["labelBox"], b["rect"]) and _inside(b["detailBox"], b["rect"]), b
    for a, b in itertools.combinations(boxes, 2):
        assert _apart(a["rect"], b["rect"]), (a["id"], b["id"])
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("script").count() == 0
    screenshot(page.locator("svg"), "lineage-static")
    assert foreign_requests(page) == []


LAB_CELLS = [
    "%load_ext nbtracker",
    "import pathlib, nbtracker\n"
    "pathlib.Path('train.csv').write_text('x\\n1\\n')\n"
    "run = nbtracker.init(project='lab-lineage', name='prep', reinit=True)\n"
    "art = nbtracker.Artifact('mnist', type='dataset')\n"
    "art.add_file('train.csv')\n"
    "run.log_artifact(art)\n"
    "run.finish()\n"
    "art",
    "%tracker lineage lab-lineage/mnist:latest",
]
SHOWN = ".nbt-static[data-nbt-static='lineage'] img"
LOADED = f"""() => [...document.querySelectorAll("{SHOWN}")]
  .filter(i => i.complete && i.naturalWidth > 0).length"""


def test_jupyterlab_shows_an_artifacts_lineage_and_the_magics(lab_server, page):
    open_and_run(page, lab_server, "lineage.ipynb", LAB_CELLS)
    page.wait_for_function(f"() => ({LOADED})() === 2", timeout=60_000)
    wait_idle(page)
    shown = page.locator(".nbt-static[data-nbt-static='lineage']")
    assert shown.count() == 2
    for i in range(2):
        text = shown.nth(i).inner_text()
        assert "mnist:v0" in text and "project lab-lineage" in text
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert all("Traceback" not in errors.nth(i).inner_text() for i in range(errors.count()))
    screenshot(shown.nth(0), "lineage-lab")
    assert foreign_requests(page) == []
