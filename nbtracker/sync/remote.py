"""Reading runs from a team server, for `Api()`.

The server keeps each run's record log exactly as it was uploaded, so reading a remote run is
reading a local one: its records are pulled into a cache beside the store
(`<root>/remote/<server>/<project>/<run_id>/records.jsonl`), incrementally and only when a
history, a file or a medium is asked for, and the same readers as for local runs turn them into
DataFrames. What the server derives cheaply — the run's state with its config, summary and edits,
the list of runs matching a filter, downsampled series for charts — comes from it directly.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..store import layout
from ..store.recordlog import ReadReport, loads, read_records, repair_tail
from ..store.state import RunState
from ..store.store import StoredRun
from .client import AuthError, Client, Retryable, UploadError

PAGE = 50_000  # records per page when pulling a log


class RemoteError(ConnectionError):
    """The server could not be asked, or refused (an OSError: the CLI reports it in one line)."""


class RemoteRun(StoredRun):
    """A run as the server describes it; `path` is its folder in the local cache. Its identity
    is where the server keeps it (`item`'s project and id, which every request names), whatever
    its records say."""

    def __init__(self, path: Path, item: dict):
        state = RunState.load(json.dumps(item["state"]))
        state.project, state.id = item["project"], item["id"]
        self.path = path
        self.state = state
        self.base = state
        self.log_end = 0
        self.report = None
        self.status = item.get("status") or state.state
        self.item = item


def _q(part: str) -> str:
    return quote(str(part), safe="")


class RemoteStore:
    """The part of `Store` that `Api` uses, over a server's HTTP API."""

    def __init__(self, base_url: str, api_key: str, root: Path, timeout: float = 30.0):
        self._client = Client(base_url, api_key, timeout=(5.0, timeout))
        self.base_url = self._client.base_url
        self.root = Path(root)
        name = hashlib.sha256(self.base_url.encode()).hexdigest()[:16]
        self.cache = self.root / "remote" / name

    # -- HTTP ----------------------------------------------------------------------------------
    def _get(self, path: str, **params: Any):
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def _call(self, method: str, path: str, **kw: Any):
        """A 2xx response; KeyError for 404 (no such run or project, or not the key's)."""
        try:
            return self._client.request(method, path, **kw)
        except AuthError as e:
            raise RemoteError(f"{self.base_url}: {e.reason}; run `nbtracker login` "
                              "again") from None
        except Retryable as e:
            raise RemoteError(e.reason) from None
        except UploadError as e:
            if e.status == 404:
                raise KeyError(path) from None
            raise RemoteError(f"{self.base_url}: {e.reason}") from None

    # -- runs ----------------------------------------------------------------------------------
    def run_dir(self, project: str, run_id: str) -> Path:
        return self.cache / layout.project_folder(project) / layout.check_run_id(run_id)

    def _run(self, item: dict) -> RemoteRun:
        return RemoteRun(self.run_dir(item["project"], item["id"]), item)

    def projects(self) -> list[str]:
        return [p["name"] for p in self._get("/projects").json()["projects"]]

    def runs(self, project: str | None, filters: dict | None = None,
             order: str | None = None) -> list[RemoteRun]:
        """Runs of `project` (of every project the key may see when None), matched and ordered
        by the server with the same rules as the local store."""
        projects = [project] if project else self.projects()
        out: list[RemoteRun] = []
        for p in projects:
            offset = 0
            while True:
                try:
                    page = self._get(f"/projects/{_q(p)}/runs", offset=offset, limit=1000,
                                     order=order or None,
                                     filters=json.dumps(filters) if filters else None).json()
                except KeyError:
                    break  # no such project (or not ours): no runs
                out.extend(self._run(item) for item in page["runs"])
                offset += len(page["runs"])
                if not page["runs"] or offset >= page["total"]:
                    break
        return out

    def find(self, project: str | None, run_id: str) -> RemoteRun | None:
        if project is None:
            found = [r for r in self.runs(None) if r.state.id == run_id]
            return found[0] if found else None
        try:
            return self._run(self._get(f"/projects/{_q(project)}/runs/{_q(run_id)}").json())
        except KeyError:
            return None

    def reload(self, stored: StoredRun) -> RemoteRun | None:
        return self.find(stored.state.project, stored.state.id)

    # -- the record log, pulled into the cache ------------------------------------------------
    def materialize(self, stored: StoredRun) -> Path:
        """The run's cache folder with its log as complete as the server has it now."""
        s = stored.state
        path = self.run_dir(s.project, s.id)
        path.mkdir(parents=True, exist_ok=True)
        where = f"/projects/{_q(s.project)}/runs/{_q(s.id)}/records"
        log = path / layout.LOG_NAME
        fd = os.open(path / ".pull-lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one puller per cached run
            repair_tail(log)  # a pull killed halfway leaves at most a torn line
            after = 0
            for rec in read_records(log, 0, ReadReport()):
                after = rec["seq"]
            with open(log, "ab") as f:
                while True:  # page by page until a page comes back empty
                    body = self._get(where, after_seq=after, limit=PAGE).content
                    lines = [line for line in body.split(b"\n") if line]
                    seqs = [loads(line).get("seq") for line in lines]
                    if not lines or not all(type(q) is int and q > after for q in seqs):
                        break
                    f.write(b"\n".join(lines) + b"\n")
                    after = max(seqs)
        finally:
            os.close(fd)
        return path

    def blob(self, stored: StoredRun, sha256: str, dst: Path) -> Path:
        """A blob of the run (a saved file or a medium), fetched once and checked by its hash.
        A saved file's copy in the cache may be an older version of it (policy "live"): it is
        used only while its bytes still have the hash asked for."""
        if dst.is_file() and (sha256[:20] in dst.name or layout.sha256_file(dst) == sha256):
            return dst  # media are named by their hash: a cached one is the one asked for
        s = stored.state
        r = self._get(f"/projects/{_q(s.project)}/runs/{_q(s.id)}/blobs/{_q(sha256)}")
        if hashlib.sha256(r.content).hexdigest() != sha256:
            raise RemoteError(f"{self.base_url} sent a file that does not match its hash {sha256}")
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".part")
        tmp.write_bytes(r.content)
        os.replace(tmp, dst)
        return dst

    # -- charts --------------------------------------------------------------------------------
    def histories(self, runs: list[StoredRun], keys: list[str], samples: int = 1000,
                  min_step: int | None = None, max_step: int | None = None) -> list[dict]:
        """Downsampled series of `keys` for each run: min/max per bucket, ends kept."""
        body = {"runs": [{"project": r.state.project, "id": r.state.id} for r in runs],
                "keys": list(keys), "samples": int(samples),
                "min_step": min_step, "max_step": max_step}
        return self._call("POST", "/histories", json_body=body).json()["series"]

    def append_edits(self, stored: StoredRun, records: list[dict]) -> None:
        s = stored.state
        self._call("POST", f"/projects/{_q(s.project)}/runs/{_q(s.id)}/edits",
                   json_body={"edits": records})
