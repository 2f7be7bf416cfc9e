"""Editing a stopped job's data set (revisions, history, import) and training another job on it
(`from_job`), through the real API on the real database and store."""

import pytest

from app.artifacts import DATASET_ARTIFACT, TEACHER_PREDICTIONS_ARTIFACT, save_artifact
from app.db import session_scope
from app.storage import get_storage
from tests.support.factories import (
    load,
    make_finished_job,
    make_job,
    make_key,
    make_stopped_data_job,
    sms_training_rows,
    stored_jsonl,
)


@pytest.fixture
def stopped_job():
    return make_stopped_data_job(sms_training_rows(n_train=8, n_validation=2))


def _edit(client, job_id, *edits, base=None):
    body = {"edits": list(edits), **({"base_revision": base} if base is not None else {})}
    return client.post(f"/api/jobs/{job_id}/data/edits", json=body)


def test_edits_make_revisions_that_the_page_and_history_show(client, stopped_job):
    rows = stored_jsonl(stopped_job, DATASET_ARTIFACT)
    page = client.get(f"/api/jobs/{stopped_job}/examples").json()
    assert page["revision"] == 0 and page["editable"] is True and page["not_editable_reason"] is None

    flipped = {"spam": "ham", "ham": "spam"}
    first = _edit(client, stopped_job, *({"op": "update", "index": i, "output": flipped[rows[i]["output"]]}
                                         for i in range(3)), base=0)
    assert first.status_code == 200, first.text
    assert first.json()["revision"] == 1 and first.json()["changes"]["updated"] == 3 and first.json()["rows"] == 10

    second = _edit(client, stopped_job, {"op": "delete", "index": 4},
                   {"op": "add", "input": "WIN a free cruise, reply YES now", "output": "spam"}, base=1)
    assert second.json()["revision"] == 2 and second.json()["changes"] == {
        "updated": 0, "deleted": 1, "restored": 0, "added": 1}

    stale = _edit(client, stopped_job, {"op": "restore", "index": 4}, base=1)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "data_changed"

    stored = stored_jsonl(stopped_job, DATASET_ARTIFACT)
    assert [r["output"] for r in stored[:3]] == [flipped[r["output"]] for r in rows[:3]]
    assert stored[0]["edited"] is True and stored[0]["teacher_output"] == rows[0]["output"]
    assert stored[0]["label_probs"][stored[0]["output"]] == 1.0, "a person's label is certain"
    assert stored[4]["deleted"] is True and stored[10]["source"] == "person" and len(stored) == 11

    page = client.get(f"/api/jobs/{stopped_job}/examples", params={"limit": 500}).json()
    assert page["revision"] == 2 and page["total"] == 11 and page["items"][4]["deleted"] is True
    assert sum(page["split_counts"].values()) == 10, "deleted rows are not counted"
    deleted = client.get(f"/api/jobs/{stopped_job}/examples", params={"deleted": "true"}).json()
    assert [r["index"] for r in deleted["items"]] == [4]

    history = client.get(f"/api/jobs/{stopped_job}/data/revisions").json()
    assert history["current"] == 2 and [r["number"] for r in history["items"]] == [2, 1]
    assert history["items"][1]["edits"][0] == {"op": "update", "index": 0, "before": rows[0]["output"],
                                               "after": flipped[rows[0]["output"]]}
    assert history["items"][0]["actor"].startswith("admin")

    restored = _edit(client, stopped_job, {"op": "restore", "index": 4})
    assert restored.json()["revision"] == 3 and "deleted" not in stored_jsonl(stopped_job, DATASET_ARTIFACT)[4]


def test_an_invalid_edit_is_a_clear_422_and_changes_nothing(client, stopped_job):
    before = stored_jsonl(stopped_job, DATASET_ARTIFACT)
    bad = _edit(client, stopped_job, {"op": "update", "index": 0, "output": "spam"},
                {"op": "update", "index": 1, "output": "maybe"})
    assert bad.status_code == 422 and "edits[1]" in bad.json()["error"]["message"]
    assert "not one of the labels" in bad.json()["error"]["message"]
    missing = _edit(client, stopped_job, {"op": "delete", "index": 99})
    assert missing.status_code == 422 and "no row 99" in missing.json()["error"]["message"]
    unknown = client.post(f"/api/jobs/{stopped_job}/data/edits", json={"edits": [{"op": "rename", "index": 0}]})
    assert unknown.status_code == 422
    assert stored_jsonl(stopped_job, DATASET_ARTIFACT) == before
    assert client.get(f"/api/jobs/{stopped_job}/data/revisions").json() == {"current": 0, "items": []}


