"""The person's imported real inputs (`inputs` in the job body), as pure rules: rows for the label
stage, kept apart from the test set, shown to generation, and curated into the train split only."""

from collections import Counter

import pytest
from pydantic import ValidationError

from app.schemas import JobCreate
from app.specs import CurationOptions, Label, TaskSpec, TaskType
from workers import curation, prompts
from workers.row_checks import check_row, trusted_rows
from workers.stages.curate import imported_metrics, real_first

SPAM = TaskSpec(task="spam or ham", task_type=TaskType.CLASSIFICATION, topics=["t"], styles=["s"], lengths=["l"],
                labels=[Label(name="spam", description="ads"), Label(name="ham", description="personal")])
LOGS = ["Your parcel is held at customs, pay 2.99 at http://x.co", "running late, start without me",
        "Running late - start without me!", "lunch tomorrow?"]


def test_the_body_takes_inputs_as_text_and_the_spec_keeps_them():
    spec = JobCreate(task="spam or ham", inputs=LOGS).to_spec()
    assert spec.inputs == LOGS
    assert JobCreate(task="spam or ham").to_spec().inputs == []
    with pytest.raises(ValidationError) as info:
        JobCreate(task="t", inputs=["fine", "  ", "x" * 100_000, "a\x00b"])
    assert [e["loc"] for e in info.value.errors()] == [("inputs", 1), ("inputs", 2), ("inputs", 3)]


def test_inputs_become_rows_to_label_each_text_once():
    rows, repeats = curation.imported_rows(LOGS)
    assert [r["input"] for r in rows] == [LOGS[0], LOGS[1], LOGS[3]] and repeats == 1
    assert all(r["source"] == r["bucket"] == curation.IMPORTED and r["intended_label"] is None for r in rows)


def test_an_imported_input_equal_to_a_test_row_is_dropped_and_counted():
    dropped: Counter[str] = Counter()
    generated = {"input": "lunch tomorrow?", "bucket": "b"}
    rows = [*curation.imported_rows(LOGS)[0], generated]
    kept = curation.drop_inputs_in_test_set(rows, ["LUNCH tomorrow", "something else"], dropped)
    assert [r["input"] for r in kept] == [LOGS[0], LOGS[1], "lunch tomorrow?"], "a generated copy is dedup's to drop"
    assert dropped == {"input_in_test_set": 1}


def test_generation_is_shown_real_inputs_in_turns_but_never_one_close_to_a_test_row():
    inputs = [f"order {i} arrived broken, the box was open and wet" for i in range(5)] + ["the test row itself"]
    guide = curation.guide_inputs(inputs, ["The test row, itself"], seed=0)
    assert sorted(guide) == sorted(inputs[:5]), "each usable input once, the test row's twin left out"
    assert curation.guide_inputs(inputs, [], seed=0) != curation.guide_inputs(inputs, [], seed=1)
    long = curation.guide_inputs(["word " * 500], [])[0]
    assert len(long) <= curation.GUIDE_CHARS + 1 and long.endswith("…")
    bucket = {"topic": "t", "style": "s", "length": "l", "label": "spam"}
    windows = [prompts.generate_messages(SPAM, bucket, [], 5, turn, guide)[1]["content"] for turn in range(2)]
    assert "Real inputs of this task look like these" in windows[0]
    shown = [[text for text in guide if repr(text) in window] for window in windows]
    assert len(shown[0]) == 3 and len(shown[1]) == 3 and shown[0] != shown[1], "a different window each turn"
    assert "Real inputs" not in prompts.generate_messages(SPAM, bucket, [], 5, 0)[1]["content"]


def labelled(text: str, output: str, source: str | None = None, **extra: object) -> dict[str, object]:
    row = {"input": text, "bucket": source or "b", "output": output, "label_probs": {"spam": 0.1, "ham": 0.9},
           "intended_label": None if source else output, **extra}
    return {**row, "source": source} if source else row


def test_imported_rows_are_checked_like_generated_ones_and_win_over_their_generated_copies():
    options = CurationOptions(min_agreement=0.6)
    real = [labelled("running late, start without me", "ham", "imported", agreement=1.0),
            labelled("are you coming tonight", "ham", "imported", agreement=1 / 3),  # the votes disagreed
            labelled("free ringtones", "maybe", "imported")]  # not a label
    made = [labelled("running late, start without me please", "ham")]
    dropped: Counter[str] = Counter()
    trusted, _ = trusted_rows(real_first(made + real), SPAM, options, dropped)
    assert dropped == {"low_agreement": 1, "invalid_output": 1}
    unique = curation.deduplicate(trusted, {"test_overlap": []})
    assert [r["input"] for r in unique.rows] == ["running late, start without me"], "the real one is kept"
    assert unique.dropped == {"near_duplicate": 1}


def test_imported_rows_go_to_the_train_split_only_on_top_of_the_budget():
    rows = [labelled(f"real {i}", "ham", "imported") for i in range(4)] + [labelled(f"made {i}", "spam")
                                                                           for i in range(10)]
    made, real = curation.imported_apart(rows)
    assert len(made) == 10 and [r["split"] for r in real] == ["train"] * 4
    assert imported_metrics(rows + [labelled("gone", "ham", "imported")], real) == \
        {"imported": {"rows": 5, "kept": 4, "dropped": 1}}
    assert imported_metrics(made, []) == {}, "no imported inputs, nothing reported"


def test_a_tool_calling_import_is_a_call_or_a_reply_as_the_teacher_answered():
    tools = TaskSpec(task="book", task_type=TaskType.TOOL_CALLING, tools=[{"type": "function", "function": {
        "name": "hours", "parameters": {"type": "object", "properties": {"day": {"type": "string"}}}}}])
    reply = {"input": "thanks a lot", "output": "You're welcome!", "source": "imported", "kind": None}
    assert check_row(reply, tools).row is not None
    call = {**reply, "input": "opening hours on monday?", "output": '{"name": "hours", "arguments": {"day": "monday"}}'}
    assert check_row(call, tools).row is not None
