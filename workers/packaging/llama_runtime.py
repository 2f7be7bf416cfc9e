"""llama.cpp as a person runs an exported GGUF: `llama-server` on a loopback port, asked through
its OpenAI-style chat endpoint (so the prompt comes from the GGUF's own chat template), and
`llama-quantize` for the smaller files. The programs are built by `workers.packaging.llama_build`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from workers.packaging.llama_build import bin_dir, converters

#: The job body's `exports` names and llama.cpp's quantization type for each.
QUANT_TYPES = {"f16": "F16", "q8_0": "Q8_0", "q5_k_m": "Q5_K_M", "q4_k_m": "Q4_K_M"}
#: Seconds a server may take to load a file before it counts as broken.
START_SECONDS = 120.0


class RuntimeMissing(RuntimeError):
    """llama.cpp's programs are not built on this machine."""


class RuntimeFailed(RuntimeError):
    """A llama.cpp program refused a file or died; the message ends with its log's last lines."""


def program(name: str) -> Path:
    """The path of one built llama.cpp program, or RuntimeMissing saying how to build it."""
    path = Path(os.environ.get("LLAMA_CPP_BIN") or bin_dir()) / name
    if not path.is_file():
        raise RuntimeMissing(f"llama.cpp's {name} is not built at {path.parent}: run `make llama` "
                             "(python -m workers.packaging.llama_build)")
    return path


def convert_lora(adapter_dir: Path, base_dir: Path, target: Path, log: Path) -> None:
    """Write a PEFT LoRA adapter folder as a GGUF adapter (llama.cpp's `convert_lora_to_gguf.py`,
    with the `conversion` and `gguf` packages of the same tree) for `llama-server --lora`."""
    configured = os.environ.get("LLAMA_CPP_BIN")
    folder = Path(configured).parent / "convert" if configured else converters()
    if not (folder / "convert_lora_to_gguf.py").is_file():
        folder = converters()
    # The tree's `gguf` and `conversion` packages first: the converter was written against them.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)}
    with log.open("w") as out:
        done = subprocess.run([sys.executable, str(folder / "convert_lora_to_gguf.py"), "--base", str(base_dir),
                               "--outfile", str(target), "--outtype", "f16", str(adapter_dir)],
                              stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
    if done.returncode != 0 or not target.is_file():
        raise RuntimeFailed(f"the LoRA converter exited with {done.returncode}: {_tail(log)}")


def quantize(source: Path, target: Path, export: str, log: Path) -> None:
    """Write `source` (an f16 GGUF) as `target` quantized to the `export` type (`QUANT_TYPES`)."""
    with log.open("w") as out:
        done = subprocess.run([str(program("llama-quantize")), str(source), str(target), QUANT_TYPES[export],
                               str(_threads())], stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not target.is_file():
        raise RuntimeFailed(f"llama-quantize {QUANT_TYPES[export]} exited with {done.returncode}: {_tail(log)}")


@dataclass(frozen=True)
class ChatAnswer:
    """One greedy answer from the server, with the server's own count of its tokens and speed."""

    text: str
    completion_tokens: int
    tokens_per_second: float | None
    milliseconds: float


class LlamaServer:
    """`llama-server` serving one GGUF (with a GGUF LoRA adapter applied, if `lora` is given) on a
    free loopback port for as long as the `with` lasts."""

    def __init__(self, gguf: Path, log: Path, context: int = 4096, lora: Path | None = None) -> None:
        self.gguf, self.log, self.context, self.lora = gguf, log, context, lora
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(base_url=self.url, timeout=300.0)

    def __enter__(self) -> LlamaServer:
        command = [str(program("llama-server")), "--model", str(self.gguf), "--host", "127.0.0.1",
                   "--port", str(self.port), "--ctx-size", str(self.context), "--parallel", "1",
                   "--threads", str(_threads()), "--jinja", "--no-webui", "--seed", "0",
                   *(["--lora", str(self.lora)] if self.lora is not None else [])]
        with self.log.open("w") as out:
            self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeFailed(f"llama-server exited with {self._process.returncode} loading "
                                    f"{self.gguf.name}: {_tail(self.log)}")
            try:
                if self._client.get("/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise RuntimeFailed(f"llama-server did not load {self.gguf.name} in {START_SECONDS:.0f} s: {_tail(self.log)}")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._client.close()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def chat(self, messages: list[dict[str, str]], max_tokens: int, grammar: str | None = None) -> ChatAnswer:
        """The greedy answer to `messages`, the prompt made by the GGUF's chat template; under
        `grammar` (GBNF) when one is given."""
        started = time.perf_counter()
        reply = self._post("/v1/chat/completions", {
            "messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "top_k": 1, "seed": 0,
            "cache_prompt": False, **({"grammar": grammar} if grammar else {})})
        elapsed = (time.perf_counter() - started) * 1000
        timings = reply.get("timings") or {}
        return ChatAnswer(text=reply["choices"][0]["message"].get("content") or "",
                          completion_tokens=int((reply.get("usage") or {}).get("completion_tokens", 0)),
                          tokens_per_second=timings.get("predicted_per_second"), milliseconds=elapsed)

    def apply_template(self, messages: list[dict[str, str]]) -> str:
        """The prompt text llama.cpp builds for `messages` from the GGUF's chat template."""
        return str(self._post("/apply-template", {"messages": messages})["prompt"])

    def tokenize(self, text: str) -> list[int]:
        """The GGUF tokenizer's ids for `text`, special tokens parsed, no BOS added."""
        return [int(t) for t in self._post("/tokenize", {"content": text, "parse_special": True})["tokens"]]

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(path, json=body)
        if response.status_code != 200:
            raise RuntimeFailed(f"llama-server {path} answered {response.status_code}: {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer


def _die_with_parent() -> None:
    """In the server's process before it starts: a SIGKILLed worker takes its server with it
    (Linux's parent-death signal), so no orphan keeps the memory and the port."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _threads() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def _tail(log: Path, lines: int = 8) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""
