"""Dataset rows to TRL prompt/completion examples."""

import json

import pytest

from workers.training.data import sft_example, split_examples


def test_classification_example_carries_normalised_soft_labels():
    row = {"input": "WIN cash now", "output": "spam", "label_probs": {"spam": 0.6, "ham": 0.2}, "split": "train"}
    example = sft_example(row, ["spam", "ham"])
    assert example["prompt"] == [{"role": "user", "content": "WIN cash now"}]
    assert example["completion"] == [{"role": "assistant", "content": "spam"}]
    assert example["soft_labels"] == pytest.approx([0.75, 0.25])


def test_missing_soft_labels_fall_back_to_the_hard_label():
    assert sft_example({"input": "hi", "output": "ham"}, ["spam", "ham"])["soft_labels"] == [0.0, 1.0]


def test_non_classification_has_no_soft_labels():
    assert "soft_labels" not in sft_example({"input": "q", "output": "a"})


def test_split_examples():
    rows = [{"input": "a", "output": "x", "split": "train"}, {"input": "b", "output": "y", "split": "validation"},
            {"input": "c", "output": "x", "split": "train"}]
    splits = split_examples(rows)
    assert [e["prompt"][0]["content"] for e in splits["train"]] == ["a", "c"]
    assert len(splits["validation"]) == 1


def test_oversampling_evens_out_the_classes_and_keeps_every_row():
    from collections import Counter

    from workers.training.data import oversample

    rows = [{"input": f"s{i}", "output": "spam"} for i in range(6)]
    rows += [{"input": f"h{i}", "output": "ham"} for i in range(2)]
    out = oversample(rows, ["spam", "ham"], seed=1)
    assert Counter(r["output"] for r in out) == {"spam": 6, "ham": 6}
    assert {r["input"] for r in out} == {r["input"] for r in rows}
    assert oversample(rows, ["spam", "ham"], seed=1) == out, "deterministic for a seed"



def test_balance_repeats_rows_of_the_smaller_groups():
    from collections import Counter

    from workers.training.data import balance

    rows = [{"input": f"b{i}", "output": json.dumps({"n": i}), "kind": "a"} for i in range(6)]
    rows += [{"input": f"h{i}", "output": "x", "kind": "b"} for i in range(2)]
    out = balance(rows, lambda row: row["kind"], seed=2, groups=["c"])
    assert Counter(r["kind"] for r in out) == {"a": 6, "b": 6}, "an empty group stays empty"
    assert balance(rows, lambda row: row["kind"], seed=2) == out, "deterministic for a seed"


def test_a_rationale_is_a_second_example_asking_why_without_soft_labels():
    from workers.training.data import RATIONALE_ASK, rationale_example

    row = {"input": "WIN cash now", "output": "spam", "label_probs": {"spam": 0.9, "ham": 0.1},
           "rationale": "It promises a cash prize to a stranger."}
    example = rationale_example(row, soft_labels=True)
    assert example is not None
    assert example["prompt"] == [{"role": "user", "content": "WIN cash now" + RATIONALE_ASK}]
    assert example["completion"] == [{"role": "assistant", "content": "It promises a cash prize to a stranger."}]
    assert example["soft_labels"] is None, "the reason is no label answer: the KL term skips it"
    assert "soft_labels" not in rationale_example(row)
    assert rationale_example({"input": "hi", "output": "ham"}) is None
    assert rationale_example({**row, "rationale": ""}) is None



def test_training_examples_balance_the_answers_then_add_one_rationale_example_per_distinct_row():
    from workers.training.data import RATIONALE_ASK, training_examples

    rows = [{"input": f"s{i}", "output": "spam", "label_probs": {"spam": 1.0}} for i in range(3)]
    rows.append({"input": "h0", "output": "ham", "label_probs": {"ham": 1.0}, "rationale": "A plain note."})
    built = training_examples(rows, ["spam", "ham"], None, soft_labels=True, seed=0)
    assert (built.answers, built.rationales, built.repeated) == (6, 1, 2), "ham repeated twice to match spam"
    assert len(built.examples) == 7 and all("soft_labels" in e for e in built.examples)
    *answers, reason = built.examples
    assert all(e["soft_labels"] is not None for e in answers) and reason["soft_labels"] is None
    assert reason["prompt"][0]["content"] == "h0" + RATIONALE_ASK
