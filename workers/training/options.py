"""The job's `training` options (`app.specs.TrainingOptions`: every option, its default and help
text) resolved into a `TrainingPlan` where the default depends on the run (the student's size,
the distillation), and the one place that turns a plan into TRL configs: `SFTConfig` (soft labels)
and `DistillationConfig` (on-policy)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.specs import ON_POLICY, SOFT_LABELS, TrainingOptions

if TYPE_CHECKING:
    from peft import LoraConfig
    from trl import DistillationConfig, SFTConfig

#: Students up to this size are fully fine-tuned by default; bigger ones get LoRA adapters.
FULL_FINETUNE_MAX_PARAMS = 500_000_000

__all__ = ["ON_POLICY", "SOFT_LABELS", "TrainingPlan", "resolve"]

#: Soft labels are softened at this temperature unless the job sets `temperature` (Hinton et al.).
SOFT_LABEL_TEMPERATURE = 2.0
#: On-policy distillation samples the student's answers at this temperature (and softens both
#: distributions by it in the loss) unless the job sets `temperature`; TRL's own default.
ON_POLICY_TEMPERATURE = 1.0
#: Learning rates when the job gives none, by method: full fine-tuning moves every weight, so gently.
FULL_LEARNING_RATE = 5e-5
LORA_LEARNING_RATE = 2e-4
#: Epochs when the job gives none and the data set is not small (see `default_epochs`).
DEFAULT_EPOCHS = 3.0


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
    #: Examples per forward pass; `batch_size` is reached by accumulating gradients over
    #: micro-batches (`micro_batch_size`: long sequences fit in memory).
    micro_batch: int | None = None

    def as_dict(self) -> dict[str, Any]:
        plan = asdict(self)
        if plan["teacher_weights"] is None:
            del plan["teacher_weights"]
        if plan["micro_batch"] is None:
            del plan["micro_batch"]
        return plan


def resolve(options: TrainingOptions | Mapping[str, Any], n_params: int, teacher: str | None = None) -> TrainingPlan:
    """The job's options with the run-dependent defaults filled in: method and learning rate by the
    student's `n_params`, temperature by the distillation, and for on-policy distillation the
    weights of the job's `teacher`. Epochs left unset are `DEFAULT_EPOCHS` here; the run raises
    them for a small data set (`default_epochs`). Every other default is `TrainingOptions`'."""
    given = options if isinstance(options, TrainingOptions) else TrainingOptions.model_validate(dict(options))
    method = given.method or ("full" if n_params <= FULL_FINETUNE_MAX_PARAMS else "lora")
    on_policy = given.distillation == ON_POLICY
    if given.temperature is not None:
        temperature = given.temperature
    else:
        temperature = ON_POLICY_TEMPERATURE if on_policy else SOFT_LABEL_TEMPERATURE
    return TrainingPlan(
        method=method,
        epochs=given.epochs if given.epochs is not None else DEFAULT_EPOCHS,
        learning_rate=given.learning_rate if given.learning_rate is not None else (
            FULL_LEARNING_RATE if method == "full" else LORA_LEARNING_RATE),
        batch_size=given.batch_size,
        max_length=given.max_length,
        lora_r=given.lora_r,
        lora_alpha=given.lora_alpha,
        soft_label_weight=given.soft_label_weight,
        temperature=temperature,
        seed=given.seed,
        gradient_checkpointing=n_params > FULL_FINETUNE_MAX_PARAMS,
        distillation=given.distillation,
        teacher_weights=(given.teacher_weights or default_teacher_weights(teacher)) if on_policy else None,
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
    if teacher in bundled_models.BUNDLED:
        return str(bundled_models.model_dir(bundled_models.BUNDLED[teacher]))
    return None


#: Tokens of one SFT forward pass at most (micro-batch x max_length). The default batch of 8 x
#: 256 tokens fits a CPU worker beside the teacher; 8 prompts of up to ~650 tokens (BFCL tools
#: in the prompt) were killed for memory at 14 GB.
TOKENS_PER_MICRO_BATCH = 2048


def micro_batch_size(batch_size: int, max_length: int, budget: int = TOKENS_PER_MICRO_BATCH) -> int:
    """The largest divisor of `batch_size` whose micro-batch of `max_length`-token sequences fits
    `budget` tokens (at least 1), so accumulating gradients keeps the optimiser step at exactly
    `batch_size` examples."""
    fits = max(1, budget // max(1, max_length))
    return max(d for d in range(1, batch_size + 1) if batch_size % d == 0 and d <= fits)


def sft_config(plan: TrainingPlan, output_dir: Path, *, bf16: bool, save_steps: int = 25) -> SFTConfig:
    """TRL's SFTConfig for a plan: prompt/completion data, loss on the completion only,
    a checkpoint every `save_steps` steps (for resuming), the loss logged every step."""
    from trl import SFTConfig

    return SFTConfig(
        **_common_args(plan, output_dir, bf16=bf16, save_steps=save_steps),
        per_device_train_batch_size=plan.micro_batch or plan.batch_size,
        gradient_accumulation_steps=plan.batch_size // (plan.micro_batch or plan.batch_size),
        max_length=plan.max_length,
        completion_only_loss=True,
        # Batches of similar lengths waste little compute on padding (measured in bench/train_throughput.py).
        train_sampling_strategy="group_by_length",
    )


def distillation_config(plan: TrainingPlan, output_dir: Path, *, bf16: bool, max_new_tokens: int,
                        n_examples: int, save_steps: int = 25) -> DistillationConfig:
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
    return float(min(most, max(DEFAULT_EPOCHS, math.ceil(MIN_STEPS / per_epoch))))


def total_steps(n_examples: int, plan: TrainingPlan, *, drop_last: bool = False) -> int:
    """Optimiser steps of a run (`batch_size` examples a step, micro-batches or not);
    `drop_last` when the trainer skips an incomplete last batch (TRL's on-policy sampler)."""
    batch = min(plan.batch_size, max(1, n_examples)) if drop_last else plan.batch_size
    per_epoch = n_examples // batch if drop_last else math.ceil(n_examples / batch)
    return max(1, per_epoch * math.ceil(plan.epochs))


def save_every(steps: int, most: int = 25) -> int:
    """Checkpoint about four times a run (at most every `most` steps): a crash loses at most a
    quarter of the run, and the writes (model + optimiser state) stay a small share of the time."""
    return max(1, min(most, math.ceil(steps / 4)))


def lora_config(plan: TrainingPlan) -> LoraConfig:
    """peft LoRA adapters on every linear layer of the student."""
    from peft import LoraConfig

    return LoraConfig(r=plan.lora_r, lora_alpha=plan.lora_alpha, lora_dropout=0.05,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
