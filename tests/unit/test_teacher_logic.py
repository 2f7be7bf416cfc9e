"""Pure parts of the teacher stages: soft labels, label matching, plan merging, scoring, spread."""

import json
import math

import pytest

from app.specs import JobSpec, TaskSpec
from workers.generation import plan_buckets
from workers.labelling import MalformedAnswer, match_label
from workers.scoring import score
from workers.stages.plan import build_task_spec
from workers.teacher import Answer, label_distribution


def answer(first: dict[str, float], text="negative"):
    return Answer(text=text, top_logprobs=[{t: math.log(p) for t, p in first.items()}])


def test_soft_labels_take_the_best_prefix_token_per_label():
    first = {"neg": 0.6, "negative": 0.1, "pos": 0.2, "The": 0.05}
    probs = label_distribution(answer(first), ["positive", "negative"], "negative")
    assert probs["negative"] == pytest.approx(0.6 / 0.8)
    assert probs["positive"] == pytest.approx(0.2 / 0.8)
    assert sum(probs.values()) == pytest.approx(1.0)


def test_soft_labels_fall_back_to_one_hot_without_logprobs():
    assert label_distribution(Answer(text="ham"), ["spam", "ham"], "ham") == {"spam": 0.0, "ham": 1.0}
    assert label_distribution(answer({"The": 0.9}), ["spam", "ham"], "spam") == {"spam": 1.0, "ham": 0.0}


def test_match_label():
    assert match_label(" Spam.", ["spam", "ham"]) == "spam"
    assert match_label('"ham"', ["spam", "ham"]) == "ham"
    with pytest.raises(MalformedAnswer):
        match_label("maybe spam", ["spam", "ham"])


def test_plan_keeps_the_persons_labels_and_adds_descriptions():
    request = JobSpec(task="spam or not", labels=["spam", "ham"], teacher="t", student="s")
    raw = {"task_type": "classification", "instruction": "Decide if the SMS is unwanted advertising.",
           "labels": [{"name": "ham", "description": "a normal, legitimate message"},
                      {"name": "eggs", "description": "x"}],
           "topics": ["banking", "banking", "friends"], "styles": ["casual"], "lengths": ["short"]}
    spec = build_task_spec(request, raw)
    assert spec.label_names == ["spam", "ham"]
    assert spec.labels[1].description == "a normal, legitimate message"
    assert spec.labels[0].description == "spam", "a label the teacher did not describe keeps its name"
    assert spec.topics == ["banking", "friends"]


def test_plan_survives_a_useless_teacher_answer():
    spec = build_task_spec(JobSpec(task="t", labels=["a", "b"], teacher="t", student="s"), {})
    assert spec.task_type == "classification" and spec.topics and spec.styles and spec.lengths


def test_score_counts_invalid_predictions_as_wrong():
    report = score([("spam", "spam"), ("ham", "spam"), ("ham", None), ("ham", "ham")], ["spam", "ham"])
    assert report["accuracy"] == 0.5 and report["n"] == 4
    assert report["per_label"]["spam"] == {"n": 1, "accuracy": 1.0, "recall": 1.0, "precision": 0.5,
                                           "f1": pytest.approx(0.6667)}
    assert report["per_label"]["ham"] == {"n": 3, "accuracy": pytest.approx(0.3333), "recall": pytest.approx(0.3333),
                                          "precision": 1.0, "f1": 0.5}
    assert report["macro_f1"] == pytest.approx((0.6667 + 0.5) / 2, abs=1e-4) and report["invalid"] == 1
    assert report["confusion"]["ham"] == {"spam": 1, "(invalid)": 1, "ham": 1}


def test_buckets_cover_labels_and_combinations_evenly():
    spec = TaskSpec(task="t", task_type="classification", labels=[{"name": "a", "description": "a"},
                    {"name": "b", "description": "b"}], topics=["t1", "t2"], styles=["s"], lengths=["l1", "l2"])
    buckets = plan_buckets(spec, 8, seed=0)
    assert sum(b["label"] == "a" for b in buckets) == 4
    for label in "ab":
        assert len({(b["topic"], b["length"]) for b in buckets if b["label"] == label}) == 4


