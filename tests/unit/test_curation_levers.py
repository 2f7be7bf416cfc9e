"""The curation levers' pure rules: vote phrasings, the majority of votes, trust (agreement and
intent), label shares, top-up sizing, the options' defaults and docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.specs import CurationOptions, JobSpec, Label, TaskSpec, TaskType, curation_options_table, votes_for
from workers import curation, prompts
from workers.curation import MAX_CALLS_FACTOR, top_up_calls
from workers.labelling import majority

SPAM = TaskSpec(task="spam or ham", task_type=TaskType.CLASSIFICATION,
                labels=[Label(name="spam", description="ads"), Label(name="ham", description="personal")])
THREE = SPAM.model_copy(update={"labels": [*SPAM.labels, Label(name="scam", description="fraud")]})


def test_each_vote_lists_the_labels_in_another_order_and_words() -> None:
    assert prompts.vote_labels(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert prompts.vote_labels(["a", "b", "c"], 1) == ["c", "b", "a"]
    assert prompts.vote_labels(["a", "b", "c"], 2) == ["b", "c", "a"]
    systems = [prompts.label_messages(THREE, "win a prize", phrasing)[0]["content"] for phrasing in range(3)]
    assert len(set(systems)) == 3
    # Evaluation and the teacher check ask phrasing 0, the same question as before votes existed.
    assert systems[0].endswith("- scam: fraud\nAnswer with the label only.")
    assert systems[1].index("- scam") < systems[1].index("- spam")


def test_the_majority_of_votes_with_agreement_and_averaged_soft_labels() -> None:
    votes = [{"output": "spam", "label_probs": {"spam": 0.9, "ham": 0.1}},
             {"output": "ham", "label_probs": {"spam": 0.4, "ham": 0.6}},
             {"output": "spam", "label_probs": {"spam": 0.8, "ham": 0.2}}]
    result = majority(votes, 3, SPAM)
    assert result["output"] == "spam" and result["agreement"] == pytest.approx(0.6667, abs=1e-4)
    assert result["label_probs"] == {"spam": pytest.approx(0.7), "ham": pytest.approx(0.3)}
    # A malformed vote counts against agreement.
    assert majority(votes[:2], 3, SPAM)["agreement"] == pytest.approx(0.3333, abs=1e-4)
    # Free answers agree on their normalised form: the same object in another key order or case.
    extraction = SPAM.model_copy(update={"task_type": TaskType.EXTRACTION, "labels": []})
    objects = [{"output": '{"a": "X", "b": 1}'}, {"output": '{"b": 1, "a": "X"}'}, {"output": '{"a": "Y"}'}]
    assert majority(objects, 3, extraction) == {**objects[0], "agreement": pytest.approx(0.6667, abs=1e-4),
                                                "votes": 3}


def test_rows_the_teacher_is_unsure_of_are_distrusted_by_reason() -> None:
    def reason(**row: object) -> str | None:
        return curation.distrust(row, min_agreement=0.6, intent_check=True, intent_confidence=0.8)

    assert reason(output="spam", agreement=1 / 3) == "low_agreement"
    assert reason(output="spam", agreement=2 / 3, intended_label="spam") is None
    # Written for ham, labelled spam without conviction: the data's most common mistake.
    assert reason(output="spam", intended_label="ham", label_probs={"spam": 0.55, "ham": 0.45}) == "intent_mismatch"
    # A confident contradiction is the teacher correcting the writer: kept.
    assert reason(output="spam", intended_label="ham", label_probs={"spam": 0.95, "ham": 0.05}) is None
    assert curation.distrust({"output": "spam", "intended_label": "ham", "label_probs": {"spam": 0.5}},
                             0.6, False, 0.8) is None


def test_label_shares_and_short_labels() -> None:
    rows = [{"output": "spam"}] * 58 + [{"output": "ham"}] * 2
    assert curation.label_shares(rows, ["spam", "ham"], 60) == {"spam": pytest.approx(1.9333), "ham": 0.0667}
    assert curation.short_labels(rows, ["spam", "ham"], 60) == {"ham": 28}
    assert curation.short_labels([{"output": "spam"}] * 30 + [{"output": "ham"}] * 30, ["spam", "ham"], 60) == {}


def test_top_up_asks_more_of_labels_the_teacher_rarely_confirms() -> None:
    assert top_up_calls(10, 1.0, 10) == 2  # every input kept: 10 rows are 2 calls of 5
    assert top_up_calls(10, 0.25, 10) == 8
    assert top_up_calls(10, None, 10) == 4  # no yield yet: assumed 0.5
    assert top_up_calls(100, 0.0, 3) == MAX_CALLS_FACTOR * 3  # bounded by the first round


def test_votes_default_by_task_type_and_options_are_checked() -> None:
    options = CurationOptions()
    assert votes_for(options, TaskType.CLASSIFICATION) == 3 and votes_for(options, TaskType.EXTRACTION) == 1
    assert votes_for(CurationOptions(votes=5), TaskType.QA) == 5
    with pytest.raises(ValidationError):
        CurationOptions(votes=0)
    with pytest.raises(ValidationError):
        CurationOptions(min_label_shares=0.5)  # type: ignore[call-arg]  # a typo is an error
    # Specs stored before curation options existed load with the defaults.
    assert JobSpec(task="t", teacher="x", student="y").curation == options


def test_docs_list_every_curation_option() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "curation.md").read_text()
    assert curation_options_table() in docs, "regenerate the table in docs/curation.md from app.specs"


class _Voter:
    """A teacher stand-in that always gives one label (for how votes are spread over a committee)."""

    def __init__(self, name: str, label: str) -> None:
        self.name, self.label, self.asked = name, label, 0
        self.committee: list[_Voter] = []

    async def chat(self, messages: object, **kwargs: object) -> object:
        from workers.teacher import Answer

        self.asked += 1
        return Answer(text=self.label, top_logprobs=[{self.label: 0.0}])


def test_votes_take_turns_over_a_committee_and_each_teachers_agreement_is_recorded() -> None:
    import asyncio

    from workers.labelling import answer_by_vote
    from workers.stages.label import teacher_agreement

    main, other = _Voter("main", "spam"), _Voter("other", "ham")
    main.committee = [other]
    result = asyncio.run(answer_by_vote(main, SPAM, "win a prize", 3))  # type: ignore[arg-type]
    assert (main.asked, other.asked) == (2, 1)
    assert result["output"] == "spam" and round(result["agreement"], 2) == 0.67
    assert teacher_agreement([result, result]) == {"main": 1.0, "other": 0.0}
