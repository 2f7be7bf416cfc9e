"""What every training run shares, whichever trainer runs it (soft labels in `run`, on-policy in
`on_policy`): the callback tying it to its job, resuming from checkpoints, saving the trained
folders, and the metrics it records."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.progress import ProgressSink
from workers.training import options as training_options

if TYPE_CHECKING:
    from workers.training.trainer import JobCallback

log = logging.getLogger(__name__)

#: What a run reports to its job: a stage's context or the pipeline's sink both fit.
JobHooks = ProgressSink


@dataclass
class TrainResult:
    model_dir: Path
    adapter_dir: Path | None
    metrics: dict[str, Any]


def job_callback(job: JobHooks | None) -> JobCallback:
    """The callback that ties a run to its job: progress, cancel between steps, live loss, and
    checkpoints no closer than `TRAIN_CHECKPOINT_SECONDS`, each handed to the job's
    `checkpoint_saved(path)` when it has one (the train stage: mirrored to the store)."""
    from app.config import get_settings
    from workers.training.trainer import JobCallback

    return JobCallback(job.progress if job else _ignore, job.check_canceled if job else _ignore,
                       job.live_metrics if job else _ignore,
                       checkpoint_seconds=get_settings().train_checkpoint_seconds,
                       on_checkpoint=getattr(job, "checkpoint_saved", None))


def trainable_parameters(trainer: Any) -> int:
    return sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)


def train_resuming(trainer: Any, checkpoints: Path) -> tuple[Any, str | None]:
    """Train, resuming from the newest complete checkpoint in `checkpoints` if there is one;
    returns TRL's output and the checkpoint resumed from."""
    resume = last_complete_checkpoint(checkpoints)
    if resume:
        log.info("resuming training from %s", resume)
    return trainer.train(resume_from_checkpoint=resume), resume


def save_trained(trainer: Any, tokenizer: Any, plan: training_options.TrainingPlan,
                 out: Path) -> tuple[Path, Path | None]:
    """Write the trained model (LoRA merged into it) and tokenizer to `out/model`, and the LoRA
    adapter alone to `out/adapter`; returns both folders (no adapter for full fine-tuning)."""
    model_dir, adapter_dir = out / "model", None
    shutil.rmtree(out, ignore_errors=True)
    if plan.method == "lora":
        adapter_dir = out / "adapter"
        trainer.model.save_pretrained(adapter_dir)
        merged = trainer.model.merge_and_unload()
    else:
        merged = trainer.model
    merged.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir, adapter_dir


def run_metrics(*, student: str, n_params: int, trainable: int, plan: training_options.TrainingPlan,
                examples: int, trainer: Any, output: Any, callback: Any, resume: str | None,
                tokens: int) -> dict[str, Any]:
    """The metrics every run records, whichever trainer ran it."""
    runtime = output.metrics.get("train_runtime") or 0.0
    return {
        "student": student, "parameters": n_params, "trainable_parameters": trainable,
        "plan": plan.as_dict(), "distillation": plan.distillation, "examples": examples,
        "steps": trainer.state.global_step, "train_loss": round(float(output.training_loss), 5),
        "loss_history": callback.history, "resumed_from": Path(resume).name if resume else None,
        "train_runtime_s": round(runtime, 1), "tokens": tokens,
        "tokens_per_second": round(tokens / runtime, 1) if runtime and tokens else None,
    }


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint that was written to the end. The trainer writes `trainer_state.json`
    last, so a worker killed mid-save leaves a folder without a readable one, which is skipped."""
    if not folder.is_dir():
        return None
    found = sorted((p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for checkpoint in found:
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return str(checkpoint)
    return None


def _ignore(*_args: Any) -> None:
    return None
