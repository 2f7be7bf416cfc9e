"""Health of the service and the parts it depends on."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.health import check_broker, check_database, check_teacher, public
from app.schemas import HealthPublic

router = APIRouter(tags=["health"])


def _version() -> str:
    try:
        return version("vibetune")
    except PackageNotFoundError:
        return "unknown"


@router.get(
    "/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "A part is not ok; each field says which"}},
)
def health() -> JSONResponse:
    """`status` is `ok` when the database, the broker and the teacher all answer; otherwise 503.
    Each part is `ok` or `error`; what is wrong is in the service's log (it may name internal hosts)."""
    checks = {"database": check_database, "broker": check_broker, "teacher": check_teacher}
    parts = {name: public(name, check()) for name, check in checks.items()}
    ok = all(state == "ok" for state in parts.values())
    body = HealthPublic(status="ok" if ok else "degraded", version=_version(), **parts)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
