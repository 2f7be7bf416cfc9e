"""Every prompt the teacher sees, in one place. The test set never appears in any of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.answer_shapes import FieldSpec, parameter_names, tools_prompt
from app.specs import QA_REFUSAL, JobSpec, Row, TaskSpec, TaskType
from workers.answered_examples import REPLY_KEY, answered_turns


def _seed_lines(examples: Sequence[Row], limit: int, with_output: bool, turn: int = 0) -> str:
    """Up to `limit` examples: window `turn` of them (`turn * limit` on, wrapping round), so calls
    with different turns show the teacher different seeds."""
    start = turn * limit % len(examples) if examples else 0
    rows = [examples[(start + i) % len(examples)] for i in range(min(limit, len(examples)))]
    if not rows:
        return ""
    lines = [f"- {row.input!r}" + (f" -> {row.output!r}" if with_output else "") for row in rows]
    return "Examples:\n" + "\n".join(lines) + "\n"


def _real_lines(inputs: Sequence[str], limit: int, turn: int) -> str:
    """Window `turn` of the person's imported real inputs (as `_seed_lines` rotates seeds)."""
    if not inputs:
        return ""
    start = turn * limit % len(inputs)
    shown = [inputs[(start + i) % len(inputs)] for i in range(min(limit, len(inputs)))]
    return ("Real inputs of this task look like these (write new ones in the same manner; do not copy them):\n"
            + "\n".join(f"- {text!r}" for text in shown) + "\n")


def _context(spec: JobSpec) -> str:
    label_line = f"Labels: {', '.join(spec.labels)}.\n" if spec.labels else ""
    if spec.fields:
        label_line += f"Fields to extract: {', '.join(f.name for f in spec.fields)}.\n"
    if spec.tools:
        label_line += f"Functions: {', '.join(t['function']['name'] for t in spec.tools)}.\n"
    return f"Task: {spec.task}\n{label_line}{_seed_lines(spec.examples, 3, True)}"


def plan_question(spec: JobSpec, question: str) -> list[dict[str, str]]:
    """One small planning question about the task. The plan is several of these asked at once:
    on a CPU teacher, many short answers in parallel finish far sooner than one long answer."""
    return [
        {"role": "system", "content": "You plan synthetic training data for a small text model. Be brief."},
        {"role": "user", "content": f"{_context(spec)}\n{question}"},
    ]


PLAN_QUESTIONS = {
    "task_type": "Which kind of task is this: classification, extraction, qa or tool_calling?",
    "instruction": "In one sentence, tell an annotator exactly how to do this task.",
    "labels": "List the labels (2 to 8 short names) an input can get.",
    "output_fields": "List the fields (1 to 8 short snake_case names) the answer must contain.",
    "topics": "List 6 different sub-topics the inputs of this task can be about (a few words each).",
    "styles": "List 3 different writing styles real inputs of this task come in (a few words each).",
    "qa_mode": ("Does each input of this task hold a passage (a text to answer from) together with the question "
                "(open_book), or only a question (closed_book)?"),
}

#: The answers the qa_mode question may take.
QA_MODES = ("open_book", "closed_book")


def label_topics_question(label: str) -> str:
    """Classification: the sub-topics of one label's inputs, so no label is asked to be about another's subject."""
    return (f"List 4 different sub-topics that inputs labelled \"{label}\" are about, subjects typical of this "
            "label and not of the other labels (a few words each; do not use the label names).")


def reask_note(problems: Sequence[str]) -> str:
    """What a re-asked planning question adds: why the last answer could not be used."""
    return "Your last answer could not be used: " + "; ".join(problems) + ". Answer again."


def label_question(label: str) -> str:
    return (f"Describe in one short line what the inputs labelled \"{label}\" are, "
            "starting with the kind of input (for example \"Messages that ...\"). Do not quote an example.")


def list_schema(min_items: int, max_items: int, max_chars: int = 60) -> dict[str, Any]:
    return {"type": "object", "required": ["items"], "properties": {"items": {
        "type": "array", "minItems": min_items, "maxItems": max_items,
        "items": {"type": "string", "minLength": 1, "maxLength": max_chars}}}}


#: The system message of every call that asks the teacher to write inputs.
WRITER_SYSTEM = "You write realistic, varied example inputs for training a text model. Answer in JSON."


