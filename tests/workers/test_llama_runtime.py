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


GRAMMAR_TOOLS = [
    {"type": "function", "function": {"name": "book_table", "parameters": {
        "type": "object", "required": ["people"],
        "properties": {"people": {"type": "integer"}, "time": {"type": "string"},
                       "seating": {"type": "string", "enum": ["inside", "outside"]}}}}},
    {"type": "function", "function": {"name": "add_items", "parameters": {
        "type": "object", "properties": {"items": {"type": "array", "items": {"type": "string"}},
                                         "urgent": {"type": "boolean"}, "price": {"type": "number"}}}}},
]
GRAMMAR_PROMPTS = ["Table for two at 8pm outside please", "Add milk and eggs to my list, it's urgent",
                   "What is the capital of France?", "Book it"]


def test_the_call_grammar_holds_in_llama_cpp_as_in_transformers(gguf, tmp_path):
    """The GBNF of `CallGrammar` and its Python check are one language: llama.cpp's answers under
    the GBNF pass the check, and match transformers' greedy answers under the check."""
    from app.answer_shapes.call_grammar import CallGrammar, Prefix
    from app.inference import generate, load_student

    student = load_student(model_dir(STUDENT))
    same = 0
    with LlamaServer(gguf, tmp_path / "server.log") as server:
        for text in (False, True):
            grammar = CallGrammar(GRAMMAR_TOOLS, text=text)
            for prompt in GRAMMAR_PROMPTS:
                messages = [{"role": "user", "content": prompt}]
                served = server.chat(messages, 48, grammar=grammar.gbnf()).text
                local = generate(student, messages, max_tokens=48, grammar=grammar).text
                assert grammar.check(served) is not Prefix.INVALID, served
                if not text:
                    assert served.lstrip().startswith('{"name": "'), served
                same += served == local
    assert same >= 6, f"{same} of 8 answers the same in llama.cpp and transformers"
