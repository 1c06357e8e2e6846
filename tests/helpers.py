"""Helpers for tests: run Python code or the CLI in a fresh process with the test's store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_python(code: str, env: dict | None = None, timeout: float = 60,
               check: bool = True) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with the test's environment (store root included)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, env=full_env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"child failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def run_cli(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the `nbtracker` command line (as `python -m nbtracker`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-m", "nbtracker", *args], capture_output=True,
                       text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"nbtracker {' '.join(args)} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


class SpecMedia:
    """A media value written as the spec's reference formats say (notes/spec9: media
    references), for kinds whose classes are not in nbtracker yet: `bind` stores `data`
    content-addressed under media/<sub>/ and returns {"_type", "path", "sha256", "size",
    **fields}. Logged through `run.log` like any media object."""

    _nbtracker_media = True

    def __init__(self, type_: str, sub: str, ext: str, data: bytes, **fields):
        self.type, self.sub, self.ext, self.data, self.fields = type_, sub, ext, data, fields

    def bind(self, media_dir: Path) -> dict:
        import hashlib

        digest = hashlib.sha256(self.data).hexdigest()
        path = media_dir / self.sub / f"{digest[:20]}.{self.ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.data)
        return {"_type": self.type, "path": f"media/{self.sub}/{path.name}", "sha256": digest,
                "size": len(self.data), **self.fields}


def table_with_images(media_dir: Path, columns: list[str], rows: list[list]) -> dict:
    """A table-file ref as the spec says, cells that are media (nbtracker.Image) bound to refs."""
    import json

    data = [[c.bind(media_dir) if getattr(c, "_nbtracker_media", False) else c for c in r]
            for r in rows]
    body = json.dumps({"columns": columns, "data": data}).encode()
    ref = SpecMedia("table-file", "tables", "table.json", body, ncols=len(columns),
                    nrows=len(rows), columns=columns, format="json").bind(media_dir)
    return ref


class SpecTable(SpecMedia):
    """A Table whose media cells are stored as refs (spec format)."""

    def __init__(self, columns: list[str], rows: list[list]):
        self.columns, self.rows = columns, rows

    def bind(self, media_dir: Path) -> dict:
        return table_with_images(media_dir, self.columns, self.rows)


# a 1×1 GIF (the classic transparent pixel)
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def wav_bytes(seconds: float = 0.25, rate: int = 8000, hz: float = 440.0) -> bytes:
    """A mono 16-bit WAV of a sine tone."""
    import io
    import math
    import struct
    import wave

    n = int(seconds * rate)
    frames = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * i / rate)))
                      for i in range(n))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def write_records(run, records: list[dict]) -> None:
    """Append records of kinds whose emitters are not in nbtracker yet (`system`, `env`), as
    the spec describes them."""
    from nbtracker.store.recordlog import make_record

    with run._mutex:
        for rec in records:
            run._append(make_record(rec["t"], rec["d"], **{k: v for k, v in rec.items()
                                                            if k not in ("t", "d")}))


def media_cell(project: str = "static") -> str:
    """A notebook cell that shows a run's panel and logs images over steps, histograms, a table
    with image cells, an audio clip, an HTML document and an alert, then finishes it."""
    tests = str(Path(__file__).resolve().parent)
    return f"""import sys
sys.path.insert(0, {tests!r})
import numpy as np
import nbtracker
from helpers import GIF, SpecMedia, SpecTable, wav_bytes
run = nbtracker.init(project={project!r}, name="media")
display(run)
rng = np.random.default_rng(0)
for s in range(20):
    run.log({{"acc": s / 20,
             "samples": nbtracker.Image((rng.random((28, 28)) * 255).astype(np.uint8), caption=f"step {{s}}"),
             "weights": nbtracker.Histogram(rng.normal(s / 10, 1, 500))}})
run.log({{"preds": SpecTable(["id", "label", "image"], [
    [i, "<script>alert(1)</script>" if i == 0 else f"<b>class {{i}}</b>",
     nbtracker.Image(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))] for i in range(4)])}})
run.log({{"clip": SpecMedia("audio-file", "audio", "wav", wav_bytes(), format="wav", sample_rate=8000,
                           duration=0.25)}})
run.log({{"page": nbtracker.Html("<h3>report</h3><p>hello</p>")}})
run.log({{"anim": SpecMedia("video-file", "videos", "gif", GIF, format="gif", fps=2)}})
run.log({{"movie": SpecMedia("video-file", "videos", "mp4", b"\\x00\\x00\\x00\\x18ftypmp42" + bytes(32),
                            format="mp4", fps=2)}})
run.alert("check <this>", "accuracy plateaued", level="WARN")
run.finish()"""
