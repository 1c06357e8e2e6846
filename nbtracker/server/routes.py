"""The authenticated routes of /api/v1 (mounted by `app.create_app` behind `current_user`)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from ..errors import UsageError
from ..store import layout
from ..store.query import check_filters, match, sort_runs
from . import runs as run_store
from .accounts import User, list_projects, visible_project, writable_project
from .app import ServerContext, context, current_user
from .blobs import BlobError, BlobTooLarge, is_sha256
from .db import insert_ignore, read_transaction, write_transaction
from .histories import HistoriesIn, histories_json
from .schema import blobs as blobs_table
from .schema import run_blobs

MAX_RECORDS = 1000
MAX_FILTER_DEPTH = 64
_NOT_FOUND = "no such project or run (or not yours to see)"

RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the run's id")]
Sha = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="sha256 of the bytes, hex")]
Me = Annotated[User, Depends(current_user)]
Ctx = Annotated[ServerContext, Depends(context)]


def project_name(project: str) -> str:
    try:
        return layout.check_project(project)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


def not_found() -> HTTPException:
    return HTTPException(404, _NOT_FOUND)


def json_text(text: str) -> Response:
    return Response(text, media_type="application/json")


async def raw_body(request: Request) -> bytes:
    return await request.body()


# -- request bodies ----------------------------------------------------------------------------

class EditRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    t: Literal["config", "summary", "meta"]
    # uploaded edits keep their seq from the run's edits.jsonl; edits made through the
    # server's API come without one and are numbered by the server (from 2**62 up)
    seq: StrictInt | None = Field(default=None, ge=1, le=2**62 - 1)


class EditsIn(BaseModel):
    edits: list[EditRecord] = Field(max_length=MAX_RECORDS)


RECORDS_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["first_seq", "records"],
    "properties": {
        "first_seq": {"type": "integer", "minimum": 1},
        "records": {"type": "array", "maxItems": MAX_RECORDS, "items": {
            "type": "object", "required": ["t", "seq"],
            "properties": {"t": {"type": "string"}, "seq": {"type": "integer", "minimum": 1}}}},
    }}}}}}

BLOB_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}


def parse_batch(body: bytes) -> tuple[int, list[dict]]:
    """`{"first_seq": n, "records": [...]}` checked: 413 past MAX_RECORDS records, 422 for a
    record that is not an object with an int seq, seqs that do not increase from first_seq, or
    a `ts` that is there but not a finite number."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HTTPException(400, f"the body is not JSON: {e}") from None
    if type(doc) is not dict or type(doc.get("first_seq")) is not int \
            or type(doc.get("records")) is not list:
        raise HTTPException(422, 'the body must be {"first_seq": <int>, "records": [...]}')
    first, records = doc["first_seq"], doc["records"]
    if len(records) > MAX_RECORDS:
        raise HTTPException(413, f"{len(records)} records in one batch; the limit is {MAX_RECORDS}")
    if not 1 <= first <= 2**63 - 1:
        raise HTTPException(422, "first_seq must be a positive 64-bit integer")
    prev = first - 1
    for i, rec in enumerate(records):
        if type(rec) is not dict or type(rec.get("seq")) is not int:
            raise HTTPException(422, f"record {i} is not an object with an integer seq")
        if not prev < rec["seq"] <= 2**63 - 1:
            raise HTTPException(422, f"record {i}: seq {rec['seq']} does not increase from "
                                     f"{prev} (seqs strictly increase from first_seq)")
        ts = rec.get("ts")
        if "ts" in rec and (type(ts) not in (int, float) or (type(ts) is float and not math.isfinite(ts))):
            raise HTTPException(422, f"record {i}: ts {ts!r} is not a finite number (seconds "
                                     f"since the epoch)")
        prev = rec["seq"]
    return first, records