def generate_messages(task_spec: TaskSpec, bucket: dict[str, str], seeds: Sequence[Row],
                      count: int, turn: int = 0, real: Sequence[str] = ()) -> list[dict[str, str]]:
    """One generation call's prompt; `turn` picks which window of seed examples and of `real`
    inputs (the person's imported ones, unlabeled) it shows."""
    # Shared text first, varying text last: the server's prefix cache then skips most of the prompt.
    label = bucket.get("label")
    kind = bucket.get("kind")
    if kind:
        ask = _shaped_ask(task_spec, bucket, count)
        examples = _seed_lines(seeds, 3, False, turn)
    elif label:
        description = task_spec.describe(label)
        same_label = [row for row in seeds if row.output.strip() == label]
        ask = (f"Write {count} different inputs that a careful annotator would label \"{label}\" "
               f"({description}). Write them as real people would, and do not write the label.")
        examples = _seed_lines(same_label or seeds, 3, False, turn)
    else:
        ask = f"Write {count} different inputs for this task, as real people would write them; no answers."
        examples = _seed_lines(seeds, 3, False, turn)
    # A request for a tool is about that tool: a planned topic would pull it elsewhere (a BFCL
    # plan's topics were tool names, and 96 of 140 requests written "for" other tools asked to
    # solve a quadratic equation).
    topic = "" if bucket.get("tool") else f"Topic: {bucket['topic']}. "
    return [
        {"role": "system", "content": WRITER_SYSTEM},
        {"role": "user", "content": (
            f"Task: {task_spec.task}\n{examples}{_real_lines(real, 3, turn)}{ask}\n"
            f"{topic}Style: {bucket['style']}. Length: {bucket['length']}."
        )},
    ]


def like_miss_messages(task_spec: TaskSpec, miss: str, answer: str, count: int) -> list[dict[str, str]]:
    """One call of the error-driven round: `count` new inputs like `miss`, an input the first
    round's student got wrong (its right answer shown, so the new inputs keep what makes it hard)."""
    return [
        {"role": "system", "content": WRITER_SYSTEM},
        {"role": "user", "content": (
            f"Task: {task_spec.task}\nA small model got this input wrong:\n{miss}\nThe right answer: {answer}\n"
            f"Write {count} new inputs like it: the same kind of case and as easy to get wrong, each different "
            "from it and from each other, as real people would write them. Do not write the answers."
        )},
    ]


#: Generation buckets of each shaped task type (`kind`): what the inputs of one call must be like.
EXTRACTION_KINDS = ("all_fields", "some_fields", "no_fields")
OPEN_BOOK_KINDS = ("answerable", "answerable", "answerable", "unanswerable")
CLOSED_BOOK_KINDS = ("question",)
NO_CALL, MISSING_ARGUMENT = "no_call", "missing_argument"


def _field_line(field: FieldSpec) -> str:
    kind = "list of strings" if field.type == "list" else field.type
    return f"{field.name} ({kind})" + (f": {field.description}" if field.description else "")


def _tool_line(tool: dict[str, Any]) -> str:
    fn = tool["function"]
    required = fn.get("parameters", {}).get("required", [])
    needs = f" (needs {', '.join(required)})" if required else ""
    return f"{fn['name']}{needs}" + (f": {fn['description']}" if fn.get("description") else "")


