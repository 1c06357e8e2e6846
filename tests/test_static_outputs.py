"""Finished panels read anywhere: a notebook run headless with nbclient keeps, for each finished
run, a static output (summary and charts as SVG) that nbconvert's HTML shows without widget
state, script or network — and whose size stays small."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time

import nbformat
import pytest
from helpers import media_cell

nbclient = pytest.importorskip("nbclient")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

CELLS = [
    "%load_ext nbtracker",
    # shown by the magic, trained in the next cell, finished in a third
    "%tracker init --project static --name across-cells lr=0.1",
    """import math, nbtracker
for i in range(3000):
    nbtracker.log({"train/loss": math.exp(-i / 500) + (0.5 if i == 1234 else 0), "val/acc": i / 3000})""",
    "%tracker finish",
    # all in one cell, displayed as the cell's value
    """run = nbtracker.init(project="static", name="<b>one-cell</b>", config={"lr": 0.2})
display(run)
for i in range(500):
    run.log({"loss": 1 / (i + 1)})
run.summary["best"] = "<i>x</i>"
run.finish()""",
    # a finished run displayed later
    "run",
    # a run that logs media, shown while it runs
    media_cell(),
]


class Client(nbclient.NotebookClient):
    """nbclient, noting when it receives display updates of a panel."""

    updates: list[float] = []

    def process_message(self, msg, cell, cell_index):
        if msg["msg_type"] == "update_display_data" and "text/html" in msg["content"]["data"]:
            self.updates.append(time.monotonic())
        return super().process_message(msg, cell, cell_index)


def execute(cells: list[str], tmp_path, store_widget_state: bool = True, env=None,
            client_class=nbclient.NotebookClient):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    client = client_class(nb, timeout=120, kernel_name="python3",
                          store_widget_state=store_widget_state,
                          resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env) if env else client.execute()
    return nb


def tags(html: str) -> list[tuple[str, dict]]:
    """Every start tag in `html` with its attributes (values unescaped), in order."""
    from html.parser import HTMLParser

    found: list = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, {k: v or "" for k, v in attrs}))

    Parser().feed(html)
    return found


def outputs(nb, index: int) -> list[dict]:
    return nb.cells[index].get("outputs", [])


def static_outputs(nb) -> list[tuple[int, dict]]:
    return [(i, o) for i, c in enumerate(nb.cells) for o in c.get("outputs", [])
            if "nbt-static" in str(o.get("data", {}).get("text/html", ""))]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("static")
    nb = execute(CELLS, tmp)
    path = tmp / "static.ipynb"
    nbformat.write(nb, path)
    return nb, path


@pytest.mark.slow
def test_finished_panels_become_static_outputs(executed):
    nb, _ = executed
    for i in (1, 4, 5, 6):
        outs = [o for o in outputs(nb, i) if o["output_type"] in ("display_data", "execute_result")
                and o["data"].get("text/plain")]
        assert len(outs) == 1, (i, outs)
        data = outs[0]["data"]
        assert WIDGET_VIEW not in data, i  # replaced: no viewer needs the widget any more
        assert data["text/html"].count("<img src=\"data:image/svg+xml;base64,") == 1
        assert data["image/svg+xml"].startswith("<svg")
        assert "finished" in data["text/plain"]
    across = outputs(nb, 1)[0]["data"]
    assert "across-cells" in across["text/html"]
    assert across["image/svg+xml"].count("<path d=") >= 2  # train/loss and val/acc drawn
    one = next(o for o in outputs(nb, 4) if "text/html" in o.get("data", {}))["data"]["text/html"]
    assert "<b>one-cell</b>" not in one and "&lt;b&gt;one-cell&lt;/b&gt;" in one
    assert "&lt;i&gt;x&lt;/i&gt;" in one
    # the panel said it all: no red start/finish lines in the cells that showed a panel
    for i in (1, 3, 4):
        assert not [o for o in outputs(nb, i) if o.get("name") == "stderr"], outputs(nb, i)


@pytest.mark.slow
def test_saved_size_per_finished_panel(executed, tmp_path):
    """One more finished panel costs at most 60 KB in the saved file, image included (the
    charting library, saved once per notebook, is not counted: the first panel brings it)."""
    base = execute(CELLS[:4], tmp_path)
    again = [CELLS[1].replace("across-cells", "again"), *CELLS[2:4]]
    one_more = execute(CELLS[:4] + again, tmp_path)
    grow = len(nbformat.writes(one_more)) - len(nbformat.writes(base))
    print(f"saved size of one finished panel (3,000 steps, 2 metrics): {grow / 1024:.1f} KB")
    assert grow <= 60 * 1024


@pytest.mark.slow
def test_nbconvert_html_shows_the_charts_without_widgets(executed, tmp_path):
    _, path = executed
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path),
                    "--output-dir", str(tmp_path)], check=True, capture_output=True)
    page = (tmp_path / "static.html").read_text()
    # drop scripts: what is left is what a viewer shows without running anything
    visible = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert visible.count('class="nbt-static"') == 4
    images = re.findall(r'<img[^>]*src="data:image/svg\+xml;base64,([^"]+)"', visible)
    assert len(images) >= 3 + 1  # the runs' charts, the media run's histograms (and system charts)
    assert all(base64.b64decode(i).startswith(b"<svg") for i in images)
    assert "across-cells" in visible and "train/loss" in visible
    assert f'<script type="{WIDGET_VIEW}"' not in page  # no output needs a widget manager
    # the media run: images (last step and earlier ones), a table with thumbnails, the
    # histogram heat-map, an audio player, the HTML document in a sandboxed frame
    media = tags(visible[visible.index('data-key="samples"'):])
    pngs = [a for t, a in media if t == "img" and a.get("src", "").startswith("data:image/png;base64,")]
    assert len(pngs) == 1 + 8 + 4 and {a["class"] for a in pngs} == {"nbt-img", "nbt-thumb"}
    assert sum(1 for t, a in media if t == "table" and a.get("class") == "nbt-media-table") == 1
    assert [a for t, a in media if t == "div" and a.get("class") == "nbt-hist"]
    (audio,) = [a for t, a in media if t == "audio"]
    assert "controls" in audio and audio["src"].startswith("data:audio/wav;base64,")
    (frame,) = [a for t, a in media if t == "iframe"]
    assert frame["sandbox"] == "" and frame["srcdoc"] == "<h3>report</h3><p>hello</p>"
    assert all(a["src"].startswith("data:") for t, a in media if "src" in a)
    preds = visible[visible.index('data-key="preds"'):]
    assert preds.index("&lt;script&gt;alert(1)&lt;/script&gt;") < preds.index("</table>")  # a cell's text


@pytest.mark.slow
def test_static_mode_refreshes_the_output(tmp_path):
    """NBTRACKER_NOTEBOOK_PANEL=static (Colab's default): no widget at all; the output is the
    static form, refreshed through its display_id while the run logs, final at finish."""
    import os

    cells = ["%load_ext nbtracker",
             """import time, nbtracker
run = nbtracker.init(project="static", name="refreshed")
display(run)
for i in range(40):
    run.log({"loss": 1 / (i + 1)})
    time.sleep(0.1)
run.finish()"""]
    Client.updates = []
    nb = execute(cells, tmp_path, env={**os.environ, "NBTRACKER_NOTEBOOK_PANEL": "static"},
                 client_class=Client)
    # refreshed while it ran (4 s of logging), at most once a second, and once more at finish
    gaps = [b - a for a, b in zip(Client.updates, Client.updates[1:-1])]
    assert len(Client.updates) >= 3, Client.updates
    assert all(g >= 0.9 for g in gaps), gaps
    outs = outputs(nb, 1)
    shown = [o for o in outs if o["output_type"] == "display_data" and o["data"]["text/plain"]]
    assert len(shown) == 1, outs
    assert WIDGET_VIEW not in json.dumps(outs)
    assert "finished" in shown[0]["data"]["text/plain"] and "step 40" in shown[0]["data"]["text/html"]
    assert "widgets" not in nb.metadata  # no widget was made


@pytest.mark.slow
def test_comparisons_tables_and_diffs_carry_their_static_form(tmp_path):
    """Widgets that stay interactive carry their static form beside the widget view: a
    converter that has no widget state for them (nbconvert here) shows it."""
    cells = ["%load_ext nbtracker",
             """import nbtracker
runs = []
for i, lr in enumerate([0.1, 0.2]):
    with nbtracker.init(project="carry", name=f"<i>r{i}</i>", config={"lr": lr}) as r:
        for s in range(100):
            r.log({"loss": 1 / (1 + lr * s)})
    runs.append(r)""",
             "%tracker compare {runs[0].project}/{runs[0].id} {runs[1].project}/{runs[1].id}",
             'nbtracker.runs_table("carry")']
    nb = execute(cells, tmp_path, store_widget_state=False)
    kinds = {}
    for o in outputs(nb, 2) + outputs(nb, 3):
        data = o.get("data", {})
        m = re.search(r'data-nbt-static="(\w+)"', data.get("text/html", ""))
        if m:
            kinds[m.group(1)] = data
    assert set(kinds) == {"compare", "diff", "runs"}
    assert WIDGET_VIEW in kinds["compare"] and WIDGET_VIEW in kinds["runs"]  # live: interactive
    assert WIDGET_VIEW not in kinds["diff"]  # plain HTML, interactive without a kernel
    assert kinds["compare"]["image/svg+xml"].count('stroke-width="1.5"') == 2
    assert "&lt;i&gt;r1&lt;/i&gt;" in kinds["runs"]["text/html"]
    path = tmp_path / "carry.ipynb"
    nbformat.write(nb, path)
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path),
                    "--output-dir", str(tmp_path)], check=True, capture_output=True)
    visible = re.sub(r"<script.*?</script>", "", (tmp_path / "carry.html").read_text(), flags=re.S)
    for kind in ("compare", "diff", "runs"):
        assert f'data-nbt-static="{kind}"' in visible
    assert "<i>r1</i>" not in visible
