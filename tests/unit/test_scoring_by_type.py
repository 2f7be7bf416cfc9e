"""The scoring rule per task type: extraction fields, QA exact match / token F1, tool calls (BFCL AST)."""

import json
from pathlib import Path

import pytest

from workers.scoring import parse_call, score_answers, score_calls, score_extraction, score_qa, token_f1

COMMON = {"accuracy", "n", "correct", "invalid", "macro_f1", "per_label", "confusion", "rule"}
BFCL = Path("/work/shared/data/bfcl_function_calling")


def test_extraction_scores_objects_and_fields():
    expected = [json.dumps({"name": "Ann Lee", "amount": 1000, "tags": ["a", "b"]}),
                json.dumps({"name": "Bob", "amount": 5, "tags": ["x", "y"], "city": None}),
                json.dumps({"name": "Cy", "amount": 7, "tags": ["q"]})]
    predicted = ['{"tags": ["B", "a"], "amount": "1,000", "name": " ann  lee "}',
                 '{"name": "Rob", "amount": 5.0, "tags": ["x", "z"], "city": ""}',
                 "not json"]
    report = score_answers(expected, predicted, "extraction")
    assert COMMON <= set(report)
    assert report["accuracy"] == 0.3333 and report["correct"] == 1 and report["invalid"] == 1
    assert report["parse_rate"] == 0.6667 and report["n"] == 3
    fields = report["fields"]
    assert fields["name"] == {"n": 3, "precision": 0.5, "recall": 0.3333, "f1": 0.4, "tp": 1, "fp": 1, "fn": 2}
    assert fields["amount"] == {"n": 3, "precision": 1.0, "recall": 0.6667, "f1": 0.8, "tp": 2, "fp": 0, "fn": 1}
    assert fields["tags"] == {"n": 3, "precision": 0.75, "recall": 0.6, "f1": 0.6667, "tp": 3, "fp": 1, "fn": 2}
    assert fields["city"] == {"n": 0, "precision": None, "recall": None, "f1": None, "tp": 0, "fp": 0, "fn": 0}
    assert report["micro"] == {"precision": 0.75, "recall": 0.5455, "f1": 0.6316}
    assert report["macro_f1"] == 0.6222


def test_extraction_absent_values_fences_and_extra_keys():
    report = score_extraction(['{"a": null, "b": [], "c": "", "d": "X"}', '{"d": "1000"}', '{"d": "02134"}'],
                              ['```json\n{"d": "x"}\n```', '{"d": 1000.0, "e": "made up"}', '{"d": 2134}'])
    assert report["accuracy"] == 0.3333 and report["parse_rate"] == 1.0 and report["rule"] == "extraction"
    assert report["fields"]["e"]["fp"] == 1 and report["fields"]["e"]["n"] == 0
    assert report["fields"]["d"] == {"n": 3, "precision": 0.6667, "recall": 0.6667, "f1": 0.6667,
                                     "tp": 2, "fp": 1, "fn": 1}
    empty = score_extraction([], [])
    assert empty["accuracy"] is None and empty["n"] == 0 and empty["micro"]["f1"] is None


def test_extraction_strings_compare_like_call_arguments():
    expected = ['{"time": "1:15 PM.", "date": "April 1, 2024", "people": "7"}'] * 3
    predicted = ['{"time": "1:15 pm", "date": "april 1 2024", "people": 7}',
                 '{"time": "1:15pm", "date": "April 1 2024.", "people": "7.0"}',
                 '{"time": "1:16 PM", "date": "April 1, 2024", "people": "7"}']
    report = score_extraction(expected, predicted)
    assert report["correct"] == 2 and report["fields"]["time"]["tp"] == 2 and report["fields"]["date"]["tp"] == 3


def test_qa_exact_match_and_token_f1():
    expected = ["The Eiffel Tower", "Denver Broncos", "in 1998", "Paris"]
    predicted = ["eiffel tower!", "the Broncos", "1999", None]
    report = score_answers(expected, predicted, "qa")
    assert COMMON <= set(report) and report["rule"] == "qa"
    assert report["accuracy"] == 0.25 and report["correct"] == 1 and report["invalid"] == 1
    assert report["f1"] == 0.4167  # (1 + 2/3 + 0 + 0) / 4
    assert token_f1("Denver Broncos", "the Broncos") == pytest.approx(2 / 3)
    assert token_f1("the", "") == 1.0 and token_f1("x", "") == 0.0
    assert score_qa([], [])["f1"] is None


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "required": ["city", "days"],
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "units": {"type": "string"}}}}}
TIME = {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}},
                                           "required": ["zone"]}}


def _call(name, **arguments):
    return json.dumps({"name": name, "arguments": arguments})


def test_tool_calls_are_matched_like_bfcl_ast():
    paris = _call("get_weather", city="Paris", days=5)
    rows = [
        (paris, _call("get_weather", city=" paris ", days=5)),  # right
        (paris, _call("get_time", zone="UTC")),  # wrong function
        (paris, _call("get_weather", city="Paris")),  # missing required
        (paris, _call("get_weather", city="Paris", days=5, foo=1)),  # unknown argument
        (paris, '```json\n' + _call("get_weather", city="Paris", days=5.0) + "\n```"),  # 5 == 5.0
        (paris, "<tool_call>" + _call("get_weather", city="Paris", days="5") + "</tool_call>"),  # "5" coerced
        ("", "It is sunny."),  # no call needed, none made
        ("null", _call("get_time", zone="UTC")),  # call made when none needed
        (paris, "I don't know."),  # no call
        (paris, '{"name": "get_weather", "arguments": {'),  # not a valid call
        (paris, _call("get_weather", city="Paris", days=6)),  # wrong value
    ]
    report = score_answers([e for e, _ in rows], [p for _, p in rows], "tool_calling", tools=[WEATHER, TIME])
    assert COMMON <= set(report) and report["rule"] == "tool_calling"
    assert report["correct"] == 4 and report["accuracy"] == 0.3636
    assert report["n_call"] == 9 and report["n_no_call"] == 2
    assert report["call_accuracy"] == 0.3333 and report["no_call_accuracy"] == 0.5
    assert report["valid_call_rate"] == 0.6667 and report["invalid"] == 1  # 6 of 9 calls pass the schema
    assert {m["index"]: m["reason"] for m in report["mismatches"]} == {
        1: "wrong function", 2: "missing argument days", 3: "unknown argument foo",
        7: "called a tool when none was needed", 8: "no call", 9: "not a valid call", 10: "wrong value for days"}
    assert report["mismatches"][0]["expected"] == {"name": "get_weather", "arguments": {"city": "Paris", "days": 5}}


