"""Checkpoints go to the store on a background thread: training never waits for an upload, a
checkpoint written while another goes up replaces any waiting one, the trainer may delete its
own copy at once, and closing stops an upload half way without marking it complete."""

import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from app.storage import LocalStorage, StoredObject
from workers.checkpoint_store import CheckpointMirror, StoredCheckpoints


class GatedStorage(LocalStorage):
    """Local storage whose writes wait until `gate` is open."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.writes = 0

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        self.writes += 1
        assert self.gate.wait(10)
        return super().put_stream(key, stream)


def checkpoint(folder: Path, step: int) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(f'{{"step": {step}}}')
    (path / "optimizer.pt").write_bytes(bytes(1000))
    return path


def wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_uploads_run_beside_training_newest_first_and_stop_on_close(tmp_path):
    storage = GatedStorage(tmp_path / "store")
    stored = StoredCheckpoints(storage, uuid.uuid4())
    mirror = CheckpointMirror(stored, tmp_path / "work" / "mirroring")
    trainer = tmp_path / "work" / "checkpoints"

    first = checkpoint(trainer, 1)
    started = time.monotonic()
    mirror.offer(first)
    wait_for(lambda: storage.writes == 1)  # the first upload has begun and is held
    for step in (2, 3):
        mirror.offer(checkpoint(trainer, step))
    assert time.monotonic() - started < 5, "offering waited for the store"
    for step in (1, 2, 3):
        shutil.rmtree(trainer / f"checkpoint-{step}")  # the trainer rotates its checkpoints away
    storage.gate.set()
    wait_for(lambda: mirror.uploaded == ["checkpoint-1", "checkpoint-3"])
    assert stored.complete() == ["checkpoint-3"], "checkpoint-2 was replaced; checkpoint-1 dropped after 3"
    restored = stored.restore(tmp_path / "other-machine")
    assert restored is not None and (restored / "trainer_state.json").read_text() == '{"step": 3}'

    storage.gate.clear()
    mirror.offer(checkpoint(trainer, 4))
    wait_for(lambda: storage.writes > 6)  # the upload of checkpoint-4 is under way
    threading.Timer(0.2, storage.gate.set).start()
    mirror.close()
    assert stored.complete() == ["checkpoint-3"], "a checkpoint cut short by close must not count"
    assert not (tmp_path / "work" / "mirroring").exists()


def test_a_failed_upload_leaves_training_going_and_the_next_one_tries_again(tmp_path):
    class Flaky(LocalStorage):
        fail = True

        def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
            if self.fail:
                self.fail = False
                raise ConnectionError("the store is restarting")
            return super().put_stream(key, stream)

    stored = StoredCheckpoints(Flaky(tmp_path / "store"), uuid.uuid4())
    mirror = CheckpointMirror(stored, tmp_path / "mirroring")
    mirror.offer(checkpoint(tmp_path / "ck", 1))
    wait_for(lambda: not (tmp_path / "mirroring" / "checkpoint-1").exists())
    mirror.offer(checkpoint(tmp_path / "ck", 2))
    wait_for(lambda: mirror.uploaded == ["checkpoint-2"])
    mirror.close()
    assert stored.complete() == ["checkpoint-2"]
