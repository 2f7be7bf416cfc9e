"""The FastAPI application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.api.openai import router as openai_api
from app.api.routes import artifacts, bundle, data, events, health, jobs, models, reports
from app.api.security import install_security
from app.errors import install_error_handlers

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


def create_app() -> FastAPI:
    """Build the API with its routes, error envelope and the dashboard at `/`."""
    app = FastAPI(
        title="vibetune",
        version="0.1.0",
        description="Describe a task in plain words; a teacher model makes the data and a small student learns it.",
    )
    install_error_handlers(app)
    install_security(app)
    for module in (jobs, events, artifacts, bundle, reports, data, models, openai_api, health):
        app.include_router(module.router)
    if FRONTEND_DIR.is_dir():
        app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="dashboard")
    return app


app = create_app()
