"""The installation as separate machines that share no disk (the session's live service: the API,
a default worker and a gpu worker each with its own empty WORK_DIR and ARTIFACT_DIR, artifacts in a
real S3-compatible server in its own process, the real vLLM teacher, real TRL training).

A gpu worker killed after a training checkpoint is replaced by a gpu worker on a new, empty disk,
which resumes from the checkpoint kept in the store. The job then succeeds, the API (which never
saw the worker's disk) serves the student and every artifact, whole and by Range, each matching the
sha256 its writer computed while uploading. Nothing lands in any process's ARTIFACT_DIR."""

from __future__ import annotations

import hashlib
import signal
import time
import uuid

from app.artifacts import artifact_key
from workers.checkpoint_store import StoredCheckpoints

LABELS = ["weather", "sports"]
BODY = {
    "task": "Decide whether a short message is about the weather or about sports",
    "labels": LABELS, "num_examples": 8,
    # LoRA keeps checkpoints small (adapters and their optimiser state); enough steps that training
    # outlives its first stored checkpoint on the CPU.
    "training": {"epochs": 12, "batch_size": 2, "method": "lora"},
    # This test is about machines, not data: eight examples always train, however they balance.
    "curation": {"min_label_share": 0},
    # One GGUF beside the LoRA adapter's: the quantized files are the whole-job test's business.
    "exports": ["f16"],
    "test_set": [
        {"input": "Heavy rain and strong winds are expected tonight", "output": "weather"},
        {"input": "It will be sunny and warm all weekend", "output": "weather"},
        {"input": "The home team won the final 3-1", "output": "sports"},
        {"input": "She ran the marathon in under three hours", "output": "sports"},
    ],
}
JOB_SECONDS = 1500


def _stored_checkpoints(storage, job_id: uuid.UUID) -> list[str]:
    """The complete checkpoints of the job in the store, by name."""
    return StoredCheckpoints(storage, job_id).complete()


def test_a_gpu_worker_on_a_new_disk_resumes_a_killed_run_from_the_store(client, live_service):
    store = live_service.storage()
    live_service.workers["gpu"].stop()  # replaced by one that checkpoints every save_steps
    live_service.start_worker("gpu", name="gpu-checkpointing", env={"TRAIN_CHECKPOINT_SECONDS": "0"})
    created = client.post("/api/jobs", json=BODY)
    assert created.status_code == 201, created.text
    job_id = uuid.UUID(created.json()["id"])

    seen: list[str] = []
    deadline = time.monotonic() + JOB_SECONDS
    while not seen:
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] in ("queued", "running"), (job, live_service.output())
        assert time.monotonic() < deadline, "no checkpoint reached the store"
        if job["stage"] == "train":
            seen = _stored_checkpoints(store, job_id)
        time.sleep(0.5)
    first = live_service.workers["gpu"]
    first.signal(signal.SIGKILL)  # the machine is gone, its disk with it
    first.stop()
    assert client.get(f"/api/jobs/{job_id}").json()["stage"] == "train", "training ended before the kill"

    live_service.start_worker("gpu", name="gpu-replacement")
    while (job := client.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, (job, live_service.output())
        time.sleep(2)
    assert job["status"] == "succeeded", (job, live_service.output())
    train = next(s for s in job["stages"] if s["name"] == "train")["metrics"]
    resumed = train["resumed_from"]
    assert resumed is not None and int(resumed.rsplit("-", 1)[1]) >= int(seen[0].rsplit("-", 1)[1]), train
    assert not (live_service.disk("gpu-replacement") / "work" / str(job_id) / "train" / "checkpoints").exists()
    assert _stored_checkpoints(store, job_id) == [], "the finished run left its checkpoints in the store"

    artifacts = client.get(f"/api/jobs/{job_id}/artifacts").json()["items"]
    assert {"model/config.json", "model/model.safetensors", "student.gguf", "adapter.gguf"} <= {
        a["name"] for a in artifacts}
    for artifact in artifacts:
        digest = hashlib.sha256()
        with client.stream("GET", f"/api/jobs/{job_id}/artifacts/{artifact['name']}") as response:
            assert response.status_code == 200, artifact
            for chunk in response.iter_bytes():
                digest.update(chunk)
        assert digest.hexdigest() == artifact["sha256"], artifact["name"]
    weights = next(a for a in artifacts if a["name"] == "model/model.safetensors")
    tail = client.get(f"/api/jobs/{job_id}/artifacts/model/model.safetensors",
                      headers={"Range": f"bytes={weights['size'] - 100}-"})
    assert tail.status_code == 206 and len(tail.content) == 100
    assert tail.content == store.local_path(artifact_key(job_id, "model/model.safetensors")).read_bytes()[-100:]

    answer = client.post("/v1/chat/completions", json={
        "model": str(job_id), "messages": [{"role": "user", "content": "Snow is falling in the mountains"}],
        "max_tokens": 8})
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"].strip() in LABELS

    for name in ("api", "default", "gpu", "gpu-checkpointing", "gpu-replacement"):
        local = live_service.disk(name) / "artifacts"
        assert not local.exists() or not any(p.is_file() for p in local.rglob("*")), f"{name} wrote artifacts to disk"

