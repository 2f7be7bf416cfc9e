"""The job's `training` options, resolved with defaults per student size, and the one place that
turns them into TRL's `SFTConfig`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.training.distill import DEFAULT_TEMPERATURE, DEFAULT_WEIGHT

if TYPE_CHECKING:
    from peft import LoraConfig
    from trl import SFTConfig

#: Students up to this size are fully fine-tuned by default; bigger ones get LoRA adapters.
FULL_FINETUNE_MAX_PARAMS = 500_000_000


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve(options: dict[str, Any], n_params: int) -> TrainingPlan:
    """The person's options where given, else the defaults for a student of `n_params` parameters."""
    method = options.get("method") or ("full" if n_params <= FULL_FINETUNE_MAX_PARAMS else "lora")
    given = {k: v for k, v in options.items() if v is not None}
    return TrainingPlan(
        method=method,
        epochs=given.get("epochs", 3.0),
        learning_rate=given.get("learning_rate", 5e-5 if method == "full" else 2e-4),
        batch_size=given.get("batch_size", 8),
        max_length=given.get("max_length", 256),
        lora_r=given.get("lora_r", 16),
        lora_alpha=given.get("lora_alpha", 32),
        soft_label_weight=given.get("soft_label_weight", DEFAULT_WEIGHT),
        temperature=given.get("temperature", DEFAULT_TEMPERATURE),
        seed=given.get("seed", 0),
        gradient_checkpointing=n_params > FULL_FINETUNE_MAX_PARAMS,
    )


def sft_config(plan: TrainingPlan, output_dir: Path, *, bf16: bool, save_steps: int = 25) -> "SFTConfig":
    """TRL's SFTConfig for a plan: prompt/completion data, loss on the completion only,
    a checkpoint every `save_steps` steps (for resuming), the loss logged every step."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=plan.epochs,
        learning_rate=plan.learning_rate,
        per_device_train_batch_size=plan.batch_size,
        max_length=plan.max_length,
        completion_only_loss=True,
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
        # Batches of similar lengths waste little compute on padding (measured in bench/train_throughput.py).
        train_sampling_strategy="group_by_length",
    )


def total_steps(n_examples: int, plan: TrainingPlan) -> int:
    """Optimiser steps of a run (one example per batch slot, no gradient accumulation)."""
    return max(1, math.ceil(n_examples / plan.batch_size) * math.ceil(plan.epochs))


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
