"""Turning the curated data set into TRL prompt/completion examples.

The student is trained on the raw input alone: the task lives in its weights, so the served
model answers a bare input the way the data taught it, with no instructions to repeat. The one
exception is a tool-calling job with `tools_in_prompt`: each input comes after a system message
showing a few of the job's tools (`TaskSpec.student_messages`), as a client sends them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.answer_shapes import load_object
from app.specs import TaskSpec
from workers.prompts import label_messages

#: The examples' column (and batch key) holding the teacher's label distribution as a vector.
SOFT_LABELS_COLUMN = "soft_labels"


#: The most tools offered with one training input of a `tools_in_prompt` job: its own tool and
#: up to this many minus one others, so the student learns to pick the tool, not just copy it,
#: while its prompts stay short (a BFCL function is about 180 tokens in `tools_prompt`).
MOST_OFFERED_TOOLS = 2


def called_tool(output: str) -> str | None:
    """The name of the function a training answer calls, or None when it is a plain reply."""
    parsed = load_object(output)
    name = parsed.get("name") if parsed is not None else None
    return name if isinstance(name, str) else None


def offered_tool_names(tool_names: Sequence[str], called: str | None, rng: random.Random) -> list[str]:
    """The tools shown with one training input of a `tools_in_prompt` job, in a random order: the
    called tool and 0 to `MOST_OFFERED_TOOLS - 1` others, or 1 to `MOST_OFFERED_TOOLS` tools for an
    input that needs none."""
    others = [name for name in tool_names if name != called]
    most = min(len(others), MOST_OFFERED_TOOLS - (called is not None))
    least = 0 if called is not None else min(1, most)
    offered = rng.sample(others, rng.randint(least, most)) + ([called] if called is not None else [])
    rng.shuffle(offered)
    return offered


def with_offered_tools(rows: Sequence[dict[str, Any]], spec: TaskSpec | None, seed: int) -> list[dict[str, Any]]:
    """Each row with the names of the tools offered with it (`tools`), kept where a row names
    them already; the rows themselves when the job does not show tools in the prompt."""
    if spec is None or not spec.tools_in_prompt:
        return list(rows)
    names = [str(tool["function"]["name"]) for tool in spec.tools]
    rng = random.Random(seed)
    return [row if row.get("tools") is not None
            else {**row, "tools": offered_tool_names(names, called_tool(row["output"]), rng)} for row in rows]


def sft_example(row: dict[str, Any], labels: Sequence[str] = (), spec: TaskSpec | None = None) -> dict[str, Any]:
    """One conversational prompt/completion example: the prompt the tuned student is asked with
    (`TaskSpec.student_messages`; the bare input without a spec); for classification also the
    teacher's label distribution as a vector in `labels` order (`SOFT_LABELS_COLUMN`)."""
    prompt = (spec.student_messages(row["input"], row.get("tools")) if spec is not None
              else [{"role": "user", "content": row["input"]}])
    example: dict[str, Any] = {
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": row["output"]}],
    }
    if labels:
        probs = row.get("label_probs") or {}
        vector = [float(probs.get(label, 0.0)) for label in labels]
        total = sum(vector)
        example[SOFT_LABELS_COLUMN] = ([v / total for v in vector] if total > 0
                                       else [float(row["output"] == label) for label in labels])
    return example


#: What a rationale example asks after the input: the student learns the teacher's reason as a
#: second task (distilling step by step), and a bare input, as served, still asks for the answer.
RATIONALE_ASK = "\n\nWhy? Give the reason in one sentence."


def rationale_example(row: dict[str, Any], spec: TaskSpec | None = None, soft_labels: bool = False
                      ) -> dict[str, Any] | None:
    """The second example of a row with a teacher's `rationale`: the student's prompt with
    `RATIONALE_ASK` after the input, answered by the reason (no soft labels: it is not a label
    answer). None for a row without one."""
    reason = row.get("rationale")
    if not reason:
        return None
    prompt = sft_example(row, (), spec)["prompt"]
    prompt[-1] = {**prompt[-1], "content": prompt[-1]["content"] + RATIONALE_ASK}
    example: dict[str, Any] = {"prompt": prompt, "completion": [{"role": "assistant", "content": str(reason)}]}
    if soft_labels:
        example[SOFT_LABELS_COLUMN] = None
    return example


