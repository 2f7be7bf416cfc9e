"""The teacher and student models this service offers."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.auth import AUTHENTICATED
from app.config import get_settings
from app.schemas import ModelsPublic

router = APIRouter(prefix="/api", tags=["models"], **AUTHENTICATED)


@router.get("/models", response_model=ModelsPublic)
def list_models() -> ModelsPublic:
    """Teacher and student names from configuration, defaults first."""
    settings = get_settings()
    return ModelsPublic(teachers=settings.teachers, students=settings.students)
