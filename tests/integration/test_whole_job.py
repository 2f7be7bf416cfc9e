"""The teacher half end to end: the real API, a real worker with the real stages, and the real
vLLM teacher, on 60 real SMS messages as the test set (`until: "data"`)."""

import hashlib
import json
import time
import uuid

import pytest

from sqlalchemy import select

import app.queue
from app import jobs
from app.db import session_scope
from app.models import Job
from tests.support.datasets import sms_spam
from tests.support.processes import start_worker
from workers import curation

NUM_EXAMPLES = 30
TASK = "Decide whether an SMS text message is spam or a normal personal message"


def cancel_unfinished_jobs() -> None:
    """Earlier tests leave queued jobs behind; a starting worker would re-enqueue them all
    (its recovery sweep) and this test's job would wait behind them on the slow CPU teacher."""
    with session_scope() as session:
        ids = session.execute(select(Job.id).where(Job.status.in_(["queued", "running"]))).scalars().all()
        for job_id in ids:
            jobs.cancel(session, job_id)


@pytest.fixture
def real_worker(teacher_url, settings_env, tmp_path):
    settings_env(QUEUE_PREFIX=f"data-{uuid.uuid4().hex[:6]}-", TEACHER_URL=teacher_url)
    app.queue._celery = None
    cancel_unfinished_jobs()
    worker = start_worker("default", tmp_path / "worker.log", concurrency=1, module="workers.main")
    yield worker
    worker.stop()
    app.queue._celery = None


def wait_finished(client, job_id, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(2)
    raise AssertionError(f"job still {job['status']} at stage {job['stage']} after {timeout}s")


def test_classification_data_job_on_the_bundled_teacher(client, real_worker):
    test_set = sms_spam(per_class=30)
    response = client.post("/api/jobs", json={
        "task": TASK, "labels": ["spam", "ham"], "test_set": test_set,
        "num_examples": NUM_EXAMPLES, "until": "data"})
    assert response.status_code == 201, response.text
    job = wait_finished(client, response.json()["id"], timeout=2400)
    assert job["status"] == "succeeded", (job, real_worker.output()[-3000:])

    plan = job["plan"]
    assert plan["task_type"] == "classification" and [l["name"] for l in plan["labels"]] == ["spam", "ham"]
    assert all(l["description"] for l in plan["labels"]) and plan["topics"]

    raw = client.get(f"/api/jobs/{job['id']}/dataset")
    assert raw.status_code == 200
    rows = [json.loads(line) for line in raw.text.splitlines()]
    assert len(rows) >= 0.8 * NUM_EXAMPLES
    assert {r["output"] for r in rows} == {"spam", "ham"}, "both classes appear"
    for row in rows:
        assert row["split"] in ("train", "validation") and row["bucket"]
        assert set(row["label_probs"]) == {"spam", "ham"}
        assert sum(row["label_probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert {r["split"] for r in rows} == {"train", "validation"}
    normalized = [curation.normalize(r["input"]) for r in rows]
    assert len(set(normalized)) == len(rows), "no duplicates"
    held_out = curation.NearDuplicateIndex(0.7)
    for row in test_set:
        held_out.add(row["input"])
    assert all(held_out.find(r["input"]) is None for r in rows), "no test overlap"
    assert not {curation.normalize(t["input"]) for t in test_set} & set(normalized)

    artifacts = {a["name"]: a for a in client.get(f"/api/jobs/{job['id']}/artifacts").json()["items"]}
    assert artifacts["dataset.jsonl"]["sha256"] == hashlib.sha256(raw.content).hexdigest()

    report = client.get(f"/api/jobs/{job['id']}/report").json()
    teacher = report["teacher"]
    assert teacher["n"] == 60 and 0 <= teacher["accuracy"] <= 1
    assert set(teacher["per_label"]) == {"spam", "ham"}
    assert report["student"] is None and report["verdict"] is None
    curate = next(s for s in job["stages"] if s["name"] == "curate")["metrics"]
    assert curate["kept"] == len(rows) and isinstance(curate["dropped"], dict)
    weak = [w for w in job["warnings"] if w["code"] == "weak_teacher"]
    assert bool(weak) == (teacher["accuracy"] < 0.6)
    print(f"\nteacher accuracy {teacher['accuracy']}, kept {len(rows)}/{NUM_EXAMPLES}, dropped {curate['dropped']}, "
          f"stage seconds {[(s['name'], s['started_at'], s['finished_at']) for s in job['stages']]}")
