"""How a student answers a row under the scoring rule: for classification the constrained label
choice (the same rule the teacher is scored with: greedy decoding restricted to the label set),
else the greedy generation `/v1` serves (`app.inference.generate`), under the row's call grammar
for tool calling. Evaluate scores with it; the refine stage finds the first model's misses with it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from app.inference import Messages, Student, generate, prompt_ids, task_answer_budget
from app.specs import Row, TaskSpec
from workers.training.answers import answer_token_ids

T = TypeVar("T")


class LabelChooser:
    """Picks a label for a chat prompt by greedy decoding restricted to the labels' tokens:
    at each step only tokens that continue some label are allowed (and the end of turn once a
    label is complete), so the answer is always a label."""

    def __init__(self, student: Student, labels: Sequence[str]) -> None:
        self.model, self.tokenizer, self.labels = student.model, student.tokenizer, list(labels)
        self.sequences = {label: answer_token_ids(self.tokenizer, label) for label in self.labels}
        self.end_id = self.tokenizer.convert_tokens_to_ids(_end_token(self.tokenizer))

    @torch.inference_mode()
    def choose(self, messages: Messages) -> str:
        prompt = prompt_ids(self.tokenizer, messages)
        candidates = dict(self.sequences)
        written: list[int] = []
        while len(candidates) > 1:
            logits = self.model(torch.tensor([prompt + written], device=self.model.device)).logits[0, -1]
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


def answerer(student: Student, spec: TaskSpec, rows: Sequence[Row],
             messages: Callable[[Row], Messages]) -> Callable[[Row], str]:
    """The student's answer to a row under the scoring rule, asked with `messages(row)`; `rows`
    are the rows it will answer (their outputs bound the answer length of free generation)."""
    labels = spec.label_names
    if labels:
        chooser = LabelChooser(student, labels)

        def choose_label(row: Row) -> str:
            return chooser.choose(messages(row))

        return choose_label
    budget = task_answer_budget(student.tokenizer, spec.task_type, [row.output for row in rows])
    grammar_of = spec.row_call_grammars()

    def generate_answer(row: Row) -> str:
        return generate(student, messages(row), max_tokens=budget, grammar=grammar_of(row)).text

    return generate_answer


def timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
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
