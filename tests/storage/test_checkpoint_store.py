"""Training checkpoints through the object store: a real TRL run of the bundled student mirrors
its checkpoint to a real S3 server (moto's, in its own process), and a run on "another machine"
(an empty scratch folder and cache) resumes from it."""

from __future__ import annotations

import uuid
from typing import Any

from app.s3_storage import S3Storage
from app.storage import LocalStorage
from tests.storage.test_s3_storage import BUCKET, s3_env  # noqa: F401 - the module's S3 server fixture
from tests.support.factories import sms_training_rows
from workers.checkpoint_store import COMPLETE, StoredCheckpoints, mirrors
from workers.training.run import last_complete_checkpoint, train_student


class Hooks:
    """A job's hooks for a training run, with checkpoints mirrored to the store."""

    def __init__(self, stored: StoredCheckpoints) -> None:
        self.checkpoint_saved = stored.save

    def progress(self, done: int, total: int) -> None:
        pass

    def check_canceled(self) -> None:
        pass

    def live_metrics(self, metrics: dict[str, Any]) -> None:
        pass


def test_a_run_resumes_on_another_machine_from_the_checkpoint_in_the_store(s3_env, tmp_path):  # noqa: F811
    job = uuid.uuid4()
    first = StoredCheckpoints(S3Storage.from_url(f"s3://{BUCKET}/ck", tmp_path / "cache-1"), job)
    options = {"epochs": 1, "batch_size": 4, "method": "lora"}  # small checkpoints: adapters and their optimiser
    rows = sms_training_rows(12)  # 3 steps: checkpoints after steps 1 and 2 (none at the last)
    train_student(student="smollm2-135m-instruct", rows=rows, labels=["spam", "ham"], options=options,
                  checkpoints=tmp_path / "w1" / "ck", out=tmp_path / "w1" / "out", job=Hooks(first))
    assert not (tmp_path / "cache-1").exists(), "saving downloaded stored checkpoints (a listing is enough)"
    assert first.complete() == ["checkpoint-2"], "the older checkpoint left the store"
    assert f"{job}/checkpoints/checkpoint-2/trainer_state.json" in first.storage.names(f"{job}/checkpoints")

    # Another machine: its own cache and an empty scratch folder.
    second = StoredCheckpoints(S3Storage.from_url(f"s3://{BUCKET}/ck", tmp_path / "cache-2"), job)
    restored = second.restore(tmp_path / "w2" / "ck")
    assert restored is not None and restored.name == "checkpoint-2" and not (restored / COMPLETE).exists()
    assert last_complete_checkpoint(tmp_path / "w2" / "ck") == str(restored)
    assert second.restore(tmp_path / "w2" / "ck") is None, "a folder with a checkpoint of its own keeps it"
    result = train_student(student="smollm2-135m-instruct", rows=rows, labels=["spam", "ham"], options=options,
                           checkpoints=tmp_path / "w2" / "ck", out=tmp_path / "w2" / "out", job=Hooks(second))
    assert result.metrics["resumed_from"] == restored.name
    assert [entry["step"] for entry in result.metrics["loss_history"]] == [3], "only the step after it ran again"


def test_a_half_stored_checkpoint_is_not_restored(s3_env, tmp_path):  # noqa: F811
    import io

    job = uuid.uuid4()
    storage = S3Storage.from_url(f"s3://{BUCKET}/ck", tmp_path / "cache")
    storage.put_stream(f"{job}/checkpoints/checkpoint-5/trainer_state.json", io.BytesIO(b"{}"))  # no COMPLETE
    assert StoredCheckpoints(storage, job).restore(tmp_path / "ck") is None
    assert mirrors(storage) and not mirrors(LocalStorage(tmp_path))
