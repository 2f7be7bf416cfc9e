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
  position that is no padding), which is the very call a batch of one makes. Likewise prompts
  prefilled together, packed one after another in one sequence, attend prompt by prompt
  (`segments`, their lengths), each the causal call a prompt alone makes.

Prefilling prompts packed one after another (`app.decoding`) multiplies many more rows at once,
and a BLAS changes kernels with the row count well beyond the row group. So while prefilling
(`prefilling`), every linear layer multiplies its rows in chunks of exactly `prefill_rows` rows
(the last one padded), a shape whose every row gets the same bits wherever it sits in the chunk
(found once per model, like the row group); a prompt alone is then computed exactly as in a pack.

Everything else in a decoder (norms, activations, rotary embeddings, embeddings) works on each row
on its own in the same order at any batch size. Imports torch: import it only with a student.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

#: The attention implementation a prepared model uses: SDPA, row by row when decoding.
ATTENTION = "vibetune_rows"
#: Chunk sizes tried for prefilling, smallest first (multiples of the usual BLAS row blocks: 4, 6, 8, 16).
PREFILL_CHUNKS = (32, 48, 64, 96, 128)

_prefilling: ContextVar[bool] = ContextVar("vibetune_prefilling", default=False)


@contextmanager
def prefilling() -> Iterator[None]:
    """While in it, a prepared model's linear layers multiply in chunks of `prefill_rows` rows."""
    token = _prefilling.set(True)
    try:
        yield
    finally:
        _prefilling.reset(token)


def _row_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                   row_starts: Sequence[int] | None = None, segments: Sequence[int] | None = None,
                   **kwargs: Any) -> tuple[Any, None]:
    """SDPA; a decoding step (one query per row) with `row_starts` attends each row over its own
    keys only, as if it were alone (the mask is then not needed: left padding is all it hides);
    a packed prefill with `segments` attends each prompt causally over its own tokens only."""
    if segments is not None and query.shape[2] > 1:
        outputs, start = [], 0
        for length in segments:
            part = slice(start, start + length)
            outputs.append(sdpa_attention_forward(
                module, query[:, :, part].contiguous(), key[:, :, part].contiguous(),
                value[:, :, part].contiguous(), None, **kwargs)[0])
            start += length
        return torch.cat(outputs, dim=1), None
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
    dropped again), or while `prefilling` in chunks of `prefill_rows`. Set as the class of a
    loaded model's layers, so they hold no extra references."""

    row_group: int
    prefill_rows: int | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if self.prefill_rows and _prefilling.get():
            flat = torch.nn.functional.pad(x.reshape(rows, x.shape[-1]), (0, 0, 0, -rows % self.prefill_rows))
            out = torch.cat([torch.nn.functional.linear(chunk, self.weight, self.bias)
                             for chunk in flat.split(self.prefill_rows)])
            return out[:rows].reshape(*x.shape[:-1], -1)
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


def _same_at_every_place(layers: Sequence[torch.nn.Linear], chunk: int) -> bool:
    """Whether a row multiplied in a chunk of `chunk` rows gets the same bits at every place in it,
    for each weight shape in `layers`."""
    generator = torch.Generator().manual_seed(0)
    # A BLAS computes the first and last rows of a product apart from the rest (edge kernels), so
    # those places are all tried, and every eighth between them.
    places = sorted({*range(1, 8), *range(chunk - 8, chunk), *range(8, chunk, 8)})
    for layer in layers:
        w = layer.weight
        x = torch.randn(2 * chunk, w.shape[1], generator=generator).to(w.device, w.dtype)
        first = torch.nn.functional.linear(x[chunk:2 * chunk], w)[0]
        for place in places:
            if not torch.equal(torch.nn.functional.linear(x[chunk - place:2 * chunk - place], w)[place], first):
                return False
    return True


def _weight_shapes(model: Any) -> list[torch.nn.Linear]:
    """One linear layer of `model` per weight shape, dtype and device."""
    shapes: dict[tuple[Any, ...], torch.nn.Linear] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            shapes.setdefault((tuple(module.weight.shape), module.weight.dtype, module.weight.device), module)
    return list(shapes.values())


def prefill_rows(model: Any) -> int | None:
    """The smallest of `PREFILL_CHUNKS` at which every linear layer of `model` gives a row the same
    bits wherever it sits in the chunk; None if none does (then prompts are prefilled one by one)."""
    layers = _weight_shapes(model)
    with torch.inference_mode():
        for chunk in PREFILL_CHUNKS:
            if _same_at_every_place(layers, chunk):
                return chunk
    return None


def row_group(model: Any, max_batch: int) -> int:
    """The fewest rows every linear layer of `model` computes at once (see the module docstring)."""
    layers = _weight_shapes(model)
    group = 1
    with torch.inference_mode():
        while group < max_batch:
            if _invariant_at(layers, group, -(-max_batch // group) * group):
                return group
            group *= 2
    return max_batch


def make_batch_invariant(model: Any, max_batch: int) -> int | None:
    """Prepare a loaded inference model for batched decoding of up to `max_batch` rows, and for
    packed prefills when a chunk size works (`model.prefill_rows`, else None); returns its row
    group, or None when the model does not take the row-by-row attention (then it must be decoded
    one answer at a time for answers not to depend on their batch)."""
    model.set_attn_implementation(ATTENTION)
    if model.config._attn_implementation != ATTENTION:
        return None
    group = row_group(model, max_batch)
    chunk = prefill_rows(model)
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.__class__ = _RowGroupedLinear
            assert isinstance(module, _RowGroupedLinear)
            module.row_group, module.prefill_rows = group, chunk
    model.prefill_rows = chunk
    return group
