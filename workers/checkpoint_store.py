"""Training checkpoints kept in the artifact store as well as on the worker's disk, so a gpu
worker on another machine (an empty `WORK_DIR`) resumes a killed run from its last checkpoint.

Only for a store other machines can read (`S3Storage`): with local storage every worker of the
installation shares the disk the checkpoints are on already. A stored checkpoint is complete
when its `COMPLETE` marker is there, written after every file of it; the older ones are deleted
then, so the store holds one complete checkpoint per job (and at most one being written).

Training does not wait for the store (`CheckpointMirror`): each checkpoint is hard-linked aside
the moment it is written (the trainer may delete the original) and uploaded by a background
thread; one written while another is still going up replaces any that waits its turn.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from app.artifacts import artifact_key
from app.storage import LocalStorage, Storage

log = logging.getLogger(__name__)

#: The store folder of a job's checkpoints (not an artifact: never listed or downloaded).
CHECKPOINTS = "checkpoints"
#: Written last into a stored checkpoint's folder.
COMPLETE = "COMPLETE"


def mirrors(storage: Storage) -> bool:
    """Whether work in progress (checkpoints, partial teacher answers) goes to this store too: not
    for local storage, which is on the disk the workers share already."""
    return not isinstance(storage, LocalStorage)


class StoredCheckpoints:
    """One job's checkpoints in the store."""

    def __init__(self, storage: Storage, job_id: uuid.UUID) -> None:
        self.storage = storage
        self.job_id = job_id

    def _key(self, name: str) -> str:
        return artifact_key(self.job_id, f"{CHECKPOINTS}/{name}")

    def save(self, checkpoint: Path, stop: Callable[[], bool] = lambda: False) -> bool:
        """Upload a checkpoint folder the trainer has written, then its marker, then drop the
        stored checkpoints before it. Returns False, without the marker, if `stop()` became true."""
        for path in sorted(p for p in checkpoint.rglob("*") if p.is_file()):
            if stop():
                return False
            with path.open("rb") as stream:
                self.storage.put_stream(self._key(f"{checkpoint.name}/{path.relative_to(checkpoint).as_posix()}"),
                                        stream)
        self.storage.put_stream(self._key(f"{checkpoint.name}/{COMPLETE}"), io.BytesIO(b""))
        for older in self._stored():
            if _step(older) < _step(checkpoint.name):
                self.storage.delete_prefix(self._key(older))
        return True

    def complete(self) -> list[str]:
        """The names of the complete stored checkpoints, oldest first."""
        return sorted((name for name, files in self._stored().items() if COMPLETE in files), key=_step)

    def _stored(self) -> dict[str, set[str]]:
        """Each stored checkpoint's name with the names of its files, from the listing alone."""
        stored: dict[str, set[str]] = {}
        for key in self.storage.names(artifact_key(self.job_id, CHECKPOINTS)):
            name, _, file = key.split("/", 2)[-1].partition("/")
            stored.setdefault(name, set()).add(file)
        return stored

    def restore(self, folder: Path) -> Path | None:
        """Copy the newest complete stored checkpoint into `folder` (the trainer's output folder)
        when `folder` holds none of its own; returns the copied checkpoint. Only that checkpoint
        is downloaded."""
        if any(folder.glob("checkpoint-*/trainer_state.json")):
            return None
        complete = self.complete()
        if not complete:
            return None
        source = self.storage.local_folder(self._key(complete[-1]))
        target = folder / complete[-1]
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(COMPLETE))
        return target


def _step(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


class CheckpointMirror:
    """Uploads a run's checkpoints to the store on a background thread, newest first."""

    def __init__(self, stored: StoredCheckpoints, staging: Path) -> None:
        self.stored, self.staging = stored, staging
        self.uploaded: list[str] = []
        self._waiting: Path | None = None
        self._closing = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="checkpoint-mirror", daemon=True)
        self._thread.start()

    def offer(self, checkpoint: Path) -> None:
        """Take a checkpoint the trainer has just written (called on the training thread)."""
        copy = self.staging / checkpoint.name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(checkpoint, copy, copy_function=_link_or_copy)
        with self._wake:
            if self._waiting is not None:
                shutil.rmtree(self._waiting, ignore_errors=True)  # a newer one replaces it
            self._waiting = copy
            self._wake.notify()

    def close(self) -> None:
        """Stop: an upload under way ends at its next file (unmarked, so never restored)."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join()
        shutil.rmtree(self.staging, ignore_errors=True)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._waiting is None and not self._closing:
                    self._wake.wait()
                if self._closing or self._waiting is None:
                    return
                checkpoint, self._waiting = self._waiting, None
            try:
                if self.stored.save(checkpoint, stop=lambda: self._closing):
                    self.uploaded.append(checkpoint.name)
            except Exception as exc:  # the next checkpoint tries again; training goes on meanwhile
                log.warning("checkpoint %s did not reach the store: %s", checkpoint.name, exc)
            finally:
                shutil.rmtree(checkpoint, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