def _shaped_ask(task_spec: TaskSpec, bucket: dict[str, str], count: int) -> str:
    """What one generation call asks for, for the task types whose inputs come in kinds."""
    kind = bucket["kind"]
    if task_spec.task_type == TaskType.EXTRACTION:
        fields = "; ".join(_field_line(f) for f in task_spec.extraction_fields)
        coverage = {"all_fields": "Each input states every one of these fields",
                    "some_fields": "Each input states some of these fields but leaves others out",
                    "no_fields": "Each input is on the same subject but states none of these fields"}[kind]
        return (f"Write {count} different inputs for this task, as real people would write them. Fields: {fields}. "
                f"{coverage}. Do not write the answers.")
    if task_spec.task_type == TaskType.QA:
        if kind == "question":
            return f"Write {count} different questions people ask for this task; no answers."
        answerable = ("The passage must contain the answer to its question." if kind == "answerable" else
                      "The question must be on the passage's subject, but the passage must NOT contain its answer.")
        return (f"Write {count} different pairs of a passage (2 to 4 sentences, like a real document for this task) "
                f"and a question about it. {answerable} No answers.")
    tool = bucket.get("tool", "")
    if kind == NO_CALL:
        return (f"Write {count} different messages a user of this assistant might send that none of these functions "
                f"can serve (questions, small talk, other requests): {', '.join(_tool_names(task_spec))}.")
    line = next((_tool_line(t) for t in task_spec.tools if t["function"]["name"] == tool), tool)
    required, optional = parameter_names(task_spec.tools, tool)
    if kind == MISSING_ARGUMENT:
        if required:
            return (f"Write {count} different requests a user sends that need the function {line}, but that leave "
                    "out one of the values it needs, so the assistant must ask for it. Write only the user's request.")
        values = ", ".join(optional)
        return (f"Write {count} different requests a user sends that need the function {line}, but that give none "
                f"of its values ({values}), so the assistant must ask for them. Write only the user's request.")
    if bucket.get("values") == "some":
        giving = (f"every value it needs ({', '.join(required)}) but leaving out some or all of the others "
                  f"({', '.join(optional)})" if required else f"only one or two of its values ({', '.join(optional)})")
        return (f"Write {count} different requests a user sends that need the function {line}, each giving {giving}, "
                "a different choice in each request, in the words of the request. Write only the user's request.")
    return (f"Write {count} different requests a user sends that need the function {line}, each giving every value "
            "it needs in the words of the request. Write only the user's request.")


def _tool_names(task_spec: TaskSpec) -> list[str]:
    return [t["function"]["name"] for t in task_spec.tools]


def generate_schema(count: int, passages: bool = False) -> dict[str, Any]:
    """The JSON shape of one generation answer: `count` input texts, or for open-book QA `count`
    passage/question pairs."""
    item: dict[str, Any] = {"type": "string", "minLength": 3, "maxLength": 600}
    if passages:
        item = {"type": "object", "required": ["passage", "question"], "additionalProperties": False,
                "properties": {"passage": {"type": "string", "minLength": 20, "maxLength": 1500},
                               "question": {"type": "string", "minLength": 3, "maxLength": 300}}}
    return {
        "type": "object",
        "properties": {"inputs": {"type": "array", "minItems": count, "maxItems": count, "items": item}},
        "required": ["inputs"],
    }


_QUESTION_MARK = "\n\nQuestion: "


def open_book_input(passage: str, question: str) -> str:
    """The one way an open-book QA input is written: the passage, then the question."""
    return f"{passage.strip()}{_QUESTION_MARK}{question.strip()}"


def qa_mode_of_rows(rows: Sequence[Row]) -> str | None:
    """The QA mode the person's own rows show: `open_book` when every input is written in the
    open-book form (a passage, a blank line, `Question: ...`), `closed_book` when none is, and
    None when there are no rows or they are mixed (the teacher is asked then)."""
    forms = {bool(row.input.split(_QUESTION_MARK)[0].strip()) and _QUESTION_MARK in row.input for row in rows}
    if len(forms) != 1:
        return None
    return "open_book" if forms.pop() else "closed_book"


#: How each self-consistency vote after the first asks for a label: other words, and the labels
#: in another order, so that a vote does not share the first one's position bias.
LABEL_ASKS = (
    "Answer with the label only.",
    "Read the text carefully and answer with the single label that fits it best.",
    "Which one of these labels would a careful human annotator give this text? Answer with the label only.",
    "Decide on the evidence in the text alone, and answer with the label only.",
)


