"""Batch-invariant forward passes: a row's logits do not depend on the other rows decoded with it,
so a greedy answer is the same whether it was decoded alone or in any batch (`app.decoding`).

Two parts of a forward pass make a row's numbers depend on its batch, in the last bits:

- Matrix products. A BLAS picks its kernel by the number of rows, and sums the rows of a single-row
  product or of an incomplete block of rows in another order than those of a full block. So every
  linear layer pads its rows to a multiple of a *row group*, found once per model by trying: the
  smallest power of two whose multiples (up to the largest batch) give every row the same bits for
  every weight shape of the model; failing that (GPU libraries change kernels with the row count),
  the largest batch itself, so every product has one shape. It is 4 with MKL on the
  development machine's CPU.
- Attention over left-padded keys. A longer key axis changes how the softmax and weighted sums are
  grouped. Decoding steps attend row by row over each row's own keys (`row_starts`, the first
  position that is no padding), which is the very call a batch of one makes.

Everything else in a decoder (norms, activations, rotary embeddings, embeddings) works on each row
on its own in the same order at any batch size. Imports torch: import it only with a student.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

#: The attention implementation a prepared model uses: SDPA, row by row when decoding.
ATTENTION = "vibetune_rows"


def _row_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                   row_starts: Sequence[int] | None = None, **kwargs: Any) -> tuple[Any, None]:
    """SDPA; a decoding step (one query per row) with `row_starts` attends each row over its own
    keys only, as if it were alone (the mask is then not needed: left padding is all it hides)."""
    if query.shape[2] != 1 or row_starts is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    outputs = [
        sdpa_attention_forward(module, query[i:i + 1], key[i:i + 1, :, start:], value[i:i + 1, :, start:], None,
                               **kwargs)[0]
        for i, start in enumerate(row_starts)
    ]
    return torch.cat(outputs), None


AttentionInterface.register(ATTENTION, _row_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


class _RowGroupedLinear(torch.nn.Linear):
    """A linear layer that multiplies its rows padded to a multiple of `row_group` (with zeros,
    dropped again). Set as the class of a loaded model's layers, so they hold no extra references."""

    row_group: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        missing = -rows % self.row_group
        if not missing:
            return torch.nn.functional.linear(x, self.weight, self.bias)
        flat = torch.nn.functional.pad(x.reshape(rows, x.shape[-1]), (0, 0, 0, missing))
        return torch.nn.functional.linear(flat, self.weight, self.bias)[:rows].reshape(*x.shape[:-1], -1)


def _invariant_at(layers: Sequence[torch.nn.Linear], group: int, most_rows: int) -> bool:
    """Whether every multiple of `group` rows (up to `most_rows`) gives each row the bits it gets
    in a product of just its own group, for each weight shape in `layers`."""
    generator = torch.Generator().manual_seed(0)
    for layer in layers:
        w = layer.weight
        x = torch.randn(most_rows, w.shape[1], generator=generator).to(w.device, w.dtype)
        alone = torch.cat([torch.nn.functional.linear(x[i:i + group], w) for i in range(0, most_rows, group)])
        for rows in range(2 * group, most_rows + 1, group):
            if not torch.equal(torch.nn.functional.linear(x[:rows], w), alone[:rows]):
                return False
    return True


def row_group(model: Any, max_batch: int) -> int:
    """The fewest rows every linear layer of `model` computes at once (see the module docstring)."""
    shapes: dict[tuple[Any, ...], torch.nn.Linear] = {}
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            shapes.setdefault((tuple(module.weight.shape), module.weight.dtype, module.weight.device), module)
    group = 1
    with torch.inference_mode():
        while group < max_batch:
            if _invariant_at(list(shapes.values()), group, -(-max_batch // group) * group):
                return group
            group *= 2
    return max_batch


def make_batch_invariant(model: Any, max_batch: int) -> int | None:
    """Prepare a loaded inference model for batched decoding of up to `max_batch` rows; returns its
    row group, or None when the model does not take the row-by-row attention (then it must be
    decoded one answer at a time for answers not to depend on their batch)."""
    model.set_attn_implementation(ATTENTION)
    if model.config._attn_implementation != ATTENTION:
        return None
    group = row_group(model, max_batch)
    if group > 1:
        for module in model.modules():
            if type(module) is torch.nn.Linear:
                module.__class__ = _RowGroupedLinear
                assert isinstance(module, _RowGroupedLinear)
                module.row_group = group
    return group
