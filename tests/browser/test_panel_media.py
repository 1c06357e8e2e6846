"""The live panel's media, alerts and system sections in JupyterLab (headless Chromium, loopback).

One notebook logs an image over a few steps, a histogram over steps, a table with image cells,
audio, HTML, a point cloud and a plotly figure, raises an alert and records system samples; the
run stays open and the kernel idle, so the panel's front-end can ask the kernel for files.
"""

from __future__ import annotations

from nbdriver import foreign_requests, open_and_run, screenshot, wait_idle

# Media kinds not in nbtracker.sdk.media yet, logged as their references (the formats in
# sdk/media.py's reference list): a Media-like object whose bind() writes the file.
STAND_INS = '''import hashlib, io, json, math, time, wave
import numpy as np
import nbtracker

class Ref:
    _nbtracker_media = True
    def __init__(self, kind, sub, ext, data, **extra):
        self.kind, self.sub, self.ext, self.data, self.extra = kind, sub, ext, data, extra
    def bind(self, media_dir):
        digest = hashlib.sha256(self.data).hexdigest()
        folder = media_dir / self.sub
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{digest[:20]}.{self.ext}").write_bytes(self.data)
        extra = {k: (v.bind(media_dir) if hasattr(v, "bind") else v) for k, v in self.extra.items()}
        return {"_type": self.kind, "path": f"media/{self.sub}/{digest[:20]}.{self.ext}",
                "sha256": digest, "size": len(self.data), **extra}

def table(columns, rows):
    class T(Ref):
        def bind(self, media_dir):
            data = [[c.bind(media_dir) if hasattr(c, "bind") else c for c in r] for r in rows]
            self.data = json.dumps({"columns": columns, "data": data}).encode()
            ref = super().bind(media_dir)
            return {**ref, "ncols": len(columns), "nrows": len(rows), "columns": columns, "format": "json"}
    return T("table-file", "tables", "table.json", b"")

class Items:
    _nbtracker_media = True
    def __init__(self, items):
        self.items = items
    def bind(self, media_dir):
        return {"_type": "media-list", "items": [i.bind(media_dir) for i in self.items]}

def wav(seconds=0.5, rate=8000):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
        t = np.arange(int(seconds * rate)) / rate
        w.writeframes((np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2").tobytes())
    return buf.getvalue()

def square(color, size=32):
    a = np.zeros((size, size, 3), np.uint8)
    a[:, :] = color
    a[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 255 - np.array(color, np.uint8)
    return a
'''

LOG = '''run = nbtracker.run
colors = [(200, 30, 30), (30, 160, 30), (30, 30, 200)]
rng = np.random.default_rng(0)
for step in range(3):
    run.log({"loss": 1 / (step + 1),
             "samples": nbtracker.Image(square(colors[step]), caption=f"<i>step {step}</i>"),
             "weights": nbtracker.Histogram(rng.normal(step, 1 + step / 2, 2000))}, step=step)
rows = [[i, f"class {'<b>' if i == 2 else ''}{i % 3}", round(float(s), 3), nbtracker.Image(square(colors[i % 3], 16))]
        for i, s in enumerate(rng.random(6))]
boxes = {"pred": {"box_data": [{"position": {"minX": 0.1, "maxX": 0.6, "minY": 0.2, "maxY": 0.7},
                                "class_id": 1, "box_caption": "cat <0.9>"}]}}
cloud = rng.normal(0, 1, (500, 3)) * [3, 1, 0.5]
fig = {"data": [{"type": "scatter", "x": [0, 1, 2, 3], "y": [1, 3, 2, 4], "mode": "lines+markers", "name": "a"},
                {"type": "bar", "x": [0, 1, 2, 3], "y": [2, 1, 3, 1], "name": "b"}], "layout": {"title": {"text": "fig"}}}
run.log({"preds": table(["id", "label", "score", "image"], rows),
         "sound": Ref("audio-file", "audio", "wav", wav(), format="wav", sample_rate=8000, caption="a"),
         "page": nbtracker.Html("<h1 id='hello'>Hello <i>panel</i></h1><script>parent.document.title='x'</script>"),
         "cloud": Ref("object3D-file", "object3d", "pts.json",
                      json.dumps({"points": cloud.tolist()}).encode(), format="pts.json", npoints=500),
         "plot": Ref("plotly-file", "plotly", "plotly.json", json.dumps(fig).encode()),
         "boxed": Ref("image-file", "images", "png", nbtracker.sdk.media.png_bytes(square((90, 90, 90), 64)),
                      format="png", width=64, height=64, boxes=boxes),
         "grid": Items([nbtracker.Image(square(c, 24), caption=str(c)) for c in colors])}, step=3)
run.alert("loss diverged", "<b>NaN</b> at step 3", level="WARN")
run._emit("alert", {"title": "loss diverged", "text": "<b>NaN</b> at step 3", "level": "WARN", "ts": time.time()})
t0 = time.time()
for i in range(3):
    run._emit("system", {"ts": t0 + i, "d": {"cpu": 10.0 + i, "memory": 40.0 + i, "proc.memory.rssMB": 300.0 + i}})
run._emit("info", {"python": "3.11.2", "host": "box", "platform": "Linux", "argv": ["train.py", "--lr", "0.1"],
                   "git": {"commit": "0123abc", "branch": "main", "dirty": True}})
run._emit("output", {"stream": "stdout", "text": "epoch 1 done\\n<b>not bold</b>\\n"})
run._emit("output", {"stream": "stderr", "text": "a warning\\n"})
time.sleep(1.5)'''

PANEL = ".nbt-live"
CARD = PANEL + ' .nbt-media[data-key="{}"]'


