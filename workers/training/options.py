"""The job's `training` options, resolved with defaults per student size, and the one place that
turns them into TRL configs: `SFTConfig` (soft labels) and `DistillationConfig` (on-policy)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.training.distill import DEFAULT_TEMPERATURE, DEFAULT_WEIGHT

if TYPE_CHECKING:
    from peft import LoraConfig
    from trl import DistillationConfig, SFTConfig

#: Students up to this size are fully fine-tuned by default; bigger ones get LoRA adapters.
FULL_FINETUNE_MAX_PARAMS = 500_000_000

SOFT_LABELS = "soft_labels"
ON_POLICY = "on_policy"
#: On-policy distillation samples the student's answers at this temperature (and softens both
#: distributions by it in the loss) unless the job sets `temperature`; TRL's own default.
ON_POLICY_TEMPERATURE = 1.0


@dataclass(frozen=True)
class TrainingPlan:
    """Every training choice, filled in. Stored in the train stage's metrics."""

    method: str
    epochs: float
    learning_rate: float
    batch_size: int
    max_length: int
    lora_r: int
    lora_alpha: int
    soft_label_weight: float
    temperature: float
    seed: int
    #: Recompute activations in the backward pass: saves memory on big students, costs ~30% time.
    gradient_checkpointing: bool = False
    #: `soft_labels` (SFT on the teacher's data, plus the KL term) or `on_policy` (TRL's
    #: DistillationTrainer: the student writes answers, the teacher's weights score every token).
    distillation: str = SOFT_LABELS
    #: Where the teacher's weights are (on-policy only): a local folder or a hub id.
    teacher_weights: str | None = None

    def as_dict(self) -> dict[str, Any]:
        plan = asdict(self)
        if plan["teacher_weights"] is None:
            del plan["teacher_weights"]
        return plan


def resolve(options: dict[str, Any], n_params: int, teacher: str | None = None) -> TrainingPlan:
    """The person's options where given, else the defaults for a student of `n_params` parameters
    (and, for on-policy distillation, the weights of the job's `teacher`)."""
    method = options.get("method") or ("full" if n_params <= FULL_FINETUNE_MAX_PARAMS else "lora")
    given = {k: v for k, v in options.items() if v is not None}
    distillation = given.get("distillation", SOFT_LABELS)
    on_policy = distillation == ON_POLICY
    return TrainingPlan(
        method=method,
        epochs=given.get("epochs", 3.0),
        learning_rate=given.get("learning_rate", 5e-5 if method == "full" else 2e-4),
        batch_size=given.get("batch_size", 8),
        max_length=given.get("max_length", 256),
        lora_r=given.get("lora_r", 16),
        lora_alpha=given.get("lora_alpha", 32),
        soft_label_weight=given.get("soft_label_weight", DEFAULT_WEIGHT),
        temperature=given.get("temperature", ON_POLICY_TEMPERATURE if on_policy else DEFAULT_TEMPERATURE),
        seed=given.get("seed", 0),
        gradient_checkpointing=n_params > FULL_FINETUNE_MAX_PARAMS,
        distillation=distillation,
        teacher_weights=(given.get("teacher_weights") or default_teacher_weights(teacher)) if on_policy else None,
    )


def default_teacher_weights(teacher: str | None) -> str | None:
    """Where the weights of the served teacher `teacher` are, when the service knows: the
    default teacher is served from TEACHER_MODEL_PATH when that is set, a bundled teacher from its
    prepared folder. None when unknown (a teacher served elsewhere under another name)."""
    from app.config import get_settings
    from workers import bundled_models

    settings = get_settings()
    teacher = teacher or settings.teacher_model
    if teacher == settings.teacher_model and settings.teacher_model_path:
        return settings.teacher_model_path
    if teacher == bundled_models.TEACHER.name:
        return str(bundled_models.model_dir(bundled_models.TEACHER))
    return None


