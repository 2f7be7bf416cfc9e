"""Artifact storage behind one small interface, two backends: `LocalStorage` (files under one
folder, `make up`'s default) and `S3Storage` (any S3-compatible object store, for machines that
share no disk). `ARTIFACT_STORE=s3://BUCKET/PREFIX` selects S3; `get_storage` builds the one
configured. Readers that need a file (to load a model, to stream a download with Range) ask
for `local_path`/`local_folder`: the object itself on local disk, a cached copy on S3."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from app.config import get_settings

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_CHUNK = 1024 * 1024


class InvalidArtifactName(ValueError):
    """An artifact name that could escape its job's folder or is not portable."""


@dataclass(frozen=True)
class StoredObject:
    """Where a written object lives, with its size in bytes and sha256 hex digest."""

    location: str
    size: int
    sha256: str


def validate_name(name: str) -> str:
    """Check an artifact name: slash-separated segments of letters, digits, `._-`, no `..`."""
    parts = [part for part in name.split("/") if part]
    if not name or len(name) > 512 or name.startswith("/") or "\\" in name or not parts:
        raise InvalidArtifactName(f"invalid artifact name {name!r}")
    for part in parts:
        if part in (".", "..") or not _SEGMENT.match(part):
            raise InvalidArtifactName(f"invalid artifact name {name!r}")
    return "/".join(parts)


class Storage(Protocol):
    """Where artifacts are kept. Keys are `<job id>/<artifact name>`."""

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        """Write a stream under `key` atomically; readers never see a partial object."""

    def local_path(self, key: str) -> Path:
        """A local file holding the object (for streaming and Range requests)."""

    def local_folder(self, prefix: str) -> Path:
        """A local folder holding every object under `prefix` (e.g. a model to load)."""

    def names(self, prefix: str) -> list[str]:
        """The keys of every object under the folder `prefix`, sorted (nothing is downloaded)."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under `prefix` (e.g. a whole job)."""


class LocalStorage:
    """Artifacts as files under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / validate_name(key)).resolve()
        if self.root not in path.parents:
            raise InvalidArtifactName(f"invalid artifact key {key!r}")
        return path

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredObject(location=f"file://{target}", size=size, sha256=digest.hexdigest())

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def local_folder(self, prefix: str) -> Path:
        return self._path(prefix)

    def names(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        return sorted(p.relative_to(self.root).as_posix() for p in folder.rglob("*")
                      if p.is_file() and not p.name.startswith(".tmp-"))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)


def get_storage() -> Storage:
    """The storage configured for this process: S3 when ARTIFACT_STORE is an `s3://` URL, else
    local files under ARTIFACT_DIR."""
    settings = get_settings()
    if settings.artifact_store:
        from app.s3_storage import S3Storage

        return S3Storage.from_url(settings.artifact_store, cache_dir=settings.work_dir / STORE_CACHE)
    return LocalStorage(settings.artifact_dir)


#: The folder under WORK_DIR where objects read from S3 are cached (safe to delete at any time).
STORE_CACHE = "store-cache"
