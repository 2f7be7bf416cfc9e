"""The partial file a teacher stage keeps its answers in as they arrive."""

from workers.stages.common import KeptMalformed, PartialAnswers, answer_key


def test_answers_are_kept_line_by_line_and_a_cut_line_is_skipped(tmp_path):
    path = tmp_path / "answers.partial.jsonl"
    with PartialAnswers(path) as partial:
        partial.add("0:a", {"output": "spam"})
        partial.add("1:b", ValueError("not a label"))
    with path.open("a") as file:  # a crash while writing the third line
        file.write('{"key": "2:c", "answ')
    with PartialAnswers(path) as partial:
        kept = partial.load()
        partial.add("3:d", ["an input"])
    assert kept["0:a"] == {"output": "spam"} and isinstance(kept["1:b"], KeptMalformed)
    assert "not a label" in str(kept["1:b"]) and set(kept) == {"0:a", "1:b"}
    assert set(PartialAnswers(path).load()) == {"0:a", "1:b", "3:d"}, "the line after a cut one is whole"


def test_keys_name_the_position_and_the_text():
    assert answer_key(0, "hi") == answer_key(0, "hi") != answer_key(1, "hi") != answer_key(0, "ho")
