"""Curation logic: duplicates, near duplicates, held-out overlap, balance, split."""

from collections import Counter

import pytest

from workers import curation


def rows(*texts, label="a"):
    return [{"input": t, "output": label} for t in texts]


def test_normalize_and_shingles():
    assert curation.normalize("  Hello, WORLD!! ") == "hello world"
    assert curation.shingles("a b c d") == {"a b c", "b c d"}
    assert curation.shingles("Hi there") == {"hi there"}


def test_exact_duplicates_ignore_case_and_punctuation():
    result = curation.deduplicate(rows("Where is my parcel?", "where is my parcel", "Refund please"), {})
    assert [r["input"] for r in result.rows] == ["Where is my parcel?", "Refund please"]
    assert result.dropped == Counter({"duplicate": 1})


def test_near_duplicates_are_dropped_but_different_texts_kept():
    base = "my order number 4411 arrived broken and I would like a full refund as soon as possible"
    near = "my order number 4411 arrived broken and I would like a full refund as soon as possible thanks"
    other = "the delivery driver left my package in the rain at the wrong house yesterday evening"
    result = curation.deduplicate(rows(base, near, other), {})
    assert [r["input"] for r in result.rows] == [base, other]
    assert result.dropped["near_duplicate"] == 1


def test_held_out_overlap_is_dropped_by_reason():
    test_text = "WINNER!! You have been selected to receive a 900 prize reward, call now to claim"
    result = curation.deduplicate(
        rows("winner you have been selected to receive a 900 prize reward call now to claim it",
             "see you at lunch", "ok"),
        {"test_overlap": [test_text], "seed_overlap": ["ok"]},
    )
    assert [r["input"] for r in result.rows] == ["see you at lunch"]
    assert result.dropped == Counter({"test_overlap": 1, "seed_overlap": 1})


def test_minhash_finds_what_exact_jaccard_finds():
    index = curation.NearDuplicateIndex(threshold=0.7)
    texts = [f"ticket {i} about billing problem with invoice number {i * 7} and late fee" for i in range(200)]
    for text in texts:
        index.add(text)
    probe = texts[57]
    assert index.find(probe) == 57
    assert index.find("completely unrelated sentence about the weather in spring") is None


def test_balance_shares_budget_evenly_and_gives_leftovers_to_big_classes():
    data = rows(*[f"s{i}" for i in range(90)], label="spam") + rows(*[f"h{i}" for i in range(10)], label="ham")
    result = curation.balance(data, ["spam", "ham"], budget=40)
    counts = Counter(r["output"] for r in result.rows)
    assert counts == {"spam": 30, "ham": 10}
    assert result.dropped["class_balance"] == 60
    even = curation.balance(data, ["spam", "ham"], budget=20)
    assert Counter(r["output"] for r in even.rows) == {"spam": 10, "ham": 10}


def test_split_is_stratified_and_keeps_train_rows():
    data = (rows(*[f"a{i}" for i in range(50)], label="a") + rows(*[f"b{i}" for i in range(10)], label="b")
            + rows("c0", label="c"))
    out = curation.split(data, 0.1, seed=3)
    by = Counter((r["output"], r["split"]) for r in out)
    assert by[("a", "validation")] == 5 and by[("b", "validation")] == 1
    assert by[("c", "train")] == 1 and by[("c", "validation")] == 0
    assert sorted(r["input"] for r in out) == sorted(r["input"] for r in data)


@pytest.mark.parametrize("num_perm,bands", [(64, 16), (32, 8)])
def test_minhash_signature_is_deterministic(num_perm, bands):
    a, b = curation.MinHasher(num_perm, bands), curation.MinHasher(num_perm, bands)
    grams = curation.shingles("the same text gives the same signature")
    assert a.signature(grams) == b.signature(grams) and len(a.signature(grams)) == num_perm
