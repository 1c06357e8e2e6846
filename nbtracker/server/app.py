"""The HTTP API (FastAPI): `create_app(config)` builds it; `nbtracker server` serves it.

Every route under /api/v1 requires `Authorization: Bearer <key>` (the router's dependency),
except `GET /api/v1/health`; `GET /openapi.json` is public too. A project the caller may not
see answers 404 for reading and writing alike, as one that does not exist. Bodies are JSON
except blob uploads (raw bytes) and the records route's answer (NDJSON). There is no /docs
page: it would load scripts from a CDN.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy.exc
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from .._version import __version__
from ..errors import UsageError
from .accounts import User, user_for_key
from .blobs import BlobStore
from .config import ServerConfig
from .db import create_db_engine, database_url, read_transaction
from .middleware import BodyLimit, HostCheck

API = "/api/v1"


@dataclass
class ServerContext:
    config: ServerConfig
    engine: Engine
    blobs: BlobStore


def context(request: Request) -> ServerContext:
    return request.app.state.server


_bearer = HTTPBearer(auto_error=False, description="an API key (nbt_...)")


def current_user(cred: HTTPAuthorizationCredentials | None = Depends(_bearer),
                 ctx: ServerContext = Depends(context)) -> User:
    """The caller, from the API key in `Authorization: Bearer ...` (401 without a good one)."""
    if cred is None or not cred.credentials:
        raise HTTPException(401, "an API key is needed: send Authorization: Bearer nbt_...",
                            headers={"WWW-Authenticate": "Bearer"})
    with read_transaction(ctx.engine) as conn:
        user = user_for_key(conn, cred.credentials)
    if user is None:
        raise HTTPException(401, "unknown, revoked or disabled API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


def public_router() -> APIRouter:
    router = APIRouter(prefix=API)

    @router.get("/health", tags=["public"])
    def health() -> dict:
        """Whether the server is up (no key needed)."""
        return {"ok": True, "version": __version__}

    return router


def create_app(config: ServerConfig, engine: Engine | None = None) -> FastAPI:
    """The server's ASGI app over `engine` (default: the database `config` names, which must be
    migrated already — `nbtracker server` migrates it at start)."""
    from . import routes

    engine = engine or create_db_engine(database_url(config.db, config.data_dir))
    app = FastAPI(title="nbtracker server", version=__version__, docs_url=None, redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None,
                  description="The team server of nbtracker: runs, records, files and histories.")
    app.state.server = ServerContext(config, engine, BlobStore(config.data_dir))
    app.include_router(public_router())
    app.include_router(routes.router(), prefix=API, dependencies=[Depends(current_user)])
    _add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=config.max_request_bytes)
    app.add_middleware(HostCheck, allowed=config.host_names())  # outermost: runs first
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UsageError)
    async def usage_error(request: Request, exc: UsageError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(sqlalchemy.exc.DataError)
    async def data_refused(request: Request, exc: Exception):
        # a value the database cannot hold (NUL in text, a number out of range): the request
        # is at fault and sending it again will not help
        return JSONResponse({"detail": "the database cannot store a value of this request: "
                                       + str(getattr(exc, "orig", exc)).splitlines()[0][:200]},
                            status_code=422)

    @app.exception_handler(sqlalchemy.exc.OperationalError)
    async def database_busy(request: Request, exc: Exception):
        # a locked or unreachable database: the client retries with backoff
        return JSONResponse({"detail": "the database is busy or unreachable; retry"},
                            status_code=503, headers={"Retry-After": "1"})
