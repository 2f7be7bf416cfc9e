"""Bodies of the data-editing routes: a batch of edits, an import, a revision."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from app.config import get_settings
from app.schemas import storable_text
from app.specs import Strict


class Edit(Strict):
    """One change: `update` a row's output, `delete` or `restore` a row, or `add` one."""

    op: Literal["update", "delete", "restore", "add"]
    index: int | None = Field(None, ge=0, description="The row (its `index` in GET /examples); not for `add`.")
    input: str | None = Field(None, max_length=20_000, description="`add`: the new row's input.")
    output: str | None = Field(None, max_length=20_000, description="`update` and `add`: the output.")
    split: Literal["train", "validation"] | None = Field(None, description="`add`: the new row's split (train).")

    @field_validator("input", "output")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return None if value is None else storable_text(value)


def _bounded(edits: list[Any]) -> list[Any]:
    # A data set holds up to num_examples rows plus seeds and top-ups: twice the cap leaves room.
    limit = 2 * get_settings().max_num_examples
    if len(edits) > limit:
        raise ValueError(f"{len(edits)} edits given; the limit is {limit}")
    return edits


class EditBatch(Strict):
    """Edits applied together as one revision (all or none)."""

    base_revision: int | None = Field(
        None, ge=0, description="The revision these edits were made on; 409 `data_changed` if the data set has "
        "moved on since. Omit to apply to whatever is newest.")
    edits: list[Edit] = Field(min_length=1)

    @field_validator("edits")
    @classmethod
    def _few_enough(cls, value: list[Edit]) -> list[Edit]:
        return _bounded(value)


class ImportRow(Strict):
    """A row of an edited export: with `index`, that row; without, a new one."""

    index: int | None = Field(None, ge=0)
    input: str | None = Field(None, max_length=20_000)
    output: str | None = Field(None, max_length=20_000)
    split: Literal["train", "validation"] | None = None

    @field_validator("input", "output")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return None if value is None else storable_text(value)


class ImportBody(Strict):
    """The whole data set as a person edited it: rows left out are deleted."""

    rows: list[ImportRow]
    dry_run: bool = Field(False, description="Only say what would change.")
    base_revision: int | None = Field(None, ge=0, description="As in an edit batch.")

    @field_validator("rows")
    @classmethod
    def _few_enough(cls, value: list[ImportRow]) -> list[ImportRow]:
        return _bounded(value)


class EditResult(BaseModel):
    revision: int = Field(description="The data set's revision now (unchanged by a dry run or a batch that "
                                      "changes nothing).")
    changes: dict[str, int] = Field(description="Rows updated, deleted, restored and added.")
    edits: list[dict[str, Any]] = Field(description="Each change as applied, with a row's output before.")
    rows: int = Field(description="Rows in the data set now (deleted ones not counted).")
    dry_run: bool = False


class RevisionPublic(BaseModel):
    number: int
    actor: str
    created_at: datetime
    changes: dict[str, int]
    edits: list[dict[str, Any]]
    rows_sha256: str


class RevisionsPublic(BaseModel):
    current: int = Field(description="The newest revision (0: as curation wrote it).")
    items: list[RevisionPublic] = Field(description="Newest first.")


__all__ = ["Edit", "EditBatch", "EditResult", "ImportBody", "ImportRow", "RevisionPublic",
           "RevisionsPublic"]
