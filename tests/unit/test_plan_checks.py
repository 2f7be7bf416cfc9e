"""The plan's checks and the spread they feed (pure: a scripted teacher, no services): degenerate
list answers are re-asked, each label gets its own topics, generation calls rotate the seed
examples they show, and top-up buckets continue a label's walk."""

import asyncio
import json
from typing import Any

from app.specs import CurationOptions, JobSpec, Row, TaskSpec
from workers import prompts
from workers.generation import label_buckets, plan_buckets, seed_turn
from workers.stages.plan import MAX_REASKS, _Planner, build_task_spec, check_plan_list
from workers.teacher import Answer

LABELS = [{"name": "spam", "description": "ads"}, {"name": "ham", "description": "normal"}]
SPREAD = {"styles": ["casual", "formal"], "lengths": ["short", "long"]}


def spam_spec(**extra: Any) -> TaskSpec:
    return TaskSpec(task="spam or ham", task_type="classification", labels=LABELS,
                    topics=["shared one", "shared two"], **SPREAD, **extra)


def test_short_items_and_label_names_make_a_list_degenerate():
    kept, problems = check_plan_list(["a", "b", "c"], ["spam", "ham"], 2)
    assert kept == [] and len(problems) == 2 and "few words" in problems[0] and "at least 2" in problems[1]
    kept, problems = check_plan_list(["Spam", " ham.", "history", "science", "History"], ["spam", "ham"], 3)
    assert kept == ["history", "science"]
    assert any("label names (spam, ham)" in p for p in problems) and any("at least 3" in p for p in problems)
    kept, problems = check_plan_list(["Banking", "banking", "family plans", "work shifts"], ["spam", "ham"], 3)
    assert kept == ["Banking", "family plans", "work shifts"] and problems == []
    assert check_plan_list(["billing issue"], ["billing_issue"], 1)[0] == []


def test_the_plan_keeps_no_label_name_as_a_topic_and_each_labels_own_topics():
    request = JobSpec(task="spam or ham", labels=["spam", "ham"], teacher="t", student="s")
    spec = build_task_spec(request, {"topics": ["spam", "a", "banks"], "styles": ["x", "y"],
                                     "label_topics": {"spam": ["prizes", "ham", "loans"], "eggs": ["z z z"],
                                                      "ham": ["b"]}})
    assert spec.topics == ["banks"] and spec.styles == ["plain"]
    assert spec.label_topics == {"spam": ["prizes", "loans"]}, "a label with no usable topics uses `topics`"


