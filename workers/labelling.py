"""How the teacher answers an input under a task spec: the one answering path that the label,
teacher_check and evaluate stages share.

Classification answers are constrained to the label set and keep the teacher's distribution
over the labels (`label_probs`, the soft labels the student distils from). Extraction answers
are constrained to the JSON object of the fields, tool-calling answers to one of the calls or a
plain reply (each as the JSON schema of vLLM's structured outputs); the judge questions of QA
live here too.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from app.answer_shapes import call_schema, call_text, extraction_schema, without_unset
from app.specs import QA_REFUSAL, Row, TaskSpec, TaskType, is_refusal
from workers import prompts
from workers.scoring import normalize_answer
from workers.teacher import Teacher, label_distribution

TOP_LOGPROBS = 10


class MalformedAnswer(ValueError):
    """The teacher's answer does not fit the task (not a label, not the JSON asked for)."""


#: Sampling temperature of a free answer's later votes (classification votes stay greedy: their
#: spread comes from the phrasing, and their soft labels from the logprobs).
VOTE_TEMPERATURE = 0.7


async def answer_one(teacher: Teacher, spec: TaskSpec, text: str, phrasing: int = 0) -> dict[str, Any]:
    """The teacher's output for one input: `output`, plus `label_probs` for classification.
    `phrasing` > 0 is a self-consistency vote: the question in other words (and, for free
    answers, sampled)."""
    messages = prompts.label_messages(spec, text, phrasing)
    temperature = VOTE_TEMPERATURE if phrasing else 0.0
    if spec.task_type == TaskType.CLASSIFICATION:
        labels = spec.label_names
        answer = await teacher.chat(messages, max_tokens=16, choices=labels, top_logprobs=TOP_LOGPROBS)
        chosen = match_label(answer.text, labels)
        return {"output": chosen, "label_probs": label_distribution(answer, labels, chosen)}
    if spec.task_type == TaskType.EXTRACTION:
        answer = await teacher.chat(messages, max_tokens=256, temperature=temperature,
                                    json_schema=extraction_schema(spec.extraction_fields))
        parsed = _json_object(answer.text)
        return {"output": json.dumps(parsed, ensure_ascii=False)}
    if spec.task_type == TaskType.TOOL_CALLING:
        return {"output": await _call_or_reply(teacher, spec, messages, temperature)}
    answer = await teacher.chat(messages, max_tokens=256, temperature=temperature)
    if not answer.text.strip():
        raise MalformedAnswer("empty answer")
    if spec.task_type == TaskType.QA and spec.qa_mode == "open_book" and is_refusal(answer.text):
        return {"output": QA_REFUSAL}
    return {"output": answer.text.strip()}


async def answer_by_vote(teacher: Teacher, spec: TaskSpec, text: str, votes: int) -> dict[str, Any]:
    """The majority of `votes` answers to one input, each asked in another phrasing (see
    `majority`); raises MalformedAnswer when no vote gave a usable answer."""
    if votes <= 1:
        return await answer_one(teacher, spec, text)
    voters = [teacher, *teacher.committee]
    results = await asyncio.gather(*(answer_one(voters[phrasing % len(voters)], spec, text, phrasing)
                                     for phrasing in range(votes)), return_exceptions=True)
    answers = [r for r in results if not isinstance(r, BaseException)]
    if not answers:
        error = next(r for r in results if isinstance(r, BaseException))
        raise error if isinstance(error, MalformedAnswer) else MalformedAnswer(str(error))
    result = majority(answers, votes, spec)
    if teacher.committee:
        # Which teacher agreed with the majority, for each one's agreement in the stage metrics.
        kind = spec.task_type.value
        chosen = normalize_answer(result["output"], kind)
        result["voter_agreed"] = [[voters[i % len(voters)].name, not isinstance(r, BaseException)
                                   and normalize_answer(r["output"], kind) == chosen] for i, r in enumerate(results)]
    return result


def majority(answers: Sequence[dict[str, Any]], votes: int, spec: TaskSpec) -> dict[str, Any]:
    """The answer most votes gave (the same normalised text or object; ties go to the earliest
    phrasing) with `agreement` (its share of all `votes`, malformed ones counting against it) and,
    for classification, `label_probs` averaged over the usable votes."""
    kind = spec.task_type.value
    keys = [normalize_answer(a["output"], kind) for a in answers]
    counts = Counter(keys)
    top = max(counts.values())
    winner = next(i for i, key in enumerate(keys) if counts[key] == top)
    result = {**answers[winner], "agreement": round(top / votes, 4), "votes": votes}
    if spec.task_type == TaskType.CLASSIFICATION:
        labels = spec.label_names
        result["label_probs"] = {label: round(sum(a["label_probs"].get(label, 0.0) for a in answers) / len(answers), 6)
                                 for label in labels}
    return result


