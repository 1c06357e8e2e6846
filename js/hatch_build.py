"""Build hook: bundle the widget front-end (js/) into nbtracker/static/ when installing from the
repository. Wheels ship the built files, so installing a wheel needs no Node.js."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

OUTPUTS = ("vega.js", "widgets.js", "widgets.css")


class JsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)
        js, static = root / "js", root / "nbtracker" / "static"
        outputs = [static / name for name in OUTPUTS]
        sources = [p for p in js.glob("*.*s") if p.name != "build.mjs"] + [js / "package.json"]
        if js.is_dir() and (not all(p.exists() for p in outputs) or max(
                p.stat().st_mtime for p in sources) > min(p.stat().st_mtime for p in outputs)):
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("building nbtracker's widgets needs Node.js and npm "
                                   "(or install a built wheel)")
            if not (js / "node_modules" / ".bin" / "esbuild").exists():
                subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=js, check=True)
            subprocess.run(["node", "build.mjs"], cwd=js, check=True)
        build_data["artifacts"] += [f"nbtracker/static/{name}" for name in OUTPUTS]