def check_run_records(project: str, run_id: str, records: list[dict]) -> None:
    """422 for a `run` record naming another run than the one it is uploaded to: a run record
    must name the run it is uploaded to (else it would become that run's identity)."""
    for i, rec in enumerate(records):
        if rec.get("t") != "run":
            continue
        if rec.get("id") != run_id or rec.get("project") != project:
            raise HTTPException(422, f"record {i}: a run record must name the run it is uploaded "
                                     f"to: it names project {rec.get('project')!r}, run "
                                     f"{rec.get('id')!r}; the URL names project {project!r}, "
                                     f"run {run_id!r}")


# -- routes --------------------------------------------------------------------------------------

def router() -> APIRouter:
    r = APIRouter()
    runs_path = "/projects/{project}/runs"
    run_path = runs_path + "/{run_id}"

    @r.get("/whoami")
    def whoami(user: Me) -> dict:
        """The user the key belongs to."""
        return {"user": user.name, "admin": user.admin}

    @r.get("/projects")
    def projects(user: Me, ctx: Ctx) -> dict:
        """The projects the caller may see, with their owner and number of runs."""
        with read_transaction(ctx.engine) as conn:
            return {"projects": list_projects(conn, user)}

    @r.put(run_path)
    def put_run(project: str, run_id: RunId, user: Me, ctx: Ctx,
                body: Annotated[dict | None, Body()] = None) -> dict:
        """Create the run (and its project) if new; where its upload stands. `{"live": true}`
        says the run's process is alive (its uploader sends it every 30 s), `{"live": false}`
        that it is gone (`nbtracker sync`); without it, nothing changes. `"fingerprint"`, the
        sha256 (hex) of the first line of the run's records.jsonl (newline included), is kept
        the first time one comes; another one later is another run under the same id: 409
        without `next_seq` (nothing to resend)."""
        project = project_name(project)
        live = (body or {}).get("live")
        if live is not None and type(live) is not bool:
            raise HTTPException(422, "live must be true or false")
        fingerprint = (body or {}).get("fingerprint")
        if fingerprint is not None and not (type(fingerprint) is str and is_sha256(fingerprint)):
            raise HTTPException(422, "fingerprint must be the sha256 (hex) of the first line of "
                                     "the run's records.jsonl")
        try:
            with write_transaction(ctx.engine) as conn:
                row = _locked_run(conn, user, project, run_id)
                if fingerprint is not None:
                    run_store.claim(conn, row, fingerprint)
                if live is not None:
                    run_store.mark_seen(conn, row, live)
                return {"next_seq": row.next_seq, "eseq": row.eseq,
                        "blobs": run_store.linked_blobs(conn, row.pk)}
        except run_store.RunClash as e:
            return JSONResponse({"detail": str(e)}, status_code=409)

    @r.post(run_path + "/records", openapi_extra=RECORDS_BODY,
            responses={409: {"description": "a gap: send from next_seq; without next_seq, "
                                            "another run under the same id"}})
    def post_records(project: str, run_id: RunId, user: Me, ctx: Ctx,
                     body: Annotated[bytes, Depends(raw_body)]):
        """Store a batch of records exactly once (duplicates dropped, a gap refused)."""
        project = project_name(project)
        first, records = parse_batch(body)
        check_run_records(project, run_id, records)
        try:
            with write_transaction(ctx.engine) as conn:
                row = _locked_run(conn, user, project, run_id)
                next_seq = run_store.ingest(conn, row, first, records)
        except run_store.SeqGap as gap:
            return JSONResponse({"detail": str(gap), "next_seq": gap.next_seq}, status_code=409)
        except run_store.RunClash as e:
            return JSONResponse({"detail": str(e)}, status_code=409)
        except run_store.TooDeep as e:
            raise HTTPException(422, str(e)) from None
        return {"next_seq": next_seq}

    @r.post(run_path + "/edits")
    def post_edits(project: str, run_id: RunId, body: EditsIn, user: Me, ctx: Ctx) -> dict:
        """Store edits made after the fact: uploaded from a run (idempotent by edit seq), or
        made here (without seqs; applied after every uploaded edit, in the order they come)."""
        project = project_name(project)
        batch = [{k: v for k, v in e.model_dump().items() if k != "seq" or v is not None}
                 for e in body.edits]
        try:
            with write_transaction(ctx.engine) as conn:
                row = _locked_run(conn, user, project, run_id)
                return {"eseq": run_store.add_edits(conn, row, batch)}
        except run_store.MixedEdits as e:
            raise HTTPException(422, str(e)) from None

    @r.put(run_path + "/blobs/{sha256}", openapi_extra=BLOB_BODY)
    async def put_blob(project: str, run_id: RunId, sha256: Sha, request: Request, user: Me,
                       ctx: Ctx) -> dict:
        """Store a file's bytes under their sha256 and link them to the run."""
        project = project_name(project)
        limit = ctx.config.max_blob_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise HTTPException(413, f"the blob is larger than {limit} bytes")
        pk = await run_in_threadpool(_run_for_write, ctx, user, project, run_id)
        gzip = request.headers.get("content-encoding", "").strip().lower() in ("gzip", "x-gzip")
        try:
            size = await ctx.blobs.put(sha256, request.stream(), limit, gzip)
        except BlobTooLarge:
            raise HTTPException(413, f"the blob is larger than {limit} bytes") from None
        except BlobError as e:
            raise HTTPException(400, str(e)) from None
        await run_in_threadpool(_link_blob, ctx, pk, sha256, size)
        return {"sha256": sha256, "size": size}

    @r.get(run_path + "/blobs/{sha256}", response_class=FileResponse)
    def get_blob(project: str, run_id: RunId, sha256: Sha, user: Me, ctx: Ctx):
        """The bytes of a blob the run uploaded."""
        with read_transaction(ctx.engine) as conn:
            row = _visible_run(conn, user, project_name(project), run_id)
            linked = run_store.is_linked(conn, row.pk, sha256)
        return _blob_response(ctx, sha256 if linked else None)

    @r.get(runs_path)
    def list_runs(project: str, user: Me, ctx: Ctx,
                  filters: Annotated[str | None, Query(description="MongoDB-style JSON")] = None,
                  order: str = "-created_at",
                  limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
                  offset: Annotated[int, Query(ge=0)] = 0) -> Response:
        """Runs of a project, filtered and ordered as the local Api does."""
        flt = _filters(filters)
        project = project_name(project)
        with read_transaction(ctx.engine) as conn:
            pid = visible_project(conn, user, project)
            if pid is None:
                raise not_found()
            items = [(row, run_store.view_state(conn, row)) for row in run_store.project_rows(conn, pid)]
        docs = {row.pk: run_store.run_doc(project, row, s, ctx.config.live_timeout) for row, s in items}
        if flt:
            items = [it for it in items if match(docs[it[0].pk], flt)]
        items = sort_runs(items, order, doc=lambda it: docs[it[0].pk], created=lambda it: it[1].created)
        page = items[offset:offset + limit]
        body = ", ".join(run_store.run_item_json(project, row, s, ctx.config.live_timeout) for row, s in page)
        return json_text(f'{{"runs": [{body}], "total": {len(items)}}}')

    @r.get(run_path)
    def get_run(project: str, run_id: RunId, user: Me, ctx: Ctx) -> Response:
        """One run: status, upload position and its replayed state (edits applied)."""
        project = project_name(project)
        with read_transaction(ctx.engine) as conn:
            row = _visible_run(conn, user, project, run_id)
            state = run_store.view_state(conn, row)
        return json_text(run_store.run_item_json(project, row, state, ctx.config.live_timeout))

    @r.get(run_path + "/records", response_class=Response,
           responses={200: {"content": {"application/x-ndjson": {}}}})
    def get_records(project: str, run_id: RunId, user: Me, ctx: Ctx,
                    after_seq: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000) -> Response:
        """Stored records with seq > after_seq, in order, one JSON object a line: up to `limit`
        records, and fewer once the page holds about 16 MiB (always at least one).

        `X-Next-Seq` is the seq right after the last record in this page (after_seq + 1 when
        the page is empty): the next page is `after_seq = X-Next-Seq - 1`, and an empty page
        means the reader has every record stored so far. Seqs may skip inside a run (see
        runs.py), so it is not the number of records read."""
        with read_transaction(ctx.engine) as conn:
            row = _visible_run(conn, user, project_name(project), run_id)
            body, next_seq = run_store.record_page(conn, row.pk, after_seq, limit)
        return Response(body, media_type="application/x-ndjson",
                        headers={"X-Next-Seq": str(next_seq)})

    @r.get(run_path + "/files")
    def list_files(project: str, run_id: RunId, user: Me, ctx: Ctx) -> dict:
        """The files the run saved (its `file` records)."""
        with read_transaction(ctx.engine) as conn:
            row = _visible_run(conn, user, project_name(project), run_id)
            state = run_store.view_state(conn, row)
        return {"files": [{"path": p, "size": f.get("size"), "sha256": f.get("sha256")}
                          for p, f in state.files.items()]}

    @r.get(run_path + "/files/{path:path}", response_class=FileResponse)
    def get_file(project: str, run_id: RunId, path: str, user: Me, ctx: Ctx):
        """The bytes of the file the run saved under the name `path` (a label, looked up)."""
        with read_transaction(ctx.engine) as conn:
            row = _visible_run(conn, user, project_name(project), run_id)
            rec = run_store.view_state(conn, row).files.get(path)
            sha = rec.get("sha256") if isinstance(rec, dict) else None
            ok = isinstance(sha, str) and is_sha256(sha) and run_store.is_linked(conn, row.pk, sha)
        return _blob_response(ctx, sha if ok else None)

    @r.post("/histories")
    def histories(body: HistoriesIn, user: Me, ctx: Ctx) -> Response:
        """Downsampled numeric histories of many runs and keys (min/max per bucket)."""
        with read_transaction(ctx.engine) as conn:
            return Response(histories_json(conn, user, body), media_type="application/json")

    return r


