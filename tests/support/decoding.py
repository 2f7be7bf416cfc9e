"""Watching the decoding loop in tests: the logits each token was chosen from."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from app import decoding


def record_logits(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[int, ...], list[torch.Tensor]]:
    """Every row of logits a token is chosen from from now on, by answer (its prompt's ids)."""
    seen: dict[tuple[int, ...], list[torch.Tensor]] = {}
    choose = decoding._choose

    def recording(rows: torch.Tensor, answers: list[Any]) -> list[Any]:
        for row, answer in zip(rows, answers, strict=True):
            seen.setdefault(tuple(answer.prompt), []).append(row.clone())
        return choose(rows, answers)

    monkeypatch.setattr(decoding, "_choose", recording)
    return seen
