"""train: fine-tune the student on the curated train split with TRL, distilling the teacher's
soft labels for classification (or, with `training.distillation: on_policy`, the teacher's
weights on-policy). Resumes from its last checkpoint after a crash: the one on this worker's disk,
or, with a store other machines read (S3), the one mirrored there by whichever worker ran before."""

from __future__ import annotations

import time
from typing import Any

from app.artifacts import ADAPTER_FOLDER, DATASET_ARTIFACT, MODEL_FOLDER, find_artifact, save_folder
from app.dataset_edits import live_rows
from app.dataset_revisions import current_revision
from app.db import session_scope
from workers.stages.base import StageContext, StageError
from workers.stages.checkpointing import checkpointed, drop_checkpoints
from workers.stages.common import read_jsonl


class TrainStage:
    name = "train"
    queue = "gpu"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        from workers.training.run import train_student

        spec = ctx.task_spec()
        rows = [row for row in live_rows(read_jsonl(ctx, DATASET_ARTIFACT)) if row.get("split", "train") == "train"]
        with session_scope() as session:
            # Which data the model learned from: the revision a person's edits made, and its digest.
            data = {"data_revision": current_revision(session, ctx.job_id),
                    "data_sha256": getattr(find_artifact(session, ctx.job_id, DATASET_ARTIFACT), "sha256", None)}
        if not rows:
            raise StageError("no_training_data", "the curated data set has no training rows")
        started = time.monotonic()
        checkpoints = ctx.work_dir / "checkpoints"
        with checkpointed(ctx, checkpoints) as job:
            result = train_student(
                student=ctx.spec.student, rows=rows, labels=spec.label_names, options=ctx.spec.training,
                checkpoints=checkpoints, out=ctx.work_dir / "out", job=job,
                teacher=ctx.spec.teacher, task_spec=spec,
            )
        with session_scope() as session:
            saved = save_folder(session, ctx.storage, ctx.job_id, MODEL_FOLDER, result.model_dir)
            if result.adapter_dir is not None:
                saved += save_folder(session, ctx.storage, ctx.job_id, ADAPTER_FOLDER, result.adapter_dir)
        drop_checkpoints(ctx, checkpoints, ctx.work_dir / "out")
        return {**result.metrics, **data, "seconds": round(time.monotonic() - started, 1),
                "model_bytes": sum(a.size for a in saved if a.name.startswith(f"{MODEL_FOLDER}/"))}

