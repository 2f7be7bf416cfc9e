"""Checkpoints of a stage's training run (train, refine): kept on this worker's disk and, with a
store other machines read (S3), restored from it first and mirrored to it as they are written, so
a run resumes on whichever worker takes the job next."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.artifacts import artifact_key
from workers.checkpoint_store import CHECKPOINTS, CheckpointMirror, StoredCheckpoints, mirrors
from workers.progress import ProgressSink
from workers.stages.base import StageContext


class _MirroringJob:
    """The stage's context for the training run, plus `checkpoint_saved`: each checkpoint the
    trainer writes goes to the store too (in the background)."""

    def __init__(self, ctx: StageContext, mirror: CheckpointMirror) -> None:
        self.progress, self.check_canceled, self.live_metrics = ctx.progress, ctx.check_canceled, ctx.live_metrics
        self.checkpoint_saved = mirror.offer


@contextmanager
def checkpointed(ctx: StageContext, checkpoints: Path) -> Iterator[ProgressSink]:
    """The hooks for a training run writing its checkpoints to `checkpoints`: the stage's own, or
    with a shared store, ones that mirror each checkpoint there, after restoring the stored ones."""
    if not mirrors(ctx.storage):
        yield ctx
        return
    stored = StoredCheckpoints(ctx.storage, ctx.job_id)
    stored.restore(checkpoints)
    mirror = CheckpointMirror(stored, ctx.work_dir / "mirroring")
    try:
        yield _MirroringJob(ctx, mirror)
    finally:
        mirror.close()


def drop_checkpoints(ctx: StageContext, *folders: Path) -> None:
    """Once the model is stored: checkpoints hold optimiser state (about 3x the model) and are dead
    weight, on this disk and in the store."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    if mirrors(ctx.storage):
        ctx.storage.delete_prefix(artifact_key(ctx.job_id, CHECKPOINTS))
