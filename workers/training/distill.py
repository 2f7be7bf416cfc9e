"""Soft-label distillation for classification: a KL term between the teacher's distribution over
the labels (`label_probs`) and the student's, read at the first answer token.

    loss = (1 - w) * cross_entropy + w * T^2 * KL(teacher_T || student_T)

where `_T` means softened at temperature T (Hinton et al., 2015). The T^2 factor keeps the
gradient scale of the KL term independent of T.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

def soften(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Re-temper a probability distribution: p^(1/T), renormalised (T > 1 flattens it)."""
    import torch

    logp = torch.log(probs.clamp_min(1e-12)) / temperature
    return torch.softmax(logp, dim=-1)


def soft_label_kl(
    label_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean KL(teacher || student) over a batch, both softened at `temperature`, times T^2.

    `label_logits` (batch, labels) are the student's logits of each label's first token;
    `teacher_probs` (batch, labels) the teacher's label distribution.
    """
    import torch.nn.functional as F

    student_log = F.log_softmax(label_logits / temperature, dim=-1)
    teacher = soften(teacher_probs, temperature)
    return F.kl_div(student_log, teacher, reduction="batchmean") * temperature**2


def mix(ce_loss: torch.Tensor, kl_loss: torch.Tensor, weight: float) -> torch.Tensor:
    """The training loss: cross entropy and the KL term, mixed by `weight` in [0, 1]."""
    return (1.0 - weight) * ce_loss + weight * kl_loss
