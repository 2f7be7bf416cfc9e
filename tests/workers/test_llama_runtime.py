"""llama.cpp's server as the package stage runs it: it refuses a broken file with its own words,
and it never outlives the worker that started it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workers.bundled_models import STUDENT, model_dir
from workers.packaging.gguf_file import convert_to_gguf
from workers.packaging.llama_runtime import LlamaServer, RuntimeFailed

HOLDER = """
import sys, time
from pathlib import Path
from workers.packaging.llama_runtime import LlamaServer
server = LlamaServer(Path(sys.argv[1]), Path(sys.argv[2])).__enter__()
print(server._process.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module")
def gguf(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gguf")
    convert_to_gguf(model_dir(STUDENT), out / "student.gguf", out / "convert.log")
    return out / "student.gguf"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().split()[2] != "Z"


def test_a_killed_worker_takes_its_llama_server_with_it(gguf, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(gguf), str(tmp_path / "server.log")],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        server_pid = int(holder.stdout.readline())
        assert alive(server_pid)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 10
        while alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(server_pid), "llama-server outlived the process that started it"
    finally:
        holder.kill()


def test_a_file_llama_cpp_cannot_load_fails_with_its_log(gguf, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(gguf.read_bytes()[: 4 * 1024 * 1024])  # the header and the first tensors only
    with pytest.raises(RuntimeFailed) as failure:
        with LlamaServer(broken, tmp_path / "server.log"):
            pass
    assert "llama-server exited with" in str(failure.value) and "broken.gguf" in str(failure.value)