def _json_object(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedAnswer(f"not JSON: {text[:80]!r}") from exc
    if not isinstance(parsed, dict):
        raise MalformedAnswer(f"not a JSON object: {text[:80]!r}")
    return parsed


async def _call_or_reply(teacher: Teacher, spec: TaskSpec, messages: list[dict[str, str]],
                         temperature: float = 0.0) -> str:
    """The teacher's call of one of the tools as its canonical text, or its plain reply when no
    tool fits: asked under a JSON schema that is one of the calls or `{"reply": ...}`."""
    schema = prompts.answer_or_call_schema(call_schema(spec.tools))
    answer = await teacher.chat(messages, max_tokens=256, temperature=temperature, json_schema=schema)
    parsed = _json_object(answer.text)
    if set(parsed) == {prompts.REPLY_KEY}:
        reply = str(parsed[prompts.REPLY_KEY]).strip()
        if not reply:
            raise MalformedAnswer("empty reply")
        return reply
    try:
        return call_text(without_unset(parsed, spec.tools))
    except ValueError as exc:
        raise MalformedAnswer(f"not a call: {answer.text[:80]!r}") from exc


async def passage_supports(teacher: Teacher, text: str, answer: str) -> bool:
    """The teacher as judge: does the passage in an open-book input support this answer?"""
    verdict = await teacher.chat(prompts.support_question(text, answer), max_tokens=4,
                                 choices=list(prompts.JUDGE_CHOICES))
    return verdict.text.strip().lower() == "yes"


async def answer_and_judge(teacher: Teacher, spec: TaskSpec, text: str, votes: int = 1) -> dict[str, Any]:
    """The teacher's (majority) answer to an open-book input, with its own verdict on whether the
    passage supports it."""
    result = await answer_by_vote(teacher, spec, text, votes)
    if result["output"] == QA_REFUSAL:
        return {**result, "supported": None}
    return {**result, "supported": await passage_supports(teacher, text, result["output"])}


async def with_rationale(teacher: Teacher, spec: TaskSpec, text: str, result: dict[str, Any]) -> dict[str, Any]:
    """A label `result` with the teacher's `rationale` for its output added."""
    return {**result, "rationale": await rationale(teacher, spec, text, result["output"])}


async def rationale(teacher: Teacher, spec: TaskSpec, text: str, answer: str) -> str | None:
    """The teacher's one-sentence reason for `answer` to `text` (distilling step by step), or None
    when it gave none; the reason is cut to its first sentence."""
    reply = await teacher.chat(prompts.rationale_messages(spec, text, answer), max_tokens=80)
    return first_sentence(reply.text)


def first_sentence(text: str) -> str | None:
    """The first sentence of `text` (up to `prompts.RATIONALE_MAX_CHARS` characters), or None when
    it holds no words."""
    cleaned = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", cleaned)
    sentence = (match.group(1) if match else cleaned)[:prompts.RATIONALE_MAX_CHARS].strip()
    return sentence if any(ch.isalnum() for ch in sentence) else None


async def same_answer(teacher: Teacher, text: str, expected: str, answer: str) -> bool:
    """The teacher as judge: does a free QA answer say what the reference answer says?"""
    verdict = await teacher.chat(prompts.judge_question(text, expected, answer), max_tokens=4,
                                 choices=list(prompts.JUDGE_CHOICES))
    return verdict.text.strip().lower() == "yes"


def match_label(text: str, labels: Sequence[str]) -> str:
    """The label an answer names (exactly, or ignoring case, quotes and a trailing period)."""
    cleaned = text.strip().strip("\"'`").rstrip(".").strip()
    for label in labels:
        if cleaned == label:
            return label
    for label in labels:
        if cleaned.lower() == label.lower():
            return label
    raise MalformedAnswer(f"not a label: {text[:80]!r}")


async def label_rows(
    teacher: Teacher, spec: TaskSpec, rows: Sequence[Row], on_done: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any] | BaseException]:
    """The teacher's answer for every row's input, offered the row's tools (the teacher bounds the
    requests in flight); malformed answers come back as exceptions."""

    async def one(row: Row) -> dict[str, Any]:
        return await answer_one(teacher, spec.offering(row.tools), row.input)

    return await teacher.map(list(rows), one, on_done)


def answers_or_none(results: Sequence[dict[str, Any] | BaseException]) -> list[str | None]:
    """Each result's `output`, or None where the answer was malformed."""
    return [None if isinstance(result, BaseException) else result["output"] for result in results]