def vote_labels(labels: Sequence[Any], phrasing: int) -> list[Any]:
    """The labels in the order vote `phrasing` lists them: as given, reversed, then rotations."""
    items = list(labels)
    if phrasing == 0 or len(items) < 2:
        return items
    if phrasing % 2:
        items.reverse()
    shift = (phrasing // 2) % len(items)
    return items[shift:] + items[:shift]


def label_messages(task_spec: TaskSpec, text: str, phrasing: int = 0) -> list[dict[str, str]]:
    """The teacher's question for one input. `phrasing` > 0 asks the same in other words (a
    self-consistency vote); evaluation and the teacher check always ask phrasing 0."""
    lines = [f"Task: {task_spec.task}"]
    if task_spec.task_type == TaskType.CLASSIFICATION:
        # The planned one-line instruction is left out here: written by the teacher itself, it can
        # contradict the labels (one plan said "neither spam nor personal -> ham"); on 60 real SMS
        # messages the same plan scored 0.58 with it and 0.67 without. Label descriptions stay.
        lines.append("Labels:")
        lines += [f"- {label.name}: {label.description}" for label in vote_labels(task_spec.labels, phrasing)]
        lines.append(LABEL_ASKS[phrasing % len(LABEL_ASKS)])
    elif phrasing:
        lines.append(task_spec.instruction)
        lines.append("Think about what the input says before you answer; answer as the instructions below ask.")
    else:
        lines.append(task_spec.instruction)
    if task_spec.task_type == TaskType.EXTRACTION:
        lines.append("Extract these fields from the text:")
        lines += [f"- {_field_line(f)}" for f in task_spec.extraction_fields]
        lines.append("Answer with a JSON object with exactly these keys. Copy each value as it is written in the "
                     "text; use null for a field the text does not state. Never invent a value.")
    elif task_spec.task_type == TaskType.QA:
        lines.append(f"Answer the question using only the passage. If the passage does not answer it, answer exactly: "
                     f"{QA_REFUSAL}" if task_spec.qa_mode == "open_book" else "Answer the question briefly.")
    elif task_spec.task_type == TaskType.TOOL_CALLING:
        lines.append(tools_prompt(task_spec.tools))
        # Under the answer's JSON schema a plain-text reply is impossible: name its JSON form, or a
        # small teacher calls a function for every request and invents the values it lacks.
        lines.append('Answer in JSON only: the call {"name": ..., "arguments": {...}} when a function fits and the '
                     'request gives every value it needs; otherwise {"reply": "..."} with what you say to the user, '
                     "for example asking for the missing value. In a call, give every argument: its value as the "
                     "request states it, or null when the request does not state it. Never invent a value the "
                     "request does not give.")
        lines.append(optional_only_note(task_spec.tools))
    return [{"role": "system", "content": "\n".join(line for line in lines if line)},
            *answered_turns(task_spec),
            {"role": "user", "content": text}]


def optional_only_note(tools: Sequence[dict[str, Any]]) -> str:
    """For tools that need no value: they fit a request that gives any one of theirs. Without it
    "every value it needs" reads as "every value it has", and the teacher answered real one-detail
    booking messages ("I'd prefer a table at about 5:30 PM.") by asking for the rest."""
    names = []
    for tool in tools:
        required, optional = parameter_names(tools, tool["function"]["name"])
        if optional and not required:
            names.append(tool["function"]["name"])
    if not names:
        return ""
    return (f"{', '.join(names)} {'needs' if len(names) == 1 else 'need'} no value: call it as soon as the request "
            "states any one of its values, with only the values stated, even if others are missing.")


def answer_or_call_schema(call_schema: dict[str, Any]) -> dict[str, Any]:
    """A tool-calling answer for structured outputs: one of the calls, or `{"reply": text}`."""
    reply = {"type": "object", "properties": {REPLY_KEY: {"type": "string", "minLength": 1, "maxLength": 400}},
             "required": [REPLY_KEY], "additionalProperties": False}
    return {"anyOf": [*call_schema["anyOf"], reply]}


def support_question(text: str, answer: str) -> list[dict[str, str]]:
    """The judge's question: is an answer to an open-book input supported by its passage?"""
    return [
        {"role": "system", "content": "You check answers against a passage. Answer yes or no."},
        {"role": "user", "content": f"{text}\n\nProposed answer: {answer}\n\n"
                                    "Does the passage support this answer to the question?"},
    ]


def judge_question(text: str, expected: str, answer: str) -> list[dict[str, str]]:
    """The judge's question when scoring a free QA answer against the expected one."""
    return [
        {"role": "system", "content": "You grade answers to questions. Answer yes or no."},
        {"role": "user", "content": f"{text}\n\nReference answer: {expected}\nGiven answer: {answer}\n\n"
                                    "Does the given answer say the same as the reference answer?"},
    ]


JUDGE_CHOICES = ("yes", "no")


#: The longest rationale kept, in characters: one sentence, as distilling step by step uses.
RATIONALE_MAX_CHARS = 300


def rationale_messages(task_spec: TaskSpec, text: str, answer: str) -> list[dict[str, str]]:
    """The teacher's question for the reason behind its own answer to one input: the label
    question, the answer as the teacher's turn, then "why" (a reason for the answer given,
    so the student never learns a reason that argues for another answer)."""
    return [*label_messages(task_spec, text),
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "In one sentence, what in the input makes that the right answer? "
                                        "Answer with the reason only."}]
