"""A closed-book QA job's data on the real teacher, in process: the questions it makes stand
alone (no passage to answer from, no refusal), each is answered briefly, curate keeps or drops
every row by a named reason, and the teacher is scored on the person's test set by the QA rule.
How good the answers are is bench/quality.py's to measure."""

import pytest

from app.artifacts import DATASET_ARTIFACT, TEACHER_PREDICTIONS_ARTIFACT
from app.specs import QA_REFUSAL
from tests.support.factories import load, make_job, stored_jsonl
from workers.pipeline import Outcome, run_job
from workers.scoring_types import token_f1

TEST_SET = [{"input": "What is the capital of France?", "output": "Paris"},
            {"input": "How many legs does a spider have?", "output": "eight"}]


def test_a_closed_book_job_asks_questions_alone_and_scores_the_teacher_by_the_qa_rule(teacher_settings):
    job_id = make_job(task="Answer short general-knowledge questions about the world", qa_mode="closed_book",
                      num_examples=4, until="data", test_set=TEST_SET)
    assert run_job(job_id) is Outcome.SUCCEEDED
    job = load(job_id)
    metrics = {stage.name: stage.metrics for stage in job.stages}
    task_spec = metrics["plan"]["task_spec"]
    assert task_spec["task_type"] == "qa" and task_spec["qa_mode"] == "closed_book"

    rows = stored_jsonl(job_id, DATASET_ARTIFACT)
    assert rows, metrics["curate"]
    for row in rows:
        assert "\n\nQuestion: " not in row["input"], row  # a question alone, not a passage and its question
        assert row["output"].strip() and row["output"] != QA_REFUSAL, row
        assert "kind=question" in row["bucket"], row
    curate = metrics["curate"]
    assert curate["kept"] + sum(curate["dropped"].values()) == curate["input_rows"], curate
    assert set(curate["dropped"]) <= {"invalid_output", "duplicate", "near_duplicate", "test_overlap",
                                      "seed_overlap", "over_budget"}, curate["dropped"]

    teacher = metrics["teacher_check"]["teacher"]
    assert teacher["rule"] == "qa" and teacher["n"] == len(TEST_SET), teacher
    predictions = stored_jsonl(job_id, TEACHER_PREDICTIONS_ARTIFACT)
    f1s = [token_f1(row["expected"], row["predicted"] or "") for row in predictions]
    assert teacher["f1"] == pytest.approx(sum(f1s) / len(f1s), abs=1e-3), predictions
