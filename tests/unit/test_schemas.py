"""Validation of job submissions (pure logic)."""

import pytest
from pydantic import ValidationError

from app.config import get_settings
from app.schemas import JobCreate


def errors_of(**body):
    with pytest.raises(ValidationError) as info:
        JobCreate(**body)
    return {tuple(e["loc"]): e["msg"] for e in info.value.errors()}


def test_defaults_are_filled_into_the_spec():
    spec = JobCreate(task="  sort tickets  ").to_spec()
    assert spec.task == "sort tickets"
    assert spec.teacher == get_settings().teacher_model
    assert spec.student == get_settings().student_model
    assert spec.until == "model" and spec.num_examples == 200
    assert spec.examples == [] and spec.test_set == []


def test_blank_task_is_refused():
    assert ("task",) in errors_of(task="   ")


def test_task_length_is_limited():
    limit = get_settings().max_task_chars
    assert "limit" in errors_of(task="x" * (limit + 1))[("task",)]


@pytest.mark.parametrize("labels", [["a"], ["a", "a"], ["a", " "], ["a", "A "] * 2])
def test_bad_label_lists(labels):
    assert ("labels",) in errors_of(task="t", labels=labels)


def test_labels_are_stripped():
    assert JobCreate(task="t", labels=[" spam", "ham "]).labels == ["spam", "ham"]


def test_example_outputs_must_be_labels_and_each_wrong_row_is_named():
    msgs = errors_of(task="t", labels=["spam", "ham"], test_set=[
        {"input": "hi", "output": "eggs"}, {"input": "yo", "output": "ham"}, {"input": "ok", "output": "bacon"}])
    assert set(msgs) == {("test_set", 0, "output"), ("test_set", 2, "output")}
    assert msgs[("test_set", 2, "output")] == "'bacon' is not one of the labels ['spam', 'ham']"


def test_row_problems_are_listed_up_to_a_limit_with_a_count_of_the_rest():
    from app.schemas import MAX_ROW_ERRORS

    rows = [{"input": f"day {i}", "output": "friday"} for i in range(MAX_ROW_ERRORS + 5)]
    msgs = errors_of(task="t", fields="date", examples=rows[:3], test_set=rows)
    assert ("examples", 2, "output") in msgs and ("test_set", MAX_ROW_ERRORS - 4, "output") in msgs
    assert ("test_set", MAX_ROW_ERRORS - 3, "output") not in msgs
    assert msgs[("test_set",)] == "and 8 more rows with such problems"


def test_labels_only_for_classification():
    assert ("labels",) in errors_of(task="t", task_type="qa", labels=["a", "b"])


@pytest.mark.parametrize("n", [0, -3])
def test_num_examples_must_be_positive(n):
    assert ("num_examples",) in errors_of(task="t", num_examples=n)


def test_num_examples_is_bounded():
    assert ("num_examples",) in errors_of(task="t", num_examples=get_settings().max_num_examples + 1)


def test_unknown_teacher_is_refused_with_the_choices():
    msg = errors_of(task="t", teacher="gpt-99")[("teacher",)]
    assert "gpt-99" in msg and get_settings().teacher_model in msg


def test_unknown_fields_are_refused():
    assert ("colour",) in errors_of(task="t", colour="red")
    assert ("training", "epochz") in errors_of(task="t", training={"epochz": 3})


def test_training_options_are_bounded():
    assert ("training", "learning_rate") in errors_of(task="t", training={"learning_rate": -1})
    assert ("training", "method") in errors_of(task="t", training={"method": "magic"})


def test_examples_need_input_and_output():
    assert ("examples", 0, "output") in errors_of(task="t", examples=[{"input": "x"}])
    assert ("examples", 0, "input") in errors_of(task="t", examples=[{"input": "  ", "output": "y"}])


def test_until_choices():
    assert ("until",) in errors_of(task="t", until="forever")
    assert JobCreate(task="t", until="data").until == "data"
