"""On-policy distillation (`training.distillation: on_policy`) with TRL's DistillationTrainer.

The student writes its own answer to each training input (sampled, at most a few tokens longer
than the longest answer in the data set) and is pulled, token by token, towards the teacher's
next-token distribution over those same tokens (TRL's generalized Jensen-Shannon divergence,
computed chunk-wise from both models' hidden states and LM heads; Agarwal et al., 2024). So the
student learns from its own mistakes rather than only from the teacher's finished answers.

This needs the teacher's *weights* (the served API is not enough) and a teacher whose vocabulary
is the student's: the same token -> id map and an LM head of the same width. Anything else fails
the stage with `distillation_unavailable`, naming both models and why; there is no silent
fall-back to soft labels. The bundled pair (Qwen2.5 teacher, SmolLM2 student) has different
vocabularies, so it is refused.

One addition to TRL: the teacher scores the student's answer after its own prompt, the one the
label stage sends it (`workers.prompts.label_messages`: the task, its labels or instruction, then
the input), while the student sees the bare input it will see when served. The answer tokens are
identical in both sequences, so the per-token distributions still line up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from trl import DistillationTrainer
from trl.trainer.utils import pad

from app.inference import answer_budget
from app.specs import TaskSpec
from workers import bundled_models
from workers.errors import StageError
from workers.training import options as training_options
from workers.training.data import on_policy_example
from workers.training.harness import (
    JobHooks,
    TrainResult,
    job_callback,
    run_metrics,
    save_trained,
    train_resuming,
    trainable_parameters,
)
from workers.training.options import TrainingPlan
from workers.training.student import train_dtype

UNAVAILABLE = "distillation_unavailable"
TEACHER_PROMPT_IDS = "teacher_prompt_ids"
TEACHER_PROMPT_MASK = "teacher_prompt_mask"


def vocabularies_match(student_tokenizer: Any, teacher_tokenizer: Any) -> bool:
    """Whether both tokenizers have the same vocabulary: the same size and the same token -> id
    map, added tokens included. (TRL itself only compares the models' `vocab_size`.)"""
    return (len(student_tokenizer) == len(teacher_tokenizer)
            and student_tokenizer.get_vocab() == teacher_tokenizer.get_vocab())


def vocabulary_difference(student_tokenizer: Any, teacher_tokenizer: Any) -> str:
    """In words, how two vocabularies differ (for the error message)."""
    student_vocab, teacher_vocab = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if len(student_vocab) != len(teacher_vocab):
        return f"the student has {len(student_vocab):,} tokens, the teacher {len(teacher_vocab):,}"
    moved = sum(1 for token, i in student_vocab.items() if teacher_vocab.get(token) != i)
    return f"both have {len(student_vocab):,} tokens, but {moved:,} of them have other ids"


def teacher_source(weights: str | None, teacher: str | None) -> str:
    """Where `from_pretrained` should load the teacher's weights from: a prepared local folder,
    or else a hub id (which needs network access or a filled HF cache)."""
    name = repr(teacher) if teacher else "the job's teacher"
    if not weights:
        raise StageError(UNAVAILABLE, (
            f"on-policy distillation needs the teacher's weights, and the service does not know where the weights "
            f"of {name} are: set training.teacher_weights to a local folder or hub id, or use "
            f"distillation: soft_labels"))
    path = Path(weights).expanduser()
    bundled = bundled_models.TEACHER
    if path == bundled_models.model_dir(bundled) and not bundled_models.is_prepared(bundled):
        raise StageError(UNAVAILABLE, f"the weights of the bundled teacher {bundled.name!r} are not prepared in "
                                      f"{path}; run `make models`")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise StageError(UNAVAILABLE, f"the teacher's weights folder {weights} has no config.json, "
                                          f"so it is not a model")
        return str(path)
    if path.is_absolute() or weights.startswith((".", "~")) or path.exists():
        raise StageError(UNAVAILABLE, f"the teacher's weights for {name} are not found: {weights} is not a folder")
    return weights


def check_teacher(source: str, teacher: str | None, student: str, student_model: Any,
                  student_tokenizer: Any) -> Any:
    """The teacher's tokenizer, once the teacher is known to share the student's vocabulary and
    LM head width (read from its tokenizer and config, before loading any weights)."""
    from transformers import AutoConfig, AutoTokenizer

    name = f"{teacher!r} ({source})" if teacher and teacher != source else repr(source)
    try:
        teacher_tokenizer = AutoTokenizer.from_pretrained(source)
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise StageError(UNAVAILABLE, f"cannot load the teacher's weights {name}: {exc}") from exc
    if not vocabularies_match(student_tokenizer, teacher_tokenizer):
        raise StageError(UNAVAILABLE, (
            f"on-policy distillation needs a teacher that shares the student's vocabulary, and the teacher {name} "
            f"and the student {student!r} do not: {vocabulary_difference(student_tokenizer, teacher_tokenizer)}. "
            f"Use distillation: soft_labels, or a teacher from the student's model family"))
    student_width = student_model.config.get_text_config().vocab_size
    teacher_width = config.get_text_config().vocab_size
    if student_width != teacher_width:
        raise StageError(UNAVAILABLE, (
            f"the teacher {name} and the student {student!r} share a tokenizer but not the width of their output "
            f"layers ({teacher_width:,} vs {student_width:,} logits), which on-policy distillation compares "
            f"position by position. Use distillation: soft_labels"))
    return teacher_tokenizer


def load_teacher(source: str, teacher: str | None) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(source, dtype=train_dtype())
    except (OSError, ValueError) as exc:
        raise StageError(UNAVAILABLE,
                         f"cannot load the teacher's weights {teacher or source!r} from {source}: {exc}") from exc


class OnPolicyTrainer(DistillationTrainer):
    """TRL's DistillationTrainer whose teacher may read a prompt of its own (`teacher_prompt`)."""

    def __init__(self, *args: Any, teacher_tokenizer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tokenizer = teacher_tokenizer if teacher_tokenizer is not None and teacher_tokenizer.chat_template else None
        self.teacher_tokenizer = tokenizer or self._tokenizer
        self._teacher_prompt: tuple[torch.Tensor, torch.Tensor] | None = None

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if inputs and "teacher_prompt" in inputs[0]:
            ids = [torch.tensor(self.teacher_tokenizer.apply_chat_template(
                x["teacher_prompt"], add_generation_prompt=True, tokenize=True, return_dict=False)) for x in inputs]
            device = output["prompt_ids"].device
            output[TEACHER_PROMPT_IDS] = pad(ids, padding_value=self._tokenizer.pad_token_id,
                                             padding_side="left").to(device)
            output[TEACHER_PROMPT_MASK] = pad([torch.ones_like(i) for i in ids], padding_value=0,
                                              padding_side="left").to(device)
        return output

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if TEACHER_PROMPT_IDS in inputs:
            self._teacher_prompt = (inputs[TEACHER_PROMPT_IDS], inputs[TEACHER_PROMPT_MASK])
        try:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            self._teacher_prompt = None

    def _get_last_hidden_state(
        self, unwrapped_model, input_ids, attention_mask, logits_to_keep, **kwargs,
    ):
        # TRL runs both models on prompt + completion and keeps the last `logits_to_keep` (= completion)
        # positions; for the teacher, swap the prompt part for the teacher's own prompt.
        if self._teacher_prompt is not None and unwrapped_model is self.accelerator.unwrap_model(self.teacher_model):
            ids, mask = self._teacher_prompt
            input_ids = torch.cat([ids.to(input_ids.device), input_ids[:, -logits_to_keep:]], dim=1)
            attention_mask = torch.cat([mask.to(attention_mask.device), attention_mask[:, -logits_to_keep:]], dim=1)
        return super()._get_last_hidden_state(unwrapped_model, input_ids, attention_mask, logits_to_keep, **kwargs)


def train_on_policy(
    *, student: str, model: Any, tokenizer: Any, n_params: int, plan: TrainingPlan, rows: Sequence[dict[str, Any]],
    teacher: str | None, task_spec: TaskSpec | None, checkpoints: Path, out: Path, job: JobHooks | None = None,
) -> TrainResult:
    """Distil the teacher into the loaded student on-policy; the same folders, checkpoints,
    resume, cancel and live loss as the soft-label run (`workers.training.run`)."""
    from datasets import Dataset

    source = teacher_source(plan.teacher_weights, teacher)
    teacher_tokenizer = check_teacher(source, teacher, student, model, tokenizer)
    teacher_model = load_teacher(source, teacher)

    examples = [on_policy_example(row, task_spec) for row in rows]
    steps = training_options.total_steps(len(examples), plan, drop_last=True)
    config = training_options.distillation_config(
        plan, checkpoints, bf16=train_dtype() == torch.bfloat16,
        max_new_tokens=answer_budget(tokenizer, [row["output"] for row in rows]),
        n_examples=len(examples), save_steps=training_options.save_every(steps))
    notes = []
    left_out = len(examples) % config.per_device_train_batch_size
    if left_out:
        notes.append(f"{left_out} examples per epoch are left out (TRL drops an incomplete last batch; "
                     f"the order is reshuffled every epoch)")
    if not task_spec:
        notes.append("no task spec, so the teacher read the student's bare prompt")
    callback = job_callback(job)
    trainer = OnPolicyTrainer(
        model=model, teacher_model=teacher_model, args=config, train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer, teacher_tokenizer=teacher_tokenizer, callbacks=[callback],
        peft_config=training_options.lora_config(plan) if plan.method == "lora" else None,
    )
    trainable = trainable_parameters(trainer)
    output, resume = train_resuming(trainer, checkpoints)
    model_dir, adapter_dir = save_trained(trainer, tokenizer, plan, out)
    metrics = {
        **run_metrics(student=student, n_params=n_params, trainable=trainable,
                      plan=plan, examples=len(examples), trainer=trainer, output=output, callback=callback,
                      resume=resume, tokens=int(trainer.state.num_input_tokens_seen)),
        "soft_labels": False, "label_token_ids": None, "teacher": teacher, "teacher_weights": source,
        "teacher_parameters": sum(p.numel() for p in teacher_model.parameters()),
        "beta": config.beta, "max_new_tokens": config.max_completion_length,
        "teacher_sees_task": bool(task_spec), "notes": notes,
    }
    return TrainResult(model_dir=model_dir, adapter_dir=adapter_dir, metrics=metrics)
