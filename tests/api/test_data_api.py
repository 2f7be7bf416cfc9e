"""Browsing a job's curated examples and its evaluation predictions, page by page."""

import json

from app.artifacts import PREDICTIONS_ARTIFACT, save_artifact
from app.db import session_scope
from app.storage import get_storage
from tests.support.factories import make_job, make_trainable_job, sms_training_rows


def test_examples_page_filter_counts_and_soft_labels(client):
    rows = sms_training_rows(n_train=24, n_validation=6)
    job_id = make_trainable_job(rows)
    page = client.get(f"/api/jobs/{job_id}/examples", params={"limit": 10, "offset": 5}).json()
    assert page["total"] == 30 and len(page["items"]) == 10
    assert [r["index"] for r in page["items"]] == list(range(5, 15))
    assert page["items"][0]["input"] == rows[5]["input"] and page["items"][0]["label_probs"] == rows[5]["label_probs"]
    expected_counts = {label: sum(r["output"] == label for r in rows) for label in ("spam", "ham")}
    assert page["label_counts"] == expected_counts
    assert page["split_counts"] == {"train": 24, "validation": 6}

    spam = client.get(f"/api/jobs/{job_id}/examples", params={"label": "spam", "limit": 500}).json()
    assert spam["total"] == expected_counts["spam"] and {r["output"] for r in spam["items"]} == {"spam"}
    validation = client.get(f"/api/jobs/{job_id}/examples", params={"split": "validation"}).json()
    assert validation["total"] == 6 and {r["split"] for r in validation["items"]} == {"validation"}
    assert page["label_counts"] == spam["label_counts"], "the counts describe the whole set, not the filter"


def test_free_form_outputs_are_not_counted_as_labels(client):
    rows = [{"input": f"question {i}", "output": f"answer {i}", "split": "train", "bucket": "b"} for i in range(5)]
    job_id = make_trainable_job(rows, task_spec={"task": "answer questions", "task_type": "qa", "labels": []})
    page = client.get(f"/api/jobs/{job_id}/examples").json()
    assert page["total"] == 5 and page["label_counts"] == {} and "label_probs" not in page["items"][0]


def test_examples_before_curation_and_bad_paging_are_clear_4xx(client):
    job_id = make_job()
    missing = client.get(f"/api/jobs/{job_id}/examples")
    assert missing.status_code == 404 and "curate stage" in missing.json()["error"]["message"]
    assert client.get(f"/api/jobs/{job_id}/examples", params={"limit": 0}).status_code == 422
    assert client.get(f"/api/jobs/{job_id}/examples", params={"split": "test"}).status_code == 422
    assert client.get("/api/jobs/not-a-job/examples").status_code == 404


def test_predictions_filter_the_rows_a_model_got_wrong(client):
    job_id = make_job()
    rows = [{"input": f"message {i}", "expected": "spam" if i % 2 else "ham", "teacher": "spam" if i % 2 else "ham",
             "base_student": "spam", "student": "ham" if i < 3 else ("spam" if i % 2 else "ham"), "student_text": "x"}
            for i in range(8)]
    with session_scope() as session:
        save_artifact(session, get_storage(), job_id, PREDICTIONS_ARTIFACT,
                      "".join(json.dumps(r) + "\n" for r in rows).encode())
    everything = client.get(f"/api/jobs/{job_id}/predictions").json()
    assert everything["total"] == 8
    wrong = client.get(f"/api/jobs/{job_id}/predictions", params={"wrong": "student"}).json()
    assert [r["index"] for r in wrong["items"]] == [1] and wrong["total"] == 1
    base_wrong = client.get(f"/api/jobs/{job_id}/predictions", params={"wrong": "base_student", "limit": 2}).json()
    assert base_wrong["total"] == 4 and len(base_wrong["items"]) == 2
    assert client.get(f"/api/jobs/{job_id}/predictions", params={"wrong": "nobody"}).status_code == 422
    assert client.get(f"/api/jobs/{make_job()}/predictions").status_code == 404


def test_wrong_predictions_follow_the_scoring_rule_that_evaluate_recorded(client):
    # A call with its keys in another order is the expected call, so the text differs but it is right.
    job_id = make_job()
    rows = [{"input": "Book for two", "expected": '{"arguments": {"people": 2}, "name": "book"}',
             "teacher": '{"name": "book", "arguments": {"people": 2}}', "base_student": "Sure!", "student": None,
             "student_text": "", "correct": {"teacher": True, "base_student": False, "student": False}}]
    with session_scope() as session:
        save_artifact(session, get_storage(), job_id, PREDICTIONS_ARTIFACT, (json.dumps(rows[0]) + "\n").encode())
    assert client.get(f"/api/jobs/{job_id}/predictions", params={"wrong": "teacher"}).json()["total"] == 0
    assert client.get(f"/api/jobs/{job_id}/predictions", params={"wrong": "base_student"}).json()["total"] == 1