@dataclass(frozen=True)
class TrainingExamples:
    """The examples of one training run: the answers (rows repeated for balance among them), then
    the rationale examples; with their counts."""

    examples: list[dict[str, Any]]
    answers: int
    rationales: int
    repeated: int


def training_examples(rows: Sequence[dict[str, Any]], labels: Sequence[str], spec: TaskSpec | None, *,
                      soft_labels: bool, seed: int) -> TrainingExamples:
    """The SFT examples of `rows`: one answer example each (classes balanced by repeats, offered
    tools added for a `tools_in_prompt` job, soft labels when `soft_labels`), then a rationale
    example for each distinct row with a teacher's reason."""
    reasons = [example for row in with_offered_tools(rows, spec, seed + 1)
               if (example := rationale_example(row, spec, soft_labels=soft_labels)) is not None]
    balanced = with_offered_tools(oversample(rows, labels, seed) if labels else rows, spec, seed)
    answers = [sft_example(row, labels if soft_labels else (), spec) for row in balanced]
    # Appended, not mixed in: the first example fixes the data set's columns, and the Trainer shuffles.
    return TrainingExamples(examples=answers + reasons, answers=len(answers), rationales=len(reasons),
                            repeated=len(answers) - len(rows))


def on_policy_example(row: dict[str, Any], task_spec: TaskSpec | None = None) -> dict[str, Any]:
    """One prompt-only example for on-policy distillation. The student sees the raw input, as it
    will when served, and writes its own answer. The teacher scores that answer after
    `teacher_prompt`: the prompt the label stage sends the teacher (`label_messages`: the task,
    its labels or instruction, then the input), so its distribution is over answers to the task;
    without a task spec the teacher sees the student's prompt."""
    prompt = [{"role": "user", "content": row["input"]}]
    return {"prompt": prompt, "teacher_prompt": label_messages(task_spec, row["input"]) if task_spec else prompt}


def split_examples(rows: Iterable[dict[str, Any]], labels: Sequence[str] = ()) -> dict[str, list[dict[str, Any]]]:
    """Examples by split (`train`, `validation`) from dataset rows."""
    out: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for row in rows:
        out.setdefault(row.get("split", "train"), []).append(sft_example(row, labels))
    return out


def oversample(rows: Sequence[dict[str, Any]], labels: Sequence[str], seed: int = 0) -> list[dict[str, Any]]:
    """Repeat rows of the shorter classes until every label has as many as the largest.

    The teacher's own bias leaves some classes short after curation (it labels what it was asked
    to write as something else); a small student trained on a 2:1 split learns to answer the
    majority label. Repeating keeps every example the teacher made instead of dropping any.
    """
    return balance(rows, lambda row: str(row["output"]), seed, groups=labels)


def balance(rows: Sequence[dict[str, Any]], group: Callable[[dict[str, Any]], str], seed: int = 0,
            groups: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every row, plus repeats of rows of the smaller groups (`group(row)`; `groups` first, in that
    order) until each group has as many as the largest, shuffled.

    Not used for tool calling: balancing calls against the rows needing no call (curate drops the
    requests the teacher wrongly calls for, so they come out short) was tried, and a 10-example
    tool job's student then answered three of its own training requests in text."""
    by_group: dict[str, list[dict[str, Any]]] = {name: [] for name in groups}
    for row in rows:
        by_group.setdefault(group(row), []).append(row)
    largest = max((len(members) for members in by_group.values()), default=0)
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for members in by_group.values():
        if members:
            out += members + [rng.choice(members) for _ in range(largest - len(members))]
    rng.shuffle(out)
    return out
