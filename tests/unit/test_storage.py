"""Local artifact storage: atomic writes, checksums, names that cannot escape."""

import hashlib
import io
import os

import pytest

from app.storage import InvalidArtifactName, LocalStorage, validate_name


def test_put_records_size_and_sha256(tmp_path):
    storage = LocalStorage(tmp_path)
    data = os.urandom(3 * 1024 * 1024 + 17)
    stored = storage.put_stream("job/model/weights.bin", io.BytesIO(data))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert storage.local_path("job/model/weights.bin").read_bytes() == data
    assert storage.exists("job/model/weights.bin")


def test_failed_write_leaves_no_partial_file(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put_stream("job/a.txt", io.BytesIO(b"old"))

    class Broken(io.RawIOBase):
        calls = 0

        def read(self, n=-1):
            self.calls += 1
            if self.calls > 1:
                raise OSError("disk on fire")
            return b"partial"

    with pytest.raises(OSError):
        storage.put_stream("job/a.txt", Broken())
    assert storage.local_path("job/a.txt").read_bytes() == b"old"
    assert [p.name for p in (tmp_path / "job").iterdir()] == ["a.txt"]


def test_delete_prefix(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put_stream("j1/a", io.BytesIO(b"1"))
    storage.put_stream("j1/sub/b", io.BytesIO(b"1"))
    storage.put_stream("j2/a", io.BytesIO(b"2"))
    assert storage.names("j1") == ["j1/a", "j1/sub/b"]
    storage.delete_prefix("j1")
    assert not storage.exists("j1/a") and storage.exists("j2/a")


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a\\b", ".hidden", "a b", "x" * 600])
def test_bad_names(name):
    with pytest.raises(InvalidArtifactName):
        validate_name(name)


@pytest.mark.parametrize("name", ["report.json", "model/config.json", "student-Q4_K_M.gguf", "a//b"])
def test_good_names(name):
    assert validate_name(name) == "/".join(p for p in name.split("/") if p)


def test_storage_refuses_escape(tmp_path):
    with pytest.raises(InvalidArtifactName):
        LocalStorage(tmp_path / "root").put_stream("../outside", io.BytesIO(b"x"))
