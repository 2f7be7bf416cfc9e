"""Where a label's answer starts in the student's own chat format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PROBE_INPUT = "example input"


def answer_token_ids(tokenizer: Any, label: str, user_text: str = PROBE_INPUT) -> list[int]:
    """The tokens the student writes for `label` as its whole answer to a raw input, read from
    the chat template exactly as training lays them out (prompt with the generation prompt,
    then the answer)."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": user_text}],
                                           add_generation_prompt=True, tokenize=False)
    full = prompt + label
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids:
        return tokenizer(label, add_special_tokens=False)["input_ids"]
    return full_ids[len(prompt_ids):]


def first_answer_tokens(tokenizer: Any, labels: Sequence[str]) -> list[int] | None:
    """The first answer token of each label, or None when two labels start with the same token
    (the soft-label term reads one position, so it could not tell them apart)."""
    ids = [answer_token_ids(tokenizer, label)[0] for label in labels]
    return ids if len(set(ids)) == len(ids) else None