def test_import_applies_an_edited_export_as_one_revision(client, stopped_job):
    rows = stored_jsonl(stopped_job, DATASET_ARTIFACT)
    export = [{"index": i, "input": r["input"], "output": r["output"], "split": r["split"]} for i, r in enumerate(rows)]
    export[2]["output"] = "ham" if export[2]["output"] == "spam" else "spam"
    del export[5]
    export.append({"input": "Are we still on for lunch tomorrow?", "output": "ham"})
    dry = client.post(f"/api/jobs/{stopped_job}/data/import", json={"rows": export, "dry_run": True}).json()
    assert dry["dry_run"] is True and dry["revision"] == 0
    assert dry["changes"] == {"updated": 1, "deleted": 1, "restored": 0, "added": 1}
    assert stored_jsonl(stopped_job, DATASET_ARTIFACT) == rows, "a dry run changes nothing"
    done = client.post(f"/api/jobs/{stopped_job}/data/import", json={"rows": export}).json()
    assert done["revision"] == 1 and done["rows"] == 10
    again = client.post(f"/api/jobs/{stopped_job}/data/import", json={"rows": export}).json()
    assert again["revision"] == 1 and again["edits"] == [], "importing the same file twice changes nothing"

    export[0]["input"] = "some other message"
    wrong = client.post(f"/api/jobs/{stopped_job}/data/import", json={"rows": export})
    assert wrong.status_code == 422 and "input differs" in wrong.json()["error"]["message"]


def test_data_cannot_change_while_active_or_once_trained_on(client, stopped_job):
    queued = make_job(until="data")
    with session_scope() as session:
        save_artifact(session, get_storage(), queued, DATASET_ARTIFACT, b'{"input": "x", "output": "spam"}\n')
    busy = _edit(client, queued, {"op": "delete", "index": 0})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "data_not_editable"
    assert "queued" in busy.json()["error"]["message"]

    trained = make_finished_job(metrics={"plan": {"task_spec": {"task": "t", "task_type": "qa"}}})
    with session_scope() as session:
        save_artifact(session, get_storage(), trained, DATASET_ARTIFACT,
                      b'{"input": "x", "output": "y", "split": "train"}\n')
    frozen = _edit(client, trained, {"op": "delete", "index": 0})
    assert frozen.status_code == 409 and "train another student" in frozen.json()["error"]["message"]
    assert client.get(f"/api/jobs/{trained}/examples").json()["editable"] is False

    stranger = make_key("someone-else")
    assert client.post(f"/api/jobs/{stopped_job}/data/edits", headers=stranger,
                       json={"edits": [{"op": "delete", "index": 0}]}).status_code == 404


def test_from_job_copies_the_edited_data_and_runs_only_the_model_stages(client, stopped_job):
    assert _edit(client, stopped_job, {"op": "delete", "index": 0}).json()["revision"] == 1
    with session_scope() as session:
        save_artifact(session, get_storage(), stopped_job, TEACHER_PREDICTIONS_ARTIFACT, b'{"input": "x"}\n')
    body = {"from_job": str(stopped_job), "student": "SmolLM2-135M-Instruct", "training": {"epochs": 2}}
    made = client.post("/api/jobs", json=body)
    assert made.status_code == 201, made.text
    job = made.json()
    assert job["spec"]["from_job"] == str(stopped_job) and job["spec"]["data_revision"] == 1
    assert job["spec"]["training"]["epochs"] == 2 and job["task"] == load(stopped_job).task
    stages = {s["name"]: s for s in job["stages"]}
    assert all(stages[n]["status"] == "succeeded" and stages[n]["metrics"]["copied_from"] == str(stopped_job)
               for n in ("plan", "generate", "label", "curate", "teacher_check"))
    assert [stages[n]["status"] for n in ("train", "evaluate", "package")] == ["pending"] * 3
    assert stored_jsonl(job["id"], DATASET_ARTIFACT) == stored_jsonl(stopped_job, DATASET_ARTIFACT)
    assert stored_jsonl(job["id"], TEACHER_PREDICTIONS_ARTIFACT) == [{"input": "x"}]
    # The copy is the new job's own: editing the source afterwards does not change it.
    assert _edit(client, stopped_job, {"op": "restore", "index": 0}).status_code == 200
    assert stored_jsonl(job["id"], DATASET_ARTIFACT)[0]["deleted"] is True
    client.post(f"/api/jobs/{job['id']}/cancel")


def test_from_job_bad_bodies_are_clear(client, stopped_job):
    fixed = client.post("/api/jobs", json={"from_job": str(stopped_job), "num_examples": 50})
    assert fixed.status_code == 422 and "num_examples cannot be given with `from_job`" in fixed.text
    assert client.post("/api/jobs", json={"from_job": "not-a-job"}).status_code == 404
    no_data = client.post("/api/jobs", json={"from_job": str(make_job())})
    assert no_data.status_code == 409 and no_data.json()["error"]["code"] == "no_data"
    no_task = client.post("/api/jobs", json={"labels": ["a", "b"]})
    assert no_task.status_code == 422 and "Field required" in no_task.text
