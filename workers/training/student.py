"""Finding and loading a student model: a bundled name, a local folder, or a hub id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app import inference
from app.inference import Student
from workers import bundled_models
from workers.errors import StageError


def student_source(name: str) -> str:
    """Where `from_pretrained` should load the student `name` from.

    A bundled name must have been prepared (`make models`); a local folder is used as is;
    anything else is taken as a hub id (which needs network access or a filled HF cache).
    """
    bundled = bundled_models.BUNDLED.get(name)
    if bundled is not None:
        if not bundled_models.is_prepared(bundled):
            raise StageError("student_unavailable",
                             f"the bundled student {name!r} is not prepared; run `make models`")
        return str(bundled_models.model_dir(bundled))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise StageError("student_unavailable", f"{name} is a folder without config.json, not a model")
        return str(path)
    return name


def load_student(name: str, *, for_training: bool = False) -> Student:
    """The student `name` (a bundled name, folder or hub id) loaded by the one inference path
    (`app.inference.load_student`); a student that cannot be loaded fails the stage."""
    source = student_source(name)
    try:
        return inference.load_student(source, for_training=for_training)
    except inference.StudentUnavailable as exc:
        raise StageError("student_unavailable", f"cannot load the student {name!r}: {exc.detail}") from exc


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def folder_size(path: str | Path) -> int | None:
    """Bytes on disk of a model folder (None when it is not a local folder)."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def train_dtype() -> Any:
    """The dtype students train and answer in (see `app.inference.compute_dtype`)."""
    return inference.compute_dtype()
