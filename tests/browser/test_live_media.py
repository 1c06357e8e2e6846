"""The live panel's media, alerts and system sections in JupyterLab (headless Chromium, loopback).

One notebook logs an image over a few steps, a histogram over steps, a table with image cells,
audio, HTML, a point cloud and a plotly figure, raises an alert and records system samples; the
run stays open and the kernel idle, so the panel's front-end can ask the kernel for files.
"""

from __future__ import annotations

import platform

from nbdriver import foreign_requests, open_and_run, screenshot, wait_idle

SETUP = """import os, sys, time
import numpy as np
import plotly.graph_objects as go
import nbtracker

def square(color, size=32):
    a = np.zeros((size, size, 3), np.uint8)
    a[:, :] = color
    a[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 255 - np.array(color, np.uint8)
    return a
"""

LOG = """deadline = time.monotonic() + 60
while not os.path.exists("panel-drawn") and time.monotonic() < deadline:  # the test says when
    time.sleep(0.05)
run = nbtracker.run
colors = [(200, 30, 30), (30, 160, 30), (30, 30, 200)]
rng = np.random.default_rng(0)
for step in range(3):
    run.log({"loss": 1 / (step + 1),
             "samples": nbtracker.Image(square(colors[step]), caption=f"<i>step {step}</i>"),
             "weights": nbtracker.Histogram(rng.normal(step, 1 + step / 2, 2000))}, step=step)
table = nbtracker.Table(columns=["id", "label", "score", "image"])
for i, s in enumerate(rng.random(6)):
    table.add_data(i, f"class {'<b>' if i == 2 else ''}{i % 3}", round(float(s), 3),
                   nbtracker.Image(square(colors[i % 3], 16)))
mask = np.zeros((64, 64), np.uint8)
mask[40:60, 5:30] = 2
boxed = nbtracker.Image(square((90, 90, 90), 64), masks={"seg": {"mask_data": mask}},
                        boxes={"pred": {"box_data": [{"position": {"minX": 0.1, "maxX": 0.6, "minY": 0.2,
                                                                   "maxY": 0.7},
                                                      "class_id": 1, "box_caption": "cat <0.9>"}]}})
t = np.arange(4000) / 8000
fig = go.Figure([go.Scatter(x=np.arange(4), y=np.array([1.0, 3, 2, 4]), mode="lines+markers"),
                 go.Bar(x=[0, 1, 2, 3], y=[2, 1, 3, 1], name="b")], layout={"title": {"text": "fig"}})
frames = np.stack([np.transpose(square(c), (2, 0, 1)) for c in colors])  # T, C, H, W
odd = nbtracker.Table(columns=["x", "list"], data=[[float("nan"), [1.0, float("inf")]], [1.5, None],
                                                 [float("inf"), None], [-float("inf"), None]])
run.log({"preds": table, "odd": odd,
         "sound": nbtracker.Audio(np.sin(2 * np.pi * 440 * t).astype(np.float32), sample_rate=8000,
                                  caption="a"),
         "page": nbtracker.Html("<h1 id='hello'>Hello <i>panel</i></h1>"
                                "<script>parent.document.title='x'</script>"),
         "cloud": nbtracker.Object3D(rng.normal(0, 1, (500, 3)) * [3, 1, 0.5]),
         "plot": fig,
         "boxed": boxed,
         "clip": nbtracker.Video(frames, fps=4),
         "val/grid": [nbtracker.Image(square(c, 24), caption=str(c)) for c in colors]}, step=3)
run.alert("loss diverged", "<b>NaN</b> at step 3", level="WARN")
print("epoch 1 done")
print("<b>not bold</b>")
print("a warning", file=sys.stderr)
deadline = time.monotonic() + 60  # busy until the test has seen the pushed image (it says when)
while not os.path.exists("image-seen") and time.monotonic() < deadline:
    time.sleep(0.05)
open("log-done", "w").close()"""

LATE = """from nbtracker.notebook import live
late = live.LivePanel()
live.LiveFeed(run, late)  # made after the logging: it starts from the run's log
display(late)"""

CARD = '.nbt-media[data-key="{}"]'


def wait_in(panel, js: str, timeout: float = 20_000) -> None:
    """Wait until `js` (a function body of `root`, the panel's element) returns true."""
    panel.page.wait_for_function(f"(root) => {{ {js} }}", arg=panel.element_handle(), timeout=timeout)


