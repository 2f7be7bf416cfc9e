"""One training run of a student on data set rows: the TRL part of the train stage, usable
without the service (benchmarks call it too)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.specs import TaskSpec, TrainingOptions
from workers.training import options as training_options
from workers.training.answers import first_answer_tokens
from workers.training.data import training_examples
from workers.training.harness import (
    JobHooks,
    TrainResult,
    job_callback,
    last_complete_checkpoint,
    run_metrics,
    save_trained,
    train_resuming,
    trainable_parameters,
)
from workers.training.student import load_student, parameter_count, train_dtype

__all__ = ["TrainResult", "fit_lengths", "last_complete_checkpoint", "longest_example", "train_student"]


def fit_lengths(plan: training_options.TrainingPlan, longest: int, *, tools_in_prompt: bool,
                notes: list[str]) -> training_options.TrainingPlan:
    """The plan with `max_length` raised to the `longest` example when the offered tools make the
    prompts long (cut, an example would lose its answer; otherwise a note says so), and with
    micro-batches when a batch of such sequences would not fit in memory."""
    if longest > plan.max_length:
        if tools_in_prompt:
            notes.append(f"max_length raised from {plan.max_length} to {longest} tokens to fit the longest example "
                         "with its offered tools")
            plan = dataclasses.replace(plan, max_length=longest)
        else:
            notes.append(f"the longest example is {longest} tokens, more than max_length {plan.max_length}: longer "
                         "examples lose the end of their answer")
    micro = training_options.micro_batch_size(plan.batch_size, plan.max_length)
    if micro < plan.batch_size:
        plan = dataclasses.replace(plan, micro_batch=micro)
        notes.append(f"batches of {plan.batch_size} run as {plan.batch_size // micro} micro-batches of {micro} "
                     f"(sequences up to {plan.max_length} tokens), gradients accumulated")
    return plan


def longest_example(tokenizer: Any, examples: Sequence[Mapping[str, Any]]) -> int:
    """The token count of the longest prompt/completion example under the student's chat template."""
    longest = 0
    for example in examples:
        chat = [dict(m) for m in [*example["prompt"], *example["completion"]]]
        text = tokenizer.apply_chat_template(chat, tokenize=False)
        longest = max(longest, len(tokenizer(text, add_special_tokens=False).input_ids))
    return longest


def train_student(
    *, student: str, rows: Sequence[dict[str, Any]], labels: Sequence[str],
    options: TrainingOptions | Mapping[str, Any], checkpoints: Path, out: Path, job: JobHooks | None = None,
    soft_labels: bool = True, teacher: str | None = None, task_spec: TaskSpec | None = None,
) -> TrainResult:
    """Fine-tune `student` on `rows` (input/output/label_probs); returns the merged model folder,
    the adapter folder (LoRA only) and the run's metrics. Resumes from the newest checkpoint in
    `checkpoints` when there is one. With `distillation: on_policy` the run is TRL's on-policy
    DistillationTrainer against the weights of `teacher` (see `workers.training.on_policy`)."""
    import torch
    from datasets import Dataset

    from workers.training.trainer import DistillSFTTrainer

    loaded = load_student(student, for_training=True)
    model, tokenizer = loaded.model, loaded.tokenizer
    n_params = parameter_count(model)
    given = options if isinstance(options, TrainingOptions) else TrainingOptions.model_validate(dict(options))
    plan = training_options.resolve(given, n_params, teacher=teacher)
    if plan.distillation == training_options.ON_POLICY:
        from workers.training.on_policy import train_on_policy

        return train_on_policy(student=student, model=model, tokenizer=tokenizer, n_params=n_params, plan=plan,
                               rows=rows, teacher=teacher, task_spec=task_spec, checkpoints=checkpoints, out=out,
                               job=job)
    token_ids = first_answer_tokens(tokenizer, labels) if labels else None
    distill = bool(soft_labels and token_ids and plan.soft_label_weight > 0)
    notes: list[str] = []
    if labels and token_ids is None:
        notes.append("two labels start with the same token, so soft labels were not used (cross entropy only)")
    built = training_examples(rows, labels, task_spec, soft_labels=distill, seed=plan.seed)
    examples = built.examples
    plan = fit_lengths(plan, longest_example(tokenizer, examples),
                       tools_in_prompt=task_spec is not None and task_spec.tools_in_prompt, notes=notes)
    if given.epochs is None:
        # Counted on the answers alone: the rationale examples add steps, not fewer passes over the answers.
        plan = dataclasses.replace(plan, epochs=training_options.default_epochs(built.answers, plan.batch_size))

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
        "repeated_for_balance": built.repeated, "rationale_examples": built.rationales,
    }
    return TrainResult(model_dir=model_dir, adapter_dir=adapter_dir, metrics=metrics)