def _img_ok(page, sel: str) -> bool:
    return page.evaluate(f"""() => {{ const i = document.querySelector({sel!r});
        return !!i && i.complete && i.naturalWidth > 0 && i.src.startsWith('blob:'); }}""")


def test_live_panel_shows_media_alerts_and_system(lab_server, page):
    cells = ["%load_ext nbtracker", "%tracker init --project media --name media-panel", STAND_INS, LOG]
    open_and_run(page, lab_server, "media_panel.ipynb", cells)
    page.wait_for_selector(PANEL, timeout=30_000)
    wait_idle(page)
    img = CARD.format("samples") + " img.nbt-img"
    page.wait_for_function(f"() => document.querySelector({img!r})?.naturalWidth > 0", timeout=20_000)
    assert _img_ok(page, img)
    first = page.evaluate(f"() => [document.querySelector({img!r}).src, document.querySelector({img!r}).dataset.path]")
    caption = page.locator(CARD.format("samples") + " .nbt-caption").inner_text()
    assert caption == "<i>step 2</i>"  # escaped: shown as text
    # the slider goes back to step 0: the kernel sends that step's image on request
    slider = CARD.format("samples") + " input.nbt-step"
    page.evaluate(f"""() => {{ const s = document.querySelector({slider!r}); s.value = '0';
        s.dispatchEvent(new Event('input')); }}""")
    page.wait_for_function(f"""() => {{ const i = document.querySelector({img!r});
        return i && i.dataset.path !== {first[1]!r} && i.naturalWidth > 0 && i.complete; }}""", timeout=20_000)
    assert page.locator(CARD.format("samples")).get_attribute("data-step") == "0"
    assert page.evaluate(f"() => document.querySelector({img!r}).src") != first[0]
    # the histogram over steps: a heat-map of 3 steps, the latest as bars
    heat = CARD.format("weights") + " canvas.nbt-heat-map"
    assert page.locator(heat).get_attribute("data-steps") == "3"
    assert page.locator(CARD.format("weights") + " canvas.nbt-heat-bars").get_attribute("data-step") == "2"
    # the table: thumbnails, sorting on a header click
    table = CARD.format("preds") + " table"
    page.wait_for_function(f"""() => {{ const t = [...document.querySelectorAll({table!r} + ' img.nbt-thumb')];
        return t.length === 6 && t.every(i => i.complete && i.naturalWidth > 0); }}""", timeout=20_000)
    scores = f"() => [...document.querySelectorAll({table!r} + ' tbody tr')].map(r => +r.children[2].textContent)"
    page.click(f"{table} th:nth-child(3)")
    up = page.evaluate(scores)
    assert up == sorted(up) and len(up) == 6
    page.click(f"{table} th:nth-child(3)")
    assert page.evaluate(scores) == sorted(up, reverse=True)
    assert page.locator(f"{table} td b").count() == 0 and "class <b>2" in page.locator(table).inner_text()
    # audio: a playable blob
    audio = CARD.format("sound") + " audio"
    page.wait_for_function(f"() => document.querySelector({audio!r})?.duration > 0", timeout=20_000)
    assert page.evaluate(f"() => document.querySelector({audio!r}).src").startswith("blob:")
    # HTML in a sandboxed frame, scripts off
    frame = page.locator(CARD.format("page") + " iframe")
    assert frame.get_attribute("sandbox") == ""
    page.wait_for_function(f"() => (document.querySelector({CARD.format('page') + ' iframe'!r})?.srcdoc || '').includes('Hello')")
    inner = frame.element_handle().content_frame()
    inner.wait_for_selector("#hello")
    assert inner.inner_text("#hello") == "Hello panel"
    assert page.title() != "x"
    # the point cloud, the plotly figure, the boxes
    assert page.locator(CARD.format("cloud") + " canvas.nbt-points-canvas").get_attribute("data-points") == "500"
    page.wait_for_selector(CARD.format("plot") + " svg.nbt-plotly-svg path")
    page.wait_for_selector(CARD.format("boxed") + " svg.nbt-boxes rect")
    grid = CARD.format("grid") + " .nbt-media-list img"
    page.wait_for_function(f"() => [...document.querySelectorAll({grid!r})].filter(i => i.naturalWidth > 0).length === 3")
    # the alert banner, escaped
    alert = page.locator(PANEL + " .nbt-alert")
    assert alert.count() == 1 and alert.get_attribute("data-level") == "WARN"
    assert "loss diverged" in alert.inner_text() and "<b>NaN</b> at step 3" in alert.inner_text()
    # the system section: collapsed, 3 samples; opened, one chart per group
    system = page.locator(PANEL + " details.nbt-system")
    assert system.get_attribute("data-samples") == "3" and system.get_attribute("open") is None
    system.locator("summary").click()
    # cpu, memory (%), memory (MB)
    page.wait_for_function("() => document.querySelectorAll('.nbt-live .nbt-system canvas').length === 3")
    info = page.locator(PANEL + " details.nbt-info")
    info.locator("summary").click()
    assert "0123abc" in info.inner_text() and "train.py --lr 0.1" in info.inner_text()
    output = page.locator(PANEL + " details.nbt-output")
    output.locator("summary").click()
    assert output.locator("pre").inner_text().splitlines() == ["epoch 1 done", "<b>not bold</b>", "a warning"]
    assert output.locator(".nbt-stderr").inner_text().strip() == "a warning"
    errors = page.evaluate("() => [...document.querySelectorAll('[data-contract-errors]')].map(e => e.dataset.contractErrors)")
    assert errors == []
    screenshot(page.locator(PANEL), "live-panel-media")
    assert foreign_requests(page) == []