def test_no_prompt_ever_contains_the_test_set():
    from workers import prompts

    secret = "ZEBRA-7731 held-out message"
    request = JobSpec(task="spam or ham", labels=["spam", "ham"], teacher="t", student="s",
                      examples=[{"input": "seed text", "output": "ham"}],
                      test_set=[{"input": secret, "output": "spam"}])
    spec = TaskSpec(task=request.task, task_type="classification", instruction="i",
                    labels=[{"name": "spam", "description": "ads"}, {"name": "ham", "description": "normal"}])
    conversations = [prompts.plan_question(request, q) for q in prompts.PLAN_QUESTIONS.values()]
    conversations.append(prompts.generate_messages(spec, {"topic": "t", "style": "s", "length": "l", "label": "spam"},
                                                   request.examples, 5))
    conversations.append(prompts.label_messages(spec, "some generated input"))
    text = json.dumps(conversations)
    assert "seed text" in text, "seed examples do guide the teacher"
    assert "ZEBRA" not in text


def test_free_form_answers_are_compared_after_normalising():
    from workers.scoring import exact_match, normalize_answer

    assert normalize_answer(' {"b": 1, "a": "x"} ', "extraction") == '{"a": "x", "b": 1}'
    assert normalize_answer("not json", "extraction") == "not json"
    assert normalize_answer("  Paris\n is  nice ", "qa") == "paris is nice"
    assert normalize_answer(" ham ", "classification") == "ham"
    report = exact_match([("a", "a"), ("b", "c"), ("d", None)])
    assert report["accuracy"] == pytest.approx(0.3333) and report["invalid"] == 1 and report["macro_f1"] is None


def test_teacher_and_students_are_scored_on_normalised_answers():
    from workers.scoring import score_answers

    expected = ['{"city": "Paris", "day": "Monday"}', '{"city": "Lima", "day": null}']
    predicted = ['{"day": "Monday", "city": "Paris"}', None]
    report = score_answers(expected, predicted, "extraction")
    assert report["accuracy"] == 0.5 and report["invalid"] == 1 and report["rule"] == "exact_match"
    assert score_answers(["ham", "spam"], [" ham", "ham"], "classification", ["spam", "ham"])["accuracy"] == 0.5



def test_a_rationale_is_the_first_sentence_of_the_teachers_reason():
    from workers.labelling import first_sentence

    assert first_sentence("  It offers a prize.\nIt also asks for a reply!") == "It offers a prize."
    assert first_sentence("No full stop at all") == "No full stop at all"
    assert first_sentence("Version 2.5 is named. Then more.") == "Version 2.5 is named."
    assert first_sentence("...") is None and first_sentence("   ") is None
    assert len(first_sentence("word " * 200) or "") <= 300


def test_the_rationale_question_follows_the_teachers_own_answer():
    from app.specs import TaskSpec, TaskType
    from workers.prompts import rationale_messages

    labels = [{"name": "spam", "description": "ads"}, {"name": "ham", "description": "not ads"}]
    spec = TaskSpec(task="spam or ham", task_type=TaskType.CLASSIFICATION, labels=labels)
    messages = rationale_messages(spec, "WIN cash now", "spam")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "WIN cash now" and messages[2]["content"] == "spam"
    assert "one sentence" in messages[3]["content"]


def test_the_error_driven_round_asks_for_inputs_like_a_miss_with_its_right_answer():
    import asyncio

    from app.specs import Row, TaskSpec, TaskType
    from workers.generation import PER_CALL, generate_like

    labels = [{"name": "spam", "description": "ads"}, {"name": "ham", "description": "not ads"}]
    spec = TaskSpec(task="spam or ham", task_type=TaskType.CLASSIFICATION, labels=labels)
    asked: list[dict] = []

    class Teacher:
        async def chat(self, messages, **kwargs):
            asked.append({"messages": messages, **kwargs})
            return Answer(text=json.dumps({"inputs": [f" new {i} " for i in range(PER_CALL)]}))

    inputs = asyncio.run(generate_like(Teacher(), spec, Row(input="Call me, dinner is at 8", output="ham")))
    assert inputs == [f"new {i}" for i in range(PER_CALL)]
    prompt = asked[0]["messages"][-1]["content"]
    assert "spam or ham" in prompt and "Call me, dinner is at 8" in prompt and "The right answer: ham" in prompt
    assert f"Write {PER_CALL} new inputs like it" in prompt
    assert asked[0]["json_schema"]["properties"]["inputs"]["minItems"] == PER_CALL and asked[0]["temperature"] == 1.0