def image_at(panel, key: str) -> dict:
    return panel.evaluate(f"""(root) => {{ const i = root.querySelector('{CARD.format(key)} img.nbt-img');
        return i && {{ src: i.src, path: i.dataset.path, ok: i.complete && i.naturalWidth > 0 }}; }}""")


def test_live_panel_shows_media_alerts_and_system(lab_server, page):
    page.set_viewport_size({"width": 1400, "height": 3400})  # the whole panel in one screenshot
    # the test process turns console and code capture off (conftest); this run has them
    cells = ["%load_ext nbtracker",
             "import os; os.environ.update(NBTRACKER_SYSTEM_INTERVAL='0.5', NBTRACKER_CONSOLE='auto', "
             "NBTRACKER_DISABLE_CODE='false')",
             "%tracker init --project media --name media-panel", SETUP, LOG, LATE]
    for flag in ("panel-drawn", "image-seen", "log-done"):
        (lab_server.root / flag).unlink(missing_ok=True)
    open_and_run(page, lab_server, "media_panel.ipynb", cells)
    # the panel is drawn (its library loaded) before anything is logged: then what it shows while
    # the logging cell still runs can only have been pushed
    page.wait_for_function("() => document.querySelector('.nbt-live .nbt-name')?.textContent", timeout=60_000)
    (lab_server.root / "panel-drawn").touch()
    panel = page.locator(".nbt-live").first
    card = lambda key: panel.locator(CARD.format(key))  # noqa: E731
    # the latest image, pushed while the cell runs (the kernel answers no request until it is idle)
    wait_in(panel, f"return root.querySelector('{CARD.format('samples')} img.nbt-img')?.naturalWidth > 0",
            timeout=30_000)
    # the logging cell is still running (it ends only after "image-seen"): the kernel's shell
    # could answer no request for the file. (Lab's kernel status is no witness: a control-channel
    # request answered meanwhile reads "idle".)
    assert not (lab_server.root / "log-done").exists()
    (lab_server.root / "image-seen").touch()
    wait_idle(page)
    assert (lab_server.root / "log-done").exists()
    late = page.locator(".nbt-live").nth(1)
    first = image_at(panel, "samples")
    assert first["ok"] and first["src"].startswith("blob:")
    assert card("samples").locator(".nbt-caption").inner_text() == "<i>step 2</i>"  # text, not markup
    # the slider goes back to step 0: the kernel sends that step's image on request
    card("samples").locator("input.nbt-step").evaluate(
        "s => { s.value = '0'; s.dispatchEvent(new Event('input')); }")
    wait_in(panel, f"""const i = root.querySelector('{CARD.format('samples')} img.nbt-img');
        return i && i.dataset.path !== {first['path']!r} && i.complete && i.naturalWidth > 0;""")
    assert card("samples").get_attribute("data-step") == "0"
    assert image_at(panel, "samples")["src"] != first["src"]
    # the histogram over steps: a heat-map of 3 steps, the latest as bars
    assert card("weights").locator("canvas.nbt-heat-map").get_attribute("data-steps") == "3"
    assert card("weights").locator("canvas.nbt-heat-bars").get_attribute("data-step") == "2"
    # the table: thumbnails, sorting on a header click, cells as text
    table = card("preds").locator("table")
    wait_in(panel, f"""const t = [...root.querySelectorAll('{CARD.format('preds')} img.nbt-thumb')];
        return t.length === 6 && t.every(i => i.complete && i.naturalWidth > 0);""")
    scores = "t => [...t.querySelectorAll('tbody tr')].map(r => +r.children[2].textContent)"
    table.locator("th").nth(2).click()
    up = table.evaluate(scores)
    assert up == sorted(up) and len(up) == 6
    table.locator("th").nth(2).click()
    assert table.evaluate(scores) == sorted(up, reverse=True)
    assert table.locator("td b").count() == 0 and "class <b>2" in table.inner_text()
    # NaN and ±inf (named in the table's "nf") as text; sorted as numbers, NaN last
    odd = card("odd").locator("table")
    odd.locator("tbody tr").first.wait_for()
    cells = "t => [...t.querySelectorAll('tbody tr')].map(r => [...r.children].map(c => c.textContent))"
    assert odd.evaluate(cells) == [["NaN", '[1,"inf"]'], ["1.5", ""], ["inf", ""], ["-inf", ""]]
    odd.locator("th").first.click()
    assert [r[0] for r in odd.evaluate(cells)] == ["-inf", "1.5", "inf", "NaN"]
    # audio: a playable blob
    audio = card("sound").locator("audio")
    wait_in(panel, f"return root.querySelector('{CARD.format('sound')} audio')?.duration > 0")
    assert audio.evaluate("a => a.src").startswith("blob:")
    # HTML in a sandboxed frame: shown, its script not run
    frame = card("page").locator("iframe")
    assert frame.get_attribute("sandbox") == ""
    wait_in(panel, f"return (root.querySelector('{CARD.format('page')} iframe')?.srcdoc || '')"
                   ".includes('Hello')")
    inner = frame.element_handle().content_frame()
    inner.wait_for_selector("#hello")
    assert inner.inner_text("#hello") == "Hello panel" and page.title() != "x"
    # the point cloud, the plotly figure, the boxes, the media list
    assert card("cloud").locator("canvas.nbt-points-canvas").get_attribute("data-points") == "500"
    card("plot").locator("svg.nbt-plotly-svg path").wait_for()
    card("boxed").locator("svg.nbt-boxes rect").wait_for()
    card("boxed").locator("canvas.nbt-mask").wait_for()
    wait_in(panel, f"return root.querySelector('{CARD.format('clip')} img')?.naturalWidth > 0")
    assert card("boxed").locator("svg.nbt-boxes text").inner_html() == "cat &lt;0.9&gt;"
    wait_in(panel, f"""return [...root.querySelectorAll('{CARD.format('val/grid')} img')]
        .filter(i => i.naturalWidth > 0).length === 3""")
    assert panel.locator('.nbt-media-group[data-prefix="val"]').inner_text().startswith("val/\nval/grid")
    # the alert banner, escaped
    alert = panel.locator(".nbt-alert")
    assert alert.count() == 1 and alert.get_attribute("data-level") == "WARN"
    assert "loss diverged" in alert.inner_text() and "<b>NaN</b> at step 3" in alert.inner_text()
    # the system section (the sampler, every 0.5 s): collapsed; opened, a chart per group and unit
    system = panel.locator("details.nbt-system")
    wait_in(panel, "return +root.querySelector('details.nbt-system')?.dataset.samples >= 3")
    assert system.get_attribute("open") is None
    system.locator("summary").click()
    wait_in(panel, "return root.querySelectorAll('.nbt-system canvas').length >= 4")
    groups = system.locator(".nbt-sys-chart").evaluate_all("bs => bs.map(b => b.dataset.key)")
    assert {"cpu", "memory", "memory (MB)", "disk"} <= set(groups), groups
    info = panel.locator("details.nbt-info")
    info.locator("summary").click()
    # the code part's env record, from the kernel: its python and command line
    assert platform.python_version() in info.inner_text() and "ipykernel" in info.inner_text()
    output = panel.locator("details.nbt-output")
    output.locator("summary").click()
    lines = output.locator("pre").inner_text().splitlines()  # what the cell printed, in order
    assert [ln for ln in lines if ln in ("epoch 1 done", "<b>not bold</b>", "a warning")] == [
        "epoch 1 done", "<b>not bold</b>", "a warning"], lines
    assert output.locator(".nbt-stderr").inner_text().strip() == "a warning"
    screenshot(panel, "live-panel-media")
    # a panel made after the logging starts from the run's log: its files come on request
    wait_in(late, f"return root.querySelector('{CARD.format('samples')} img.nbt-img')?.naturalWidth > 0")
    assert image_at(late, "samples")["path"] == first["path"]
    assert late.locator(CARD.format("weights") + " canvas.nbt-heat-map").get_attribute("data-steps") == "3"
    wait_in(late, f"""const t = [...root.querySelectorAll('{CARD.format('preds')} img.nbt-thumb')];
        return t.length === 6 && t.every(i => i.complete && i.naturalWidth > 0);""")
    assert late.locator(".nbt-alert").count() == 1  # run.alert()'s record
    wait_in(late, "return +root.querySelector('details.nbt-system')?.dataset.samples >= 3")  # samples
    errors = page.evaluate("() => [...document.querySelectorAll('[data-contract-errors]')]"
                           ".map(e => e.dataset.contractErrors)")
    assert errors == []
    assert foreign_requests(page) == []
