"""One training run of a student on data set rows: the TRL part of the train stage, usable
without the service (benchmarks call it too)."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.stages.base import ProgressSink
from workers.training import options as training_options
from workers.training.answers import first_answer_tokens
from workers.training.data import oversample, sft_example
from workers.training.student import load_student, parameter_count, train_dtype

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


def train_student(
    *, student: str, rows: Sequence[dict[str, Any]], labels: Sequence[str], options: dict[str, Any],
    checkpoints: Path, out: Path, job: JobHooks | None = None, soft_labels: bool = True,
    teacher: str | None = None, task_spec: dict[str, Any] | None = None,
) -> TrainResult:
    """Fine-tune `student` on `rows` (input/output/label_probs); returns the merged model folder,
    the adapter folder (LoRA only) and the run's metrics. Resumes from the newest checkpoint in
    `checkpoints` when there is one. With `distillation: on_policy` the run is TRL's on-policy
    DistillationTrainer against the weights of `teacher` (see `workers.training.on_policy`)."""
    import torch
    from datasets import Dataset

    from workers.training.trainer import DistillSFTTrainer

    model, tokenizer = load_student(student, dtype=train_dtype())
    n_params = parameter_count(model)
    plan = training_options.resolve(options, n_params, teacher=teacher)
    if plan.distillation == training_options.ON_POLICY:
        from workers.training.on_policy import train_on_policy

        return train_on_policy(student=student, model=model, tokenizer=tokenizer, n_params=n_params, plan=plan,
                               rows=rows, teacher=teacher, task_spec=task_spec, checkpoints=checkpoints, out=out,
                               job=job)
    token_ids = first_answer_tokens(tokenizer, labels) if labels else None
    distill = bool(soft_labels and token_ids and plan.soft_label_weight > 0)
    notes = []
    if labels and token_ids is None:
        notes.append("two labels start with the same token, so soft labels were not used (cross entropy only)")
    distinct = len(rows)
    if labels:
        rows = oversample(rows, labels, plan.seed)
    examples = [sft_example(row, labels if distill else ()) for row in rows]
    if options.get("epochs") is None:
        plan = dataclasses.replace(plan, epochs=training_options.default_epochs(len(examples), plan.batch_size))

    steps = training_options.total_steps(len(examples), plan)
    config = training_options.sft_config(plan, checkpoints, bf16=train_dtype() == torch.bfloat16,
                                         save_steps=training_options.save_every(steps))
    callback = job_callback(job)
    trainer = DistillSFTTrainer(
        model=model, args=config, train_dataset=Dataset.from_list(examples), processing_class=tokenizer,
        peft_config=training_options.lora_config(plan) if plan.method == "lora" else None,
        label_token_ids=token_ids if distill else None, soft_label_weight=plan.soft_label_weight,
        temperature=plan.temperature, callbacks=[callback],
    )
    trainable = trainable_parameters(trainer)
    output, resume = train_resuming(trainer, checkpoints)
    model_dir, adapter_dir = save_trained(trainer, tokenizer, plan, out)
    tokens = int(getattr(trainer, "_total_train_tokens", 0))
    metrics = {
        **run_metrics(student=student, n_params=n_params, trainable=trainable, plan=plan, examples=len(examples),
                      trainer=trainer, output=output, callback=callback, resume=resume, tokens=tokens),
        "soft_labels": distill, "label_token_ids": token_ids if distill else None, "notes": notes,
        "repeated_for_balance": len(examples) - distinct,
    }
    return TrainResult(model_dir=model_dir, adapter_dir=adapter_dir, metrics=metrics)


def job_callback(job: JobHooks | None) -> "JobCallback":
    """The callback that ties a run to its job: progress, cancel between steps, live loss, and
    checkpoints no closer than `TRAIN_CHECKPOINT_SECONDS`."""
    from app.config import get_settings
    from workers.training.trainer import JobCallback

    return JobCallback(job.progress if job else _ignore, job.check_canceled if job else _ignore,
                       job.live_metrics if job else _ignore,
                       checkpoint_seconds=get_settings().train_checkpoint_seconds)


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
