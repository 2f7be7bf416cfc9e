"""A whole job end to end: the real API, real default and gpu workers with the real stages, the
real vLLM teacher and real TRL training, on 60 real SMS messages as the test set.

The job first stops after its data (`until: "data"`), then is resumed onto the model stages:
one data run serves both halves, and the resume path is exercised on the way."""

import hashlib
import json
import tarfile
import time
import uuid

import httpx
import pytest

from sqlalchemy import select

import app.queue
from app import jobs
from app.config import get_settings
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


@pytest.fixture(scope="module")
def real_worker(teacher_url, tmp_path_factory):
    """Real default and gpu workers on private queues; yields the default one (logs of both)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("QUEUE_PREFIX", f"whole-{uuid.uuid4().hex[:6]}-")
    patch.setenv("TEACHER_URL", teacher_url)
    get_settings.cache_clear()
    app.queue._celery = None
    cancel_unfinished_jobs()
    logs = tmp_path_factory.mktemp("workers")
    default = start_worker("default", logs / "default.log", concurrency=1, module="workers.main")
    gpu = start_worker("gpu", logs / "gpu.log", concurrency=1, module="workers.main")
    yield _Workers(default, gpu)
    for worker in (default, gpu):
        worker.stop()
    patch.undo()
    get_settings.cache_clear()
    app.queue._celery = None


class _Workers:
    def __init__(self, default, gpu):
        self.default, self.gpu = default, gpu

    def output(self) -> str:
        return self.default.output()[-3000:] + "\n--- gpu ---\n" + self.gpu.output()[-3000:]


@pytest.fixture(scope="module")
def data_job():
    """The id of the data job, once the first test has run it (shared with the model test)."""
    return {}


def wait_finished(client, job_id, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(2)
    raise AssertionError(f"job still {job['status']} at stage {job['stage']} after {timeout}s")


TEST_SET = sms_spam(per_class=30)


def test_classification_data_job_on_the_bundled_teacher(client, real_worker, data_job):
    test_set = TEST_SET
    response = client.post("/api/jobs", json={
        "task": TASK, "labels": ["spam", "ham"], "test_set": test_set,
        "num_examples": NUM_EXAMPLES, "until": "data"})
    assert response.status_code == 201, response.text
    job = wait_finished(client, response.json()["id"], timeout=2400)
    assert job["status"] == "succeeded", (job, real_worker.output())
    data_job["id"] = job["id"]

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


MODEL_ARTIFACTS = {"model/config.json", "model/model.safetensors", "model/tokenizer.json", "student.gguf",
                   "Modelfile", "README.md", "report.json", "reports/predictions.jsonl", "dataset.jsonl"}


def test_resumed_job_trains_evaluates_packages_and_serves_the_student(client, real_worker, data_job):
    if "id" not in data_job:
        pytest.skip("the data job did not finish")
    job_id = data_job["id"]
    assert client.post(f"/api/jobs/{job_id}/resume").status_code == 200
    job = wait_finished(client, job_id, timeout=2400)
    assert job["status"] == "succeeded", (job, real_worker.output())

    stages = {s["name"]: s for s in job["stages"]}
    train = stages["train"]["metrics"]
    assert train["steps"] > 0 and len(train["loss_history"]) == train["steps"] and train["soft_labels"] is True

    report = client.get(f"/api/jobs/{job_id}/report").json()
    for name in ("teacher", "base_student", "student"):
        part = report[name]
        assert part["n"] == len(TEST_SET) and 0 <= part["accuracy"] <= 1 and part["macro_f1"] is not None
        assert set(part["per_label"]) == {"spam", "ham"} and part["confusion"]
        assert part["latency_ms"]["p50"] > 0 and part["latency_ms"]["p95"] >= part["latency_ms"]["p50"]
        assert part["size_bytes"] > 0
    assert report["student"]["accuracy"] > report["base_student"]["accuracy"], "the tuned student beats the untuned one"
    gap = report["teacher"]["accuracy"] - report["student"]["accuracy"]
    assert report["verdict"] == ("deploy" if gap <= 0.05 else "retune")

    artifacts = {a["name"]: a for a in client.get(f"/api/jobs/{job_id}/artifacts").json()["items"]}
    assert MODEL_ARTIFACTS <= set(artifacts)
    for name in artifacts:
        digest = hashlib.sha256()
        with client.stream("GET", f"/api/jobs/{job_id}/artifacts/{name}") as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                digest.update(chunk)
        assert digest.hexdigest() == artifacts[name]["sha256"], name

    with client.stream("GET", f"/api/jobs/{job_id}/bundle") as response:
        assert response.status_code == 200
        members = {m.name.split("/", 1)[1]: m.size for m in tarfile.open(fileobj=_Reader(response), mode="r|")}
    assert {n: a["size"] for n, a in artifacts.items()}.items() <= members.items() and "SHA256SUMS" in members

    from transformers import AutoModelForCausalLM

    from app.artifacts import MODEL_FOLDER, folder_path
    from app.storage import get_storage

    model = AutoModelForCausalLM.from_pretrained(folder_path(get_storage(), uuid.UUID(job_id), MODEL_FOLDER))
    assert model.num_parameters() > 0

    answers = []
    for row in TEST_SET[:20]:
        response = client.post("/v1/chat/completions", json={
            "model": job_id, "messages": [{"role": "user", "content": row["input"]}], "max_tokens": 8})
        assert response.status_code == 200, response.text
        answers.append(response.json()["choices"][0]["message"]["content"].strip())
    labelled = sum(answer in ("spam", "ham") for answer in answers)
    assert labelled >= 18, answers
    data_job["model_ok"] = True
    print(f"\nteacher {report['teacher']['accuracy']}, untuned {report['base_student']['accuracy']}, "
          f"tuned {report['student']['accuracy']}, verdict {report['verdict']}, served labels {labelled}/20, "
          f"stages {[(s['name'], s['started_at'], s['finished_at']) for s in job['stages']]}")


class _Reader:
    """A file-like view of a streamed response body, for tarfile's stream mode."""

    def __init__(self, response):
        self.chunks, self.buffer = response.iter_bytes(), b""

    def read(self, size=-1):
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.buffer += chunk
        size = len(self.buffer) if size < 0 else size
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def test_packaged_student_folder_is_served_by_vllm(client, real_worker, data_job, tmp_path):
    """The `model/` folder a person downloads runs in vLLM as it is (the real vLLM server)."""
    if not data_job.get("model_ok"):
        pytest.skip("the whole job did not finish")
    from app.artifacts import MODEL_FOLDER, folder_path
    from app.storage import get_storage
    from tests.support.processes import Process, free_port
    from workers.teacher_server import server_command, server_env

    folder = folder_path(get_storage(), uuid.UUID(data_job["id"]), MODEL_FOLDER)
    port = free_port()
    server = Process(server_command(folder, "student", port), tmp_path / "vllm-student.log", env=server_env())
    base = f"http://127.0.0.1:{port}/v1"
    try:
        server.wait_for(lambda: _answers(f"{base}/models"), timeout=900, what="vLLM serving the student")
        labelled = 0
        for row in TEST_SET[:10]:
            reply = httpx.post(f"{base}/chat/completions", timeout=60, json={
                "model": "student", "messages": [{"role": "user", "content": row["input"]}],
                "max_tokens": 8, "temperature": 0})
            assert reply.status_code == 200, reply.text
            labelled += reply.json()["choices"][0]["message"]["content"].strip() in ("spam", "ham")
    finally:
        server.stop(timeout=30)
    assert labelled >= 9, server.output()[-2000:]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
