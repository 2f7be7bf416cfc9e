"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match, Mount
from starlette.types import Scope

from app.api.deps import limit_blocking_calls
from app.api.limits import RequestSizeLimit
from app.api.openai import router as openai_api
from app.api.routes import (
    artifacts,
    bundle,
    compare,
    data,
    data_edits,
    estimate,
    events,
    health,
    jobs,
    keys,
    models,
    reports,
    session,
)
from app.api.security import install_security
from app.errors import install_error_handlers

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
#: Paths that belong to the API: the dashboard's files are never looked up under them.
API_PREFIXES = ("/api/", "/v1/")
API_PATHS = frozenset({"/api", "/v1", "/health", "/openapi.json", "/docs", "/redoc"})


class DashboardMount(Mount):
    """The dashboard's files at `/`, except for API paths. A mount at `/` matches every path, so
    without this a request to an API route with the wrong method (or to an unknown API path)
    would reach the file server and get its answer (405 `Allow: GET, HEAD`, or an HTML 404)
    instead of the API's own (405 listing the route's methods, or the JSON error envelope)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if path in API_PATHS or path.startswith(API_PREFIXES):
            return Match.NONE, {}
        return super().matches(scope)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    limit_blocking_calls()  # no more threads than database connections: requests queue, never time out
    yield


def create_app() -> FastAPI:
    """Build the API with its routes, error envelope and the dashboard at `/`."""
    app = FastAPI(
        lifespan=lifespan,
        title="vibetune",
        version="0.1.0",
        description="Describe a task in plain words; a teacher model makes the data and a small student learns it.",
    )
    install_error_handlers(app)
    app.add_middleware(RequestSizeLimit)  # MAX_REQUEST_BYTES: 413 before an oversized body is read
    install_security(app)
    # `estimate` ahead of `jobs`, whose /api/jobs/{job_id} routes its path fits too.
    routers = (estimate, jobs, events, artifacts, bundle, reports, data, data_edits, compare, models, keys, session,
               openai_api, health)
    for module in routers:
        app.include_router(module.router)
    if FRONTEND_DIR.is_dir():
        app.router.routes.append(DashboardMount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="dashboard"))
    return app


app = create_app()
