"""TRL's SFTTrainer with the soft-label KL term added, and the callbacks that tie a training run
to its job (cancel, progress, live loss).

The KL term needs the student's logits of the label tokens at the first answer position only.
TRL's fused LM head never builds the full logits, so rather than a second forward pass we catch
the backbone's last hidden state during the one forward TRL already runs, and project just that
position through the label tokens' rows of the LM head.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from transformers import TrainerCallback
from trl import SFTTrainer

from workers.training.data import SOFT_LABELS_COLUMN
from workers.training.distill import mix, soft_label_kl


class SoftLabelCollator:
    """Wraps TRL's collator: the same batch, plus the teacher's label distributions as a tensor."""

    def __init__(self, base: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.base = base

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        soft = [example.pop(SOFT_LABELS_COLUMN, None) for example in examples]
        batch = self.base(examples)
        width = next((len(s) for s in soft if s is not None), 0)
        if width:
            # An example that is no label answer (a rationale) has none: a row of NaN, which the KL term skips.
            rows = [s if s is not None else [float("nan")] * width for s in soft]
            batch[SOFT_LABELS_COLUMN] = torch.tensor(rows, dtype=torch.float32)
        return batch


def first_answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """Per row, the position whose hidden state predicts the first answer token (-1 if none)."""
    trained = labels != -100
    first = trained.float().argmax(dim=1)
    return torch.where(trained.any(dim=1), first - 1, torch.full_like(first, -1))


class DistillSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss mixes the usual cross entropy with the soft-label KL term."""

    def __init__(self, *args: Any, label_token_ids: Sequence[int] | None = None,
                 soft_label_weight: float = 0.0, temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label_token_ids = list(label_token_ids or [])
        self.soft_label_weight = soft_label_weight if self.label_token_ids else 0.0
        self.temperature = temperature
        self.data_collator = SoftLabelCollator(self.data_collator)
        self.last_kl: float | None = None

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        # transformers' Trainer initialises the attribute to a bare None, so mypy types it as None;
        # the call above has filled it with the model's forward() parameter names.
        columns = cast("list[str]", self._signature_columns)
        if SOFT_LABELS_COLUMN not in columns:
            self._signature_columns = [*columns, SOFT_LABELS_COLUMN]  # type: ignore[assignment]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        soft = inputs.pop(SOFT_LABELS_COLUMN, None)
        if soft is None or self.soft_label_weight <= 0 or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        captured: dict[str, torch.Tensor] = {}
        backbone = _backbone(self.accelerator.unwrap_model(model))
        hook = backbone.register_forward_hook(
            lambda _module, _args, output: captured.__setitem__("hidden", output.last_hidden_state))
        try:
            ce = super().compute_loss(model, inputs, return_outputs=False, num_items_in_batch=num_items_in_batch)
        finally:
            hook.remove()
        kl = self._kl(model, captured["hidden"], inputs["labels"], soft)
        if kl is None:
            return ce
        self.last_kl = float(kl.detach())
        self._metrics["train"]["soft_label_kl"].append(self.last_kl)
        return mix(ce, kl, self.soft_label_weight)

    def _kl(self, model, hidden: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor) -> torch.Tensor | None:
        positions = first_answer_positions(labels)
        rows = ((positions >= 0) & ~soft.isnan().any(dim=1).to(positions.device)).nonzero().flatten()
        if rows.numel() == 0:
            return None
        states = hidden[rows, positions[rows]]
        head = self.accelerator.unwrap_model(model).get_output_embeddings()
        ids = torch.tensor(self.label_token_ids, device=head.weight.device)
        logits = states.to(head.weight.dtype) @ head.weight[ids].T
        if head.bias is not None:
            logits = logits + head.bias[ids]
        return soft_label_kl(logits.float(), soft[rows].to(logits.device), self.temperature)


def _backbone(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer body whose output feeds the LM head (under PEFT too)."""
    if hasattr(model, "get_base_model"):  # a PEFT wrapper
        model = cast(Any, model).get_base_model()
    return cast(torch.nn.Module, model.base_model)


class JobCallback(TrainerCallback):
    """Reports steps as progress, checks for cancel between steps, keeps the loss history and
    hands it to `on_metrics` at most every `every_seconds` (each call writes to the database).

    It also thins out checkpoints: a save the step schedule asks for is skipped when the last one
    is less than `checkpoint_seconds` old, or at the last step (the model is saved right after).
    A checkpoint holds the optimiser state too; on a CPU, saving one every few steps cost more
    time than the steps themselves (bench/train_throughput.py), for little protection."""

    def __init__(self, progress: Callable[[int, int], None], check_canceled: Callable[[], None],
                 on_metrics: Callable[[dict[str, Any]], None], every_seconds: float = 2.0,
                 checkpoint_seconds: float = 0.0, on_checkpoint: Callable[[Path], None] | None = None) -> None:
        self.progress = progress
        self.check_canceled = check_canceled
        self.on_metrics = on_metrics
        self.every_seconds = every_seconds
        self.checkpoint_seconds = checkpoint_seconds
        self.on_checkpoint = on_checkpoint
        self.history: list[dict[str, float]] = []
        self._last_sent = 0.0
        self._last_saved = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        self.check_canceled()
        self.progress(state.global_step, state.max_steps)
        if control.should_save:
            recent = time.monotonic() - self._last_saved < self.checkpoint_seconds
            if recent or state.global_step >= state.max_steps:
                control.should_save = False

    def on_save(self, args, state, control, **kwargs):
        self._last_saved = time.monotonic()
        if self.on_checkpoint is not None:  # called once the checkpoint is written whole
            self.on_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_substep_end(self, args, state, control, **kwargs):
        self.check_canceled()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            entry = {"step": state.global_step, "loss": round(float(logs["loss"]), 5)}
            for key in ("soft_label_kl", "learning_rate", "epoch", "mean_token_accuracy",
                        "entropy", "completions/mean_length"):
                if key in logs:
                    entry[key] = round(float(logs[key]), 8)
            self.history.append(entry)
            now = time.monotonic()
            if now - self._last_sent >= self.every_seconds:
                self._last_sent = now
                self.on_metrics({"loss_history": self.history, "step": state.global_step,
                                 "max_steps": state.max_steps})