def sft_config(plan: TrainingPlan, output_dir: Path, *, bf16: bool, save_steps: int = 25) -> "SFTConfig":
    """TRL's SFTConfig for a plan: prompt/completion data, loss on the completion only,
    a checkpoint every `save_steps` steps (for resuming), the loss logged every step."""
    from trl import SFTConfig

    return SFTConfig(
        **_common_args(plan, output_dir, bf16=bf16, save_steps=save_steps),
        per_device_train_batch_size=plan.batch_size,
        max_length=plan.max_length,
        completion_only_loss=True,
        # Batches of similar lengths waste little compute on padding (measured in bench/train_throughput.py).
        train_sampling_strategy="group_by_length",
    )


def distillation_config(plan: TrainingPlan, output_dir: Path, *, bf16: bool, max_new_tokens: int,
                        n_examples: int, save_steps: int = 25) -> "DistillationConfig":
    """TRL's DistillationConfig for an on-policy plan: the student samples at most
    `max_new_tokens` tokens per prompt at `plan.temperature`, and its per-token distribution is
    pulled towards the teacher's by TRL's generalized JSD (TRL's default `beta`). TRL drops
    incomplete batches, so the batch is at most the number of examples."""
    from trl import DistillationConfig

    return DistillationConfig(
        **_common_args(plan, output_dir, bf16=bf16, save_steps=save_steps),
        per_device_train_batch_size=min(plan.batch_size, max(1, n_examples)),
        max_completion_length=max(1, min(max_new_tokens, plan.max_length)),
        temperature=plan.temperature,
    )


def _common_args(plan: TrainingPlan, output_dir: Path, *, bf16: bool, save_steps: int) -> dict[str, Any]:
    """What every run shares: the schedule, the seed, a checkpoint every `save_steps` steps
    (for resuming), the loss logged every step, no trackers, CPU when there is no GPU."""
    return dict(
        output_dir=str(output_dir),
        num_train_epochs=plan.epochs,
        learning_rate=plan.learning_rate,
        seed=plan.seed,
        bf16=bf16,
        gradient_checkpointing=plan.gradient_checkpointing,
        logging_steps=1,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        report_to=[],
        disable_tqdm=True,
        use_cpu=not _has_gpu(),
    )


#: Fewest optimiser steps a run with default epochs makes: on a few dozen examples, 3 epochs are a
#: dozen steps, after which the 135M student still wrote "smol" instead of a label for most inputs
#: under free generation (its constrained choice was fine); 40+ steps taught it the answer format.
MIN_STEPS = 40


def default_epochs(n_examples: int, batch_size: int, most: int = 20) -> float:
    """Epochs when the job gives none: 3, or more on a small data set so that the run makes at
    least `MIN_STEPS` optimiser steps (at most `most` epochs)."""
    per_epoch = max(1, math.ceil(n_examples / batch_size))
    return float(min(most, max(3, math.ceil(MIN_STEPS / per_epoch))))


def total_steps(n_examples: int, plan: TrainingPlan, *, drop_last: bool = False) -> int:
    """Optimiser steps of a run (one example per batch slot, no gradient accumulation);
    `drop_last` when the trainer skips an incomplete last batch (TRL's on-policy sampler)."""
    batch = min(plan.batch_size, max(1, n_examples)) if drop_last else plan.batch_size
    per_epoch = n_examples // batch if drop_last else math.ceil(n_examples / batch)
    return max(1, per_epoch * math.ceil(plan.epochs))


def save_every(steps: int, most: int = 25) -> int:
    """Checkpoint about four times a run (at most every `most` steps): a crash loses at most a
    quarter of the run, and the writes (model + optimiser state) stay a small share of the time."""
    return max(1, min(most, math.ceil(steps / 4)))


def lora_config(plan: TrainingPlan) -> "LoraConfig":
    """peft LoRA adapters on every linear layer of the student."""
    from peft import LoraConfig

    return LoraConfig(r=plan.lora_r, lora_alpha=plan.lora_alpha, lora_dropout=0.05,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
