"""Artifacts in any S3-compatible object store (AWS S3, MinIO, moto's server, ...), for an
installation whose API and workers share no disk.

`ARTIFACT_STORE=s3://BUCKET/PREFIX` selects it; the endpoint and credentials are boto3's standard
environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`).
Writes stream: large objects go up as a multipart upload, with the size and sha256 computed from
the bytes as they pass (one read of the source, never a second pass). Readers that need a file
get a copy in this machine's cache folder, downloaded once and again only when the object
changed (its ETag); the cache can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from app.storage import InvalidArtifactName, StoredObject, validate_name

#: Objects above this size are uploaded in parts of this size (S3's minimum part is 5 MiB).
PART_SIZE = 16 * 1024 * 1024
#: Attempts per request (botocore's "standard" mode: exponential back-off with jitter, at most 20 s apart).
RETRIES = 8
#: Where the cache keeps what it knows of each cached object (its ETag), beside the copies.
_META = ".meta"


class _HashingReader:
    """A forward-only reader that counts and hashes what passes through it. Not seekable, so
    boto3's transfer manager reads it once, in order (its parts then hash in sequence)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk

    def seekable(self) -> bool:
        return False


class S3Storage:
    """Artifacts as objects `<prefix>/<key>` in one bucket, cached on local disk for reading."""

    def __init__(self, bucket: str, prefix: str, cache_dir: Path, client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache_dir = cache_dir.resolve()
        self._client = client

    @classmethod
    def from_url(cls, url: str, cache_dir: Path) -> S3Storage:
        """The store of an `s3://BUCKET/PREFIX` URL (the prefix may be empty)."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"ARTIFACT_STORE must look like s3://BUCKET/PREFIX, not {url!r}")
        return cls(parsed.netloc, parsed.path, cache_dir)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # boto3 reads AWS_ENDPOINT_URL and the credentials itself; AWS_REGION is named here
            # because older botocore releases read only AWS_DEFAULT_REGION. SigV4 also for presigned
            # URLs (botocore would sign those with the deprecated SigV2, which AWS refuses in newer regions).
            # Retries with back-off ride out a store restarting (about a minute in all); a longer
            # outage interrupts the stage, whose job then waits (workers/outages.py).
            self._client = boto3.client("s3", region_name=os.environ.get("AWS_REGION") or None,
                                        config=Config(signature_version="s3v4", connect_timeout=5, read_timeout=60,
                                                      retries={"mode": "standard", "max_attempts": RETRIES}))
        return self._client

    def _object_key(self, key: str) -> str:
        name = validate_name(key)
        return f"{self.prefix}/{name}" if self.prefix else name

    def _cached(self, key: str) -> Path:
        path = (self.cache_dir / validate_name(key)).resolve()
        if self.cache_dir not in path.parents:
            raise InvalidArtifactName(f"invalid artifact key {key!r}")
        return path

    def _meta(self, key: str) -> Path:
        return self.cache_dir / _META / (validate_name(key) + ".json")

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        from boto3.s3.transfer import TransferConfig

        object_key = self._object_key(key)
        reader = _HashingReader(stream)
        # An object appears whole when its (multipart) upload completes: readers never see part of it.
        self.client.upload_fileobj(reader, self.bucket, object_key,
                                   Config=TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE))
        return StoredObject(location=f"s3://{self.bucket}/{object_key}", size=reader.size,
                            sha256=reader.digest.hexdigest())

    def local_path(self, key: str) -> Path:
        """The object in this machine's cache, downloaded when missing or changed since."""
        from botocore.exceptions import ClientError

        object_key = self._object_key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(f"no object {key!r} in s3://{self.bucket}/{self.prefix}") from None
            raise
        return self._cached_copy(key, head["ETag"])

    def _cached_copy(self, key: str, etag: str) -> Path:
        """The cached copy of the object whose current ETag is `etag`, downloaded unless the copy has it."""
        target, meta = self._cached(key), self._meta(key)
        if target.is_file() and meta.is_file() and json.loads(meta.read_text()).get("etag") == etag:
            return target
        self._download(key, target)
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"etag": etag}))
        return target

    def _download(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                self.client.download_fileobj(self.bucket, self._object_key(key), out)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _listing(self, prefix: str) -> dict[str, str]:
        """The artifact keys stored under `prefix` (a folder: `prefix/...`), each with its ETag."""
        folder = self._object_key(prefix) + "/"
        cut = len(self.prefix) + 1 if self.prefix else 0
        listing: dict[str, str] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder):
            listing.update({item["Key"][cut:]: item["ETag"] for item in page.get("Contents", [])})
        return listing

    def local_folder(self, prefix: str) -> Path:
        """Every object under `prefix`, in this machine's cache as one folder (files no longer
        stored under it are removed from the copy)."""
        # The listing carries each object's ETag: no HEAD request per file.
        keys = self._listing(prefix)
        folder = self._cached(prefix)
        for key, etag in sorted(keys.items()):
            self._cached_copy(key, etag)
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file() and path.relative_to(self.cache_dir).as_posix() not in keys:
                    path.unlink()
        return folder

    def names(self, prefix: str) -> list[str]:
        return sorted(self._listing(prefix))

    def presigned_url(self, key: str, seconds: int, download_name: str | None = None) -> str:
        """A URL that GETs the object (Range requests included) without credentials for `seconds`
        from now; with `download_name`, the store answers with that file name to save it under.
        Nothing is checked or sent: asking for a missing object is answered by the store (404)."""
        params = {"Bucket": self.bucket, "Key": self._object_key(key)}
        if download_name is not None:
            params["ResponseContentDisposition"] = f'attachment; filename="{validate_name(download_name)}"'
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        object_key = self._object_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _not_found(exc):
                return False
            raise
        return True

    def delete_prefix(self, prefix: str) -> None:
        self._cached(prefix)  # a key that could escape the cache is refused before any request
        keys = [self._object_key(key) for key in self._listing(prefix)]
        if self.exists(prefix):  # a single object named like the prefix
            keys.append(self._object_key(prefix))
        for start in range(0, len(keys), 1000):  # the most one request may delete
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})
        # The cached copies go too: the folder's files and their ETags, or the one object's.
        cached, meta = self._cached(prefix), self._meta(prefix)
        shutil.rmtree(cached, ignore_errors=True)
        shutil.rmtree(meta.with_suffix(""), ignore_errors=True)
        meta.unlink(missing_ok=True)
        if cached.is_file():
            cached.unlink()


def _not_found(exc: Any) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound")
