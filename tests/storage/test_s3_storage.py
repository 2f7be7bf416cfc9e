"""`S3Storage` against a real S3-compatible server in its own process (moto's server mode): what
every stage and the API rely on from a store, on a backend whose readers share no disk with
its writers."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import httpx
import pytest

from app.s3_storage import PART_SIZE, S3Storage
from app.storage import InvalidArtifactName, LocalStorage
from tests.support.s3 import make_bucket, s3_server

BUCKET = "vibetune-test"


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3")) as env:
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        make_bucket(env, BUCKET)
        yield env
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def store(tmp_path: Path, name: str = "cache") -> S3Storage:
    """A store with its own cache folder: a machine of its own."""
    return S3Storage.from_url(f"s3://{BUCKET}/installs/one", cache_dir=tmp_path / name)


def test_what_one_machine_writes_another_reads(s3_env, tmp_path):
    writer, reader = store(tmp_path, "writer"), store(tmp_path, "reader")
    stored = writer.put_stream("job1/dataset.jsonl", io.BytesIO(b'{"input": "hi"}\n'))
    assert stored.location == f"s3://{BUCKET}/installs/one/job1/dataset.jsonl"
    assert stored.size == 16 and stored.sha256 == hashlib.sha256(b'{"input": "hi"}\n').hexdigest()
    assert reader.exists("job1/dataset.jsonl") and not reader.exists("job1/other.jsonl")
    path = reader.local_path("job1/dataset.jsonl")
    assert path.read_bytes() == b'{"input": "hi"}\n' and path.is_relative_to(tmp_path / "reader")

    # Replaced by the writer, the reader's cached copy is refreshed; lost, it is fetched again.
    writer.put_stream("job1/dataset.jsonl", io.BytesIO(b"new\n"))
    assert reader.local_path("job1/dataset.jsonl").read_bytes() == b"new\n"
    path.unlink()
    assert reader.local_path("job1/dataset.jsonl").read_bytes() == b"new\n"
    with pytest.raises(FileNotFoundError):
        reader.local_path("job1/missing.jsonl")


def test_a_large_object_goes_up_in_parts_with_its_checksum_computed_while_streaming(s3_env, tmp_path):
    data = os.urandom(2 * PART_SIZE + 12345)

    class OneReadOnly(io.BytesIO):
        """A source that can only be read forward, as a pipe or a socket."""

        def seekable(self) -> bool:
            return False

        def seek(self, *_args):
            raise AssertionError("the store read the source twice")

    stored = store(tmp_path, "a").put_stream("job2/model/model.safetensors", OneReadOnly(data))
    assert stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    import boto3

    head = boto3.client("s3").head_object(Bucket=BUCKET, Key="installs/one/job2/model/model.safetensors")
    assert head["ETag"].strip('"').endswith("-3"), "uploaded as a 3-part multipart upload"
    copy = store(tmp_path, "b").local_path("job2/model/model.safetensors")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == stored.sha256


def test_a_folder_is_read_whole_and_a_prefix_deleted_whole(s3_env, tmp_path):
    writer, reader = store(tmp_path, "w"), store(tmp_path, "r")
    for name in ("config.json", "tokenizer.json", "sub/extra.bin"):
        writer.put_stream(f"job3/model/{name}", io.BytesIO(name.encode()))
    writer.put_stream("job3/model.txt", io.BytesIO(b"not in the folder"))
    assert reader.names("job3/model") == ["job3/model/config.json", "job3/model/sub/extra.bin",
                                          "job3/model/tokenizer.json"]
    assert not (tmp_path / "r").exists(), "a listing downloads nothing"
    folder = reader.local_folder("job3/model")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "config.json", "sub/extra.bin", "tokenizer.json"]
    assert (folder / "sub/extra.bin").read_bytes() == b"sub/extra.bin"

    writer.delete_prefix("job3/model")  # e.g. a retrained model replacing the old one
    writer.put_stream("job3/model/config.json", io.BytesIO(b"{}"))
    folder = reader.local_folder("job3/model")
    assert [p.name for p in folder.rglob("*") if p.is_file()] == ["config.json"], "stale files leave the copy"

    reader.delete_prefix("job3")
    assert not writer.exists("job3/model/config.json") and not writer.exists("job3/model.txt")
    assert not (tmp_path / "r" / "job3").exists(), "the cached copies go too"


def test_a_presigned_url_serves_the_object_and_its_ranges_to_a_plain_client(s3_env, tmp_path):
    data = os.urandom(100_000)
    s3 = store(tmp_path)
    s3.put_stream("job4/model/model.safetensors", io.BytesIO(data))
    url = s3.presigned_url("job4/model/model.safetensors", 60, download_name="model.safetensors")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url, "signed with SigV4"

    whole = httpx.get(url)  # no credentials: the URL's signature is the permission
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-disposition"] == 'attachment; filename="model.safetensors"'
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert httpx.get(s3.presigned_url("job4/missing.bin", 60)).status_code == 404


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../../b", "a\\b", ""])
def test_keys_cannot_escape_the_prefix_or_the_cache(tmp_path, key):
    s3 = S3Storage("bucket", "p", tmp_path, client=object())  # refused before any request
    for call in (s3.exists, s3.local_path, s3.delete_prefix, lambda k: s3.presigned_url(k, 60)):
        with pytest.raises(InvalidArtifactName):
            call(key)
    with pytest.raises(InvalidArtifactName):
        LocalStorage(tmp_path).local_path(key)


def test_the_store_url_is_checked():
    assert S3Storage.from_url("s3://b", Path("/tmp")).prefix == ""
    assert S3Storage.from_url("s3://b/a/b/", Path("/tmp")).prefix == "a/b"
    for bad in ("b/prefix", "http://b/p", "s3:///p"):
        with pytest.raises(ValueError, match="s3://BUCKET/PREFIX"):
            S3Storage.from_url(bad, Path("/tmp"))