def test_string_arguments_compare_as_bfcl_standardises_them():
    when = _call("get_time", zone="1:15 PM, April 1")
    predicted = [_call("get_time", zone="1:15 pm april 1."), _call("get_time", zone="1:15PM april-1"),
                 _call("get_time", zone="1:16 PM, April 1")]
    report = score_calls([when] * 3, predicted, [TIME])
    assert report["correct"] == 2 and [m["index"] for m in report["mismatches"]] == [2]


def test_tool_calls_without_tools_use_the_expected_arguments():
    paris = _call("get_weather", city="Paris", days=5)
    report = score_calls([paris, paris, paris, "{}"],
                         [_call("get_weather", city="PARIS", days=5.0), _call("get_weather", city="Paris", days="5"),
                          _call("get_weather", city="Paris", days=5, units="c"), "no tool needed"],
                         acceptable_lists=False)
    assert report["accuracy"] == 0.5 and report["valid_call_rate"] == 1.0 and report["no_call_accuracy"] == 1.0
    assert [m["reason"] for m in report["mismatches"]] == ["wrong value for days", "unknown argument units"]


def test_bfcl_acceptable_lists_allow_omitting_optional_arguments():
    tool = {"name": "calculate_triangle_area", "parameters": {"type": "dict", "required": ["base", "height"],
            "properties": {"base": {"type": "integer"}, "height": {"type": "integer"}, "unit": {"type": "string"}}}}
    truth = {"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}
    name = "calculate_triangle_area"
    predicted = [_call(name, base=10, height=5), _call(name, base=10, height=5, unit="Units"),
                 _call(name, base=10.0, height=5), _call(name, base=10, height=5, unit="cm"), _call(name, base=10)]
    for tools in ([tool], []):
        report = score_calls([truth] * 5, predicted, tools)
        assert report["accuracy"] == 0.6
        assert [m["reason"] for m in report["mismatches"]] == ["wrong value for unit", "missing argument height"]


def test_parse_call_reads_the_usual_wrappers():
    call = {"name": "f", "arguments": {"x": 1}}
    assert parse_call('  {"name": "f", "arguments": {"x": 1}} ') == call
    assert parse_call('```json\n{"name": "f", "arguments": {"x": 1}}\n```') == call
    assert parse_call('<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>') == call
    assert parse_call('{"type": "function", "function": {"name": "f", "arguments": "{\\"x\\": 1}"}}') == call
    assert parse_call('[{"name": "f", "arguments": {"x": 1}}]') == call
    assert parse_call("The answer is 4.") is None and parse_call('{"name": ') is None and parse_call(None) is None


def test_classification_is_unchanged():
    report = score_answers(["ham", "spam"], [" ham", "ham"], "classification", ["spam", "ham"])
    assert report["accuracy"] == 0.5 and report["rule"] == "classification" and report["confusion"]["spam"]


@pytest.mark.skipif(not (BFCL / "BFCL_v4_simple_python.json").is_file(), reason="BFCL data not present")
def test_bfcl_ground_truth_scores_perfectly():
    with (BFCL / "BFCL_v4_simple_python.json").open() as questions:
        rows = [json.loads(next(questions)) for _ in range(3)]
    with (BFCL / "possible_answer" / "BFCL_v4_simple_python.json").open() as answers:
        truths = {row["id"]: row["ground_truth"] for row in map(json.loads, answers)}
    expected = [truths[row["id"]] for row in rows]
    predicted = []
    for truth in expected:
        ((name, args),) = truth[0].items()
        predicted.append(_call(name, **{k: v[0] for k, v in args.items() if v[0] != ""}))
    report = score_calls(expected, predicted, row_tools=[row["function"] for row in rows])
    assert report["accuracy"] == 1.0 and report["valid_call_rate"] == 1.0 and report["n_call"] == 3


def test_rows_correct_follows_each_types_rule_not_the_text():
    from workers.scoring import rows_correct

    tool = {"type": "function", "function": {"name": "book", "parameters": {
        "type": "object", "required": ["people"], "properties": {"people": {"type": "integer"}}}}}
    expected = ['{"name": "book", "arguments": {"people": 2}}', "", '{"name": "book", "arguments": {"people": 3}}']
    predicted = ['<tool_call>{"arguments": {"people": "2"}, "name": "book"}</tool_call>', "You are welcome!",
                 '{"name": "book", "arguments": {"people": 4}}']
    assert rows_correct(expected, predicted, "tool_calling", tools=[tool]) == [True, True, False]
    assert rows_correct(['{"date": "Friday"}', '{"date": null}'], ['{"date": " friday "}', None],
                        "extraction") == [True, False]
    assert rows_correct(["at noon", "twenty"], ["At noon.", "20"], "qa") == [True, False]
    assert rows_correct(["spam", "ham"], ["spam", "spam"], "classification", ["ham", "spam"]) == [True, False]
