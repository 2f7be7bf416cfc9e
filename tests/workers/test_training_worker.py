"""The real train stage in a real Celery worker: cancel stops it within seconds, and a worker
killed mid-training leaves checkpoints the next worker resumes from."""

import signal
import time
import uuid

import pytest

import app.queue
from app import jobs
from app.artifacts import MODEL_FOLDER
from app.config import get_settings
from app.db import session_scope
from app.queue import enqueue_run
from tests.support.factories import load, make_trainable_job, sms_training_rows
from tests.support.processes import start_worker

TRAIN_WORKER = "tests.support.train_worker"


@pytest.fixture
def private_queues(settings_env):
    # Private queues, so the session's shared workers (recording stages) do not take these jobs.
    settings_env(QUEUE_PREFIX=f"train-{uuid.uuid4().hex[:6]}-")
    app.queue._celery = None
    yield
    app.queue._celery = None


def train_stage(job_id):
    return next(s for s in load(job_id).stages if s.name == "train")


def wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_cancel_stops_training_within_seconds(private_queues, tmp_path):
    job_id = make_trainable_job(sms_training_rows(64), training={"epochs": 3, "batch_size": 4})
    worker = start_worker("gpu", tmp_path / "gpu.log", concurrency=1, module=TRAIN_WORKER)
    try:
        enqueue_run(job_id, "gpu")
        wait(lambda: (train_stage(job_id).done or 0) >= 1, 240, "the first training step")
        assert train_stage(job_id).metrics.get("loss_history"), "the loss is published while training"
        with session_scope() as session:
            jobs.cancel(session, job_id)
        canceled_at = time.monotonic()
        wait(lambda: train_stage(job_id).status == "canceled", 60, "training to stop")
        stopped_after = time.monotonic() - canceled_at
    finally:
        worker.stop()
    stage = train_stage(job_id)
    assert stage.done < stage.total, "it stopped before the end of training"
    assert load(job_id).status == "canceled"
    assert stopped_after < 30, f"training took {stopped_after:.1f} s to notice the cancel"


def test_worker_killed_mid_training_resumes_from_its_checkpoint(private_queues, tmp_path):
    job_id = make_trainable_job(sms_training_rows(24), training={"epochs": 1, "batch_size": 4})
    checkpoints = get_settings().work_dir / str(job_id) / "train" / "checkpoints"
    victim = start_worker("gpu", tmp_path / "victim.log", concurrency=1, module=TRAIN_WORKER)
    try:
        enqueue_run(job_id, "gpu")
        wait(lambda: (checkpoints / "checkpoint-2" / "trainer_state.json").is_file(), 300, "the first checkpoint")
        victim.signal(signal.SIGKILL)
    finally:
        victim.stop()
    assert train_stage(job_id).status == "running" and (train_stage(job_id).done or 0) < 6

    survivor = start_worker("gpu", tmp_path / "survivor.log", concurrency=1, module=TRAIN_WORKER)
    try:
        wait(lambda: load(job_id).status in ("succeeded", "failed"), 420, "the job to finish")
    finally:
        survivor.stop()
    job = load(job_id)
    assert job.status == "succeeded", survivor.output()[-3000:]
    assert job.attempts == 2
    metrics = train_stage(job_id).metrics
    assert metrics["resumed_from"] is not None and int(metrics["resumed_from"].split("-")[1]) >= 2
    assert metrics["steps"] == 6
    assert any(a.name == f"{MODEL_FOLDER}/model.safetensors" for a in job.artifacts)
    assert not checkpoints.exists(), "checkpoints are removed once the model is stored"
