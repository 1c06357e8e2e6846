"""A real `nbtracker server` in a subprocess, for tests of the server and of its clients.

    srv = ServerProcess(tmp_path / "srv")      # SQLite in that dir; db_url= for PostgreSQL
    srv.url                                    # http://127.0.0.1:<port>
    key = srv.create_user("alice")
    srv.kill(); srv.restart()                  # SIGKILL, then the same port and data
    srv.stop()

The child imports this checkout (PYTHONPATH), binds a free port (`--port 0`) the first time and
the same port on `restart()`, and prints its URL and, on a fresh database, the admin key.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("NBTRACKER_TEST_DATABASE_URL")  # read before fixtures clear it


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `nbtracker ARGS` in a child process; raises on a non-zero exit."""
    p = subprocess.run([sys.executable, "-m", "nbtracker", *args], capture_output=True,
                       text=True, env=child_env(), timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"nbtracker {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


class ServerProcess:
    def __init__(self, data_dir: str | os.PathLike, db_url: str | None = None,
                 extra_args: tuple[str, ...] = (), start: bool = True, timeout: float = 30):
        self.data_dir = Path(data_dir)
        self.db_url = db_url
        self.extra_args = tuple(extra_args)
        self.timeout = timeout
        self.port = 0
        self.url = ""
        self.admin_key: str | None = None
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        if start:
            self.start()

    # -- life cycle ------------------------------------------------------------------------
    def db_args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)] + (["--db", self.db_url] if self.db_url else [])

    def start(self) -> ServerProcess:
        self.output = []
        cmd = [sys.executable, "-m", "nbtracker", "server", *self.db_args(),
               "--host", "127.0.0.1", "--port", str(self.port), *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=child_env())
        listening = threading.Event()
        threading.Thread(target=self._read_output, args=(self.proc, listening), daemon=True).start()
        if not listening.wait(self.timeout):
            self.kill()
            raise RuntimeError("the server did not start:\n" + "".join(self.output))
        self._wait_healthy()
        return self

    def _read_output(self, proc: subprocess.Popen, listening: threading.Event) -> None:
        for line in proc.stdout:
            self.output.append(line)
            m = re.match(r"admin API key: (nbt_\S+)", line)
            if m:
                self.admin_key = m.group(1)
            m = re.match(r"nbtracker server listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                listening.set()
        listening.set()  # the process ended

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited:\n" + "".join(self.output))
            try:
                if self.url and requests.get(self.url + "/api/v1/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("the server never became healthy:\n" + "".join(self.output))

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after a few seconds)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> ServerProcess:
        """Stop (if running) and start again on the same port and data."""
        self.stop()
        return self.start()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------
    def create_user(self, name: str, admin: bool = False) -> str:
        """Create a user with the admin command; returns their API key."""
        p = cli("user", "create", name, *(["--admin"] if admin else []), *self.db_args())
        m = re.search(r"API key: (nbt_\S+)", p.stdout)
        assert m, p.stdout
        return m.group(1)

    def session(self, key: str | None = None) -> requests.Session:
        """A requests session sending `key` (default: the admin key)."""
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {key or self.admin_key}"
        return s


def make_app(data_dir: str | os.PathLike, db_url: str | None = None, **options):
    """The server's ASGI app in this process (for httpx/TestClient tests) over a migrated
    database, and the admin key. Host `testserver` (TestClient's) is accepted."""
    from nbtracker.server.app import create_app
    from nbtracker.server.config import ServerConfig
    from nbtracker.server.serve import prepare_database

    options.setdefault("allowed_hosts", ("testserver",))
    config = ServerConfig(data_dir=Path(data_dir), db=db_url, **options)
    said: list[str] = []
    engine = prepare_database(config, said.append)
    key = next((s.split(": ", 1)[1] for s in said if s.startswith("admin API key: ")), None)
    return create_app(config, engine), key


def fresh_pg_database(base_url: str) -> tuple[str, callable]:
    """CREATE DATABASE nbt_<random> on the server of `base_url`; returns its URL and a function
    that drops it."""
    import secrets

    import psycopg
    from sqlalchemy.engine import make_url

    name = "nbt_" + secrets.token_hex(6)
    admin = make_url(base_url).set(database="postgres")
    dsn = admin.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    return url, drop
