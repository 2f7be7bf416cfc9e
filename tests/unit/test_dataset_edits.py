"""A person's edits of a data set, checked like curation checks the teacher's answers (pure)."""

import json

import pytest

from app.dataset_edits import EditError, apply_edits, check_output, edits_from_import, export_rows, live_rows
from app.specs import FieldSpec, TaskSpec

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
EXTRACTION = TaskSpec(task="pull the date and party size", task_type="extraction",
                      fields=[FieldSpec(name="date"), FieldSpec(name="party_size", type="integer", span=False)])
TOOLS = TaskSpec(task="call the weather tool", task_type="tool_calling", tools=[WEATHER_TOOL])
CLASSES = TaskSpec(task="spam or ham", task_type="classification",
                   labels=[{"name": "spam", "description": "ads"}, {"name": "ham", "description": "normal"}])


def test_outputs_are_checked_and_cleaned_per_task_type():
    assert check_output(" spam ", "x", CLASSES) == ("spam", None)
    assert "not one of the labels" in (check_output("eggs", "x", CLASSES)[1] or "")
    cleaned, _ = check_output('{"date": "Friday", "party_size": "4"}', "a table for 4 on Friday", EXTRACTION)
    assert json.loads(cleaned or "") == {"date": "Friday", "party_size": 4}
    assert "does not occur in the input" in (check_output('{"date": "Monday"}', "on Friday", EXTRACTION)[1] or "")
    assert "unknown field" in (check_output('{"time": "8pm"}', "at 8pm", EXTRACTION)[1] or "")
    call, _ = check_output('{"name": "get_weather", "arguments": {"city": "Oslo"}}', "weather in Oslo?", TOOLS)
    assert json.loads(call or "")["name"] == "get_weather"
    assert check_output('{"name": "book_flight", "arguments": {}}', "fly", TOOLS)[0] is None
    assert check_output("Which city do you mean?", "weather?", TOOLS) == ("Which city do you mean?", None)
    assert check_output("   ", "x", TOOLS) == (None, "the output must not be blank")


def test_a_batch_applies_in_order_or_not_at_all():
    rows = [{"input": f"m{i}", "output": "ham", "split": "train", "label_probs": {"ham": 0.7, "spam": 0.3}}
            for i in range(3)]
    applied = apply_edits(rows, [{"op": "update", "index": 0, "output": "spam"}, {"op": "delete", "index": 1},
                                 {"op": "update", "index": 2, "output": "ham"}], CLASSES)
    assert applied.changes == {"updated": 1, "deleted": 1, "restored": 0, "added": 0}, "a no-op is not an edit"
    assert applied.rows[0]["label_probs"] == {"spam": 1.0, "ham": 0.0} and rows[0]["output"] == "ham"
    assert [r["input"] for r in live_rows(applied.rows)] == ["m0", "m2"]
    with pytest.raises(EditError) as bad:
        apply_edits(applied.rows, [{"op": "update", "index": 1, "output": "spam"}], CLASSES)
    assert "restore it" in bad.value.message and bad.value.index == 1
    with pytest.raises(EditError):
        apply_edits(rows, [{"op": "add", "input": "", "output": "spam"}], CLASSES)


def test_an_edited_export_becomes_edits():
    rows = [{"input": "a", "output": "ham", "split": "train"}, {"input": "b", "output": "spam", "split": "train"},
            {"input": "c", "output": "ham", "split": "train", "deleted": True}]
    exported = export_rows(rows)
    assert [r["index"] for r in exported] == [0, 1]
    exported[0]["output"] = "spam"
    exported[1:] = [{"index": 2, "input": "c", "output": "ham"}, {"input": "d", "output": "ham"},
                    {"input": "b", "output": "spam"}]
    assert edits_from_import(rows, exported) == [
        {"op": "update", "index": 0, "output": "spam"}, {"op": "restore", "index": 2},
        {"op": "add", "input": "d", "output": "ham", "split": "train"}], "a row without index but a known input is it"
    assert edits_from_import(rows, [{"index": 1, "input": "b"}]) == [{"op": "delete", "index": 0}]
    with pytest.raises(EditError, match="appears twice"):
        edits_from_import(rows, [{"index": 0, "input": "a"}, {"index": 0, "input": "a"}])
