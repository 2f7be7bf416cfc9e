"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.api.deps import limit_blocking_calls
from app.api.limits import RequestSizeLimit
from app.api.openai import router as openai_api
from app.api.routes import artifacts, bundle, data, events, health, jobs, models, reports
from app.api.security import install_security
from app.errors import install_error_handlers

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


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
    for module in (jobs, events, artifacts, bundle, reports, data, models, openai_api, health):
        app.include_router(module.router)
    if FRONTEND_DIR.is_dir():
        app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="dashboard")
    return app


app = create_app()