class ScriptedTeacher:
    """Answers each planning question from a script keyed by a word of the question."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = script
        self.asked: list[tuple[str, float]] = []

    async def chat(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0,
                   choices: Any = None, json_schema: Any = None) -> Answer:
        question = messages[-1]["content"]
        self.asked.append((question, temperature))
        if json_schema is None:
            return Answer(text="A line.")
        for word, answers in self.script.items():
            if word in question.split("Your last answer")[0].strip().split("\n")[-1]:
                return Answer(text=json.dumps({"items": answers.pop(0) if len(answers) > 1 else answers[0]}))
        raise AssertionError(question)


class Sink:
    def __init__(self) -> None:
        self.reports: list[tuple[int, int]] = []

    def progress(self, done: int, total: int) -> None:
        self.reports.append((done, total))


def plan_with(script: dict[str, list[list[str]]], **curation: Any) -> tuple[dict[str, Any], _Planner, Any]:
    request = JobSpec(task="spam or ham", labels=["spam", "ham"], teacher="t", student="s",
                      curation=CurationOptions(**curation))
    teacher, sink = ScriptedTeacher(script), Sink()
    planner = _Planner(teacher, request, sink)  # type: ignore[arg-type]
    return asyncio.run(planner.plan()), planner, (teacher, sink)


def test_degenerate_answers_are_asked_again_warmer_with_a_note():
    script = {"sub-topics the inputs": [["spam", "ham", "history"], ["bills", "friends", "work"]],
              "writing styles": [["a", "b", "c"]],
              '"spam"': [["prizes", "loans", "crypto"]], '"ham"': [["family", "plans", "errands"]]}
    raw, planner, (teacher, sink) = plan_with(script)
    assert raw["topics"] == ["bills", "friends", "work"]
    assert raw["styles"] == [], "after the last re-ask nothing usable: build_task_spec uses the default"
    assert raw["label_topics"] == {"spam": ["prizes", "loans", "crypto"], "ham": ["family", "plans", "errands"]}
    assert planner.reasked == 1 + MAX_REASKS and planner.malformed == 0
    notes = [(q, t) for q, t in teacher.asked if "Your last answer" in q]
    assert len(notes) == planner.reasked and all(t > 0 for _, t in notes)
    assert any("do not use the label names (spam, ham)" in q for q, _ in notes)
    assert sink.reports[-1][0] == sink.reports[-1][1] == len(teacher.asked), "progress ends at its total"


def test_labels_share_the_topics_without_plan_per_label():
    script = {"sub-topics the inputs": [["bills", "friends", "work"]], "writing styles": [["chatty", "terse"]]}
    raw, planner, (teacher, sink) = plan_with(script, plan_per_label=False)
    assert "label_topics" not in raw and planner.reasked == 0
    assert sink.reports[-1] == (len(teacher.asked), len(teacher.asked)) == (5, 5)


def test_a_labels_buckets_take_its_own_topics_with_the_shared_spread():
    spec = spam_spec(label_topics={"spam": ["prizes", "loans"]})
    buckets = plan_buckets(spec, 16, seed=3)
    assert buckets == plan_buckets(spec, 16, seed=3)
    spam = [b for b in buckets if b["label"] == "spam"]
    ham = [b for b in buckets if b["label"] == "ham"]
    assert len(spam) == len(ham) == 8
    assert {b["topic"] for b in spam} == {"prizes", "loans"} and {b["topic"] for b in ham} == set(spec.topics)
    for rows in (spam, ham):
        assert len({(b["topic"], b["style"], b["length"]) for b in rows}) == 8, "each label walks all combos"
    assert list(buckets[0]) == ["topic", "style", "length", "label"], "bucket ids keep their form"


def test_top_up_buckets_continue_a_labels_walk():
    spec = spam_spec(label_topics={"spam": ["prizes", "loans", "crypto"]})
    first = [b for b in plan_buckets(spec, 30, seed=1) if b["label"] == "spam"]
    top_up = label_buckets(spec, "spam", 5, seed=1, start=10)
    assert top_up == first[10:15]
    assert {b["topic"] for b in top_up} <= {"prizes", "loans", "crypto"}
    assert [b["topic"] for b in label_buckets(spec, "ham", 3, seed=1, start=0)] == \
        [b["topic"] for b in plan_buckets(spec, 6, seed=1) if b["label"] == "ham"]


def shown(messages: list[dict[str, str]]) -> list[str]:
    return [line for line in messages[1]["content"].splitlines() if line.startswith("- ")]


def test_generation_calls_rotate_the_seed_examples_they_show():
    spec = spam_spec()
    seeds = [Row(input=f"ham {i}", output="ham") for i in range(6)] + [Row(input="spam 0", output="spam")]
    bucket = {"topic": "t", "style": "s", "length": "l", "label": "ham"}
    windows = [shown(prompts.generate_messages(spec, bucket, seeds, 5, turn)) for turn in range(3)]
    assert windows[0] == ["- 'ham 0'", "- 'ham 1'", "- 'ham 2'"]
    assert windows[1] == ["- 'ham 3'", "- 'ham 4'", "- 'ham 5'"]
    assert windows[2] == windows[0]
    spam_bucket = {**bucket, "label": "spam"}
    assert shown(prompts.generate_messages(spec, spam_bucket, seeds, 5, 4)) == ["- 'spam 0'"]
    qa = TaskSpec(task="answer", task_type="qa", qa_mode="closed_book", topics=["t"], **SPREAD)
    rows = [Row(input=f"q{i}", output="a") for i in range(4)]
    first, second = (shown(prompts.generate_messages(qa, {**bucket, "kind": "question"}, rows, 5, t)) for t in (0, 1))
    assert first == ["- 'q0'", "- 'q1'", "- 'q2'"] and second == ["- 'q3'", "- 'q0'", "- 'q1'"]
    messages = prompts.generate_messages(qa, {**bucket, "kind": "question"}, rows, 5, 1)
    assert messages[1]["content"].startswith("Task: answer\n"), "the shared text stays first"


def test_a_calls_seed_turn_is_its_place_among_calls_showing_the_same_seeds():
    assert [seed_turn(spam_spec(), i) for i in range(5)] == [0, 0, 1, 1, 2]
    qa = TaskSpec(task="answer", task_type="qa", qa_mode="open_book", topics=["t"], **SPREAD)
    assert [seed_turn(qa, i) for i in range(3)] == [0, 1, 2]


def test_example_messages_are_no_writing_styles() -> None:
    from workers.stages.plan import check_plan_list

    slogans = ["The offer is too good to miss! Don't miss out!", "Get your free prize! Hurry!",
               "I'm looking for a new job. Apply now!"]
    kept, problems = check_plan_list(slogans, ["spam", "ham"], 2, styles=True)
    assert kept == [] and any("example message" in p for p in problems)
    kept, problems = check_plan_list(["casual text between friends", "formal notice"], ["spam", "ham"], 2, styles=True)
    assert kept == ["casual text between friends", "formal notice"] and problems == []
    # Topics may be phrased as anything but a label's name.
    assert check_plan_list(["Is it a prize?", "bills"], ["spam"], 2)[1] == []