# -- helpers -------------------------------------------------------------------------------------

def _filters(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        flt = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise HTTPException(422, f"filters is not JSON: {e}") from None
    if not isinstance(flt, dict):
        raise UsageError("filters must be a JSON object")
    if run_store.depth(flt, MAX_FILTER_DEPTH) > MAX_FILTER_DEPTH:
        raise HTTPException(422, f"filters nest deeper than {MAX_FILTER_DEPTH} levels")
    check_filters(flt)
    return flt


def _locked_run(conn, user: User, project: str, run_id: str) -> run_store.RunRow:
    pid = writable_project(conn, user, project)
    if pid is None:
        raise not_found()
    return run_store.lock_run(conn, pid, run_id)


def _visible_run(conn, user: User, project: str, run_id: str) -> run_store.RunRow:
    pid = visible_project(conn, user, project)
    row = run_store.find_run(conn, pid, run_id) if pid is not None else None
    if row is None:
        raise not_found()
    return row


def _run_for_write(ctx: ServerContext, user: User, project: str, run_id: str) -> int:
    with write_transaction(ctx.engine) as conn:
        return _locked_run(conn, user, project, run_id).pk


def _link_blob(ctx: ServerContext, run_pk: int, sha256: str, size: int) -> None:
    import time

    with write_transaction(ctx.engine) as conn:
        insert_ignore(conn, blobs_table, {"sha256": sha256, "size": size, "created": time.time()})
        insert_ignore(conn, run_blobs, {"run_pk": run_pk, "sha256": sha256})


def _blob_response(ctx: ServerContext, sha256: str | None) -> FileResponse:
    path = ctx.blobs.path(sha256) if sha256 else None
    if path is None or not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path, media_type="application/octet-stream")
