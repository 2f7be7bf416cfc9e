"""A student's answers for evaluation: the constrained label choice (the same rule the teacher
is scored with: greedy decoding restricted to the label set) and free generation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from workers.training.answers import answer_token_ids


class LabelChooser:
    """Picks a label for a chat prompt by greedy decoding restricted to the labels' tokens:
    at each step only tokens that continue some label are allowed (and the end of turn once a
    label is complete), so the answer is always a label."""

    def __init__(self, model: Any, tokenizer: Any, labels: Sequence[str]) -> None:
        self.model, self.tokenizer, self.labels = model, tokenizer, list(labels)
        self.sequences = {label: answer_token_ids(tokenizer, label) for label in self.labels}
        self.end_id = tokenizer.convert_tokens_to_ids(_end_token(tokenizer))

    @torch.inference_mode()
    def choose(self, messages: list[dict[str, str]]) -> str:
        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                    return_dict=False)
        candidates, written = dict(self.sequences), []
        while len(candidates) > 1:
            logits = self.model(torch.tensor([list(prompt) + written], device=self.model.device)).logits[0, -1]
            step = len(written)
            options: dict[int, list[str]] = {}
            for label, seq in candidates.items():
                options.setdefault(seq[step] if step < len(seq) else self.end_id, []).append(label)
            best = max(options, key=lambda token: float(logits[token]))
            candidates = {label: candidates[label] for label in options[best]}
            if best == self.end_id:
                break
            written.append(best)
        return next(iter(candidates))


@torch.inference_mode()
def generate_answer(model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new_tokens: int = 16) -> str:
    """The student's free, greedy answer to a chat (what a served student replies)."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids = {k: v.to(model.device) for k, v in ids.items()}
    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    """`fn(*args)` and its wall time in milliseconds."""
    start = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - start) * 1000


def _end_token(tokenizer: Any) -> str:
    # Chat models end a turn with their own token (ChatML's <|im_end|>), which is not always the eos token.
    probe = tokenizer.apply_chat_template([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
                                          tokenize=False)
    tail = probe[probe.rindex("y") + 1:].strip()
    return tail.split()[0] if tail and tail.split()[0] in tokenizer.get_vocab() else tokenizer.eos_token
