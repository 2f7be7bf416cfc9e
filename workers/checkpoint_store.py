"""Training checkpoints kept in the artifact store as well as on the worker's disk, so a gpu
worker on another machine (an empty `WORK_DIR`) resumes a killed run from its last checkpoint.

Only for a store other machines can read (`S3Storage`): with local storage every worker of the
installation shares the disk the checkpoints are on already. A stored checkpoint is complete
when its `COMPLETE` marker is there, written after every file of it; the older ones are deleted
then, so the store holds one complete checkpoint per job (and at most one being written).
"""

from __future__ import annotations

import io
import shutil
import uuid
from pathlib import Path

from app.artifacts import artifact_key
from app.storage import LocalStorage, Storage

#: The store folder of a job's checkpoints (not an artifact: never listed or downloaded).
CHECKPOINTS = "checkpoints"
#: Written last into a stored checkpoint's folder.
COMPLETE = "COMPLETE"


def mirrors(storage: Storage) -> bool:
    """Whether checkpoints go to this store too (not for local storage, on the workers' own disk)."""
    return not isinstance(storage, LocalStorage)


class StoredCheckpoints:
    """One job's checkpoints in the store."""

    def __init__(self, storage: Storage, job_id: uuid.UUID) -> None:
        self.storage = storage
        self.job_id = job_id

    def _key(self, name: str) -> str:
        return artifact_key(self.job_id, f"{CHECKPOINTS}/{name}")

    def save(self, checkpoint: Path) -> None:
        """Upload a checkpoint folder the trainer has just written, then its marker, then drop
        the stored checkpoints before it."""
        for path in sorted(p for p in checkpoint.rglob("*") if p.is_file()):
            with path.open("rb") as stream:
                self.storage.put_stream(self._key(f"{checkpoint.name}/{path.relative_to(checkpoint).as_posix()}"),
                                        stream)
        self.storage.put_stream(self._key(f"{checkpoint.name}/{COMPLETE}"), io.BytesIO(b""))
        stored = self.storage.local_folder(artifact_key(self.job_id, CHECKPOINTS))
        for older in stored.glob("checkpoint-*"):
            if older.name != checkpoint.name and _step(older) < _step(checkpoint):
                self.storage.delete_prefix(self._key(older.name))

    def restore(self, folder: Path) -> Path | None:
        """Copy the newest complete stored checkpoint into `folder` (the trainer's output folder)
        when `folder` holds none of its own; returns the copied checkpoint."""
        if any(folder.glob("checkpoint-*/trainer_state.json")):
            return None
        stored = self.storage.local_folder(artifact_key(self.job_id, CHECKPOINTS))
        complete = sorted((p for p in stored.glob("checkpoint-*") if (p / COMPLETE).is_file()), key=_step)
        if not complete:
            return None
        target = folder / complete[-1].name
        shutil.copytree(complete[-1], target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(COMPLETE))
        return target


def _step(checkpoint: Path) -> int:
    tail = checkpoint.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1
