"""Driving Jupyter in a browser for tests: servers on loopback, notebooks, sampling, screenshots."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A Jupyter server of ours: base URL, token, root dir, and the store its kernels use."""

    def __init__(self, app: str, base: Path):
        self.app = app
        self.base = base
        self.root = base / "root"
        self.store = base / "store"
        self.root.mkdir(parents=True)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = base / "jupyter"
        settings = cfg / "lab-settings"
        notif = settings / "@jupyterlab" / "apputils-extension"
        notif.mkdir(parents=True)
        (notif / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ)
        env.update({
            "JUPYTER_CONFIG_DIR": str(cfg / "config"), "JUPYTER_DATA_DIR": str(cfg / "data"),
            "JUPYTER_RUNTIME_DIR": str(cfg / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(cfg / "workspaces"), "NBTRACKER_DIR": str(self.store),
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        })
        env.pop("NBTRACKER_SILENT", None)
        expose = ("--LabApp.expose_app_in_browser=True" if app == "lab"
                  else "--JupyterNotebookApp.expose_app_in_browser=True")
        cmd = [sys.executable, "-m", "jupyter", app, "--no-browser", "--allow-root",
               "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--LabApp.news_url=None", expose]
        self.log = open(base / "server.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter {app} did not start: "
                                       f"{(base / 'server.log').read_text()[-2000:]}") from None
                time.sleep(0.3)

    def api(self, method: str, path: str):
        req = urllib.request.Request(f"{self.url}{path}?token={self.token}", method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str) -> str:
        if self.app == "lab":
            return f"{self.url}/lab/tree/{name}?token={self.token}&reset"
        return f"{self.url}/notebooks/{name}?token={self.token}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def foreign_requests(page) -> list[str]:
    """Requests that left loopback (data:, blob: and 127.0.0.1/localhost are fine)."""
    out = []
    for url in page.requests:
        u = urlparse(url)
        if u.scheme in ("data", "blob") or u.hostname in ("127.0.0.1", "localhost"):
            continue
        out.append(url)
    return out


def write_notebook(server: Server, name: str, cells: list[str]) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, server.root / name)
    for s in server.api("GET", "/api/sessions") or []:
        if s.get("path") == name:
            server.api("DELETE", f"/api/sessions/{s['id']}")
    return name


# Idle: the kernel says so and no cell of the notebook is running or queued ("[*]"). The
# kernel's status alone is no witness: a control-channel request (kernel info, debugger)
# answered while a cell runs publishes "idle" too.
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  const running = [...document.querySelectorAll('.jp-InputPrompt')]
    .some(p => p.textContent.includes('[*]'));
  return !!k && k.status === 'idle' && !running;
}"""


def open_and_run(page, server: Server, name: str, cells: list[str], timeout: float = 60):
    """Write a fresh notebook, open it, wait for an idle kernel, and run all cells."""
    write_notebook(server, name, cells)
    page.goto(server.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
    page.wait_for_function(KERNEL_IDLE, timeout=timeout * 1000)
    # not awaited: the command's promise settles only when every cell has run
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    return page


def wait_idle(page, timeout: float = 60) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function(KERNEL_IDLE, timeout=timeout * 1000)


def sample(page, expr: str, seconds: float, interval: float = 0.1, until=None) -> list:
    """Evaluate a JS expression repeatedly for at most `seconds` (or until it equals `until`);
    the values seen."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(page.evaluate(expr))
        if until is not None and out[-1] == until:
            break
        page.wait_for_timeout(interval * 1000)
    return out


def screenshot(locator, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    locator.screenshot(path=str(path))
    return path

